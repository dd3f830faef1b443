"""The samplers on targets with known answers (so a wrong whitening or adaptation shows)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bpinn.inference.map import fit_map
from bpinn.inference.nuts import curvature_preconditioner, run_nuts
from bpinn.inference.target import make_target

MEAN = jnp.array([1.0, -2.0, 0.5])
COV = jnp.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.2], [0.0, 0.2, 0.5]]) * 0.04


def correlated_model(physics_weight=1.0):
    del physics_weight
    numpyro.sample("theta", dist.MultivariateNormal(MEAN, COV))
    numpyro.sample("scale", dist.LogNormal(0.0, 0.5))


def test_target_round_trips_constrained_values():
    target = make_target(jax.random.key(0), correlated_model)
    flat = target.from_constrained({"theta": MEAN, "scale": jnp.asarray(2.0)})
    values = target.constrained(flat)
    np.testing.assert_allclose(values["theta"], MEAN)
    np.testing.assert_allclose(values["scale"], 2.0)


def test_map_finds_the_mode():
    target = make_target(jax.random.key(0), correlated_model)
    starts = jnp.stack([target.initial_position + 0.3 * jax.random.normal(k, (target.dim,))
                        for k in jax.random.split(jax.random.key(1), 3)])
    fit = fit_map(target, starts, num_adam_steps=300, num_lbfgs_steps=50)
    for p in fit.position:
        values = target.constrained(p)
        np.testing.assert_allclose(values["theta"], MEAN, atol=1e-5)
        # mode of a LogNormal(0, 0.5) in log space (the unconstrained space) is exp(0) = 1
        np.testing.assert_allclose(values["scale"], 1.0, atol=1e-5)


def test_preconditioner_whitens_a_gaussian():
    target = make_target(jax.random.key(0), correlated_model)
    center = target.from_constrained({"theta": MEAN, "scale": jnp.asarray(1.0)})
    pc = curvature_preconditioner(target, center, damping=0.0, floor=1e-8)
    hessian = -jax.hessian(target.logdensity_fn)(center)
    np.testing.assert_allclose(pc.factor.T @ hessian @ pc.factor, np.eye(target.dim), atol=1e-8)


@pytest.mark.parametrize("damping", [0.0, 100.0])
def test_nuts_recovers_mean_and_covariance(damping):
    """Damping changes efficiency, never the target: both settings must recover it.

    Bounds: 5 Monte-Carlo standard errors of the mean (sd / sqrt(ESS), ESS >= 200 assumed for
    4 x 400 draws) and 20% on standard deviations.
    """
    target = make_target(jax.random.key(0), correlated_model)
    center = target.from_constrained({"theta": MEAN, "scale": jnp.asarray(1.0)})
    centers = jnp.broadcast_to(center, (4, target.dim))
    damp = jnp.zeros(target.dim).at[0:3].set(damping)
    result, _ = run_nuts(jax.random.key(2), target, centers, num_warmup=200, num_samples=400,
                         damping=damp)
    assert not bool(jnp.any(result.trace.diverging))
    draws = result.trace.position.reshape(-1, target.dim)
    theta = jax.vmap(target.constrained)(draws)["theta"]
    sd = np.sqrt(np.diag(COV))
    np.testing.assert_array_less(np.abs(theta.mean(0) - MEAN), 5 * sd / np.sqrt(200))
    np.testing.assert_allclose(theta.std(0), sd, rtol=0.2)
    corr = np.corrcoef(np.asarray(theta).T)[0, 1]
    assert abs(corr - 0.9) < 0.05


def test_nuts_holds_fixed_coordinates_at_each_chains_own_value():
    """``fixed``: theta[0] held at a different value per chain; the others must follow the
    Gaussian conditional given it (mean MEAN[1:] + C10 C00^-1 (a - MEAN[0])), within 5 Monte
    Carlo errors (ESS >= 100 assumed for 400 draws of one chain) and 25% on the sds."""
    target = make_target(jax.random.key(0), correlated_model)
    held = jnp.array([0.8, 1.0, 1.3])
    centers = jnp.stack([target.from_constrained({"theta": MEAN.at[0].set(a),
                                                  "scale": jnp.asarray(1.0)}) for a in held])
    first = target.site_slices["theta"][0]  # theta is unconstrained as it is
    result, _ = run_nuts(jax.random.key(3), target, centers, num_warmup=200, num_samples=400,
                         fixed=np.array([first]))
    position = np.asarray(result.trace.position)  # (chain, draw, dim)
    assert position.shape == (3, 400, target.dim)
    np.testing.assert_array_equal(position[..., first],
                                  np.broadcast_to(held[:, None], (3, 400)))
    cov = np.asarray(COV)
    conditional_cov = cov[1:, 1:] - np.outer(cov[1:, 0], cov[0, 1:]) / cov[0, 0]
    sd = np.sqrt(np.diag(conditional_cov))
    for chain, a in enumerate(np.asarray(held)):
        mean = np.asarray(MEAN[1:]) + cov[1:, 0] / cov[0, 0] * (a - float(MEAN[0]))
        theta = position[chain, :, first + 1:first + 3]
        np.testing.assert_array_less(np.abs(theta.mean(0) - mean), 5 * sd / np.sqrt(100))
        np.testing.assert_allclose(theta.std(0), sd, rtol=0.25)


@pytest.mark.parametrize("dim,block", [(1, 32), (7, 3), (64, 32), (65, 32)])
def test_dense_hessian_in_blocks_equals_jax_hessian(dim, block):
    from bpinn.inference.target import dense_hessian

    a = jax.random.normal(jax.random.key(dim), (dim, dim))

    def fn(x):  # non-quadratic, with cross terms
        return jnp.sum(jnp.tanh(a @ x) ** 2) + jnp.sum(x**4) * jnp.prod(jnp.cos(x[:3]))

    x = jax.random.normal(jax.random.key(1), (dim,))
    np.testing.assert_allclose(np.asarray(dense_hessian(fn, x, block_size=block)),
                               np.asarray(jax.hessian(fn)(x)), rtol=1e-10, atol=1e-12)
