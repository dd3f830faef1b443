"""Laplace approximations: a Gaussian at the MAP whose precision is the generalised Gauss-Newton
(GGN) matrix of the posterior.

Why the GGN and not the Hessian: at a PINN's MAP the exact Hessian of ``-log p`` is often
indefinite (the residual-weighted second derivatives of the network and of the PDE residual have
either sign), so it is not a covariance. The GGN keeps only the Fisher information of every
observed site, pulled back through the Jacobians of its location and log scale, which is positive
semi-definite by construction; it equals the Hessian for models linear in the parameters with
fixed scales. The latent (prior) part is cheap and kept exact.

Everything is read off the numpyro model itself (``location_scale_terms``): each observed site's
location, scale, observation and ``numpyro.handlers.scale`` factor, each Normal latent site's
prior, and the latent log density (log prior plus the log Jacobian of the unconstraining
transforms). ``bpinn.inference.ensemble`` reuses it to perturb the Gaussian terms for
randomise-then-optimise.

Two methods:

- ``laplace``: the GGN over every coordinate of the flat unconstrained position;
- ``laplace_last_layer``: the hidden network weights stay at the MAP; the GGN is taken over the
  output layer's weights and bias, the PDE coefficients and the noise scales.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import solve_triangular
from numpyro.distributions.transforms import biject_to
from numpyro.distributions.util import sum_rightmost

from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.target import Target

LOCATION_SCALE_FAMILIES = ("normal", "student_t")
# Network kinds whose ``Network.apply`` ends in ``h @ w_out + b_out`` with (w_out, b_out) the last
# pair of the params list, so u is affine in those entries for fixed hidden weights.
LINEAR_OUTPUT_NETWORKS = ("mlp", "fourier", "siren")
MAX_JITTER_TRIES = 8


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class ObservedSite:
    """One observed location-scale site; every array has the observation's shape.

    Attributes
    ----------
    family : "normal" or "student_t" (static, so it survives ``jit`` and ``eval_shape``).
    loc, scale : the distribution's location and scale at the position.
    value : the observation.
    weight : the site's ``numpyro.handlers.scale`` factor (ones when there is none).
    log_prob : ``weight * log p(value | loc, scale)``, elementwise.
    loc_information, log_scale_information : Fisher information of one element with respect to
        its location and to its log scale (without ``weight``); the cross term is zero for both
        families.
    """

    family: str = field(metadata={"static": True})
    loc: jnp.ndarray
    scale: jnp.ndarray
    value: jnp.ndarray
    weight: jnp.ndarray
    log_prob: jnp.ndarray
    loc_information: jnp.ndarray
    log_scale_information: jnp.ndarray


class LatentGaussian(NamedTuple):
    """A latent site with a Normal prior; arrays have the site's shape."""

    value: jnp.ndarray
    loc: jnp.ndarray
    scale: jnp.ndarray
    weight: jnp.ndarray


class SiteTerms(NamedTuple):
    """The numpyro model at one position, split into the pieces the GGN and RTO need.

    observed : observed site name -> ``ObservedSite``.
    latent_gaussian : latent site name -> ``LatentGaussian`` (sites with a Normal prior).
    latent_logdensity : log prior of every latent site plus the log Jacobian of its
        unconstraining transform (scalar): the latent part of ``Target.logdensity_fn``.
    """

    observed: dict
    latent_gaussian: dict
    latent_logdensity: jnp.ndarray


def _base_distribution(fn):
    """Strip the wrappers plates and ``to_event`` add; they do not change elementwise terms."""
    while isinstance(fn, dist.Independent | dist.ExpandedDistribution):
        fn = fn.base_dist
    return fn


