"""The prior the physics terms imply on the coefficients (``bpinn.inference.implicit_prior``).

The algebra (the physics-only model, the coefficients' own prior, the correction term) is
checked exactly. The sampling test states the issue's acceptance bound for the heat case: the
corrected B-PINN posterior of D within 0.5 exact-posterior sds of the exact posterior
(0.06911 +- 0.00118: benchmarks/heat_demo.py, grid integration with the sine-series solution),
with an sd between 0.7 and 1.5 times the exact one.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bpinn.api import checked_method, prepare
from bpinn.config import ConfigError, load_config
from bpinn.inference import implicit_prior
from bpinn.inference.laplace import location_scale_terms
from bpinn.inference.methods import (
    KEPT_LIMITATION,
    MODE_LIMITATION,
    REMOVING_METHODS,
    get_method,
    method_names,
)
from bpinn.inference.results import _implicit_prior_lines
from bpinn.inference.target import make_target

TINY_MODEL = {"width": 8, "num_collocation": 32}
EXACT_MEAN, EXACT_SD = 0.06911, 0.00118


@pytest.fixture(scope="module")
def tiny(make_heat_case):
    case = make_heat_case("implicit_prior")
    model = prepare(load_config(case(model=TINY_MODEL)))
    target = make_target(jax.random.key(0), model.model)
    position = target.from_constrained(model.initial_values(jax.random.key(3)))
    return model, target, position


def test_physics_only_model_leaves_out_exactly_the_readings(tiny):
    model, target, position = tiny
    physics = make_target(jax.random.key(0), lambda: model.model(observe_data=False))
    assert physics.site_slices == target.site_slices
    readings = location_scale_terms(model.model, target, position).observed["u_obs"]
    np.testing.assert_allclose(physics.logdensity_fn(position),
                               target.logdensity_fn(position) - jnp.sum(readings.log_prob),
                               rtol=1e-12)


def test_coefficient_coordinates_and_their_prior(tiny):
    model, target, _ = tiny
    indices, names = implicit_prior.coefficient_coordinates(model, target)
    assert names == ("D",)
    np.testing.assert_array_equal(indices, np.arange(*target.site_slices["D"]))
    # D ~ LogNormal(log 0.05, 1) is Normal(log 0.05, 1) on the unconstrained (log) scale: its
    # log density's slope there is -(z - log 0.05)
    for z in (-4.0, np.log(0.07), 0.5):
        slope = implicit_prior.coefficient_prior_slope(model, target, indices, jnp.array([z]))
        np.testing.assert_allclose(slope, [-(z - np.log(0.05))], rtol=1e-12)


def test_first_order_correction_is_a_straight_line(tiny):
    _, target, position = tiny
    index = np.arange(*target.site_slices["D"])
    at, slope = position[index], jnp.array([[-40.0]])
    corrected = implicit_prior.Corrected(target, index, at, at[:, None], slope)
    for step in (0.1, -0.3):
        moved = position.at[index].add(step)
        np.testing.assert_allclose(corrected.logdensity_fn(moved) - target.logdensity_fn(moved),
                                   40.0 * step, rtol=1e-12)
    assert corrected.correction(jnp.stack([position] * 3)[None]).shape == (1, 3)


def _measured_at(at: float, slope: float, indices) -> implicit_prior.ImplicitPrior:
    """A stand-in measurement: slope only at the MAP (first order), one coordinate."""
    return implicit_prior.ImplicitPrior(
        names=("D",), indices=np.asarray(indices), at=np.array([at]), slope=np.array([slope]),
        mcse=np.array([1.0]), points=np.array([[at]]), axis=np.array([-1]),
        point_slopes=np.array([[slope]]), point_mcse=np.array([[1.0]]))


def test_a_removal_gives_every_method_the_corrected_target_and_its_record(tiny):
    """What nuts, chees, hmc, mclmc, pathfinder and whitened SVI share: the corrected target is the
    base target in every respect but the log density, and the record is the same."""
    _, target, position = tiny
    index = np.arange(*target.site_slices["D"])
    implied = _measured_at(float(position[index][0]), -40.0, index)
    corrected = implicit_prior.Removal("corrected", implied, 2.5).applied_to(target)
    assert corrected.site_slices is target.site_slices and corrected.dim == target.dim
    assert corrected.constrained(position)["D"] == target.constrained(position)["D"]
    moved = position.at[index].add(0.1)
    np.testing.assert_allclose(corrected.logdensity_fn(moved) - target.logdensity_fn(moved),
                               4.0, rtol=1e-12)
    assert implicit_prior.Removal("measured", implied).applied_to(target) is target
    assert implicit_prior.Removal("ignored").applied_to(target) is target

    draws = position + 0.01 * jax.random.normal(jax.random.key(0), (2, 50, target.dim))
    info, timing = {}, {}
    implicit_prior.record(implicit_prior.Removal("corrected", implied, 2.5), info, timing, draws)
    row = info["implicit_prior"]["coefficients"]["D"]
    assert info["implicit_prior"]["mode"] == "corrected" and timing == {"implicit_prior_s": 2.5}
    assert row["shift_in_sds"] == pytest.approx(-40.0 * float(np.std(draws[..., index])))
    info, timing = {}, {}
    implicit_prior.record(implicit_prior.Removal("ignored"), info, timing, draws)
    assert info == {"implicit_prior": {"mode": "ignored"}} and timing == {}


def test_auto_ignores_the_implied_prior_where_the_method_cannot_remove_it(tiny):
    model, target, _ = tiny
    ctx = SimpleNamespace(model=model, target=target,
                          settings=SimpleNamespace(implicit_prior="auto"))
    removal = implicit_prior.for_method(jax.random.key(0), ctx, unsupported="a reason")
    assert removal == implicit_prior.Removal("ignored (auto: a reason)")
    ctx.settings.implicit_prior = "ignored"
    assert implicit_prior.for_method(jax.random.key(0), ctx) == implicit_prior.Removal("ignored")


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("run_depth", "cap", "expected"), [(10, 8, 8), (6, 8, 6), (10, 3, 3)])
def test_measurement_tree_depth_is_capped_below_the_runs(tiny, monkeypatch, run_depth, cap,
                                                          expected):
    """The measurement's sampler runs at min(max_tree_depth, implicit_prior_max_tree_depth)."""
    from bpinn.config import InferenceSettings
    from bpinn.inference import nuts

    model, target, position = tiny
    seen = {}

    def fake_run_nuts(*args, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(nuts, "run_nuts", fake_run_nuts)
    settings = InferenceSettings(max_tree_depth=run_depth, implicit_prior_max_tree_depth=cap)
    with pytest.raises(_Stop):
        implicit_prior.measure(jax.random.key(0), model, target, position, settings,
                               damping=jnp.zeros(target.dim))
    assert seen["max_tree_depth"] == expected


def test_profile_correction_integrates_the_interpolated_slope():
    """log Z is the integral of the slope interpolated linearly between the knots (checked by
    quadrature), zero at the MAP; beyond the knots the slope is kept only where it lowers the
    corrected density outwards."""
    knots = np.array([[-5.0, -3.7, -3.0, -2.4, -0.9], [0.0, 1.0, 2.0, 2.0, 2.0]])
    slopes = np.array([[-26.0, -41.0, -58.0, -114.0, -1579.0], [3.0, -1.0, 2.0, 2.0, 2.0]])
    corrected = implicit_prior.Corrected(None, np.array([0, 1]), jnp.array([-3.7, 1.0]),
                                         jnp.asarray(knots), jnp.asarray(slopes))

    def quadrature(i, a, b):
        xs = np.linspace(a, b, 400001)
        return np.trapezoid(np.interp(xs, knots[i], slopes[i]), xs)

    for t in (-5.0, -4.2, -3.7, -3.2, -2.0, -0.9):
        for u in (0.0, 0.5, 1.7):
            expected = quadrature(0, -3.7, t) + quadrature(1, 1.0, u)
            np.testing.assert_allclose(corrected.log_z(jnp.array([t, u])), expected, rtol=1e-9,
                                       atol=1e-9)
    grad = jax.grad(lambda x: corrected.log_z(x))
    np.testing.assert_allclose(grad(jnp.array([-3.2, 1.5])),
                               [np.interp(-3.2, knots[0], slopes[0]), 0.5], rtol=1e-12)
    # outside: below the first knot a negative slope is kept (log Z keeps rising towards the
    # tail, so the corrected density falls); above the last one it is dropped; the second
    # coordinate's positive end slopes are dropped below and kept above
    np.testing.assert_allclose(grad(jnp.array([-7.0, -1.0])), [-26.0, 0.0])
    np.testing.assert_allclose(grad(jnp.array([1.0, 3.0])), [0.0, 2.0])


def test_profile_points_straddle_the_map_at_prior_spaced_steps(tiny):
    model, target, position = tiny
    indices, _ = implicit_prior.coefficient_coordinates(model, target)
    at = np.asarray(position[indices])
    points, axis = implicit_prior.profile_points(model, [("D", 1)], at, 5)
    assert points.shape == (6, 1) and axis.tolist() == [-1, 0, 0, 0, 0, 0]
    assert points[0, 0] == at[0]
    # D ~ LogNormal(log 0.05, 1): its central 80% spans 2 x 1.2816 in log D, so the step is
    # 0.641 (from 4000 prior draws: within 0.03)
    np.testing.assert_allclose(points[1:, 0] - at[0], 0.6408 * np.array([-2, -1, 1, 2, 3]),
                               atol=0.1)
    only_map, axis = implicit_prior.profile_points(model, [("D", 1)], at, 0)
    assert only_map.shape == (1, 1) and axis.tolist() == [-1]
    many = np.zeros(implicit_prior.MAX_PROFILE_COORDINATES + 1)
    assert implicit_prior.profile_points(model, [("D", many.size)], many, 5)[0].shape == (1,
                                                                                   many.size)


def test_auto_corrects_wherever_a_coefficient_is_unknown(tiny):
    model, target, _ = tiny
    assert implicit_prior.resolve("auto", model, target) == "corrected"
    assert implicit_prior.resolve("measured", model, target) == "measured"


def test_printed_summary_says_whether_the_implied_prior_was_removed():
    row = {"slope": -58.4, "mcse": 3.3, "at_unconstrained": -2.67, "shift_in_sds": -1.14}
    text = "\n".join(_implicit_prior_lines({"mode": "measured", "coefficients": {"D": row}}))
    assert "NOT removed" in text and "D: slope -58.4 +- 3.3" in text and "-1.14 sds" in text
    assert "; removed" in "\n".join(
        _implicit_prior_lines({"mode": "corrected", "coefficients": {"D": row}}))
    assert _implicit_prior_lines({"mode": "ignored (auto: no unknown coefficients)"}) == []


def test_strong_or_unremoved_implied_priors_are_warned_about():
    def info(mode, shift):
        return {"mode": mode, "coefficients": {"D": {"slope": -44.0, "mcse": 2.0,
                                                     "shift_in_sds": shift}}}

    assert implicit_prior.warnings(info("corrected", -1.1)) == []
    [strong] = implicit_prior.warnings(info("corrected", -9.9))
    assert "moves D by -9.9 posterior sds" in strong
    [kept] = implicit_prior.warnings(info("measured", -1.1))
    assert "not removed; set implicit_prior = 'corrected'" in kept
    assert implicit_prior.warnings({"mode": "ignored (auto: no unknown coefficients)"}) == []
    profile = {"at_unconstrained": [-4.0, -3.0, -2.0], "slope": [-30.0, -44.0, -90.0]}
    near = info("corrected", -1.1)
    near["coefficients"]["D"]["profile"] = {**profile, "posterior_near_edge": 0.04}
    assert implicit_prior.warnings(near) == []
    near["coefficients"]["D"]["profile"]["posterior_near_edge"] = 0.3
    [edge] = implicit_prior.warnings(near)
    assert "30% of the posterior of D lies in the outermost steps" in edge
    assert "-4 .. -2" in edge and "implicit_prior_points" in edge


def test_profile_summary_says_how_much_posterior_lies_beyond_it():
    points = np.array([[-3.0], [-4.0], [-2.0]])
    implied = implicit_prior.ImplicitPrior(
        ("D",), np.array([0]), points[0], np.array([-40.0]), np.array([2.0]), points,
        np.array([-1, 0, 0]), np.array([[-40.0], [-30.0], [-60.0]]), np.full((3, 1), 2.0))
    draws = np.array([-3.5, -3.0, -3.0, -2.5, -1.5])[:, None]
    row = implied.summary(draws)["D"]
    assert row["profile"]["at_unconstrained"] == [-4.0, -3.0, -2.0]
    assert row["profile"]["slope"] == [-30.0, -40.0, -60.0]
    # the inner knots are both -3.0: every draw off it is in an outer step or beyond
    assert row["profile"]["posterior_near_edge"] == 0.6
    assert row["shift_in_sds"] == pytest.approx(-40.0 * np.std(draws))


def test_bad_implicit_prior_settings_are_refused(heat_case):
    with pytest.raises(ConfigError, match=r"implicit_prior.*valid: \('auto', 'ignored', "
                                          r"'measured', 'corrected'\)"):
        load_config(heat_case(inference={"implicit_prior": "remove"}))
    # a method that keeps the implied prior refuses an explicit correction before any work
    kept = load_config(heat_case(inference={"implicit_prior": "corrected", "method": "laplace"}))
    with pytest.raises(ValueError, match=r"implicit_prior = 'corrected': method 'laplace' "
                                         r"cannot use it.*nuts, chees, hmc, mclmc, pathfinder"):
        checked_method(prepare(kept), kept.inference)
    raw = load_config(heat_case(inference={"implicit_prior": "measured", "method": "svi_lowrank",
                                           "svi_coordinates": "raw"}))
    with pytest.raises(ValueError, match="svi_coordinates = 'raw'"):
        checked_method(prepare(raw), raw.inference)
    # the list the messages name is the methods' own statement
    assert {n for n in method_names() if get_method(n).implicit_prior == "removed"} == set(
        REMOVING_METHODS)
    for name in method_names():
        kind, stated = get_method(name).implicit_prior, get_method(name).limitations
        assert (KEPT_LIMITATION in stated) == (kind == "kept"), name
        assert (MODE_LIMITATION in stated) == (kind == "mode"), name
    assert {get_method(n).implicit_prior for n in ("laplace", "laplace_last_layer", "ensemble",
                                                   "rto")} == {"mode"}
    modal = load_config(heat_case(inference={"implicit_prior": "corrected", "method": "rto"}))
    with pytest.raises(ValueError, match="built on posterior modes"):
        checked_method(prepare(modal), modal.inference)
    for method in REMOVING_METHODS:
        removing = load_config(heat_case(inference={"implicit_prior": "corrected",
                                                    "method": method}))
        assert checked_method(prepare(removing), removing.inference).implicit_prior == "removed"
    # nothing unknown to correct: refused by the method check, before the MAP fit, for every
    # method that would measure it
    for method in ("nuts", "hmc"):
        known = load_config(heat_case(
            ('D = { prior = "LogNormal", loc = -2.995732273553991, scale = 1.0 }', "D = 0.07"),
            inference={"implicit_prior": "measured", "method": method}, model=TINY_MODEL))
        with pytest.raises(ValueError, match="implicit_prior = 'measured': the model has no "
                                             "unknown coefficients"):
            checked_method(prepare(known), known.inference)
    assert implicit_prior.resolve("auto", prepare(known), None).startswith(
        "ignored (auto: no unknown coefficients")


@pytest.mark.slow
def test_corrected_posterior_meets_the_exact_posterior(heat_context):
    """Reduced heat case (2 chains x 200 draws, shipped network and data): the measured slope
    is negative (networks favour slow decay), and the corrected posterior of D sits within 0.5
    exact sds of the exact posterior with an sd ratio in [0.7, 1.5]."""
    ctx = heat_context()
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, implicit_prior="corrected", max_tree_depth=8))
    draws = get_method("nuts").run(jax.random.key(1), ctx)
    info = draws.info["implicit_prior"]["coefficients"]["D"]
    assert info["slope"] + 3 * info["mcse"] < 0, info
    flat = draws.position.reshape(-1, ctx.target.dim)
    d = np.asarray(jax.vmap(ctx.target.constrained)(flat)["D"])
    assert abs(d.mean() - EXACT_MEAN) <= 0.5 * EXACT_SD, (d.mean(), d.std(), info)
    assert 0.7 <= d.std() / EXACT_SD <= 1.5, (d.mean(), d.std(), info)
    assert np.all(np.isfinite(np.asarray(draws.sample_stats["lp"])))
