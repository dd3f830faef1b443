"""The prior on the coefficients that the physics terms imply, measured and removed.

Why: with readings ``y``, physics terms ``Phi`` (PDE residuals, stated conditions) and
network weights ``w``, the B-PINN posterior of the coefficients ``theta`` is::

    p(theta | y)  ∝  p(theta) Z(theta) E[p(y | w, theta)],
    Z(theta) = ∫ p(w) Phi(w, theta) dw,

the expectation over the weights' prior conditioned on the physics at ``theta``. ``Z`` is the
probability the weight prior gives to networks that satisfy the physics at ``theta``. It
depends on ``theta`` (a network reproduces slow change more easily than fast change, and no
change most easily), so it acts as a second prior on the coefficients that the config never
states. On the heat case its slope at the posterior is ``d log Z / d log D = -65``, which
moves the posterior of D about one posterior sd below the exact-forward-model posterior
(docs/sampling.md, section 7); it also makes the trivial solution (D near 0, the readings
explained as noise) a mode when readings are few.

The Fisher identity gives the slope without ``Z``::

    d log Z / d theta = E[d/dtheta log Phi(w, theta)],

the expectation over the weights' posterior given ``theta`` and the physics alone (no
readings). ``measure`` estimates it by NUTS over the weights with ``theta`` held at the MAP;
``Corrected`` subtracts ``slope . (theta - theta_map)`` from the log density, which removes
the implied prior to first order around the posterior. It cannot undo the implied prior far
from the MAP: a run whose MAP already sits at a trivial solution stays there.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bpinn.inference.laplace import location_scale_terms
from bpinn.inference.target import make_target


class ImplicitPrior(NamedTuple):
    """The implied prior's slope at one point of the unconstrained coefficient space.

    names : one label per coordinate (``"D"``, or ``"k[0]"`` for vector coefficients).
    indices : the coordinates in the full flat position.
    at : their unconstrained values where the slope was measured (the MAP).
    slope : d log Z / d theta there.
    mcse : its Monte Carlo standard error.
    """

    names: tuple[str, ...]
    indices: np.ndarray
    at: np.ndarray
    slope: np.ndarray
    mcse: np.ndarray

    def summary(self, draws=None) -> dict:
        """name -> {slope, mcse, at}; with (..., len(names)) unconstrained ``draws`` also
        ``shift_in_sds``: slope x posterior sd, how far (in posterior sds) the implied prior
        moves the posterior to first order."""
        out = {}
        for i, name in enumerate(self.names):
            row = {"slope": float(self.slope[i]), "mcse": float(self.mcse[i]),
                   "at_unconstrained": float(self.at[i])}
            if draws is not None:
                row["shift_in_sds"] = float(self.slope[i] * np.std(np.asarray(draws)[..., i]))
            out[name] = row
        return out


def resolve(mode: str, model, target) -> str:
    """The ``[inference] implicit_prior`` setting resolved for one ``nuts`` run: "corrected",
    "measured" or "ignored", with the reason after "ignored (auto: ...)" where "auto" chose.

    "auto" corrects wherever a coefficient is unknown. The measurement costs about a third of
    the run where the output layer is integrated out (heat case) and up to another run over
    every weight where it is sampled (nonlinear PDEs); it is worth it there too: uncorrected,
    the Fisher-KPP case's posterior settles on the trivial solution (docs/sampling.md, 7).
    """
    if mode != "auto":
        return mode
    if coefficient_coordinates(model, target)[0].size == 0:
        return "ignored (auto: no unknown coefficients)"
    return "corrected"


def coefficient_coordinates(model, target) -> tuple[np.ndarray, tuple[str, ...]]:
    """Flat indices and labels of the unknown coefficients' unconstrained coordinates."""
    indices, names = [], []
    for name in model.unknown_coefficients:
        start, stop = target.site_slices[name]
        indices.extend(range(start, stop))
        names.extend([name] if stop - start == 1 else
                     [f"{name}[{i}]" for i in range(stop - start)])
    return np.asarray(indices, dtype=int), tuple(names)