def _observed_site(site) -> ObservedSite:
    fn, value = _base_distribution(site["fn"]), site["value"]
    shape = jnp.shape(value)
    weight = jnp.broadcast_to(1.0 if site["scale"] is None else site["scale"], shape)
    loc, scale = (jnp.broadcast_to(a, shape) for a in (fn.loc, fn.scale))
    if type(fn) is dist.Normal:
        family = "normal"
        loc_information = 1.0 / scale**2
        log_scale_information = jnp.full(shape, 2.0)
    elif type(fn) is dist.StudentT:
        # Fisher information of the location-scale Student-t: (nu+1)/((nu+3) s^2) for the
        # location and 2 nu/((nu+3) s^2) for the scale, i.e. 2 nu/(nu+3) for its logarithm.
        family, df = "student_t", jnp.broadcast_to(fn.df, shape)
        loc_information = (df + 1.0) / ((df + 3.0) * scale**2)
        log_scale_information = 2.0 * df / (df + 3.0)
    else:
        raise ValueError(
            f"observed site {site['name']!r} has distribution {type(site['fn']).__name__}; the "
            f"GGN, RTO and NTK diagnostic support observed sites of families "
            f"{LOCATION_SCALE_FAMILIES} only"
        )
    return ObservedSite(
        family=family, loc=loc, scale=scale, value=value, weight=weight,
        log_prob=weight * jnp.broadcast_to(fn.log_prob(value), shape),
        loc_information=loc_information, log_scale_information=log_scale_information,
    )


def location_scale_terms(model_fn, target: Target, flat, *, model_kwargs: dict | None = None
                         ) -> SiteTerms:
    """Trace ``model_fn`` at the constrained values of ``flat`` and collect its site terms.

    Parameters
    ----------
    model_fn : the numpyro model ``target`` was built from (``BPINN.model``).
    target : the flat target (for the site layout).
    flat : (dim,) unconstrained position.
    model_kwargs : keyword arguments of the model (e.g. ``{"physics_weight": w}``).

    Returns
    -------
    ``SiteTerms``. ``latent_logdensity + sum(site.log_prob)`` over observed sites equals
    ``target.training_logdensity_fn`` (tests check this), so the terms describe the very density
    every method samples.

    Examples
    --------
    >>> # terms = location_scale_terms(ctx.model.model, ctx.target, flat)  # doctest: +SKIP
    >>> # terms.observed["u_obs"].loc  # u at the sensors                   # doctest: +SKIP
    """
    unconstrained = target.unravel_fn(flat)
    log_jacobians = {}

    def constrain(site):
        name = site["name"]
        if site["type"] != "sample" or site["is_observed"] or name not in unconstrained:
            return None
        transform = biject_to(site["fn"].support)
        value = transform(unconstrained[name])
        log_det = transform.log_abs_det_jacobian(unconstrained[name], value)
        log_jacobians[name] = jnp.sum(sum_rightmost(
            log_det, jnp.ndim(log_det) - jnp.ndim(value) + len(site["fn"].event_shape)))
        return value

    tr = numpyro.handlers.trace(numpyro.handlers.substitute(model_fn, substitute_fn=constrain))
    model_trace = tr.get_trace(**(model_kwargs or {}))
    observed, latent_gaussian, latent_logdensity = {}, {}, jnp.zeros(())
    for name, site in model_trace.items():
        if site["type"] != "sample":
            continue
        if site["is_observed"]:
            observed[name] = _observed_site(site)
            continue
        if name not in log_jacobians:
            raise ValueError(f"latent site {name!r} is not part of the target's position")
        weight = 1.0 if site["scale"] is None else site["scale"]
        latent_logdensity = latent_logdensity + weight * (
            jnp.sum(site["fn"].log_prob(site["value"])) + log_jacobians[name])
        fn = _base_distribution(site["fn"])
        if type(fn) is dist.Normal:
            shape = jnp.shape(site["value"])
            latent_gaussian[name] = LatentGaussian(
                value=site["value"], loc=jnp.broadcast_to(fn.loc, shape),
                scale=jnp.broadcast_to(fn.scale, shape), weight=jnp.broadcast_to(weight, shape))
    return SiteTerms(observed, latent_gaussian, latent_logdensity)


