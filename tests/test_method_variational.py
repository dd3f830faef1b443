"""Variational methods: closed-form answers on a linear-Gaussian model, then the heat case.

On a Gaussian target the optimal guide of each family is known: a full-covariance guide (or a
low-rank one whose rank covers the dimension) is the posterior itself; a mean-field guide has
the posterior means and marginal precisions equal to the diagonal of the posterior precision
matrix; a guide factorised into blocks has, per block, the inverse of that block of the
precision matrix. Pathfinder on a quadratic target recovers the Gaussian from its L-BFGS path.
The same statements hold in whitened coordinates (``svi_coordinates = "whitened"``) for the
posterior precision expressed in them, ``F^T P F``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bpinn.api import run
from bpinn.config import InferenceSettings
from bpinn.inference.map import MAPResult
from bpinn.inference.methods import MethodContext, get_method
from bpinn.inference.target import make_target
from bpinn.inference.variational import (
    elbo_convergence,
    fit_svi,
    laplace_whitening,
    meanfield_guide,
    run_pathfinder,
    thin,
)

# ---- the linear-Gaussian toy ---------------------------------------------------------------
# y = A theta + N(0, NOISE^2), theta = (coef, weights) ~ N(0, PRIOR_SD^2); columns of A are
# mixed so that the posterior is correlated (|corr| up to 0.54) and the mean-field variances
# are 0.38 to 0.85 of the marginal ones.
NOISE, PRIOR_SD = 0.5, 2.0
_A = jax.random.normal(jax.random.key(3), (8, 5))
_A = _A.at[:, 1].add(0.8 * _A[:, 0]).at[:, 2].add(0.7 * _A[:, 0])
_Y = (_A @ jnp.array([1.0, -0.5, 0.3, 2.0, -1.0])
      + NOISE * jax.random.normal(jax.random.key(4), (8,)))
PRECISION = _A.T @ _A / NOISE**2 + jnp.eye(5) / PRIOR_SD**2
COV = jnp.linalg.inv(PRECISION)
MEAN = COV @ (_A.T @ _Y) / NOISE**2
SD = jnp.sqrt(jnp.diag(COV))
COEF, WEIGHTS = slice(0, 2), slice(2, 5)  # flat layout: sites sorted by name, coef first


def linear_gaussian_model(physics_weight=1.0):
    del physics_weight
    coef = numpyro.sample("coef", dist.Normal(0.0, PRIOR_SD).expand([2]).to_event(1))
    weights = numpyro.sample("weights", dist.Normal(0.0, PRIOR_SD).expand([3]).to_event(1))
    theta = jnp.concatenate([coef, weights])
    numpyro.sample("y", dist.Normal(_A @ theta, NOISE).to_event(1), obs=_Y)


NUM_CHAINS, NUM_SAMPLES = 4, 2500
TOY_SETTINGS = InferenceSettings(num_chains=NUM_CHAINS, num_samples=NUM_SAMPLES, svi_steps=4000,
                                 svi_learning_rate=0.01, svi_num_particles=16, svi_rank=8,
                                 svi_coordinates="raw", implicit_prior="ignored")  # no network
# Whitened by the exact posterior precision (no damping, no floor): the posterior is N(0, I)
# in those coordinates, and every guide family contains it.
EXACT_WHITENING = dataclasses.replace(TOY_SETTINGS, svi_coordinates="whitened",
                                      weight_damping=0.0, curvature_floor=1e-9)


def toy_context(settings=TOY_SETTINGS) -> MethodContext:
    """A hand-built context: the MAP fit is the exact posterior mode."""
    target = make_target(jax.random.key(0), linear_gaussian_model)
    mode = target.from_constrained({"coef": MEAN[COEF], "weights": MEAN[WEIGHTS]})
    starts = mode + 2.0 * jax.random.normal(jax.random.key(1), (settings.num_chains, 5))
    fit = MAPResult(position=mode[None], logdensity=target.logdensity_fn(mode)[None],
                    trace=None, compile_seconds=0.0)
    return MethodContext(model=SimpleNamespace(model=linear_gaussian_model), target=target,
                         settings=settings, starts=starts, map_fit=fit)


def draws_moments(draws):
    flat = np.asarray(draws.position).reshape(-1, 5)
    return flat.mean(0), np.cov(flat.T)


# Bounds for draws of a fitted guide (10000 draws): the Monte Carlo error of a mean is 0.01 sd
# and of a correlation-scaled covariance entry about 0.014; the optimisation noise of the
# fitted parameters (measured for the mean-field guide over 8 seeds: means within 0.05 sd,
# precisions within 3%) adds to it. Means within 0.15 sd, covariances within 0.08 in units of
# sd_i sd_j.
MEAN_TOL_SD, COV_TOL = 0.15, 0.08


def assert_gaussian(mean, cov, expected_mean, expected_cov, cov_tol=COV_TOL):
    sd = np.sqrt(np.diag(expected_cov))
    np.testing.assert_array_less(np.abs(mean - expected_mean) / sd, MEAN_TOL_SD)
    np.testing.assert_array_less(np.abs(cov - expected_cov) / np.outer(sd, sd), cov_tol)


def test_meanfield_optimum_has_the_diagonal_precisions():
    """Mean-field optimum for a Gaussian: the posterior means, and precision = diag(PRECISION)
    (not 1 / diag(COV), which is 1.2 to 2.7 times smaller here).

    Tolerance from the optimisation noise of the final guide (final learning rate 5e-4, 16
    particles): over seeds 0-7 the precisions were within 3.1% and the means within 0.05
    mean-field sd; bounds 6% and 0.15.
    """
    model = linear_gaussian_model
    init = {"coef": MEAN[COEF], "weights": MEAN[WEIGHTS]}
    fit, timing = fit_svi(jax.random.key(11), model, meanfield_guide(model, init),
                          num_steps=4000, learning_rate=0.01, num_particles=16)
    p = fit.params
    loc = jnp.concatenate([p["coef_auto_loc"], p["weights_auto_loc"]])
    scale = jnp.concatenate([p["coef_auto_scale"], p["weights_auto_scale"]])
    meanfield_sd = 1.0 / jnp.sqrt(jnp.diag(PRECISION))
    np.testing.assert_array_less(np.abs(loc - MEAN) / meanfield_sd, 0.15)
    np.testing.assert_allclose(1.0 / scale**2, jnp.diag(PRECISION), rtol=0.06)
    assert elbo_convergence(fit.elbo)["elbo_converged"]
    assert {"compile_s", "optimization_s"} <= set(timing)


def test_meanfield_method_draws_have_the_diagonal_precisions():
    draws = get_method("svi_meanfield").run(jax.random.key(12), toy_context())
    mean, cov = draws_moments(draws)
    meanfield_cov = jnp.diag(1.0 / jnp.diag(PRECISION))
    assert_gaussian(mean, cov, MEAN, meanfield_cov)
    assert draws.position.shape == (NUM_CHAINS, NUM_SAMPLES, 5)
    assert draws.sample_stats["lp"].shape == (NUM_CHAINS, NUM_SAMPLES)
    json.dumps(draws.info)


def test_lowrank_recovers_mean_and_covariance():
    """Rank 8 >= dimension 5: the family contains the posterior."""
    draws = get_method("svi_lowrank").run(jax.random.key(13), toy_context())
    mean, cov = draws_moments(draws)
    assert_gaussian(mean, cov, MEAN, COV)


def test_structured_optimum_is_blockwise():
    """Coefficients full-rank, weights mean-field, the two independent: the optimum has the
    posterior means, coef covariance inv(PRECISION[coef, coef]) (0.74 and 0.88 of the
    marginal variances here), weight variances 1 / diag(PRECISION) and no cross-covariance."""
    draws = get_method("svi_structured").run(jax.random.key(14), toy_context())
    mean, cov = draws_moments(draws)
    expected = np.zeros((5, 5))
    expected[COEF, COEF] = np.linalg.inv(PRECISION[COEF, COEF])
    expected[WEIGHTS, WEIGHTS] = np.diag(1.0 / np.diag(PRECISION[WEIGHTS, WEIGHTS]))
    assert_gaussian(mean, cov, MEAN, expected)


@pytest.mark.parametrize("name", ["svi_meanfield", "svi_lowrank", "svi_structured"])
def test_exactly_whitened_guides_recover_mean_and_covariance(name):
    draws = get_method(name).run(jax.random.key(17), toy_context(EXACT_WHITENING))
    mean, cov = draws_moments(draws)
    assert_gaussian(mean, cov, MEAN, COV)
    assert draws.info["coordinates"] == "whitened"
    # the guide is the posterior up to optimisation noise: the importance check passes
    assert draws.info["pareto_k"] < draws.info["pareto_k_threshold"], draws.info["pareto_k"]
    assert not any("Pareto" in w for w in draws.info["warnings"])


def test_laplace_whitening_puts_the_coefficients_first():
    """theta = center + F eta with F block lower-triangular (coefficients first) and
    F F^T the damped, floored Laplace covariance."""
    ctx = toy_context()
    damping = jnp.array([0.0, 0.0, 3.0, 3.0, 3.0])  # on the weights only, as ctx.weight_damping
    whitening = laplace_whitening(ctx.target, ctx.best_map(), damping=damping, floor=1e-9)
    damped = PRECISION + jnp.diag(damping)
    np.testing.assert_allclose(whitening.factor @ whitening.factor.T, jnp.linalg.inv(damped),
                               rtol=1e-9, atol=1e-12)
    assert whitening.num_globals == 2
    np.testing.assert_array_equal(whitening.factor[COEF, WEIGHTS], 0.0)
    np.testing.assert_allclose(whitening.position(jnp.zeros(5)), MEAN, atol=1e-12)


def test_meanfield_in_damped_whitened_coordinates_has_their_diagonal_precisions():
    """Whitened by a damped precision, the posterior is not N(0, I) in eta: the mean-field
    optimum has eta precisions diag(F^T P F), i.e. theta covariance F diag(1/that) F^T."""
    settings = dataclasses.replace(EXACT_WHITENING, weight_damping=30.0)
    ctx = toy_context(settings)
    draws = get_method("svi_meanfield").run(jax.random.key(18), ctx)
    whitening = laplace_whitening(ctx.target, ctx.best_map(), damping=ctx.weight_damping(),
                                  floor=settings.curvature_floor)
    factor = whitening.factor
    expected = factor @ jnp.diag(1.0 / jnp.diag(factor.T @ PRECISION @ factor)) @ factor.T
    mean, cov = draws_moments(draws)
    assert_gaussian(mean, cov, MEAN, expected)
    # and it differs from the posterior, so the check above can tell them apart
    assert float(jnp.max(jnp.abs(expected - COV) / jnp.outer(SD, SD))) > 3 * COV_TOL


# Pathfinder's covariance is an L-BFGS estimate, not exact even on a quadratic, and the ELBO
# (16 draws) that picks it along the path cannot tell apart Gaussians whose variances differ
# by 10-20%: per path, variances were 0.74 to 1.54 times the truth (seeds 15-17, 12 paths);
# pooled over 4 paths the worst covariance error was 0.06 to 0.13 sd_i sd_j (seeds 15-20).
# Bound 0.25: still far from a unit covariance (variances 0.03 to 0.12 here) or a mean-field
# one (correlation -0.54 lost).
PATHFINDER_COV_TOL = 0.25


def test_pathfinder_recovers_mean_and_covariance():
    """From dispersed starts (a start at the exact mode has no path: see the next test)."""
    ctx = toy_context()
    result, timing = run_pathfinder(jax.random.key(15), ctx.target, ctx.starts,
                                    num_samples=NUM_SAMPLES)
    flat = np.asarray(result.position).reshape(-1, 5)
    assert_gaussian(flat.mean(0), np.cov(flat.T), MEAN, COV, cov_tol=PATHFINDER_COV_TOL)
    assert np.all(np.asarray(result.num_iterations) >= 5)
    assert {"compile_s", "optimization_s", "sampling_s"} <= set(timing)


def test_pathfinder_warns_when_the_path_is_empty():
    """The toy's MAP fit is the exact mode: no L-BFGS step, no covariance estimate."""
    draws = get_method("pathfinder").run(jax.random.key(16), toy_context())
    assert any("fewer than" in w for w in draws.info["warnings"])
    assert draws.info["path_num_iterations"] == [0]


