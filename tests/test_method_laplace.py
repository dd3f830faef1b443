"""The GGN Laplace methods: site extraction, curvature, draws, and recovery on the heat case."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax.flatten_util import ravel_pytree

from bpinn.api import run
from bpinn.config import InferenceSettings
from bpinn.inference.laplace import (
    check_last_layer,
    ggn_precision,
    laplace,
    laplace_last_layer,
    last_layer_gaussian_indices,
    last_layer_indices,
    location_scale_terms,
    total_logdensity,
)
from bpinn.inference.map import MAPResult
from bpinn.inference.methods import MethodContext, get_method
from bpinn.inference.target import make_target
from bpinn.models.networks import Network

DESIGN = jax.random.normal(jax.random.key(11), (12, 3))
TRUE_W = jnp.array([1.0, -0.5, 0.25])
NOISE_SD, PRIOR_SD = 0.5, 2.0
READINGS = DESIGN @ TRUE_W + NOISE_SD * jax.random.normal(jax.random.key(12), (12,))


@dataclass(frozen=True)
class LinearGaussian:
    """y ~ Normal(A w, 0.5), w ~ Normal(0, 2): the posterior is Gaussian in closed form."""

    def model(self, physics_weight=1.0):
        del physics_weight
        w = numpyro.sample("w", dist.Normal(0.0, PRIOR_SD).expand([3]).to_event(1))
        with numpyro.plate("obs", READINGS.size):
            numpyro.sample("y", dist.Normal(DESIGN @ w, NOISE_SD), obs=READINGS)

    def initial_values(self, rng_key):
        return {"w": jax.random.normal(rng_key, (3,))}


def linear_gaussian_posterior():
    precision = DESIGN.T @ DESIGN / NOISE_SD**2 + jnp.eye(3) / PRIOR_SD**2
    cov = jnp.linalg.inv(precision)
    return cov @ DESIGN.T @ READINGS / NOISE_SD**2, cov, precision


def mixed_model(physics_weight=1.0):
    """Constrained latents (Jacobians), plates, a tempered site and a Student-t site."""
    w = numpyro.sample("w", dist.Normal(0.5, PRIOR_SD).expand([3]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    c = numpyro.sample("c", dist.LogNormal(0.0, 1.0))
    with numpyro.plate("obs", READINGS.size):
        numpyro.sample("y", dist.Normal(DESIGN @ w, sigma), obs=READINGS)
    with numpyro.plate("pts", READINGS.size), numpyro.handlers.scale(scale=physics_weight):
        numpyro.sample("r", dist.StudentT(4.0, c * jnp.tanh(DESIGN @ w), 0.3), obs=READINGS)


@pytest.mark.parametrize("physics_weight", [1.0, 0.3])
def test_location_scale_terms_add_up_to_the_target(physics_weight):
    """Latent part (log prior + Jacobians) plus the observed sites' weighted log densities is
    the very density numpyro's potential gives, at arbitrary points."""
    target = make_target(jax.random.key(0), mixed_model)
    terms_fn = jax.jit(lambda flat: location_scale_terms(
        mixed_model, target, flat, model_kwargs={"physics_weight": physics_weight}))
    for key in jax.random.split(jax.random.key(1), 3):
        flat = jax.random.normal(key, (target.dim,))
        terms = terms_fn(flat)
        tempered = target.training_logdensity_fn(flat, {"physics_weight": physics_weight})
        np.testing.assert_allclose(total_logdensity(terms), tempered, rtol=1e-12)
        assert set(terms.observed) == {"y", "r"} and set(terms.latent_gaussian) == {"w"}
        assert terms.observed["y"].family == "normal"
        assert terms.observed["r"].family == "student_t"
        np.testing.assert_allclose(terms.observed["r"].weight, physics_weight)
        np.testing.assert_allclose(terms.observed["y"].scale, target.constrained(flat)["sigma"])


@pytest.mark.parametrize("family", ["normal", "student_t"])
def test_fisher_information_matches_monte_carlo(family):
    """The per-element Fisher information of loc and log scale equals E[score^2] (estimated
    from 200k draws; bound: 5 Monte Carlo standard errors)."""
    loc, scale, df = 0.3, 2.0, 4.0

    def make(m, log_s):
        s = jnp.exp(log_s)
        return dist.Normal(m, s) if family == "normal" else dist.StudentT(df, m, s)

    def one_site_model(physics_weight=1.0):
        del physics_weight
        numpyro.sample("y", make(loc, jnp.log(scale)), obs=jnp.zeros(()))

    target = make_target(jax.random.key(0), one_site_model)  # no latent sites: dim 0
    site = location_scale_terms(one_site_model, target, target.initial_position).observed["y"]
    draws = make(loc, jnp.log(scale)).sample(jax.random.key(3), (200_000,))
    score = jax.vmap(jax.grad(lambda p, y: make(p[0], p[1]).log_prob(y)), in_axes=(None, 0))(
        jnp.array([loc, jnp.log(scale)]), draws)
    for estimate, exact in ((score[:, 0] ** 2, site.loc_information),
                            (score[:, 1] ** 2, site.log_scale_information)):
        standard_error = np.std(estimate) / np.sqrt(estimate.size)
        assert abs(float(np.mean(estimate)) - float(exact)) < 5 * standard_error