def total_logdensity(terms: SiteTerms):
    """The log density the terms add up to (``Target.training_logdensity_fn`` at their point)."""
    return terms.latent_logdensity + sum(
        (jnp.sum(site.log_prob) for site in terms.observed.values()), start=jnp.zeros(()))


def ggn_precision(model_fn, target: Target, position, *, indices=None):
    """The GGN precision of the posterior at ``position`` over the coordinates ``indices``.

    ``sum_sites J_loc^T diag(w I_loc) J_loc + J_logscale^T diag(w I_logscale) J_logscale`` plus
    the exact Hessian of the negative latent log density, where J are Jacobians with respect to
    ``position[indices]`` (the other coordinates held fixed), I the per-element Fisher information
    of each observed site and w its ``numpyro.handlers.scale`` factor.

    Parameters
    ----------
    model_fn, target : the numpyro model and the flat target built from it.
    position : (dim,) where to take the curvature (the MAP).
    indices : coordinates of the Gaussian (numpy integer array); all when None.

    Returns
    -------
    (k, k) symmetric precision matrix, k = len(indices).

    Examples
    --------
    >>> # precision = jax.jit(lambda c: ggn_precision(ctx.model.model, ctx.target, c))(
    >>> #     ctx.best_map())                                               # doctest: +SKIP
    """
    indices = np.arange(target.dim) if indices is None else np.asarray(indices)

    def embed(sub):
        return position.at[indices].set(sub)

    def loc_and_log_scale(sub):
        terms = location_scale_terms(model_fn, target, embed(sub))
        return {n: (s.loc, jnp.log(s.scale)) for n, s in terms.observed.items()}, terms

    sub0 = position[indices]
    jacobians, terms = jax.jacfwd(loc_and_log_scale, has_aux=True)(sub0)
    precision = -jax.hessian(
        lambda sub: location_scale_terms(model_fn, target, embed(sub)).latent_logdensity)(sub0)
    for name, site in terms.observed.items():
        j_loc, j_log_scale = (j.reshape(-1, indices.size) for j in jacobians[name])
        w_loc = (site.weight * site.loc_information).reshape(-1)
        w_log_scale = (site.weight * site.log_scale_information).reshape(-1)
        precision = precision + j_loc.T @ (w_loc[:, None] * j_loc)
        precision = precision + j_log_scale.T @ (w_log_scale[:, None] * j_log_scale)
    return 0.5 * (precision + precision.T)


def cholesky_with_jitter(precision) -> tuple[jnp.ndarray, float]:
    """Lower Cholesky factor of ``precision``, adding diagonal jitter only if it fails.

    The jitter starts at 1e-10 of the mean diagonal and grows tenfold per failure; the GGN is
    positive semi-definite and the latent Hessian of the bpinn priors positive definite, so it is
    normally 0. Returns (factor, jitter added).
    """
    factor = jnp.linalg.cholesky(precision)
    jitter = 0.0
    scale = float(jnp.mean(jnp.abs(jnp.diag(precision))))
    for attempt in range(MAX_JITTER_TRIES):
        if bool(jnp.all(jnp.isfinite(factor))):
            return factor, jitter
        jitter = scale * 10.0 ** (attempt - 10)
        factor = jnp.linalg.cholesky(precision + jitter * jnp.eye(precision.shape[0]))
    if not bool(jnp.all(jnp.isfinite(factor))):
        raise RuntimeError(
            f"the GGN precision is not positive definite even with jitter {jitter:.3g}; the MAP "
            "is probably not a mode (check the MAP fit)")
    return factor, jitter


