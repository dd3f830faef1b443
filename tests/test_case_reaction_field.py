"""The reaction-field case (case_studies/reaction_field): lambda u'' - k(x) u = f with the
reaction rate k(x) an unknown field. Its analytic facts: the readings are u = sin(pi x) plus the
stated noise; f makes sin(pi x) the solution for the true k; and since k enters only through
k u, the data cannot determine k where u vanishes (x = 0 and 1), while where u is largest and the
readings dense (x = 0.5) they do."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import prepare, run
from bpinn.config import load_config
from bpinn.models.problem import residual

CASE = CASE_STUDIES / "reaction_field"
FILES = ("config.toml", "reaction.py", "sensors.csv")
reaction = case_script("reaction_field", "reaction")
REDUCED = {"num_chains": 2, "num_warmup": 150, "num_samples": 200}


def test_the_true_solution_solves_the_configured_equation():
    model = prepare(load_config(CASE / "config.toml"))
    p = model.problem

    def u(z):
        return jnp.sin(jnp.pi * z[0])

    x = jnp.linspace(0.0, 1.0, 41)[:, None]
    r = jax.vmap(lambda z: residual(p.pde, p.source, u, z, {"k": reaction.k_true(z)}))(x)
    assert float(jnp.max(jnp.abs(r))) < 1e-10


def test_the_reference_solver_converges_to_the_true_solution():
    """Second-order finite differences on 201 nodes: error of order h^2 lambda^-1 ~ 1e-4."""
    x = np.linspace(0.0, 1.0, 57)[:, None]
    u = reaction.reference(jnp.asarray(x), {"k": reaction.k_true})
    np.testing.assert_allclose(u, np.sin(np.pi * x[:, 0]), atol=1e-4)


def test_readings_are_the_true_solution_plus_the_stated_noise():
    make_data = case_script("reaction_field", "make_data")
    data = np.loadtxt(CASE / "sensors.csv", delimiter=",", skiprows=1)
    expected = np.random.default_rng(make_data.SEED).normal(0.0, make_data.NOISE_SD,
                                                            make_data.NUM)
    np.testing.assert_allclose(data[:, 1] - np.sin(np.pi * data[:, 0]), expected, atol=1e-8)


def _at(field: dict, x: float) -> int:
    return int(np.argmin(np.abs(np.asarray(field["axes"]["x"]) - x)))


def _check_the_verdict_follows_u(field: dict) -> None:
    """Prior-driven where u = 0, determined at the centre; the thresholds are the package's
    (contraction 0.5 of the prior variance of log k)."""
    contraction = np.asarray(field["contraction"])
    assert contraction[_at(field, 0.0)] < 0.5, field["contraction"][:5]
    assert contraction[_at(field, 1.0)] < 0.5, field["contraction"][-5:]
    assert contraction[_at(field, 0.5)] > 0.9, contraction[_at(field, 0.5)]


@pytest.mark.slow
def test_gold_standard_determines_k_where_u_is_large_and_covers_the_truth(tmp_path):
    copy_case("reaction_field", tmp_path, FILES)
    result = run(tmp_path / "config.toml", method="reference", overrides=REDUCED)
    field = result.summary["fields"]["k"]
    _check_the_verdict_follows_u(field)
    i = _at(field, 0.5)
    assert field["q2.5"][i] <= field["truth"][i] <= field["q97.5"][i]
    assert field["max_r_hat"] < 1.05


@pytest.mark.slow
def test_bpinn_field_posterior_follows_u_and_fits_the_readings(tmp_path):
    copy_case("reaction_field", tmp_path, FILES)
    result = run(tmp_path / "config.toml", overrides=REDUCED)
    field = result.summary["fields"]["k"]
    _check_the_verdict_follows_u(field)
    verdict = result.summary["identifiability"]["fields"]["k"]
    assert 0 < verdict["identified_fraction"] < 1  # not at the ends, where u = 0
    assert any(v.startswith("field k: identified over") for v in
               result.summary["identifiability"]["verdicts"])
    assert result.summary["diagnostics"]["readings_fit"]["r2"] > 0.99
    assert "field(s) k are not covered" in result.summary["method_info"]["implicit_prior"]["mode"]
    assert field["implied_prior"].startswith("not removed")
    posterior = result.datatree["posterior"]
    assert posterior["k"].dims == ("chain", "draw", "k_x")
    assert posterior["k"].sizes["k_x"] == len(field["axes"]["x"])


def test_the_well_readings_are_the_true_log_k_plus_the_stated_noise():
    make_data = case_script("reaction_field", "make_data")
    data = np.loadtxt(CASE / "wells.csv", delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_allclose(data[:, 0], make_data.WELLS_X)
    true_log_k = np.log([float(reaction.k_true(jnp.asarray([x]))) for x in data[:, 0]])
    expected = np.random.default_rng(make_data.WELLS_SEED).normal(
        0.0, make_data.WELLS_NOISE_SD, data.shape[0])
    np.testing.assert_allclose(data[:, 1] - true_log_k, expected, atol=1e-6)


@pytest.mark.slow
def test_gold_standard_with_wells_determines_k_at_the_walls_too(tmp_path):
    """Two readings of log k at x = 0.05 and 0.95 (sd 0.1, within a prior length scale of the
    walls) determine k there, where u alone cannot (the test above), and the band at the
    walls holds the truth."""
    copy_case("reaction_field", tmp_path, (*FILES, "config_wells.toml", "wells.csv"))
    result = run(tmp_path / "config_wells.toml", method="reference", overrides=REDUCED)
    field = result.summary["fields"]["k"]
    contraction = np.asarray(field["contraction"])
    for x in (0.0, 1.0):
        i = _at(field, x)
        assert contraction[i] >= 0.5, (x, contraction[i])
        assert field["q2.5"][i] <= field["truth"][i] <= field["q97.5"][i]
    assert contraction[_at(field, 0.5)] > 0.9
    assert field["readings"]["of"] == "log k"
