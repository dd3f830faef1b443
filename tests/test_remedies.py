"""The failure-mode remedies (docs/failure_modes.md): gradient-enhanced residuals, causal and
time-marching residual weights, term weights, residual-based collocation resampling.

Each is checked against an independent computation on the heat case's model, with random
network weights (the remedies' arithmetic does not depend on a trained network).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
import scipy.stats

from bpinn.api import prepare, run
from bpinn.config import ConfigError, load_config
from bpinn.inference.collocation import POOL_FACTOR, resample_collocation
from bpinn.inference.map import fit_map
from bpinn.inference.target import make_target
from bpinn.models.likelihood import CAUSAL_BINS, MARCHING_WIDTH


def _model(heat_case, **model):
    return prepare(load_config(heat_case(model=model)))


def _values(model, seed=0):
    values = {"weights": jax.random.normal(jax.random.key(seed), (model.num_weights,)) * 0.5,
              "D": jnp.asarray(0.07), "sigma": jnp.asarray(0.02)}
    return values


def _site_log_prob(model, values, site, **kwargs):
    tr = numpyro.handlers.trace(numpyro.handlers.substitute(
        numpyro.handlers.seed(model.model, 0), data=values)).get_trace(**kwargs)
    s = tr[site]
    return s["fn"].log_prob(s["value"]) * (1.0 if s["scale"] is None else s["scale"])


def test_gradient_enhanced_residual_observes_the_scaled_residual_gradient(heat_case):
    model = _model(heat_case, residual_gradient_noise=0.2)
    values = _values(model)
    coeffs = model.coefficient_values(values)
    lengths = model.problem.domain.upper - model.problem.domain.lower
    points = model.collocation[:5]
    # Central differences of the residual along each coordinate, times the domain length.
    h = 1e-5
    expected = np.stack([
        (np.asarray(model.residuals(values["weights"], coeffs, points + h * e))
         - np.asarray(model.residuals(values["weights"], coeffs, points - h * e))) / (2 * h)
        for e in np.eye(points.shape[1])], axis=1) * lengths
    log_prob = np.asarray(_site_log_prob(model, values, "pde_residual_gradient"))
    np.testing.assert_allclose(
        log_prob[:5], scipy.stats.norm(expected, 0.2).logpdf(0.0).sum(axis=1), rtol=1e-5)
    assert log_prob.shape == (model.collocation.shape[0],)


def test_gradient_term_is_absent_by_default_and_refuses_a_bad_scale(heat_case):
    model = _model(heat_case)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model.model, 0)).get_trace()
    assert "pde_residual_gradient" not in tr
    with pytest.raises(ConfigError, match=r"\[model\] residual_gradient_noise.*> 0"):
        prepare(load_config(heat_case(model={"residual_gradient_noise": -1.0})))


def test_causal_weights_decay_with_the_residual_of_earlier_time_slices(heat_case):
    model = _model(heat_case)
    # One point per time slice, at its centre, with whitened residuals 1, 2, 3, ...
    t0, t1 = model.problem.domain.time
    tau = (np.arange(CAUSAL_BINS) + 0.5) / CAUSAL_BINS
    points = np.column_stack([np.full(CAUSAL_BINS, 0.5), t0 + tau * (t1 - t0)])
    model = model.with_collocation(points)
    whitened = jnp.arange(1.0, CAUSAL_BINS + 1)
    eps = 0.01
    weights = model._residual_point_weights(whitened, 1.0, eps, False)
    earlier = np.concatenate([[0.0], np.cumsum(np.arange(1.0, CAUSAL_BINS + 1) ** 2)[:-1]])
    np.testing.assert_allclose(np.asarray(weights), np.exp(-eps * earlier), rtol=1e-12)


def test_time_marching_front_moves_with_the_physics_weight(heat_case):
    model = _model(heat_case)
    tau = model.collocation_time()
    r = jnp.zeros(tau.shape)
    at = {w: np.asarray(model._residual_point_weights(r, w, 0.0, True)) for w in (0.0, 0.5, 1.0)}
    np.testing.assert_array_equal(at[0.0][tau > 0], 0.0)
    np.testing.assert_array_equal(at[1.0], 1.0)
    front = 0.5 * (1 + MARCHING_WIDTH)
    np.testing.assert_array_equal(at[0.5][tau <= front - MARCHING_WIDTH], 1.0)
    np.testing.assert_array_equal(at[0.5][tau >= front], 0.0)


def test_training_keywords_default_to_the_posterior_and_term_weights_scale_one_term(heat_case):
    model = _model(heat_case)
    target = make_target(jax.random.key(0), model.model)
    flat = target.from_constrained(_values(model))
    posterior = float(target.logdensity_fn(flat))
    same = target.training_logdensity_fn(
        flat, {"physics_weight": 1.0, "causal_epsilon": 0.0, "time_marching": False})
    assert float(same) == pytest.approx(posterior, rel=1e-14)
    doubled = target.training_logdensity_fn(flat, {"term_weights": {"pde_residual": 2.0}})
    residual_term = float(jnp.sum(_site_log_prob(model, target.constrained(flat),
                                                 "pde_residual")))
    assert float(doubled) - posterior == pytest.approx(residual_term, rel=1e-10)


@pytest.mark.parametrize("key,value", [("map_time_marching", "true"),
                                       ("map_causal_epsilon", "1.0")])
def test_time_weighting_refuses_a_steady_problem(tmp_path, key, value):
    path = tmp_path / "steady.toml"
    path.write_text('[problem]\npde = "poisson"\n[domain]\nx = [0.0, 1.0]\n'
                    '[data]\nfile = "obs.csv"\nnoise = 0.01\n'
                    f"[inference]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=rf"\[inference\] {key}: .*steady"):
        load_config(path)


def test_fit_map_uses_term_weights_and_reports_them(heat_case):
    model = _model(heat_case)
    target = make_target(jax.random.key(0), model.model)
    starts = jnp.stack([target.from_constrained(_values(model, seed)) for seed in (0, 1)])
    calls = {"pde_residual": 0.5, "u_obs": 2.0}
    fit = fit_map(target, starts, num_adam_steps=20, num_lbfgs_steps=0, physics_ramp=0.0,
                  term_weights_fn=lambda x: {k: jnp.asarray(v) for k, v in calls.items()},
                  rebalance_every=5)
    plain = fit_map(target, starts, num_adam_steps=20, num_lbfgs_steps=0, physics_ramp=0.0)
    assert set(fit.term_weights) == set(calls)
    np.testing.assert_allclose(np.asarray(fit.term_weights["u_obs"]), [2.0, 2.0])
    assert plain.term_weights is None
    # Different weights, different path: the option reaches the optimiser.
    assert not np.allclose(np.asarray(fit.position), np.asarray(plain.position))


def test_resampling_moves_points_toward_large_residuals(heat_case):
    model = _model(heat_case)
    values = _values(model)
    new, info = resample_collocation(model, values, jax.random.key(0))
    n = model.collocation.shape[0]
    assert new.collocation.shape == model.collocation.shape
    assert np.all(model.problem.domain.contains(new.collocation))
    coeffs = model.coefficient_values(values)
    r_new = np.abs(np.asarray(new.residuals(values["weights"], coeffs, new.collocation)))
    # With density |r|/mean + 1 the chosen points' mean |r| exceeds the pool's mean.
    assert r_new.mean() > info["pool_mean_abs_residual"]
    assert info["share_in_top_decile"] > 0.1 and info["pool_size"] == POOL_FACTOR * n
    again, _ = resample_collocation(model, values, jax.random.key(0))
    np.testing.assert_array_equal(again.collocation, new.collocation)
    later, _ = resample_collocation(model, values, jax.random.key(0), round_index=1)
    assert not np.array_equal(later.collocation, new.collocation)


def test_run_with_remedies_records_what_they_did(heat_case, tmp_path):
    config = heat_case(inference={
        "num_chains": 2, "num_warmup": 30, "num_samples": 20, "max_tree_depth": 4,
        "map_adam_steps": 200, "map_lbfgs_steps": 20, "map_resample_rounds": 1,
        "map_causal_epsilon": 0.1, "map_time_marching": True, "map_ntk_balance": True})
    result = run(config, outdir=tmp_path / "out")
    weights = result.summary["map_training"]["term_weights"]
    assert set(weights) == {"u_obs", "pde_residual"}
    assert all(len(w) == 2 and all(np.isfinite(w)) for w in weights.values())
    rounds = result.summary["map_training"]["collocation_resampling"]
    assert [r["round"] for r in rounds] == [1]
    assert np.isfinite(rounds[0]["map_logdensity"])
    recorded = result.datatree.attrs["map_training"]  # attrs hold JSON text in the results file
    assert json.loads(recorded)["collocation_resampling"] == rounds
    points = result.datatree["constant_data"]["collocation_points"]
    assert points.dims == ("collocation_point", "coordinate")
    assert list(points["coordinate"].values) == ["x", "t"]
    default = prepare(load_config(config)).collocation  # the Halton set before resampling
    assert points.shape == default.shape and not np.allclose(points.values, default)