def test_ggn_is_the_hessian_for_a_linear_model_with_fixed_scales():
    """Linear locations and fixed scales: GGN == exact Hessian, handler weights included."""
    def model(physics_weight=1.0):
        w = numpyro.sample("w", dist.Normal(0.0, PRIOR_SD).expand([3]).to_event(1))
        with numpyro.plate("obs", READINGS.size):
            numpyro.sample("y", dist.Normal(DESIGN @ w, NOISE_SD), obs=READINGS)
        with numpyro.plate("pts", 4), numpyro.handlers.scale(scale=0.25 * physics_weight):
            numpyro.sample("r", dist.Normal(DESIGN[:4] @ w - 1.0, 0.1), obs=jnp.zeros(4))

    target = make_target(jax.random.key(0), model)
    flat = jax.random.normal(jax.random.key(1), (target.dim,))
    hessian = jax.jit(jax.hessian(lambda x: -target.logdensity_fn(x)))(flat)
    subset = np.array([0, 2])
    full, block = jax.jit(lambda x: (ggn_precision(model, target, x),
                                     ggn_precision(model, target, x, indices=subset)))(flat)
    np.testing.assert_allclose(full, hessian, rtol=1e-10)
    np.testing.assert_allclose(block, hessian[np.ix_(subset, subset)], rtol=1e-10)


def toy_context(num_chains=4, num_samples=2000):
    toy = LinearGaussian()
    target = make_target(jax.random.key(0), toy.model)
    mean, _, _ = linear_gaussian_posterior()
    mode = target.from_constrained({"w": mean})
    fit = MAPResult(position=mode[None], logdensity=target.logdensity_fn(mode)[None], trace=None,
                    compile_seconds=0.0)
    settings = InferenceSettings(method="laplace", num_chains=num_chains, num_samples=num_samples)
    return MethodContext(model=toy, target=target, settings=settings, starts=mode[None],
                         map_fit=fit)


def test_laplace_is_exact_for_a_linear_gaussian_model():
    """The GGN is the exact precision, so the draws have the closed-form mean and covariance.

    Bounds for 8000 independent draws: means within 5 standard errors (sd / sqrt(8000)); each
    covariance entry within 5 of its standard error sqrt((S_ii S_jj + S_ij^2) / 8000).
    """
    ctx = toy_context()
    mean, cov, precision = linear_gaussian_posterior()
    draws = laplace(jax.random.key(4), ctx)
    assert draws.position.shape == (4, 2000, 3)
    assert draws.sample_stats["lp"].shape == (4, 2000)
    json.dumps(draws.info)
    np.testing.assert_allclose(draws.info["log_det_precision"],
                               np.linalg.slogdet(np.asarray(precision))[1], rtol=1e-10)
    np.testing.assert_allclose(draws.info["ggn_min_eigenvalue"],
                               np.linalg.eigvalsh(np.asarray(precision))[0], rtol=1e-8)
    assert draws.info["jitter"] == 0.0
    w = np.asarray(draws.position.reshape(-1, 3))
    n, sd = w.shape[0], np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(w.mean(0) - mean), 5 * sd / np.sqrt(n))
    cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + np.asarray(cov) ** 2) / n)
    np.testing.assert_array_less(np.abs(np.cov(w.T) - cov), 5 * cov_se)


# ---- last layer ------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 3])
def test_last_layer_indices_follow_the_layer_sizes(depth):
    """The output layer is the trailing (width + 1) entries of the weight vector, and the network
    output is affine in exactly those entries."""
    network = Network(input_dim=2, width=5, depth=depth)
    model = SimpleNamespace(settings=SimpleNamespace(network=network),
                            num_weights=network.num_params)
    start = 3  # the weights site after three other coordinates
    target = SimpleNamespace(site_slices={"weights": (start, start + network.num_params)},
                             dim=start + network.num_params + 2)
    indices = last_layer_indices(model, target)
    stop = start + network.num_params
    np.testing.assert_array_equal(indices, np.arange(stop - 6, stop))
    others = np.r_[0:start, stop:stop + 2]
    np.testing.assert_array_equal(last_layer_gaussian_indices(model, target),
                                  np.sort(np.r_[others, indices]))

    _, unravel = ravel_pytree(network.init(jax.random.key(0)))
    flat = jax.random.normal(jax.random.key(1), (network.num_params,))
    last = indices - start

    def output(sub):
        return network.apply(unravel(flat.at[last].set(sub)), jnp.array([0.3, -0.2]))

    assert float(jnp.max(jnp.abs(jax.hessian(output)(flat[last])))) == 0.0