def coefficient_prior_slope(model, target, indices, at):
    """d/dtheta of the coefficients' own prior density (unconstrained, Jacobian included) at
    ``at``: the latent terms ``laplace.location_scale_terms`` collects; of those, only the
    coefficients' depend on theta."""
    def latent(theta):
        position = target.initial_position.at[indices].set(theta)
        return location_scale_terms(model.model, target, position).latent_logdensity

    return jax.grad(latent)(at)


@dataclass(frozen=True, eq=False)
class Pinned:
    """``base`` with the coordinates ``fixed`` held at ``values``: a density over the rest."""

    base: Any  # anything with ``dim`` and ``logdensity_fn`` (Target, OutputMarginal)
    fixed: np.ndarray
    values: jnp.ndarray

    @property
    def free(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.base.dim), self.fixed)

    @property
    def dim(self) -> int:
        return int(self.base.dim - self.fixed.size)

    def insert(self, x, values=None):
        values = self.values if values is None else values
        return (jnp.zeros(self.base.dim, dtype=x.dtype).at[self.free].set(x)
                .at[self.fixed].set(values))

    def logdensity_fn(self, x):
        return self.base.logdensity_fn(self.insert(x))


@dataclass(frozen=True, eq=False)
class Corrected:
    """``base`` with the implied prior removed to first order: ``log p - slope . (theta -
    at)`` for the coordinates ``indices`` of ``base``'s position."""

    base: Any
    indices: np.ndarray
    at: jnp.ndarray
    slope: jnp.ndarray

    @property
    def dim(self) -> int:
        return self.base.dim

    def correction(self, x):
        """The term added to ``base``'s log density (also for completed draws' ``lp``)."""
        return -((x[..., self.indices] - self.at) @ self.slope)

    def logdensity_fn(self, x):
        return self.base.logdensity_fn(x) + self.correction(x)


# |shift| in posterior sds above which the first-order correction is not trusted: it removed a
# 1.1-sd shift on the heat case (to +0.28 exact sds); at 2.05 sds (tradeoff_decay) the corrected
# posterior was still too narrow along the ridge, and at 5 and 10 sds (sensors_misplaced,
# few_observations) it stayed far from the exact one (docs/sampling.md, section 7); at 4 to 5 sds
# on Fisher-KPP it came within 0.8 reference sds, so the threshold warns, it does not predict.
STRONG_SHIFT_SDS = 2.0


def is_strong(shift_in_sds):
    """Whether a measured shift (a number or an array; NaN is never strong) draws the run's
    warning: the one rule the run's warning and the calibration's warned group share."""
    return np.abs(shift_in_sds) > STRONG_SHIFT_SDS

# The limitation every sampler of the uncorrected posterior states (summary.json, `bpinn methods`).
KEPT_LIMITATION = (
    "samples the posterior with the prior the physics terms imply on the coefficients left in "
    "(only 'nuts' removes it: [inference] implicit_prior): measured 1.3 to 1.9 exact sds low on "
    "the heat case and the trivial solution on the nonlinear Fisher-KPP case; to cross-check "
    "'nuts', run it with implicit_prior = 'ignored'")

# Length of the physics-only NUTS run that measures the slope (capped by the run's own
# num_warmup / num_samples): on the heat case 4 chains x 300 draws give a slope whose Monte
# Carlo error moves the posterior by under 0.1 posterior sd, though repeated measurements
# scatter about twice as much (docs/sampling.md, section 7).
MEASURE_WARMUP = 200
MEASURE_SAMPLES = 300


