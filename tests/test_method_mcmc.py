"""numpyro NUTS (``numpyro_nuts``), fixed-length HMC (``hmc``) and ChEES-HMC (``chees``): known
answers, agreement with ``nuts``, and the end-to-end path.

Bounds come from the problems and from Monte Carlo error, never from a run:

- Gaussian target: with ESS >= 200 per coordinate (asserted), the sample mean is within
  4 MCSE = 4 sd / sqrt(bulk ESS) of the truth, the sd within 4 relative standard errors
  (1 / sqrt(2 ESS_sd) each, for a Gaussian; ESS_sd is arviz-stats' ESS for the sd) and the
  correlation within 4 standard errors ((1 - rho^2) / sqrt(200)).
- Heat case: the truth D = 0.07 lies within mean +- 3 posterior sd of each method's own draws.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from arviz_stats.base import array_stats
from monte_carlo import assert_same_posterior, draw_summary
from numpyro.infer.hmc_util import euclidean_kinetic_energy

from bpinn.api import run
from bpinn.config import InferenceSettings
from bpinn.inference.map import MAPResult
from bpinn.inference.methods import MethodContext, get_method
from bpinn.inference.numpyro_mcmc import site_order, tree_depth_from_steps
from bpinn.inference.nuts import run_nuts
from bpinn.inference.target import make_target

MEAN = jnp.array([1.0, -2.0, 0.5])
COV = jnp.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.2], [0.0, 0.2, 0.5]]) * 0.04
LOG_SCALE_SD = 0.5
MIN_ESS = 200  # 4 chains x 400 draws of a 4-d Gaussian: any working sampler exceeds it
TRUE_D = 0.07
# Like tests/test_api.py: plumbing only, far too short to say anything about the posterior.
TINY_INFERENCE = {
    "num_chains": 2, "num_warmup": 30, "num_samples": 20,
    "map_adam_steps": 300, "map_lbfgs_steps": 20, "max_tree_depth": 4,
}
TINY_MODEL = {"width": 8, "num_collocation": 32}


def correlated_model(physics_weight=1.0):
    del physics_weight
    numpyro.sample("theta", dist.MultivariateNormal(MEAN, COV))
    numpyro.sample("scale", dist.LogNormal(0.0, LOG_SCALE_SD))


class ToyModel(NamedTuple):
    """Stands in for ``BPINN``: the methods use only its numpyro model function."""

    model: Callable


def gaussian_context(chain_init: str) -> MethodContext:
    """A ``MethodContext`` for ``correlated_model`` with every MAP fit at its exact mode."""
    target = make_target(jax.random.key(0), correlated_model)
    mode = target.from_constrained({"theta": MEAN, "scale": jnp.asarray(1.0)})
    # no network: no implied prior to measure and no output layer to integrate out
    settings = InferenceSettings(num_chains=4, num_warmup=200, num_samples=400,
                                 chain_init=chain_init, implicit_prior="ignored",
                                 output_layer="sampled")
    positions = jnp.broadcast_to(mode, (settings.num_chains, target.dim))
    fit = MAPResult(position=positions,
                    logdensity=jax.vmap(target.logdensity_fn)(positions),
                    trace=None, compile_seconds=0.0)
    return MethodContext(model=ToyModel(correlated_model), target=target, settings=settings,
                         starts=positions, map_fit=fit)


def by_chain(draws, values):
    """Flat per-draw values -> (chain, draw, ...)."""
    return np.asarray(values).reshape(*draws.position.shape[:2], *np.shape(values)[1:])


def check_draws(draws, ctx, stats):
    num = (ctx.settings.num_chains, ctx.settings.num_samples)
    assert draws.position.shape == (*num, ctx.target.dim)
    assert bool(jnp.all(jnp.isfinite(draws.position)))
    assert set(draws.sample_stats) == set(stats)
    for name, value in draws.sample_stats.items():
        assert np.shape(value) == num, name
        assert bool(np.all(np.isfinite(np.asarray(value, dtype=float)))), name
    json.dumps(draws.info)
    assert {"warmup_s", "sampling_s", "compile_s"} <= set(draws.timing)


NUTS_STATS = {"diverging", "acceptance_rate", "n_steps", "tree_depth", "lp", "energy"}
HMC_STATS = {"diverging", "acceptance_rate", "n_steps", "lp", "energy"}


@pytest.mark.parametrize(("method", "chain_init", "stats"), [
    ("numpyro_nuts", "best_map", NUTS_STATS),
    ("numpyro_nuts", "per_chain", NUTS_STATS),  # one numpyro run per chain
    ("hmc", "best_map", HMC_STATS),
    ("chees", "best_map", HMC_STATS),
])
def test_recovers_mean_and_covariance_of_a_gaussian(method, chain_init, stats):
    ctx = gaussian_context(chain_init)
    draws = get_method(method).run(jax.random.key(2), ctx)
    check_draws(draws, ctx, stats)
    assert not bool(jnp.any(draws.sample_stats["diverging"]))
    values = jax.vmap(ctx.target.constrained)(draws.position.reshape(-1, ctx.target.dim))
    theta = by_chain(draws, values["theta"])  # (chain, draw, 3)
    log_scale = by_chain(draws, jnp.log(values["scale"]))
    columns = [theta[..., i] for i in range(3)] + [log_scale]
    truth_mean = [*np.asarray(MEAN), 0.0]
    truth_sd = [*np.sqrt(np.diag(COV)), LOG_SCALE_SD]
    for x, mean, sd in zip(columns, truth_mean, truth_sd, strict=True):
        # NUTS is often antithetic for the mean (bulk ESS > draws) but not for the variance:
        # the sd's error needs the ESS of the sd.
        ess_mean = float(array_stats.ess(x, method="bulk"))
        ess_sd = float(array_stats.ess(x, method="sd"))
        assert min(ess_mean, ess_sd) >= MIN_ESS
        assert abs(x.mean() - mean) <= 4 * sd / np.sqrt(ess_mean)
        assert abs(x.std() / sd - 1) <= 4 / np.sqrt(2 * ess_sd)
    flat = theta.reshape(-1, 3)
    corr = np.corrcoef(flat.T)
    truth_corr = np.asarray(COV / np.sqrt(np.outer(np.diag(COV), np.diag(COV))))
    for i, j in ((0, 1), (1, 2)):
        rho = truth_corr[i, j]
        assert abs(corr[i, j] - rho) <= 4 * (1 - rho**2) / np.sqrt(MIN_ESS)


def test_numpyro_ravels_momentum_in_the_target_layout(heat_context):
    """numpyro's kinetic energy, with the inverse mass matrix keyed as numpyro_nuts keys it,
    must equal ``r^T M r / 2`` with ``r`` in the target's flat layout. A matrix applied in
    another order would break this (M is a random dense SPD matrix, no symmetry to hide it)."""
    target = heat_context().target
    assert set(target.site_slices) == {"weights", "D", "sigma"}
    names = site_order(target)
    key_m, key_r = jax.random.split(jax.random.key(0))
    a = jax.random.normal(key_m, (target.dim, target.dim))
    inverse_mass = a @ a.T / target.dim + jnp.eye(target.dim)
    r = jax.random.normal(key_r, (target.dim,))
    numpyro_energy = euclidean_kinetic_energy({names: inverse_mass}, target.unravel_fn(r))
    np.testing.assert_allclose(numpyro_energy, 0.5 * r @ inverse_mass @ r, rtol=1e-12)
    shuffled = r[jax.random.permutation(key_r, target.dim)]
    assert abs(0.5 * shuffled @ inverse_mass @ shuffled - numpyro_energy) > 1e-6


def test_tree_depth_is_the_blackjax_number_of_doublings():
    steps = jnp.array([1, 2, 3, 4, 7, 8, 15, 256, 511, 512, 1023])
    np.testing.assert_array_equal(tree_depth_from_steps(steps),
                                  [1, 2, 2, 3, 3, 4, 4, 9, 9, 10, 10])
    # blackjax's own count on a Gaussian, where trees stop at varied depths
    ctx = gaussian_context("best_map")
    result, _ = run_nuts(jax.random.key(1), ctx.target, ctx.map_fit.position,
                         num_warmup=50, num_samples=200)
    trace = result.trace
    assert len(np.unique(trace.tree_depth)) >= 3
    np.testing.assert_array_equal(tree_depth_from_steps(trace.n_steps), trace.tree_depth)


def test_checks_reject_unsupported_settings():
    for name in ("numpyro_nuts", "hmc", "chees"):
        with pytest.raises(ValueError, match="num_warmup"):
            get_method(name).check(None, InferenceSettings(num_warmup=10))
    with pytest.raises(ValueError, match="num_leapfrog_steps"):
        get_method("hmc").check(None, InferenceSettings(num_leapfrog_steps=0))
    with pytest.raises(ValueError, match="num_chains = 2: ChEES-HMC .* at least 4"):
        get_method("chees").check(None, InferenceSettings(num_chains=2))
    with pytest.raises(ValueError, match="chain_init = 'per_chain'"):
        get_method("chees").check(None, InferenceSettings(chain_init="per_chain"))


def heat_draws_of_d(ctx, draws) -> np.ndarray:
    flat = draws.position.reshape(-1, ctx.target.dim)
    return by_chain(draws, jax.vmap(ctx.target.constrained)(flat)["D"])


@pytest.mark.slow
def test_numpyro_nuts_agrees_with_nuts_on_heat(heat_context, heat_nuts_draws):
    """Same target, same preconditioning, two implementations: the posterior means of D differ
    by at most 3 combined MCSE (sd / sqrt(bulk ESS) each), and the sds by at most 3 standard
    errors of log(sd_a / sd_b): Var(log sd) ~= 1 / (2 ESS) for a near-Gaussian marginal, with
    ESS the one arviz-stats gives for the sd. Each run also recovers the truth on its own."""
    ctx = heat_context()
    summaries = {}
    for method in ("nuts", "numpyro_nuts"):
        draws = (heat_nuts_draws if method == "nuts"
                 else get_method(method).run(jax.random.key(1), ctx))
        check_draws(draws, ctx, NUTS_STATS)
        d = heat_draws_of_d(ctx, draws)
        summaries[method] = draw_summary(d)
        assert abs(d.mean() - TRUE_D) <= 3 * d.std(), (method, summaries[method])
    assert_same_posterior(summaries["nuts"], summaries["numpyro_nuts"])


@pytest.mark.slow
def test_chees_agrees_with_nuts_on_heat(heat_context, heat_nuts_draws):
    """ChEES-HMC on the target of ``heat_nuts_draws`` (output layer sampled, implied prior
    kept): the posterior of D agrees with NUTS's within Monte Carlo error (the bounds of
    ``test_numpyro_nuts_agrees_with_nuts_on_heat``), and it recovers the truth on its own.
    16 chains: the method tunes its trajectory length across chains."""
    import dataclasses

    ctx = heat_context(num_chains=16)
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, output_layer="sampled", implicit_prior="ignored"))
    draws = get_method("chees").run(jax.random.key(1), ctx)
    check_draws(draws, ctx, HMC_STATS)
    assert draws.info["output_layer"] == "sampled"
    d = heat_draws_of_d(ctx, draws)
    assert abs(d.mean() - TRUE_D) <= 3 * d.std(), (d.mean(), d.std())
    assert_same_posterior(draw_summary(heat_draws_of_d(heat_context(), heat_nuts_draws)),
                          draw_summary(d))


def test_chees_recovers_d_on_heat(heat_context):
    """The method as a user runs it: output layer integrated out, implied prior removed."""
    ctx = heat_context(num_chains=16)
    draws = get_method("chees").run(jax.random.key(1), ctx)
    check_draws(draws, ctx, HMC_STATS)
    assert draws.info["output_layer"] == "marginal"
    assert draws.info["implicit_prior"]["mode"] == "corrected"
    d = heat_draws_of_d(ctx, draws)
    assert abs(d.mean() - TRUE_D) <= 3 * d.std(), (d.mean(), d.std())


def test_hmc_recovers_d_on_heat(heat_context):
    ctx = heat_context()
    draws = get_method("hmc").run(jax.random.key(1), ctx)
    check_draws(draws, ctx, HMC_STATS)
    d = heat_draws_of_d(ctx, draws)
    assert abs(d.mean() - TRUE_D) <= 3 * d.std(), (d.mean(), d.std())


@pytest.mark.parametrize("method", ["numpyro_nuts", "hmc", "chees"])
def test_run_end_to_end(heat_case, method):
    inference = {**TINY_INFERENCE, "num_chains": 4} if method == "chees" else TINY_INFERENCE
    config = heat_case(inference=inference, model=TINY_MODEL)
    result = run(config, method=method)
    dt = result.datatree
    assert dt["posterior"]["D"].shape == (inference["num_chains"], inference["num_samples"])
    stats = NUTS_STATS if method == "numpyro_nuts" else HMC_STATS
    assert stats <= set(dt["sample_stats"].data_vars)
    assert result.summary["exact_mcmc"] is True
    assert result.summary["method"] == method
