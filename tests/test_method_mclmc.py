"""The ``mclmc`` method (adjusted microcanonical sampler): a Gaussian with known moments, the
heat context, and one run through ``bpinn.api.run``."""

import json

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bpinn.api import run
from bpinn.inference.mclmc import METHOD, run_adjusted_mclmc
from bpinn.inference.methods import get_method
from bpinn.inference.target import make_target

MEAN = jnp.array([1.0, -2.0, 0.5])
COV = jnp.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.2], [0.0, 0.2, 0.5]]) * 0.04
MIN_ESS = 200  # the Gaussian bounds below are stated for at least this many effective draws


def correlated_model(physics_weight=1.0):
    del physics_weight
    numpyro.sample("theta", dist.MultivariateNormal(MEAN, COV))
    numpyro.sample("scale", dist.LogNormal(0.0, 0.5))


def test_mclmc_is_registered():
    method = get_method("mclmc")
    assert method is METHOD and method.exact_mcmc and method.needs_map


@pytest.mark.parametrize(("damping", "adapt_mass_matrix"),
                         [(0.0, False), (100.0, False), (100.0, True)])
def test_mclmc_recovers_mean_and_covariance(damping, adapt_mass_matrix):
    """Damping leaves whitened variances up to about 9, so the tuner (and, with
    ``adapt_mass_matrix``, its diagonal scale estimate) must do real work.

    Bounds, given ESS >= 200 per coordinate (asserted): 5 Monte-Carlo standard errors of the
    mean (sd / sqrt(200)), 20% on standard deviations (4 standard errors of an sd estimate,
    1 / sqrt(2 ESS)) and 0.05 on the 0.9 correlation (about 4 standard errors,
    (1 - rho^2) / sqrt(ESS)).
    """
    target = make_target(jax.random.key(0), correlated_model)
    center = target.from_constrained({"theta": MEAN, "scale": jnp.asarray(1.0)})
    centers = jnp.broadcast_to(center, (4, target.dim))
    damp = jnp.zeros(target.dim).at[0:3].set(damping)
    result, timing = run_adjusted_mclmc(jax.random.key(2), target, centers, num_warmup=200,
                                        num_samples=2000, damping=damp,
                                        adapt_mass_matrix=adapt_mass_matrix)
    assert not bool(jnp.any(result.trace.diverging))
    assert {"compile_s", "warmup_s", "sampling_s"} <= set(timing)
    ess = arviz_stats.ess(np.asarray(result.trace.position), chain_axis=0, draw_axis=1)
    assert np.min(ess) >= MIN_ESS, f"ESS {ess}"
    draws = result.trace.position.reshape(-1, target.dim)
    theta = jax.vmap(target.constrained)(draws)["theta"]
    sd = np.sqrt(np.diag(COV))
    np.testing.assert_array_less(np.abs(theta.mean(0) - MEAN), 5 * sd / np.sqrt(MIN_ESS))
    np.testing.assert_allclose(theta.std(0), sd, rtol=0.2)
    corr = np.corrcoef(np.asarray(theta).T)[0, 1]
    assert abs(corr - 0.9) < 0.05


# ---- heat case -------------------------------------------------------------------------------

NUTS_D = (0.0673, 0.00136)  # blackjax NUTS on the same reduced case: mean, sd


def test_mclmc_recovers_D_on_heat(heat_context):
    ctx = heat_context()
    draws = METHOD.run(jax.random.key(3), ctx)
    chains, samples = ctx.settings.num_chains, ctx.settings.num_samples
    assert draws.position.shape == (chains, samples, ctx.target.dim)
    assert bool(jnp.all(jnp.isfinite(draws.position)))
    for name in ("diverging", "acceptance_rate", "n_steps", "lp"):
        assert draws.sample_stats[name].shape == (chains, samples), name
    assert draws.sample_stats["diverging"].dtype == bool
    assert bool(jnp.all(draws.sample_stats["n_steps"] >= 1))
    json.dumps(draws.info)
    assert len(draws.info["step_size"]) == len(draws.info["L"]) == chains
    d = jax.vmap(ctx.target.constrained)(draws.position.reshape(-1, ctx.target.dim))["D"]
    mean, sd = float(jnp.mean(d)), float(jnp.std(d))
    ess = float(arviz_stats.ess(np.asarray(d).reshape(chains, samples)))
    print(f"mclmc: D = {mean:.4f} +- {sd:.5f} (NUTS {NUTS_D[0]} +- {NUTS_D[1]}; "
          f"sd ratio {sd / NUTS_D[1]:.2f}); ESS {ess:.1f}; {draws.info}; {draws.timing}")
    assert abs(mean - 0.07) < 3 * sd


def test_mclmc_end_to_end(heat_case):
    config = heat_case(
        inference={"num_chains": 2, "num_warmup": 30, "num_samples": 20,
                   "map_adam_steps": 300, "map_lbfgs_steps": 20, "max_tree_depth": 4},
        model={"width": 8, "num_collocation": 32})
    result = run(config, method="mclmc", overrides={"num_samples": 15})
    assert result.summary["method"] == "mclmc"
    assert result.summary["exact_mcmc"] is True
    assert result.summary["method_limitations"]
    assert result.datatree["posterior"]["D"].shape == (2, 15)
    stats = result.datatree["sample_stats"]
    assert {"diverging", "acceptance_rate", "n_steps", "lp"} <= set(stats.data_vars)
    assert stats["diverging"].dtype == bool
    # max_tree_depth 4 caps the mean trajectory at 15 steps; a draw takes at most twice that.
    assert int(stats["n_steps"].max()) <= 2 * 15
    assert set(result.summary["method_info"]) >= {"step_size", "L"}
