"""The network's output layer integrated out of the posterior analytically.

Why: for a PDE linear in u, with Gaussian readings, residual and condition terms, every
observed location is affine in the output layer's weights and bias ``w`` once the hidden
weights, coefficients and noise scales are fixed (``u = lift + distance * (offset + scale *
(h(z) . w))``, and a linear operator keeps that form). With the Gaussian weight prior, ``w``
then has a Gaussian conditional posterior and the marginal density of everything else is
available in closed form. The sampler no longer has to move the output layer, whose
coupling to the hidden units (a unit with a small output weight leaves its input weights free)
is the worst-conditioned part of the weight posterior.

For a position ``r`` of everything except ``w`` (coefficients, scales, hidden weights), with
``f(w) = log p(r, w, data)`` exactly quadratic in ``w``::

    f(w) = f(0) + g.w - w.P.w / 2,   P = S^-1 + sum_sites A^T diag(weight / s^2) A,
    log p(r, data) = f(0) + g.P^-1.g / 2 - log det(P) / 2 + (m / 2) log(2 pi),
    w | r, data ~ N(P^-1 g, P^-1),

where ``A`` is the Jacobian of an observed site's location with respect to ``w`` (one forward-
mode pass with m tangents), ``s`` its scale and ``S`` the prior covariance of ``w``. Draws of
``r`` are completed by one exact draw of ``w`` each, so results keep the full layout.

``check_affine`` verifies the premise numerically (nonlinear PDEs such as Burgers fail it);
Student-t readings are refused because they are not Gaussian in ``w``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve, solve_triangular

from bpinn.inference.laplace import last_layer_indices, location_scale_terms, total_logdensity
from bpinn.inference.target import Target

# Relative size of loc(a) + loc(b) - loc(a + b) - loc(0) allowed by ``check_affine``: round-off
# of float64 through the PDE's derivatives, far below any real nonlinearity.
AFFINE_TOLERANCE = 1e-7


class ConditionalGaussian(NamedTuple):
    """``w | r, data`` at one position ``r``: ``log p(r, w) = constant + g.w - w.P.w / 2``."""

    log_marginal: jnp.ndarray  # log p(r, data), up to the target's constant
    cholesky: jnp.ndarray  # lower factor L of the precision P = L L^T
    mean: jnp.ndarray  # P^-1 g


@dataclass(frozen=True, eq=False)
class OutputMarginal:
    """The posterior with the output layer integrated out.

    Attributes
    ----------
    model_fn : the numpyro model the target was built from (``BPINN.model``).
    target : the full flat target.
    output : indices of the output layer's weights and bias in the flat position.
    kept : every other index, in order: the reduced position the sampler moves.
    """

    model_fn: Callable
    target: Target
    output: np.ndarray
    kept: np.ndarray

    @classmethod
    def build(cls, model, target: Target) -> OutputMarginal:
        """For a ``BPINN`` and its target. ``ValueError`` when the model cannot have its
        output layer integrated out (see ``unsupported_reason``)."""
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(f"the output layer cannot be integrated out: {reason}")
        # Flat order: the output layer's weights, then its bias (as ``BPINN.u_fn`` splits it).
        output = last_layer_indices(model, target)
        kept = np.setdiff1d(np.arange(target.dim), output)
        return cls(model.model, target, output, kept)

    @property
    def dim(self) -> int:
        """Size of the reduced position."""
        return int(self.kept.size)

    def reduced_indices(self, indices) -> np.ndarray:
        """Where the full flat coordinates ``indices`` (none of them output weights) sit in
        the reduced position."""
        return np.searchsorted(self.kept, indices)

    def reduce(self, position):
        """The reduced position(s) of full flat position(s) (last axis)."""
        return position[..., self.kept]

    def embed(self, reduced, w):
        full = jnp.zeros(self.target.dim, dtype=reduced.dtype)
        return full.at[self.kept].set(reduced).at[self.output].set(w)

    def terms(self, reduced, w):
        """The model's site terms at ``reduced`` with output layer ``w``.

        ``w`` enters through the model's ``output_layer`` keyword, not the flat position, so
        forward-mode derivatives with respect to it stay in the last layer (through the flat
        position they would run through every layer: 20 times the cost here). The ``weights``
        site holds zeros in the output layer's place, so its prior term is the prior at w = 0.
        """
        return location_scale_terms(self.model_fn, self.target,
                                    self.embed(reduced, jnp.zeros_like(w)),
                                    model_kwargs={"output_layer": w})

    def locations(self, reduced, w) -> dict:
        """Observed site name -> (location, scale) at ``(reduced, w)`` (for ``check_affine``)."""
        return {name: (site.loc, site.scale)
                for name, site in self.terms(reduced, w).observed.items()}

    def conditional(self, reduced) -> ConditionalGaussian:
        """The Gaussian conditional of the output layer and the marginal log density."""
        m = self.output.size
        w0 = jnp.zeros(m, dtype=reduced.dtype)

        def locs(w):
            terms = self.terms(reduced, w)
            return {name: site.loc for name, site in terms.observed.items()}, terms

        jacobians, terms = jax.jacfwd(locs, has_aux=True)(w0)
        prior = terms.latent_gaussian["weights"]
        weights_start = self.target.site_slices["weights"][0]
        local = self.output - weights_start
        prior_precision = prior.weight[local] / prior.scale[local] ** 2
        precision = jnp.diag(prior_precision)
        gradient = prior_precision * prior.loc[local]  # d/dw of the prior at w = 0
        for name, site in terms.observed.items():
            a = jacobians[name].reshape(-1, m)
            info = (site.weight / site.scale**2).reshape(-1)
            precision = precision + a.T @ (info[:, None] * a)
            gradient = gradient + a.T @ (info * (site.value - site.loc).reshape(-1))
        cholesky = jnp.linalg.cholesky(0.5 * (precision + precision.T))
        mean = cho_solve((cholesky, True), gradient)
        log_marginal = (total_logdensity(terms) + 0.5 * gradient @ mean
                        - jnp.sum(jnp.log(jnp.diag(cholesky))) + 0.5 * m * jnp.log(2 * jnp.pi))
        return ConditionalGaussian(log_marginal, cholesky, mean)

    def logdensity_fn(self, reduced):
        """log p(reduced, data) with the output layer integrated out (the sampler's target)."""
        return self.conditional(reduced).log_marginal

    def complete(self, rng_key, reduced):
        """One position (``(dim_reduced,)``) completed by an exact draw of the output layer
        from its conditional: (full flat position, its joint log density).

        The joint density needs no second pass through the model:
        ``log p(r, w) = log p(r) + log N(w; mean, P^-1)``, and with ``w = mean + L^-T z`` the
        Gaussian term is ``-z.z / 2 + sum log diag L - (m / 2) log(2 pi)``.
        """
        cond = self.conditional(reduced)
        z = jax.random.normal(rng_key, cond.mean.shape, dtype=reduced.dtype)
        w = cond.mean + solve_triangular(cond.cholesky.T, z, lower=False)
        log_conditional = (-0.5 * z @ z + jnp.sum(jnp.log(jnp.diag(cond.cholesky)))
                           - 0.5 * z.size * jnp.log(2 * jnp.pi))
        return self.embed(reduced, w), cond.log_marginal + log_conditional


def complete_draws(marginal: OutputMarginal, rng_key, reduced):
    """(chain, draw, dim_reduced) draws completed by ``OutputMarginal.complete``: the full
    positions (chain, draw, dim) and their joint log densities (chain, draw). ``lax.map`` over
    the draws bounds the memory."""
    shape = reduced.shape[:-1]
    flat = reduced.reshape(-1, reduced.shape[-1])
    keys = jax.random.split(rng_key, flat.shape[0])
    full, logdensity = jax.jit(lambda k, r: jax.lax.map(lambda a: marginal.complete(*a), (k, r),
                                                        batch_size=64))(keys, flat)
    return full.reshape(*shape, -1), logdensity.reshape(shape)


def unsupported_reason(model) -> str:
    """Why ``model`` cannot have its output layer integrated out, or "" when it can (as far
    as its settings show; ``check_affine`` tests the PDE itself)."""
    if model.problem.pde.is_system:
        return (f"a system (outputs {list(model.problem.pde.outputs)}) has one output layer "
                "column per output; integrating them out is built for one unknown function")
    if model.problem.likelihood != "normal":
        return (f"[data] likelihood = {model.problem.likelihood!r}: readings must be Gaussian "
                "for the output layer to have a Gaussian conditional")
    return ""


def output_marginal(model, target: Target, mode: str, rng_key) -> tuple[OutputMarginal | None,
                                                                      str]:
    """The ``[inference] output_layer`` setting resolved for ``model``.

    Returns (marginal or None, what was done and why, for the run's info). "marginal" raises
    ``ValueError`` when the model does not allow it; "auto" falls back to sampling the layer.
    """
    if mode == "sampled":
        return None, "sampled"
    try:
        marginal = OutputMarginal.build(model, target)
        # Random hidden weights: with all-zero weights the features vanish and any model passes.
        position = target.from_constrained(model.initial_values(rng_key))
        check_affine(marginal, jax.random.fold_in(rng_key, 1), marginal.reduce(position))
    except ValueError as err:
        if mode == "marginal":
            raise
        return None, f"sampled (auto: {err})"
    return marginal, "marginal"


def check_affine(marginal: OutputMarginal, rng_key, reduced) -> None:
    """Raise ``ValueError`` unless every observed location is affine in the output layer and
    every observed scale independent of it, at ``reduced`` (tested with two random layers).

    This is the premise of the marginalisation; a PDE nonlinear in u (Burgers' u u_x, a
    reaction term u(1 - u)) fails it.
    """
    a_key, b_key = jax.random.split(rng_key)
    m = marginal.output.size
    a = jax.random.normal(a_key, (m,), dtype=reduced.dtype)
    b = jax.random.normal(b_key, (m,), dtype=reduced.dtype)
    at = jax.jit(marginal.locations)
    zero, ya, yb, yab = (at(reduced, w) for w in (jnp.zeros_like(a), a, b, a + b))
    for name in zero:
        loc0, scale0 = zero[name]
        defect = ya[name][0] + yb[name][0] - yab[name][0] - loc0
        size = jnp.max(jnp.abs(jnp.stack([ya[name][0], yb[name][0], yab[name][0], loc0])))
        if not float(jnp.max(jnp.abs(defect))) <= AFFINE_TOLERANCE * max(float(size), 1.0):
            raise ValueError(
                f"the output layer cannot be integrated out: the observed term {name!r} is not "
                "affine in the network output (the PDE or a condition is nonlinear in u); "
                "set [inference] output_layer = \"sampled\"")
        if not bool(jnp.allclose(ya[name][1], scale0) and jnp.allclose(yab[name][1], scale0)):
            raise ValueError(
                f"the output layer cannot be integrated out: the scale of {name!r} depends on "
                "the network output; set [inference] output_layer = \"sampled\"")
