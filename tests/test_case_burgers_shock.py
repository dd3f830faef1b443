"""The Burgers-shock case study (case_studies/burgers_shock): viscous Burgers with a sharp front.

What is checked here is the ground the case study stands on, not the B-PINN (too slow for a
test; analyse.py runs it):

* make_data.py reproduces the shipped sensors.csv exactly (same seed, same fine MOL solution).
* The reference forward model that ``--method reference`` uses (``problem_forward``: the method
  of lines with its default 128 cells and 400 steps) reproduces the noise-free truth (4096 cells,
  8000 steps) at the 48 sensors, at the true nu = 0.02, to 1e-2: the measured discretisation
  error is 7.6e-3 at worst over a 81 x 41 grid of the domain (1.6e-3 relative L2), a quarter
  of the noise sd 0.03. The scheme is second order: doubling the cells cuts the error by about
  four (measured 4.4).
* At the benchmark's nu = 0.01 / pi the same 128-cell grid is not good enough (measured maximum
  error 0.069 over the grid, twice the noise sd): the reason the case study uses nu = 0.02.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script

from bpinn.config import build_problem, load_config
from bpinn.reference.mol import burgers_mol
from bpinn.reference.registry import problem_forward

jax.config.update("jax_enable_x64", True)

CASE = CASE_STUDIES / "burgers_shock"
make_data = case_script("burgers_shock", "make_data")


def _shipped():
    rows = np.genfromtxt(CASE / "sensors.csv", delimiter=",", names=True, dtype=None,
                         encoding="utf-8")
    return rows


@pytest.fixture(scope="module")
def truth_at_sensors():
    _, pts = make_data.sensor_points()
    return pts, make_data.true_field(pts)


def test_make_data_reproduces_sensors_csv():
    rows = make_data.make_readings()
    shipped = _shipped()
    assert len(rows) == len(shipped) == 48
    for (s, x, t, u), r in zip(rows, shipped, strict=True):
        assert (s, x, t) == (r["sensor"], r["x"], r["t"])
        assert u == r["u"]  # written with repr: exact round trip


def test_noise_is_as_stated(truth_at_sensors):
    _, u_true = truth_at_sensors
    noise = _shipped()["u"] - u_true
    # 48 draws of N(0, 0.03^2): the sample sd lies within 4 of its sds (0.03 / sqrt(96)) of 0.03
    assert abs(noise.std(ddof=0) - make_data.NOISE_SD) < 4 * make_data.NOISE_SD / np.sqrt(96)
    assert abs(noise.mean()) < 4 * make_data.NOISE_SD / np.sqrt(48)


def test_reference_forward_reproduces_the_truth_at_the_sensors(truth_at_sensors):
    pts, u_true = truth_at_sensors
    problem = build_problem(load_config(CASE / "config.toml"))
    forward = problem_forward(problem)  # the resolution --method reference uses
    u_ref = np.asarray(forward({"nu": make_data.TRUE_NU}))
    assert np.allclose(np.asarray(problem.observations.coords), pts)
    err = np.abs(u_ref - u_true)
    assert err.max() < 1e-2, err.max()
    # second order: 256 cells (same 400 steps) are about four times closer
    u_256 = np.asarray(problem_forward(problem, num_cells=256)({"nu": make_data.TRUE_NU}))
    err_256 = np.abs(u_256 - u_true).max()
    assert 2.5 < err.max() / err_256 < 6.5, (err.max(), err_256)


def test_the_benchmark_viscosity_is_under_resolved_by_the_reference_grid():
    x, t = np.linspace(-1, 1, 81), np.linspace(0, 1, 41)
    X, T = np.meshgrid(x, t, indexing="ij")
    pts = np.stack([X.ravel(), T.ravel()], 1)
    nu = 0.01 / np.pi
    fine = make_data.true_field(pts, nu=nu)
    coarse = np.asarray(burgers_mol(pts, nu, lambda x: -jnp.sin(jnp.pi * x), interval=(-1, 1),
                                    time=(0, 1), num_cells=128, num_steps=400))
    assert np.abs(coarse - fine).max() > make_data.NOISE_SD
