"""The Lotka-Volterra case (case_studies/lotka_volterra): a system of two ODEs, with its own RK4
reference solution as the gold standard. Fast checks of the case's code only: the reference
conserves the system's first integral, has converged, satisfies the configured operator, and
the shipped readings are it plus the stated noise."""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import run

CASE = CASE_STUDIES / "lotka_volterra"
lv = case_script("lotka_volterra", "lotka_volterra")
make_data = case_script("lotka_volterra", "make_data")
TRUTH = {name: jnp.asarray(value) for name, value in make_data.TRUTH.items()}
FILES = ("config.toml", "lotka_volterra.py", "sensors.csv")
TIMES = jnp.linspace(0.0, lv.T_END, 333)[:, None]  # off the RK4 nodes as well as on them


def test_reference_conserves_the_first_integral():
    """RK4 at h = 0.004 keeps delta u - gamma ln u + beta v - alpha ln v constant to about
    2e-12 relative over the window (the interpolation between nodes included)."""
    y = lv.forward(TIMES, TRUTH)
    h = lv.exact_first_integral(y[:, 0], y[:, 1], TRUTH)
    h0 = lv.exact_first_integral(lv.U0, lv.V0, TRUTH)
    assert float(jnp.max(jnp.abs(h / h0 - 1))) < 1e-9
    np.testing.assert_allclose(y[0], [lv.U0, lv.V0], rtol=0, atol=1e-14)


def test_reference_has_converged():
    """The shipped 2000 steps against 8000: they differ by about 1e-11 (RK4's h^4)."""
    coarse = lv.forward(TIMES, TRUTH)
    fine = lv.forward(TIMES, TRUTH, steps=4 * lv.STEPS)
    assert float(jnp.max(jnp.abs(coarse - fine))) < 1e-9


@pytest.mark.parametrize("coeffs", [make_data.TRUTH,
                                    {"alpha": 0.7, "beta": 1.1, "gamma": 1.3, "delta": 0.4}])
def test_reference_solves_the_operators_system(coeffs):
    """The operator through jax derivatives of the reference: zero up to the Hermite
    interpolant's derivative error, O(h^3) = 6e-8 at h = 0.004 (measured 5e-9 at the truth)."""
    coeffs = {name: jnp.asarray(value) for name, value in coeffs.items()}

    def u_fn(z):
        return lv.forward(z[None], coeffs)[0]

    r = jax.vmap(lambda z: lv.operator(u_fn, z, coeffs))(TIMES[1:-1])
    assert r.shape == (TIMES.shape[0] - 2, 2)
    assert float(jnp.max(jnp.abs(r))) < 1e-7
    # the operator is the system, not a trivially small function: a wrong rate shows
    wrong = dict(coeffs, gamma=coeffs["gamma"] * 1.01)
    r = jax.vmap(lambda z: lv.operator(u_fn, z, wrong))(TIMES[1:-1])
    assert float(jnp.max(jnp.abs(r[:, 1]))) > 1e-3
    assert float(jnp.max(jnp.abs(r[:, 0]))) < 1e-7


def test_reference_is_jittable_and_differentiable_in_the_rates():
    """NUTS differentiates through the forward model: the jitted gradient matches central
    differences."""
    t = TIMES[::37]

    def loss(c):
        return jnp.sum(lv.forward(t, c) ** 2)

    grad = jax.jit(jax.grad(loss))(TRUTH)
    for name in TRUTH:
        eps = 1e-6
        up = loss(dict(TRUTH, **{name: TRUTH[name] + eps}))
        down = loss(dict(TRUTH, **{name: TRUTH[name] - eps}))
        assert float(grad[name]) == pytest.approx(float(up - down) / (2 * eps), rel=1e-6)


def test_shipped_readings_are_what_make_data_writes():
    with open(CASE / "sensors.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    shipped = np.array([[float(r["t"]), float(r["prey"]), float(r["predator"])] for r in rows])
    t, prey, predator = make_data.readings()
    assert shipped.shape == (make_data.NUM_TIMES, 3)
    np.testing.assert_allclose(shipped, np.column_stack([t, prey, predator]), rtol=0, atol=1e-8)
    # and the readings are the truth plus noise of about the stated sd
    truth = np.asarray(lv.forward(jnp.asarray(t)[:, None], TRUTH))
    noise = shipped[:, 1:] - truth
    assert 0.5 * make_data.NOISE_SD < noise.std() < 1.5 * make_data.NOISE_SD


@pytest.fixture(scope="module")
def reference_posterior(tmp_path_factory):
    """The gold standard: NUTS over the rates with the RK4 solver (the config's reference)."""
    folder = tmp_path_factory.mktemp("lotka_volterra_reference")
    copy_case("lotka_volterra", folder, FILES)
    return run(folder / "config.toml", method="reference",
               overrides={"num_chains": 2, "num_warmup": 200, "num_samples": 500}).summary


@pytest.mark.slow
def test_reduced_bpinn_run_meets_the_gold_standard(tmp_path, reference_posterior):
    """Issue 5's agreement bound against the gold standard, for all four rates: |mean - gold
    mean| <= 0.5 gold sd and sd ratio in [0.7, 1.5]; each rate's truth inside the B-PINN's 95%
    interval; both species' readings fit."""
    copy_case("lotka_volterra", tmp_path, FILES)
    result = run(tmp_path / "config.toml",
                 overrides={"num_chains": 2, "num_warmup": 150, "num_samples": 200})
    for name in ("alpha", "beta", "gamma", "delta"):
        row = result.summary["parameters"][name]
        gold = reference_posterior["parameters"][name]
        assert abs(row["mean"] - gold["mean"]) <= 0.5 * gold["sd"], (name, row, gold)
        assert 0.7 <= row["sd"] / gold["sd"] <= 1.5, (name, row, gold)
        assert row["q2.5"] < make_data.TRUTH[name] < row["q97.5"], (name, row)
    assert result.summary["diagnostics"]["readings_fit"]["r2"] > 0.8
    assert list(result.datatree["predictions"].data_vars) == ["u", "v"]