def test_last_layer_check_rejects_unsupported_networks():
    unknown = SimpleNamespace(settings=SimpleNamespace(network=SimpleNamespace(kind="kan")),
                              num_weights=10)
    with pytest.raises(ValueError, match=r"\[model\] network = 'kan'"):
        check_last_layer(unknown, None)
    network = Network(input_dim=2, width=5, depth=2)
    mismatched = SimpleNamespace(settings=SimpleNamespace(network=network),
                                 num_weights=network.num_params + 1)
    with pytest.raises(ValueError, match=r"\[model\] network = 'mlp'.*cannot locate"):
        check_last_layer(mismatched, None)
    assert get_method("laplace_last_layer").check is check_last_layer


# ---- heat case -------------------------------------------------------------------------------

NUTS_D = (0.0673, 0.00136)  # blackjax NUTS on the same reduced case: mean, sd


@pytest.mark.parametrize("method", [
    "laplace",
    pytest.param("laplace_last_layer", marks=pytest.mark.xfail(
        strict=True, reason="hidden weights fixed at the MAP make D too narrow: measured "
                            "0.0662 +- 0.00104, so the truth 0.07 is 3.6 sd away")),
])
def test_laplace_recovers_D_on_heat(heat_context, method):
    ctx = heat_context()
    run_fn = {"laplace": laplace, "laplace_last_layer": laplace_last_layer}[method]
    draws = run_fn(jax.random.key(5), ctx)
    chains, samples = ctx.settings.num_chains, ctx.settings.num_samples
    assert draws.position.shape == (chains, samples, ctx.target.dim)
    assert bool(jnp.all(jnp.isfinite(draws.position)))
    json.dumps(draws.info)
    d = jax.vmap(ctx.target.constrained)(draws.position.reshape(-1, ctx.target.dim))["D"]
    mean, sd = float(jnp.mean(d)), float(jnp.std(d))
    print(f"{method}: D = {mean:.4f} +- {sd:.5f} (NUTS {NUTS_D[0]} +- {NUTS_D[1]}; "
          f"sd ratio {sd / NUTS_D[1]:.2f}); {draws.info}; {draws.timing}")
    assert abs(mean - 0.07) < 3 * sd


def test_laplace_predicts_with_the_network_linearised_at_its_centre(heat_context):
    """The GGN Laplace is the posterior of the linearised network: its predictions at a draw
    are u(w*) + J (w - w*), so the mean prediction is u at the centre, and a draw's prediction
    is affine in its weights."""
    ctx = heat_context()
    draws = laplace(jax.random.key(5), ctx)
    points = jnp.asarray(ctx.model.problem.observations.coords)
    predict = draws.predictor(points)
    center = ctx.target.constrained(ctx.best_map())
    values = jax.vmap(ctx.target.constrained)(draws.position.reshape(-1, ctx.target.dim))
    first = jax.tree.map(lambda v: v[0], values)
    second = jax.tree.map(lambda v: v[1], values)
    midpoint = {**first, "weights": (first["weights"] + second["weights"]) / 2}
    np.testing.assert_allclose(predict(midpoint), (predict(first) + predict(second)) / 2,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(predict(center), ctx.model.predict(center["weights"], points),
                               rtol=1e-12, atol=1e-12)


def test_last_layer_precision_is_the_block_of_the_full_ggn(heat_context):
    """Fixing the hidden weights takes the sub-block of the full GGN precision, so the
    last-layer D variance is the conditional one and cannot exceed the full Laplace's."""
    ctx = heat_context()
    center, model_fn = ctx.best_map(), ctx.model.model
    indices = last_layer_gaussian_indices(ctx.model, ctx.target)
    full = jax.jit(lambda c: ggn_precision(model_fn, ctx.target, c))(center)
    block = jax.jit(lambda c: ggn_precision(model_fn, ctx.target, c, indices=indices))(center)
    np.testing.assert_allclose(block, full[np.ix_(indices, indices)], rtol=1e-9, atol=1e-9)
    d = ctx.target.site_slices["D"][0]
    d_in_block = int(np.flatnonzero(indices == d)[0])
    conditional = float(jnp.linalg.inv(block)[d_in_block, d_in_block])
    marginal = float(jnp.linalg.inv(full)[d, d])
    assert 0.0 < conditional <= marginal


def test_laplace_end_to_end(heat_case):
    config = heat_case(
        inference={"num_chains": 2, "num_samples": 20, "map_adam_steps": 300,
                   "map_lbfgs_steps": 20},
        model={"width": 8, "num_collocation": 32})
    result = run(config, method="laplace")
    assert result.summary["exact_mcmc"] is False
    assert result.summary["method_limitations"]
    assert result.datatree["posterior"]["D"].shape == (2, 20)