def test_importance_check_flags_an_approximation_narrower_than_the_posterior():
    """Draws of q = N(0, 1) for targets N(0, s^2): the ratio's tail has Pareto shape
    k = 1 - 1 / s^2, so s = 3 (k = 0.89) is beyond the 2000-draw threshold 0.70 and s = 1.2
    (k = 0.31) and s = 0.8 (bounded ratios, k < 0) are not; equal densities have no tail."""
    from scipy.stats import norm

    from bpinn.inference.variational import importance_check, pareto_k

    x = np.random.default_rng(0).normal(size=2000)
    wide = importance_check(norm.logpdf(x, scale=3.0), norm.logpdf(x))
    assert wide["pareto_k"] > wide["pareto_k_threshold"] == pytest.approx(1 - 1 / np.log10(2000))
    assert "cannot be trusted" in wide["warning"]
    for s in (1.2, 0.8):
        assert "warning" not in importance_check(norm.logpdf(x, scale=s), norm.logpdf(x))
    assert pareto_k(np.zeros(100)) == -np.inf
    assert pareto_k(np.array([0.0, np.nan])) == np.inf


def test_elbo_convergence_check():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 5.0, 1000)
    flat = elbo_convergence(-100.0 + noise)
    assert flat["elbo_converged"] and "warning" not in flat
    # rising by 10 per 100 steps against noise sd 5: the windows differ by about 10, the
    # threshold is 2 * 5 / sqrt(100) = 1
    rising = elbo_convergence(-200.0 + 0.1 * np.arange(1000) + noise)
    assert not rising["elbo_converged"] and "still rising" in rising["warning"]
    assert not elbo_convergence(np.full(100, np.nan))["elbo_converged"]


