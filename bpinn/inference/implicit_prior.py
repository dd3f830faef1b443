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
readings). ``measure`` estimates it by NUTS over the weights with ``theta`` held fixed: at the
MAP, and at a few values on either side of it along each coefficient's axis (the profile), all
in one vectorised run. ``Corrected`` subtracts the integral of the slope, interpolated
linearly between those values, from the log density (the MAP alone: a straight line, the
first-order correction). The slope is far from constant: on the three-reading heat case it
grows from -33 at D = 0.01 to -148 at D = 0.15 per unit of log D, so a slope measured only at a
MAP that the implied prior has already pulled low under-corrects where the exact posterior
lies. Beyond the profile the correction stops where continuing it would raise the density
outwards, so a posterior that reaches the profile's edge is held back there (the run warns).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bpinn.inference.laplace import location_scale_terms
from bpinn.inference.marginal import output_marginal
from bpinn.inference.methods import REMOVING_METHODS
from bpinn.inference.target import make_target


class ImplicitPrior(NamedTuple):
    """The implied prior's slope at the MAP and along each coefficient's axis.

    names : one label per coordinate (``"D"``, or ``"k[0]"`` for vector coefficients).
    indices : the coordinates in the full flat position.
    at : their unconstrained values at the MAP.
    slope : d log Z / d theta there.
    mcse : its Monte Carlo standard error.
    points : (P, k) unconstrained values where the slope was measured; row 0 is ``at``, the
        others differ from it in one coordinate only, ``axis[p]``.
    axis : (P,) that coordinate (-1 for row 0).
    point_slopes, point_mcse : (P, k) slope and its Monte Carlo error at each point.
    """

    names: tuple[str, ...]
    indices: np.ndarray
    at: np.ndarray
    slope: np.ndarray
    mcse: np.ndarray
    points: np.ndarray
    axis: np.ndarray
    point_slopes: np.ndarray
    point_mcse: np.ndarray

    def along(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinate ``i``'s profile, sorted: its values, slopes and their errors."""
        rows = np.flatnonzero((self.axis == i) | (self.axis == -1))
        order = np.argsort(self.points[rows, i])
        rows = rows[order]
        return self.points[rows, i], self.point_slopes[rows, i], self.point_mcse[rows, i]

    def summary(self, draws=None) -> dict:
        """name -> {slope, mcse, at}; with (..., len(names)) unconstrained ``draws`` also
        ``shift_in_sds``: slope x posterior sd, how far (in posterior sds) the implied prior
        moves the posterior to first order."""
        out = {}
        for i, name in enumerate(self.names):
            row = {"slope": float(self.slope[i]), "mcse": float(self.mcse[i]),
                   "at_unconstrained": float(self.at[i])}
            values, slopes, errors = self.along(i)
            if values.size > 1:
                row["profile"] = {"at_unconstrained": values.tolist(), "slope": slopes.tolist(),
                                  "mcse": errors.tolist()}
            if draws is not None:
                theta = np.asarray(draws)[..., i]
                row["shift_in_sds"] = float(self.slope[i] * np.std(theta))
                if values.size > 2:
                    row["profile"]["posterior_near_edge"] = float(np.mean(
                        (theta < values[1]) | (theta > values[-2])))
            out[name] = row
        return out


class Removal(NamedTuple):
    """What one run does about the implied prior: ``mode`` as ``resolve`` states it, the
    measurement (None where nothing was measured) and the seconds it took."""

    mode: str
    implied: ImplicitPrior | None = None
    seconds: float = 0.0

    def applied_to(self, target, indices=None):
        """``target`` with the implied prior removed when the mode is "corrected" (``indices``:
        the coefficients' coordinates in ``target``, by default those measured), else as is."""
        if self.mode != "corrected":
            return target
        indices = self.implied.indices if indices is None else indices
        return Corrected.from_measurement(target, indices, self.implied)

    def info(self, coefficient_draws=None) -> dict:
        """``method_info["implicit_prior"]``: the mode and, where measured, the measurement with
        the shift it causes given the draws of the coefficients' unconstrained coordinates."""
        out = {"mode": self.mode}
        if self.implied is not None:
            out["coefficients"] = self.implied.summary(coefficient_draws)
        return out


def for_method(rng_key, ctx, *, marginal="from settings", unsupported: str | None = None,
               sampler: str = "nuts") -> Removal:
    """Resolve ``ctx.settings.implicit_prior`` for a method and measure where it says so.

    ``marginal``: the method's ``OutputMarginal`` (or None), to measure with the output layer
    integrated out; by default the one ``[inference] output_layer`` allows, if any.
    ``unsupported``: why this configuration of the method cannot use a corrected target ("auto"
    then ignores the implied prior with that reason; ``check_supported`` refuses an explicit
    setting before that). ``sampler``: "nuts", or "chees" for the chees method (see
    ``measure``).
    """
    mode = resolve(ctx.settings.implicit_prior, ctx.model, ctx.target)
    if unsupported is not None and mode == "corrected" and ctx.settings.implicit_prior == "auto":
        mode = f"ignored (auto: {unsupported})"
    if mode not in ("measured", "corrected"):
        return Removal(mode)
    if isinstance(marginal, str):
        marginal, _ = output_marginal(ctx.model, ctx.target, ctx.settings.output_layer,
                                      jax.random.fold_in(rng_key, 18))
    t0 = time.perf_counter()
    # fold_in, not a split: runs that ignore the implied prior keep their keys
    implied = measure(jax.random.fold_in(rng_key, 17), ctx.model, ctx.target, ctx.best_map(),
                      ctx.settings, marginal=marginal, damping=ctx.weight_damping(),
                      progress=ctx.progress, sampler=sampler)
    return Removal(mode, implied, time.perf_counter() - t0)


def record(removal: Removal, info: dict, timing: dict, position, indices=None) -> None:
    """Put ``removal`` into a method's ``info["implicit_prior"]`` (with the shift the
    measurement causes, given the draws' ``position[..., indices]``; by default the measured
    coordinates) and the measurement's seconds into ``timing["implicit_prior_s"]``."""
    implied = removal.implied
    if implied is not None:
        indices = implied.indices if indices is None else indices
        timing["implicit_prior_s"] = removal.seconds
    info["implicit_prior"] = removal.info(
        None if implied is None else np.asarray(position)[..., indices])


def check_supported(settings, method_name: str, unsupported: str | None, model=None) -> None:
    """Refuse an explicit ``implicit_prior = "measured" | "corrected"`` for a method (or a
    configuration of it) that samples the posterior with the implied prior left in, or for a
    ``model`` with no unknown coefficient to imply a prior on."""
    explicit = settings.implicit_prior in ("measured", "corrected")
    if explicit and model is not None and not model.unknown_coefficients:
        raise ValueError(f"[inference] implicit_prior = {settings.implicit_prior!r}: the model "
                         "has no unknown coefficients, so there is no implied prior on them; "
                         "use 'auto' or 'ignored'")
    if explicit and unsupported is not None:
        raise ValueError(f"[inference] implicit_prior = {settings.implicit_prior!r}: method "
                         f"{method_name!r} cannot use it ({unsupported}); use 'auto' or "
                         f"'ignored', or a method that removes it ({', '.join(REMOVING_METHODS)})")


def resolve(mode: str, model, target) -> str:
    """The ``[inference] implicit_prior`` setting resolved for one run: "corrected",
    "measured" or "ignored", with the reason after "ignored (auto: ...)" where "auto" chose.

    "auto" corrects wherever a coefficient is unknown. The measurement at the MAP alone cost
    about a third of the run where the output layer is integrated out (heat case) and up to
    another run over every weight where it is sampled (nonlinear PDEs); the profile adds one
    chain per point to it. It is worth it there too: uncorrected, the Fisher-KPP case's
    posterior settles on the trivial solution (docs/sampling.md, 7).
    """
    if mode != "auto":
        return mode
    if coefficient_coordinates(model, target)[0].size == 0:
        fields = getattr(model, "field_coefficients", ())
        return "ignored (auto: no unknown coefficients" + (
            f"; the coefficient field(s) {', '.join(fields)} are not covered)" if fields else ")")
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


def slope_knots(implied: ImplicitPrior) -> tuple[np.ndarray, np.ndarray]:
    """Per coordinate, the profile's values and slopes as (k, n) knot arrays, sorted, with
    repeated values merged; a coordinate with fewer points repeats its last knot."""
    profiles = []
    for i in range(len(implied.names)):
        values, slopes, _ = implied.along(i)
        # a knot whose chain failed (non-finite slope) is left out; the MAP's is always kept
        keep = np.isfinite(slopes) | (values == implied.at[i])
        values, slopes = values[keep], slopes[keep]
        values, first = np.unique(values, return_index=True)
        profiles.append((values, slopes[first]))
    n = max(v.size for v, _ in profiles)
    pad = [(np.pad(v, (0, n - v.size), mode="edge"), np.pad(g, (0, n - g.size), mode="edge"))
           for v, g in profiles]
    return np.stack([v for v, _ in pad]), np.stack([g for _, g in pad])


@dataclass(frozen=True, eq=False)
class Corrected:
    """``base`` with the implied prior removed: ``log p - log Z(theta)`` for the coordinates
    ``indices`` of ``base``'s position, ``log Z`` the integral of the slope interpolated
    linearly between the profile's knots (``knots``, ``slopes``: (k, n)), so ``log Z`` is
    piecewise quadratic and zero at ``at``; beyond the knots see ``_integral``. With one knot
    per coordinate (the MAP) it is the first-order correction ``slope . (theta - at)``.

    Linear interpolation, not a fitted curve: the slope steepens fast in the prior's tails (on
    the three-reading heat case from -114 at D = 0.09 to -1600 at D = 0.39, with an MCSE of
    500 there), and a global fit lets such a point bend the slope where the posterior lies.
    """

    base: Any
    indices: np.ndarray
    at: jnp.ndarray
    knots: jnp.ndarray
    slopes: jnp.ndarray

    def __post_init__(self):
        # Derived once here, not on every log-density evaluation inside the sampler: the
        # slope's integral from the first knot up to each knot, and log Z's value at ``at``.
        g, s = jnp.asarray(self.knots), jnp.asarray(self.slopes)
        object.__setattr__(self, "_cumulative", jnp.concatenate(
            [jnp.zeros_like(g[:, :1]),
             jnp.cumsum(jnp.diff(g, axis=-1) * (s[:, 1:] + s[:, :-1]) / 2, -1)], -1))
        object.__setattr__(self, "_at_integral", self._integral(jnp.asarray(self.at)))

    @classmethod
    def from_measurement(cls, base, indices, implied: ImplicitPrior) -> Corrected:
        knots, slopes = slope_knots(implied)
        return cls(base, indices, jnp.asarray(implied.at), jnp.asarray(knots),
                   jnp.asarray(slopes))

    @property
    def dim(self) -> int:
        return self.base.dim

    def __getattr__(self, name):
        # everything else a method asks of a target (site_slices, constrained, ...) is the
        # base's: only the log density differs
        if name.startswith("_") or name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def log_z(self, theta):
        """The implied prior's log density at unconstrained ``theta`` (``(..., k)``), relative
        to ``at``, summed over the coordinates."""
        return jnp.sum(self._integral(theta) - self._at_integral, -1)

    def _integral(self, theta):
        """Per coordinate, the slope's integral from the first knot to ``theta``."""
        g, s, cumulative = self.knots, self.slopes, self._cumulative
        # the knot interval each theta falls in (the outer ones extended beyond the ends)
        k = jax.vmap(lambda gi, ti: jnp.clip(jnp.searchsorted(gi, ti) - 1, 0,
                                             max(gi.size - 2, 0)),
                     in_axes=(0, -1), out_axes=-1)(g, theta)
        rows = jnp.arange(g.shape[0])
        k_next = jnp.minimum(k + 1, g.shape[1] - 1)
        left, base, slope = g[rows, k], cumulative[rows, k], s[rows, k]
        right, next_slope = g[rows, k_next], s[rows, k_next]
        u = theta - left
        span = right - left
        inside = jnp.clip(u, 0.0, span)
        # slope rises linearly across the interval; held at the end values outside the knots
        change = jnp.where(span > 0, (next_slope - slope) / jnp.where(span > 0, span, 1.0), 0.0)
        # Beyond the knots the slope is held only where that lowers the corrected density
        # outwards (a rising log Z below the first knot, a falling one above the last): an
        # extrapolated correction must never pull the sampler into the tails.
        below = jnp.minimum(theta - g[:, 0], 0.0) * (k == 0)
        above = jnp.maximum(u - span, 0.0)
        # (One knot, the MAP alone: a straight line either way, the first-order correction.)
        profiled = g[:, -1] > g[:, 0]
        low_end = jnp.where(profiled, jnp.minimum(s[:, 0], 0.0), s[:, 0])
        high_end = jnp.where(profiled, jnp.maximum(s[:, -1], 0.0), s[:, -1])
        return (base + slope * inside + 0.5 * change * inside**2
                + low_end * below + high_end * above)

    def correction(self, x):
        """The term added to ``base``'s log density (also for completed draws' ``lp``)."""
        return -self.log_z(x[..., self.indices])

    def logdensity_fn(self, x):
        return self.base.logdensity_fn(x) + self.correction(x)


# |shift| in posterior sds above which the correction is not trusted (measured with the
# first-order correction, the slope at the MAP alone, before the profile): it removed a
# 1.1-sd shift on the heat case (to +0.28 exact sds); at 2.05 sds (tradeoff_decay) the corrected
# posterior was still too narrow along the ridge, and at 5 and 10 sds (sensors_misplaced,
# few_observations) it stayed far from the exact one (docs/sampling.md, section 7); at 4 to 5 sds
# on Fisher-KPP it came within 0.8 reference sds, so the threshold warns, it does not predict.
STRONG_SHIFT_SDS = 2.0


# Share of a coefficient's draws in the outermost steps of its profile (beyond the second knot
# from either end) above which the run warns: 5%, one tail of a 90% interval.
PROFILE_EDGE_WARNING = 0.05


def is_strong(shift_in_sds):
    """Whether a measured shift (a number or an array; NaN is never strong) draws the run's
    warning: the one rule the run's warning and the calibration's warned group share."""
    return np.abs(shift_in_sds) > STRONG_SHIFT_SDS

# Length of the physics-only NUTS run that measures the slope (capped by the run's own
# num_warmup / num_samples): on the heat case 4 chains x 300 draws give a slope whose Monte
# Carlo error moves the posterior by under 0.1 posterior sd, though repeated measurements
# scatter about twice as much (docs/sampling.md, section 7).
MEASURE_WARMUP = 200
MEASURE_SAMPLES = 300


# Profiles are measured along each coordinate's axis (cross terms are not): their cost grows
# with the number of coordinates, so coefficient fields beyond this size get the first-order
# correction at the MAP only.
MAX_PROFILE_COORDINATES = 3


def profile_points(model, names_sizes, at, num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The points the slope is measured at: the MAP ``at`` (row 0), then for each coordinate
    ``num_points`` values around it, the others held at the MAP: ``at + k h`` for ``k`` in
    ``-num_points // 2 .. -1`` and ``1 .. (num_points + 1) // 2``, with the step ``h`` a
    quarter of the coordinate's central 80% prior range (unconstrained). Returns ``(points,
    axis)``; ``axis[p]`` is the coordinate row ``p`` moves (-1: the MAP).

    Centred on the MAP, not on the prior, because the correction matters where the posterior
    is, and a run whose MAP sits in the prior's tail needs knots on both sides of it; spaced
    by the prior, because a weak-data posterior can lie a prior sd or more from a MAP that the
    implied prior has pulled (the three-reading heat case: 1 unit of log D, prior sd 1).
    """
    from numpyro.distributions.transforms import biject_to

    at = np.asarray(at, dtype=float)
    points, axis = [at], [-1]
    if num_points == 0 or at.size > MAX_PROFILE_COORDINATES:
        return np.stack(points), np.asarray(axis)
    steps = np.concatenate([np.arange(-(num_points // 2), 0),
                            np.arange(1, (num_points + 1) // 2 + 1)])
    coordinate = 0
    for name, size in names_sizes:
        prior = model.problem.coefficients[name].distribution()
        draws = prior.sample(jax.random.key(0), (4000,))
        unconstrained = np.asarray(biject_to(prior.support).inv(draws)).reshape(4000, -1)
        low, high = np.quantile(unconstrained, [0.1, 0.9], axis=0)
        for j in range(size):
            h = (high[min(j, high.size - 1)] - low[min(j, low.size - 1)]) / 4
            for k in steps:
                points.append(at.copy())
                points[-1][coordinate] += k * h
                axis.append(coordinate)
            coordinate += 1
    return np.stack(points), np.asarray(axis)


def measure(rng_key, model, target, center, settings, *, marginal=None, damping,
            num_points: int | None = None, progress: bool = False,
            sampler: str = "nuts") -> ImplicitPrior:
    """Estimate the implied prior's slope at the MAP ``center`` (full flat position) and along
    each coefficient's axis (``profile_points``; ``num_points`` per coordinate, default
    ``settings.implicit_prior_points``).

    Samples the weights (and the scales, from their priors) given the physics alone, with the
    coefficients held at each point, by the same preconditioned NUTS as the ``nuts`` method
    (``settings``: the ``[inference]`` table), in one vectorised run: ``num_chains`` chains at
    the MAP and one at each other point, each of at most ``MEASURE_WARMUP`` +
    ``MEASURE_SAMPLES`` steps (``sampler = "chees"``, at the MAP alone: by ChEES-HMC). With
    ``marginal`` (an ``OutputMarginal`` of ``target``) the output layer is integrated out there
    too. ``damping`` is the
    full-position weight damping.
    """
    from bpinn.inference.nuts import run_nuts  # nuts imports this module

    indices, names = coefficient_coordinates(model, target)
    if indices.size == 0:
        raise ValueError("the model has no unknown coefficients, so there is no implied prior "
                         "on them to measure")
    num_points = settings.implicit_prior_points if num_points is None else num_points
    physics_fn = functools.partial(model.model, observe_data=False)
    physics = make_target(jax.random.fold_in(rng_key, 0), physics_fn)
    if physics.site_slices != target.site_slices:
        raise RuntimeError("the physics-only model changed the flat layout; this is a bug")
    keep, local = np.arange(target.dim), indices  # ``local``: the coefficients in ``physics``
    if marginal is not None:
        physics = dataclasses.replace(marginal, model_fn=physics_fn, target=physics)
        keep, local = marginal.kept, marginal.reduced_indices(indices)
    center, damping = jnp.asarray(center)[keep], jnp.asarray(damping)[keep]
    sizes = [(n, target.site_slices[n][1] - target.site_slices[n][0])
             for n in model.unknown_coefficients]
    points, axis = profile_points(model, sizes, np.asarray(center[local]), num_points)
    # num_chains chains at the MAP, one at every other point: near the MAP the slope decides a
    # well-determined posterior's shift, and one chain there scattered it by 0.2 posterior sds
    chain_point = np.concatenate([np.zeros(settings.num_chains, int),
                                  np.arange(1, points.shape[0])])
    starts = jnp.broadcast_to(center, (chain_point.size, center.size))
    starts = starts.at[:, local].set(jnp.asarray(points[chain_point]))
    depth = min(settings.max_tree_depth, settings.implicit_prior_max_tree_depth)
    if sampler == "chees" and points.shape[0] == 1:
        # The method's own sampler: every chain holds the coefficients at the MAP, so the
        # chains share one target and ChEES can tune one trajectory length across them.
        from bpinn.inference.chees import run_chees

        result, _ = run_chees(
            jax.random.fold_in(rng_key, 1), physics, center, num_chains=chain_point.size,
            num_warmup=min(settings.num_warmup, MEASURE_WARMUP),
            num_samples=min(settings.num_samples, MEASURE_SAMPLES),
            target_acceptance=settings.target_acceptance, max_leapfrog_steps=2**depth - 1,
            damping=damping, curvature_floor=settings.curvature_floor, fixed=local,
            progress=progress)
    else:
        result, _ = run_nuts(
            jax.random.fold_in(rng_key, 1), physics, starts,
            num_warmup=min(settings.num_warmup, MEASURE_WARMUP),
            num_samples=min(settings.num_samples, MEASURE_SAMPLES), max_tree_depth=depth,
            target_acceptance=settings.target_acceptance,
            damping=damping, curvature_floor=settings.curvature_floor, fixed=local,
            progress=progress)
    # d/dtheta log Phi = d/dtheta (log density) - d/dtheta (the coefficients' own prior)
    prior_slopes = jax.jit(jax.vmap(
        lambda theta: coefficient_prior_slope(model, target, indices, theta)))(
        jnp.asarray(points))

    def physics_score(x):
        return jax.grad(lambda theta: physics.logdensity_fn(x.at[local].set(theta)))(x[local])

    draws = result.trace.position  # (chain, draw, kept), coefficients at each chain's point
    scores = jax.jit(lambda d: jax.lax.map(physics_score, d, batch_size=64))(
        draws.reshape(-1, draws.shape[-1]))
    scores = np.asarray(scores).reshape(*draws.shape[:2], -1) \
        - np.asarray(prior_slopes)[chain_point][:, None, :]
    point_slopes = np.stack([scores[chain_point == q].mean(axis=(0, 1))
                             for q in range(points.shape[0])])
    point_mcse = np.stack([_mcse_of_mean(scores[chain_point == q])
                           for q in range(points.shape[0])])
    return ImplicitPrior(names, indices, points[0], point_slopes[0], point_mcse[0], points,
                         axis, point_slopes, point_mcse)


def _mcse_of_mean(values: np.ndarray) -> np.ndarray:
    """(chain, draw, k) -> (k,) Monte Carlo standard errors of the means (ArviZ)."""
    from arviz_stats.base import array_stats

    return np.asarray([array_stats.mcse(values[..., i], method="mean", chain_axis=0,
                                        draw_axis=1) for i in range(values.shape[-1])])


def warnings(info: dict | None) -> list[str]:
    """Run warnings from ``method_info.implicit_prior``: an implied prior too strong for its
    correction to be trusted, a posterior reaching beyond the measured profile, or a measured
    implied prior left in place."""
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
                f"at the MAP, more than its correction can be trusted to remove "
                f"({STRONG_SHIFT_SDS:g}); the MAP itself is pulled by it, so {name} is decided "
                "by the network and the physics terms as much as by the readings (more or "
                "better-placed readings, or the reference method, would tell)")
        near_edge = row.get("profile", {}).get("posterior_near_edge", 0.0)
        if info["mode"] == "corrected" and near_edge > PROFILE_EDGE_WARNING:
            values = row["profile"]["at_unconstrained"]
            out.append(
                f"{near_edge:.0%} of the posterior of {name} lies in the outermost steps of the "
                f"range its implied prior was measured over ({min(values):.3g} .. "
                f"{max(values):.3g}, unconstrained) or beyond, where the correction stops, so "
                "the edge of that range may be holding the posterior back; raise [inference] "
                "implicit_prior_points to widen it")
        if info["mode"] == "measured" and abs(shift) > 0.5 and not is_strong(shift):
            out.append(f"the prior the physics terms imply moves {name} by {shift:+.2f} "
                       "posterior sds and was not removed; set implicit_prior = 'corrected'")
    return out
