"""The Kovasznay-flow case (case_studies/kovasznay_flow): steady Navier-Stokes as a system of
three unknown functions, the viscosity unknown, the pressure never read. Its analytic facts:
Kovasznay's closed form zeroes all three residuals for its own viscosity and no other, the
readings are it plus the stated noise, and a constant added to the pressure changes no
residual (its level is the physics' null direction)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import prepare, run
from bpinn.config import load_config

CASE = CASE_STUDIES / "kovasznay_flow"
FILES = ("config.toml", "kovasznay.py", "sensors.csv")
flow = case_script("kovasznay_flow", "kovasznay")
POINTS = jnp.asarray(np.random.default_rng(1).uniform([-0.5, -0.5], [1.0, 1.5], (25, 2)))


def _residuals(u_fn, nu):
    return jax.vmap(lambda z: flow.operator(u_fn, z, {"nu": nu}))(POINTS)


def test_the_closed_form_solves_the_equations_for_its_own_viscosity_only():
    assert float(jnp.max(jnp.abs(_residuals(flow.exact, flow.NU_TRUE)))) < 1e-10
    # another viscosity leaves momentum residuals of order nu * lap(u) ~ 0.01 * 40
    wrong = _residuals(flow.exact, 2 * flow.NU_TRUE)
    assert float(jnp.max(jnp.abs(wrong[:, :2]))) > 0.1
    assert float(jnp.max(jnp.abs(wrong[:, 2]))) < 1e-10  # continuity does not read nu


def test_a_constant_pressure_level_changes_no_residual():
    shifted = _residuals(lambda z: flow.exact(z) + jnp.array([0.0, 0.0, 3.0]), flow.NU_TRUE)
    assert float(jnp.max(jnp.abs(shifted))) < 1e-10


def test_readings_are_the_velocity_plus_the_stated_noise():
    make_data = case_script("kovasznay_flow", "make_data")
    data = np.loadtxt(CASE / "sensors.csv", delimiter=",", skiprows=1)
    points, expected = make_data.readings()
    np.testing.assert_allclose(data[:, :2], points, atol=1e-6)
    np.testing.assert_allclose(data[:, 2:], expected, atol=1e-7)


def test_the_config_reads_the_velocity_and_never_the_pressure():
    m = prepare(load_config(CASE / "config.toml"))
    assert m.problem.pde.outputs == ("u", "v", "p") and m.problem.pde.num_equations == 3
    assert m.problem.observations.group_names == ("u", "v")
    assert np.bincount(m.reading_outputs).tolist() == [60, 60]
    assert m.unknown_coefficients == ("nu",)


@pytest.mark.slow
def test_laplace_recovers_the_viscosity_without_reading_the_pressure(tmp_path):
    """The Gauss-Newton Laplace approximation at the MAP: the 95% interval of nu holds 0.025."""
    copy_case("kovasznay_flow", tmp_path, FILES)
    result = run(tmp_path / "config.toml", method="laplace",
                 overrides={"num_chains": 2, "num_samples": 300})
    nu = result.summary["parameters"]["nu"]
    assert nu["q2.5"] <= flow.NU_TRUE <= nu["q97.5"], nu
    assert result.summary["diagnostics"]["readings_fit"]["r2"] > 0.99
    assert set(result.datatree["predictions"].data_vars) >= {"u", "v", "p"}