def test_thin_keeps_at_most_max_points_and_the_last():
    values = thin(np.arange(1234.0), 500)
    assert len(values) <= 500 and values[-1] == 1233.0 and isinstance(values[0], float)
    assert thin([1.0, 2.0]) == [1.0, 2.0]


# ---- the heat case -------------------------------------------------------------------------
# NUTS on the same context, D mean and sd, for each target: with the implied prior left in
# (output layer sampled, key 1; from the task that set these tests), which the raw guides fit,
# and with it removed (the default nuts, key 0, measured 2026-11-28), which the whitened guides
# and Pathfinder fit by default.
TRUE_D = 0.07
NUTS_KEPT, NUTS_REMOVED = (0.0673, 0.00136), (0.0695, 0.00138)
HEAT_SVI_STEPS = 2000
VI_METHODS = ("svi_meanfield", "svi_lowrank", "svi_structured", "pathfinder")
SVI_METHODS = VI_METHODS[:3]


@pytest.fixture(scope="module")
def heat_draws(heat_context):
    """``heat_draws(method, coordinates)``: (ctx, draws, wall seconds, D draws), one run per
    method and ``svi_coordinates``."""
    cache = {}

    def get(name, coordinates="whitened"):
        if (name, coordinates) not in cache:
            ctx = heat_context(svi_steps=HEAT_SVI_STEPS)  # shares the MAP fit of other tests
            ctx = dataclasses.replace(ctx, settings=dataclasses.replace(
                ctx.settings, svi_coordinates=coordinates))
            t0 = time.perf_counter()
            draws = get_method(name).run(jax.random.key(0), ctx)
            wall = time.perf_counter() - t0
            flat = draws.position.reshape(-1, ctx.target.dim)
            d = np.asarray(jax.vmap(ctx.target.constrained)(flat)["D"])
            print(f"\n{name} ({coordinates}): D = {d.mean():.5f} +- {d.std():.5f} "
                  f"(sd / sd_NUTS = {d.std() / NUTS_REMOVED[1]:.2f}), wall {wall:.1f} s, "
                  f"timing {draws.timing}, implied prior {draws.info['implicit_prior']}")
            cache[name, coordinates] = (ctx, draws, wall, d)
        return cache[name, coordinates]

    return get