def measure(rng_key, model, target, center, settings, *, marginal=None, damping,
            progress: bool = False) -> ImplicitPrior:
    """Estimate the implied prior's slope at the MAP ``center`` (full flat position).

    Samples the weights (and the scales, from their priors) given the physics alone, with the
    coefficients held at ``center``'s values, by the same preconditioned NUTS as the ``nuts``
    method (``settings``: the ``[inference]`` table; ``num_chains`` chains of at most
    ``MEASURE_WARMUP`` + ``MEASURE_SAMPLES`` steps). With ``marginal`` (an ``OutputMarginal``
    of ``target``) the output layer is integrated out there too. ``damping`` is the
    full-position weight damping.
    """
    from bpinn.inference.nuts import run_nuts  # nuts imports this module

    indices, names = coefficient_coordinates(model, target)
    if indices.size == 0:
        raise ValueError("the model has no unknown coefficients, so there is no implied prior "
                         "on them to measure")
    physics_fn = functools.partial(model.model, observe_data=False)
    physics = make_target(jax.random.fold_in(rng_key, 0), physics_fn)
    if physics.site_slices != target.site_slices:
        raise RuntimeError("the physics-only model changed the flat layout; this is a bug")
    keep, local = np.arange(target.dim), indices  # ``local``: the coefficients in ``physics``
    if marginal is not None:
        physics = dataclasses.replace(marginal, model_fn=physics_fn, target=physics)
        keep, local = marginal.kept, marginal.reduced_indices(indices)
    center, damping = jnp.asarray(center)[keep], jnp.asarray(damping)[keep]
    at = center[local]
    pinned = Pinned(physics, local, at)
    starts = jnp.broadcast_to(center[pinned.free], (settings.num_chains, pinned.dim))
    result, _ = run_nuts(
        jax.random.fold_in(rng_key, 1), pinned, starts,
        num_warmup=min(settings.num_warmup, MEASURE_WARMUP),
        num_samples=min(settings.num_samples, MEASURE_SAMPLES),
        max_tree_depth=settings.max_tree_depth, target_acceptance=settings.target_acceptance,
        damping=damping[pinned.free], curvature_floor=settings.curvature_floor,
        progress=progress)
    # d/dtheta log Phi = d/dtheta (log density) - d/dtheta (the coefficients' own prior), the
    # latter the same for every draw
    prior_slope = coefficient_prior_slope(model, target, indices, at)

    def physics_score(x):
        return jax.grad(lambda theta: physics.logdensity_fn(pinned.insert(x, theta)))(at) \
            - prior_slope

    draws = result.trace.position  # (chain, draw, free)
    scores = jax.jit(lambda d: jax.lax.map(physics_score, d, batch_size=64))(
        draws.reshape(-1, pinned.dim))
    scores = np.asarray(scores).reshape(*draws.shape[:2], -1)
    return ImplicitPrior(names, indices, np.asarray(at), scores.mean(axis=(0, 1)),
                         _mcse_of_mean(scores))


def _mcse_of_mean(values: np.ndarray) -> np.ndarray:
    """(chain, draw, k) -> (k,) Monte Carlo standard errors of the means (ArviZ)."""
    from arviz_stats.base import array_stats

    return np.asarray([array_stats.mcse(values[..., i], method="mean", chain_axis=0,
                                        draw_axis=1) for i in range(values.shape[-1])])


def warnings(info: dict | None) -> list[str]:
    """Run warnings from ``method_info.implicit_prior``: an implied prior too strong for its
    first-order correction, or a measured one left in place."""
    if not info or not info.get("coefficients"):
        return []
    out = []
    for name, row in info["coefficients"].items():
        shift = row.get("shift_in_sds")
        if shift is None:
            continue
        if is_strong(shift):
            out.append(
                f"the prior the physics terms imply moves {name} by {shift:+.1f} posterior sds "
                f"at the MAP, more than its first-order correction can be trusted to remove "
                f"({STRONG_SHIFT_SDS:g}); the MAP itself is pulled by it, so {name} is decided "
                "by the network and the physics terms as much as by the readings (more or "
                "better-placed readings, or the reference method, would tell)")
        elif info["mode"] == "measured" and abs(shift) > 0.5:
            out.append(f"the prior the physics terms imply moves {name} by {shift:+.2f} "
                       "posterior sds and was not removed; set implicit_prior = 'corrected'")
    return out
