"""The damped-oscillator case (case_studies/damped_oscillator): an ODE written with time as x,
its closed-form solution as the config's own reference forward model, and the exact posterior
by quadrature (analyse.py) that both inversions must meet."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import prepare, run
from bpinn.config import load_config
from bpinn.models.problem import residual
from bpinn.reference.registry import problem_forward

CASE = CASE_STUDIES / "damped_oscillator"
FILES = ("config.toml", "ode.py", "sensors.csv")
analyse = case_script("damped_oscillator")
ode = case_script("damped_oscillator", "ode")


@pytest.mark.parametrize(("mu", "k"), [(1.0, 20.0), (6.0, 4.0)])  # under- and overdamped
def test_closed_form_solves_the_configured_ode_and_its_initial_conditions(mu, k):
    model = prepare(load_config(CASE / "config.toml"))
    coeffs = {"mu": jnp.asarray(mu), "k": jnp.asarray(k)}

    def u(z):
        return ode.exact(z[None], coeffs)[0]

    t = jnp.linspace(0.0, 1.0, 41)[:, None]
    r = jax.vmap(lambda z: residual(model.problem.pde, model.problem.source, u, z, coeffs))(t)
    assert float(jnp.max(jnp.abs(r))) < 1e-8 * max(k, 1.0)
    origin = jnp.zeros(1)
    assert float(u(origin)) == pytest.approx(1.0, abs=1e-12)
    assert float(jax.grad(u)(origin)[0]) == pytest.approx(0.0, abs=1e-10)
    # the numpy copy the quadrature uses is the same function
    np.testing.assert_allclose(analyse.exact(np.asarray(t[:, 0]), mu, k), jax.vmap(u)(t),
                               rtol=1e-12, atol=1e-12)


def test_readings_are_the_closed_form_plus_the_stated_noise():
    make_data = case_script("damped_oscillator", "make_data")
    t, u = analyse.read_csv(CASE / "sensors.csv")
    expected = np.random.default_rng(make_data.SEED).normal(0.0, make_data.NOISE_SD, t.size)
    np.testing.assert_allclose(u - make_data.exact(t), expected, atol=1e-8)


def test_the_configs_forward_model_is_the_reference_solver():
    model = prepare(load_config(CASE / "config.toml"))
    forward = problem_forward(model.problem)
    t, _ = analyse.read_csv(CASE / "sensors.csv")
    u = forward({"mu": jnp.asarray(1.3), "k": jnp.asarray(17.0)})
    np.testing.assert_allclose(u, analyse.exact(t, 1.3, 17.0), rtol=1e-12)
    grid = problem_forward(model.problem, np.array([[0.0], [0.5]]))
    np.testing.assert_allclose(grid({"mu": 1.0, "k": 20.0}), analyse.exact(np.array([0, .5]),
                                                                              1.0, 20.0))


@pytest.fixture(scope="module")
def exact():
    post = analyse.exact_posterior(*analyse.read_csv(CASE / "sensors.csv"))
    assert post["edge_mass"] < 1e-4  # the grid holds the posterior
    return post


@pytest.mark.slow
def test_reference_inversion_with_the_configs_forward_model_is_exact(tmp_path, exact):
    """NUTS on the closed form against quadrature: means within 4 Monte Carlo standard errors,
    sds within 15% (the relative error of an sd from ESS >= 400 draws is under 4%)."""
    copy_case("damped_oscillator", tmp_path, FILES)
    result = run(tmp_path / "config.toml", method="reference",
                 overrides={"num_chains": 2, "num_warmup": 200, "num_samples": 500})
    assert result.summary["method_info"]["forward_model"].startswith("the config's own")
    for name in ("mu", "k"):
        row = result.summary["parameters"][name]
        mean, sd = exact[name]
        assert row["ess_bulk"] >= 400, row
        assert abs(row["mean"] - mean) < 4 * row["mcse_mean"], (name, row, exact[name])
        assert abs(row["sd"] / sd - 1) < 0.15, (name, row, exact[name])


@pytest.mark.slow
def test_reduced_bpinn_run_meets_the_exact_posterior(tmp_path, exact):
    """Issue 5's agreement bound, from the exact posterior: |mean - exact mean| <= 0.5 exact sd
    and sd ratio in [0.7, 1.5], for mu and k; the readings fit (R^2 above the warning's 0.8)."""
    copy_case("damped_oscillator", tmp_path, FILES)
    result = run(tmp_path / "config.toml",
                 overrides={"num_chains": 2, "num_warmup": 150, "num_samples": 200,
                            "map_adam_steps": 3000, "map_lbfgs_steps": 500})
    for name in ("mu", "k"):
        row = result.summary["parameters"][name]
        mean, sd = exact[name]
        assert abs(row["mean"] - mean) <= 0.5 * sd, (name, row["mean"], row["sd"], exact[name])
        assert 0.7 <= row["sd"] / sd <= 1.5, (name, row["mean"], row["sd"], exact[name])
    assert result.summary["diagnostics"]["readings_fit"]["r2"] > 0.8