@pytest.mark.parametrize("name", VI_METHODS)
def test_heat_draws_are_well_formed(heat_draws, name):
    ctx, draws, _, d = heat_draws(name)
    inf = ctx.settings
    assert draws.position.shape == (inf.num_chains, inf.num_samples, ctx.target.dim)
    assert np.all(np.isfinite(np.asarray(draws.position)))
    assert np.all(np.isfinite(np.asarray(draws.sample_stats["lp"])))
    assert get_method(name).exact_mcmc is False
    json.dumps(draws.info)
    if name.startswith("svi"):
        trace = draws.info["elbo_trace"]
        assert 0 < len(trace) <= 500 and all(isinstance(x, float) for x in trace)
        assert draws.info["svi_steps"] == HEAT_SVI_STEPS
        assert draws.info["coordinates"] == "whitened"
    else:
        assert len(draws.info["path_elbo"]) == inf.num_chains
    assert {"compile_s", "optimization_s", "sampling_s"} <= set(draws.timing)
    assert np.all((d > 0.0) & (d < 1.0))
    # the default removes the implied prior here, as nuts does
    assert draws.info["implicit_prior"]["mode"] == "corrected"
    assert draws.timing["implicit_prior_s"] > 0


# Measured (2 cores, 2000 steps, seed 0), whitened coordinates: with the implied prior left in,
# all three guides converged to D = 0.0645-0.0646 +- 0.00105-0.00109 with the noise sd at 0.027
# (NUTS: 0.023), 5 of their sds from the truth; with the noise sd fixed at 0.023, mean-field
# still gave 0.0650 +- 0.00108, so the inflated noise is not the cause. With it removed (the
# default since), mean-field gave 0.0657 +- 0.00102 (NUTS on the same target 0.0695 +- 0.00138):
# the removal moved it as far as it moves NUTS, and the gap to NUTS remains. These stay strict
# xfails, so a change that makes them pass shows.
_OVERCONFIDENT = pytest.mark.xfail(
    strict=True, reason="measured: D = 0.0657 +- 0.00102 with the implied prior removed (NUTS "
                        "0.0695 +- 0.00138), so 0.07 lies 4.2 sd away")


