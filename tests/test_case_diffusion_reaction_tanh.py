"""The steady nonlinear diffusion-reaction case (lambda u'' + k tanh(u) = f, k unknown): the
configured problem is the manufactured one, and a reduced run recovers k."""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import prepare, run
from bpinn.config import load_config
from bpinn.models.problem import residual

CASE = CASE_STUDIES / "diffusion_reaction_tanh"
FILES = ("config.toml", "config_known_noise.toml", "problem.py", "sensors.csv")


def test_exact_solution_satisfies_the_configured_pde_and_boundary():
    """Sign conventions: bpinn's -D u'' - k tanh(u) = f with the case's source is the paper's
    lambda u'' + k tanh(u) = f at the true k, so the exact u leaves no residual."""
    problem = case_script("diffusion_reaction_tanh", "problem")
    model = prepare(load_config(CASE / "config.toml"))
    coeffs = {"D": jnp.asarray(problem.LAMBDA), "k": jnp.asarray(problem.TRUE_K)}

    def exact(z):
        return problem.exact_u(z[0])

    x = jnp.linspace(-0.7, 0.7, 57)[:, None]
    r = jax.vmap(lambda z: residual(model.problem.pde, model.problem.source, exact, z,
                                    coeffs))(x)
    assert float(jnp.max(jnp.abs(r))) < 1e-9
    # and the residual notices a wrong k (|tanh u| reaches 0.76 on the domain)
    wrong = jax.vmap(lambda z: residual(model.problem.pde, model.problem.source, exact, z,
                                        {**coeffs, "k": jnp.asarray(0.8)}))(x)
    assert float(jnp.max(jnp.abs(wrong))) > 0.05


def test_shipped_readings_are_the_exact_solution_plus_the_stated_noise():
    make_data = case_script("diffusion_reaction_tanh", "make_data")
    problem = case_script("diffusion_reaction_tanh", "problem")
    with open(CASE / "sensors.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([float(r["x"]) for r in rows])
    u = np.array([float(r["u"]) for r in rows])
    np.testing.assert_allclose(x, make_data.SENSORS_X, atol=1e-6)
    expected = np.random.default_rng(make_data.SEED).normal(0.0, make_data.NOISE_SD, x.size)
    exact = np.asarray(problem.exact_u(make_data.SENSORS_X))
    np.testing.assert_allclose(u - exact, expected, atol=1e-8)  # the file keeps 8 decimals


@pytest.mark.slow
def test_reduced_run_with_known_noise_recovers_k(tmp_path):
    """The paper's setting (noise sd known). Truth inside the 95% interval."""
    copy_case("diffusion_reaction_tanh", tmp_path, FILES)
    result = run(tmp_path / "config_known_noise.toml", outdir=tmp_path / "out",
                 overrides={"num_warmup": 150, "num_samples": 150, "map_adam_steps": 3000,
                            "map_lbfgs_steps": 300, "max_tree_depth": 8})
    k = result.summary["parameters"]["k"]
    print(k)
    assert k["truth_in_95"] is True
    assert k["r_hat"] < 1.05
