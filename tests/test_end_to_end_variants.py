"""Smoke tests of paths the heat case does not take: steady problems, 2-D space, soft
conditions, a source function, npz data, Student-t likelihood, Fourier features.

Tiny sizes: these check that every piece connects and the outputs are well formed, not the
statistics (the heat integration test does that).
"""

import numpy as np
import pytest

from bpinn.cli import main
from bpinn.inference.results import read_results

SOURCES = """\
import jax.numpy as jnp


def f1(z):
    return 0.5 * jnp.pi**2 * jnp.sin(jnp.pi * z[0])


def f2(z):
    return jnp.pi**2 * jnp.sin(jnp.pi * z[0]) * jnp.sin(jnp.pi * z[1])
"""

TINY = """
[inference]
num_chains = 2
num_warmup = 20
num_samples = 10
map_adam_steps = 200
map_lbfgs_steps = 10
max_tree_depth = 4
"""

POISSON_1D = """\
[problem]
pde = "poisson"
source = "sources:f1"
[domain]
x = [0.0, 2.0]
[coefficients]
k = { prior = "LogNormal", loc = 0.0, scale = 1.0 }
[[conditions]]
kind = "dirichlet"
boundary = "all"
value = 0.0
[data]
file = "obs.csv"
coords = { x = "pos" }
value = "temp"
noise = 0.01
[model]
width = 6
num_collocation = 16
num_condition_points = 4
condition_noise = { prior = "HalfNormal", scale = 0.05 }
"""

POISSON_2D = """\
[problem]
pde = "poisson"
source = "sources:f2"
[domain]
x = [0.0, 1.0]
y = [0.0, 1.0]
[coefficients]
k = { prior = "LogNormal", loc = 0.0, scale = 1.0 }
[[conditions]]
kind = "dirichlet"
boundary = "all"
value = 0.0
hard = true
[data]
file = "obs2d.npz"
coords = { x = "X", y = "Y" }
value = "U"
noise = { prior = "HalfNormal", scale = 0.1 }
likelihood = "student_t"
[model]
network = "fourier"
num_fourier = 4
width = 6
num_collocation = 16
"""


def _write_case(tmp_path, config: str) -> str:
    rng = np.random.default_rng(0)
    x = np.linspace(0.1, 1.9, 12)
    u = np.sin(np.pi * x) + 0.01 * rng.normal(size=x.size)
    np.savetxt(tmp_path / "obs.csv", np.c_[x, u], delimiter=",", header="pos,temp", comments="")
    xy = rng.uniform(0.05, 0.95, size=(20, 2))
    u2 = np.sin(np.pi * xy[:, 0]) * np.sin(np.pi * xy[:, 1])
    np.savez(tmp_path / "obs2d.npz", X=xy[:, 0], Y=xy[:, 1], U=u2 + 0.01 * rng.normal(size=20))
    (tmp_path / "sources.py").write_text(SOURCES)
    path = tmp_path / "config.toml"
    path.write_text(config + TINY)
    return str(path)


@pytest.mark.parametrize(
    "config, coords, scales",
    [
        (POISSON_1D, ("x",), ("sigma_bc",)),
        (POISSON_2D, ("x", "y"), ("sigma",)),
    ],
    ids=["poisson-1d-soft", "poisson-2d-hard-fourier-student-t"],
)
def test_variant_runs_end_to_end(tmp_path, config, coords, scales):
    out = tmp_path / "out"
    assert main(["run", _write_case(tmp_path, config), "-o", str(out), "--quiet"]) == 0
    dt = read_results(out / "posterior.nc")
    assert set(dt["posterior"].data_vars) == {"k", *scales}
    assert np.all(np.isfinite(dt["posterior"]["k"].values))
    assert np.all(dt["posterior"]["k"].values > 0)
    for name in coords:
        assert name in dt["constant_data"].data_vars
    assert "t" not in dt["constant_data"].data_vars
    n = dt["observed_data"]["u_obs"].size
    assert dt["log_likelihood"]["u_obs"].shape == (2, 10, n)