@pytest.mark.parametrize("name", [
    pytest.param("svi_meanfield", marks=_OVERCONFIDENT),
    pytest.param("svi_lowrank", marks=_OVERCONFIDENT),
    pytest.param("svi_structured", marks=_OVERCONFIDENT),
    "pathfinder",
])
def test_heat_recovers_D_within_three_of_its_sd(heat_draws, name):
    _, _, _, d = heat_draws(name)
    assert abs(d.mean() - TRUE_D) < 3 * d.std()


@pytest.mark.parametrize("name", SVI_METHODS)
def test_heat_whitened_svi_is_near_nuts(heat_draws, name):
    """An approximation worth offering: mean within 3 NUTS sds of NUTS's on the same target
    (implied prior removed), sd at least half."""
    mean, sd = NUTS_REMOVED
    _, _, _, d = heat_draws(name)
    assert abs(d.mean() - mean) < 3 * sd
    assert d.std() > 0.5 * sd


@pytest.mark.parametrize("name", VI_METHODS)
def test_heat_importance_check_flags_what_nuts_shows(heat_draws, name):
    """By NUTS's measure all four are off here (the guides about 2.8 NUTS sds low, Pathfinder
    with 0.36 of its sd); the importance check must say so without NUTS. Measured (seed 0):
    k-hat 7.6 (mean-field), 5.8 (low-rank), 8.1 and 6.1 (Pathfinder's two paths)."""
    _, draws, _, _ = heat_draws(name)
    assert np.max(draws.info["pareto_k"]) > draws.info["pareto_k_threshold"]
    assert any("Pareto k-hat" in w for w in draws.info["warnings"])


def test_heat_raw_meanfield_drifts_and_is_narrower_than_nuts(heat_draws):
    """In the model's own coordinates the mean-field guide is narrower than NUTS (Gaussian
    theory: mean-field variance = 1 / precision_ii <= marginal variance) and its mean drifts
    (measured 0.0616 at 2000 steps, 0.0198 at 5000): further from NUTS than the whitened fit,
    each against NUTS on its own target (raw coordinates cannot remove the implied prior)."""
    _, draws, _, raw = heat_draws("svi_meanfield", "raw")
    _, _, _, whitened = heat_draws("svi_meanfield")
    assert draws.info["coordinates"] == "raw"
    assert draws.info["implicit_prior"]["mode"].startswith("ignored (auto: svi_coordinates")
    assert raw.std() < NUTS_KEPT[1]
    assert abs(raw.mean() - NUTS_KEPT[0]) > abs(whitened.mean() - NUTS_REMOVED[0])


# ---- end to end ----------------------------------------------------------------------------


def test_api_run_svi_meanfield(heat_case):
    config = heat_case(
        inference={"num_chains": 2, "num_samples": 20, "map_adam_steps": 300,
                   "map_lbfgs_steps": 20, "svi_steps": 200},
        model={"width": 8, "num_collocation": 32},
    )
    result = run(config, method="svi_meanfield")
    summary = result.summary
    assert summary["exact_mcmc"] is False
    info = summary["method_info"]
    assert 0 < len(info["elbo_trace"]) <= 500
    assert isinstance(info["elbo_converged"], bool)
    assert summary["method_limitations"]
    assert any("approximation, not MCMC" in w for w in summary["diagnostics"]["warnings"])
    assert result.datatree["posterior"]["D"].shape == (2, 20)
    json.dumps(summary, default=str)


def test_svi_check_rejects_too_few_steps():
    with pytest.raises(ValueError, match="svi_steps"):
        get_method("svi_meanfield").check(None, InferenceSettings(svi_steps=10))
