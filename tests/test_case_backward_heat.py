"""The backward heat case (case_studies/backward_heat): u_t = D u_xx with the initial value
u0(x) unknown, read later. Its analytic facts: the readings are the sine-series solution plus
the stated noise; the walls hold u = 0 for every t > 0, so no reading can say what u0 was at
x = 0 or x = 1 beyond what the prior's smoothness carries there from the nearest sensors, while
between the sensors it is determined."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import prepare, run
from bpinn.config import load_config
from bpinn.models.fields import GaussianProcessField

CASE = CASE_STUDIES / "backward_heat"
FILES = ("config.toml", "backward_heat.py", "sensors.csv")
model = case_script("backward_heat", "backward_heat")
REDUCED = {"num_chains": 2, "num_warmup": 150, "num_samples": 200}


def test_the_sine_series_solves_the_heat_equation_from_its_initial_value():
    """Two modes of u0 decay at their own rates exp(-D k^2 pi^2 t)."""
    d = 0.01

    def u0(z):
        return jnp.sin(jnp.pi * z[0]) + 0.3 * jnp.sin(3 * jnp.pi * z[0])

    x, t = np.meshgrid(np.linspace(0.0, 1.0, 11), [0.0, 0.05, 0.1])
    points = jnp.asarray(np.stack([x.ravel(), t.ravel()], axis=1))
    u = model.forward(points, {"u0": u0, "D": jnp.asarray(d)})
    exact = (np.exp(-d * np.pi**2 * t) * np.sin(np.pi * x)
             + 0.3 * np.exp(-9 * d * np.pi**2 * t) * np.sin(3 * np.pi * x))
    np.testing.assert_allclose(u, exact.ravel(), atol=1e-10)


def test_readings_are_the_solution_plus_the_stated_noise():
    make_data = case_script("backward_heat", "make_data")
    data = np.loadtxt(CASE / "sensors.csv", delimiter=",", skiprows=1)
    u = model.forward(jnp.asarray(data[:, :2]),
                      {"u0": model.u0_true, "D": jnp.asarray(make_data.D_TRUE)})
    expected = np.random.default_rng(make_data.SEED).normal(0.0, make_data.NOISE_SD, len(data))
    np.testing.assert_allclose(data[:, 2] - np.asarray(u), expected, atol=1e-7)


def test_the_config_makes_the_initial_value_an_unknown_field():
    m = prepare(load_config(CASE / "config.toml"))
    assert m.field_coefficients == ("u0",)
    spec = m.problem.coefficients["u0"]
    assert isinstance(spec, GaussianProcessField) and spec.axis_names == ("x",)
    initial = [c for c in m.problem.conditions if c.kind == "initial"]
    assert [c.unknown for c in initial] == ["u0"]
    # the soft initial term compares u(x, 0) with the field
    term = next(t for t in m.soft if t.name.startswith("initial"))
    assert np.all(term.points[:, 1] == 0.0)
    latent = jnp.ones(spec.num_latent)
    coeffs = m.coefficient_values({"u0": latent})
    r = jax.vmap(lambda z: term.residual_fn(lambda p: 0.0 * p[0], z, coeffs))(
        jnp.asarray(term.points))
    np.testing.assert_allclose(r, -jax.vmap(coeffs["u0"])(jnp.asarray(term.points)))


def _at(field: dict, x: float) -> int:
    return int(np.argmin(np.abs(np.asarray(field["axes"]["x"]) - x)))


def _check_the_walls_are_least_determined(field: dict) -> None:
    """u = 0 at the walls for every t > 0, so the readings see nothing of u0 there; what the
    posterior knows at x = 0 and 1 the prior's smoothness carries from the nearest sensors.
    The posterior sd is therefore larger at both walls than anywhere on the sensors' span
    [1/16, 15/16], and amid the sensors the data remove most of the prior variance."""
    x, sd = np.asarray(field["axes"]["x"]), np.asarray(field["sd"])
    span = (x >= 1 / 16) & (x <= 15 / 16)
    assert min(sd[0], sd[-1]) > sd[span].max(), (sd[0], sd[-1], sd[span].max())
    assert np.asarray(field["contraction"])[_at(field, 0.35)] > 0.9  # the broad pulse's peak


@pytest.mark.slow
def test_gold_standard_covers_the_initial_value_and_leaves_the_walls_open(tmp_path):
    copy_case("backward_heat", tmp_path, FILES)
    result = run(tmp_path / "config.toml", method="reference", overrides=REDUCED)
    field = result.summary["fields"]["u0"]
    _check_the_walls_are_least_determined(field)
    assert field["truth_in_95_fraction"] >= 0.95
    assert field["max_r_hat"] < 1.05


@pytest.mark.slow
def test_bpinn_recovers_the_low_modes_of_the_initial_value(tmp_path):
    """Mode k of u0 reaches the readings damped by at least d_k = exp(-D k^2 pi^2 t1), so 30
    readings of sd s estimate it to about s sqrt(2 / 30) / d_k; the posterior mean of each of
    the four lowest modes lies within 4 such sds of the truth's, and the readings are fitted
    to their noise."""
    copy_case("backward_heat", tmp_path, FILES)
    result = run(tmp_path / "config.toml", outdir=tmp_path / "out",
                 overrides={**REDUCED, "max_tree_depth": 6})
    assert result.summary["diagnostics"]["readings_fit"]["r2"] > 0.99
    analyse = case_script("backward_heat", "analyse")
    make_data = case_script("backward_heat", "make_data")
    modes = (1, 2, 3, 4)
    x, draws = analyse.mode_draws(tmp_path / "out", modes)
    truth = analyse.projection(x, modes) @ np.array(
        [float(model.u0_true(np.array([v, 0.0]))) for v in x])
    decay = np.exp(-make_data.D_TRUE * (np.pi * np.array(modes)) ** 2 * min(make_data.TIMES))
    sd = make_data.NOISE_SD * np.sqrt(2 / 30) / decay
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - truth), 4 * sd)