def gaussian_draws(rng_key, center, indices, cholesky, *, num_chains: int, num_samples: int):
    """``center`` with ``center[indices] + L^-T z`` (z ~ N(0, I)): draws with precision L L^T.

    Returns (num_chains, num_samples, dim).
    """
    k = cholesky.shape[0]
    z = jax.random.normal(rng_key, (k, num_chains * num_samples))
    offsets = solve_triangular(cholesky.T, z, lower=False).T
    draws = jnp.broadcast_to(center, (offsets.shape[0], center.size)).at[:, indices].add(offsets)
    return draws.reshape(num_chains, num_samples, center.size)


def linearised_predictor(model, weights_center):
    """``points -> (named values -> u there)`` with the network linearised at the Laplace
    centre: ``u(w*) + J (w - w*)``. The GGN Laplace is the posterior of this linearised model
    (Immer, Korzepa and Bauer 2021); pushing its weight draws through the nonlinear network
    instead gave predictions that missed the readings (heat case: R^2 = -2.7 of the readings'
    variance explained, against about 1 at the MAP)."""
    center = jnp.asarray(weights_center)

    def predictor(points):
        def u_at(values):
            u0, du = jax.jvp(lambda w: model.predict(w, points), (center,),
                             (values["weights"] - center,))
            return u0 + du

        return u_at

    return predictor


def laplace_draws(rng_key, ctx: MethodContext, indices) -> Draws:
    """Draws of the GGN Laplace approximation at ``ctx.best_map()`` over ``indices``."""
    target, inf = ctx.target, ctx.settings
    center = ctx.best_map()
    timing = {}
    t0 = time.perf_counter()
    precision_fn = jax.jit(lambda c: ggn_precision(ctx.model.model, target, c, indices=indices))
    precision_fn = precision_fn.lower(center).compile()
    num_draws = inf.num_chains * inf.num_samples
    logdensity_fn = jax.jit(jax.vmap(target.logdensity_fn)).lower(
        jax.ShapeDtypeStruct((num_draws, target.dim), center.dtype)).compile()
    timing["compile_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    precision = jax.block_until_ready(precision_fn(center))
    if not bool(jnp.all(jnp.isfinite(precision))):
        raise RuntimeError("the GGN precision at the MAP has non-finite entries")
    cholesky, jitter = cholesky_with_jitter(precision)
    eigenvalues = jnp.linalg.eigvalsh(precision)
    timing["curvature_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    position = gaussian_draws(rng_key, center, indices, cholesky, num_chains=inf.num_chains,
                              num_samples=inf.num_samples)
    # The posterior log density of each draw: shows how far the Gaussian reaches into
    # regions the posterior rules out.
    lp = logdensity_fn(position.reshape(-1, target.dim)).reshape(position.shape[:2])
    jax.block_until_ready(lp)
    timing["sampling_s"] = time.perf_counter() - t0
    info = {
        "num_gaussian_coordinates": int(np.size(indices)),
        "map_logdensity": float(jnp.max(jnp.where(jnp.isfinite(ctx.map_fit.logdensity),
                                                  ctx.map_fit.logdensity, -jnp.inf))),
        "log_det_precision": float(2.0 * jnp.sum(jnp.log(jnp.diag(cholesky)))),
        "ggn_min_eigenvalue": float(eigenvalues[0]),
        "ggn_max_eigenvalue": float(eigenvalues[-1]),
        "jitter": jitter,
    }
    predictor = None  # a model without a network (tests' toy models) predicts nothing
    if "weights" in target.site_slices:
        predictor = linearised_predictor(ctx.model, target.constrained(center)["weights"])
    return Draws(position, {"lp": lp}, info, timing, predictor=predictor)


def laplace(rng_key, ctx: MethodContext) -> Draws:
    """The ``laplace`` method: GGN Laplace approximation over the whole flat position."""
    return laplace_draws(rng_key, ctx, np.arange(ctx.target.dim))


# ---- last layer ------------------------------------------------------------------------------

def check_last_layer(model, settings) -> None:
    """Raise ``ValueError`` unless the model's network has a linear output layer we can locate.

    ``settings`` (the ``[inference]`` table) has nothing this method refuses; it is accepted for
    the ``Method.check`` interface.
    """
    del settings
    network = model.settings.network
    kind = getattr(network, "kind", None)
    if kind not in LINEAR_OUTPUT_NETWORKS:
        raise ValueError(
            f"[model] network = {kind!r}: laplace_last_layer needs a network whose output layer "
            f"is linear (one of {', '.join(LINEAR_OUTPUT_NETWORKS)}); use method = 'laplace'")
    layout = network.prior_scales(1.0, fan_in_scaled=False)
    num_params = int(ravel_pytree(layout)[0].size)
    if num_params != model.num_weights:
        raise ValueError(
            f"[model] network = {kind!r}: the flat 'weights' site has {model.num_weights} "
            f"entries but the network's layer sizes {network.layer_sizes} give {num_params}, so "
            "laplace_last_layer cannot locate the output layer")


def last_layer_indices(model, target: Target) -> np.ndarray:
    """Flat-position indices of the output layer's weights and bias.

    Built from the network's params layout (a list of (W, b) per layer) raveled exactly as
    ``bpinn.models.likelihood.build_model`` ravels the weight prior, so the index set follows the
    layer sizes instead of assuming where the last layer sits.
    """
    check_last_layer(model, None)
    layout = model.settings.network.prior_scales(1.0, fan_in_scaled=False)
    last = len(layout) - 1
    layer_of_entry, _ = ravel_pytree(
        [(jnp.full(w.shape, i), jnp.full(b.shape, i)) for i, (w, b) in enumerate(layout)])
    start, _ = target.site_slices["weights"]
    return start + np.flatnonzero(np.asarray(layer_of_entry) == last)


def last_layer_gaussian_indices(model, target: Target) -> np.ndarray:
    """The last-layer weight indices and every coordinate outside the ``weights`` site."""
    start, stop = target.site_slices["weights"]
    others = np.setdiff1d(np.arange(target.dim), np.arange(start, stop))
    return np.sort(np.concatenate([last_layer_indices(model, target), others]))


def laplace_last_layer(rng_key, ctx: MethodContext) -> Draws:
    """The ``laplace_last_layer`` method: hidden weights at the MAP, GGN Gaussian over the rest."""
    return laplace_draws(rng_key, ctx, last_layer_gaussian_indices(ctx.model, ctx.target))


_GGN_LIMITATION = (
    "the precision is the generalised Gauss-Newton matrix (the Fisher information of the "
    "likelihood terms, exact prior Hessian): it drops the residual-weighted second derivatives "
    "of the network and the PDE residual, so it is exact only for models linear in the "
    "parameters with fixed noise scales")

LAPLACE = Method(
    name="laplace",
    run=laplace,
    exact_mcmc=False,
    description="Gaussian at the best MAP with the GGN precision over all parameters.",
    implicit_prior="mode",
    limitations=(
        "one Gaussian at the best MAP in the unconstrained space: other modes of the network "
        "weights and any skewness (e.g. of noise scales and positive coefficients, Gaussian "
        "only on the log scale) are not represented",
        _GGN_LIMITATION,
        "weight directions the data do not constrain keep the prior's width, so predictions "
        "away from the data can be much wider than the posterior's",
    ),
)

LAPLACE_LAST_LAYER = Method(
    name="laplace_last_layer",
    run=laplace_last_layer,
    exact_mcmc=False,
    description="Hidden weights at the best MAP; GGN Gaussian over the output layer, "
                "coefficients and noise scales.",
    limitations=(
        "the hidden-layer weights are fixed at the MAP: their uncertainty is ignored, so the "
        "spread of u and of the coefficients is typically underestimated",
        "one Gaussian at the best MAP in the unconstrained space: other modes and skewness are "
        "not represented",
        _GGN_LIMITATION,
    ),
    check=check_last_layer,
    implicit_prior="mode",
)
