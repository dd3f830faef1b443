"""Boundary and initial conditions: soft likelihood terms or hard output transforms.

A condition is imposed softly by a Gaussian likelihood term at points on its face, or (for
Dirichlet and initial conditions, ``hard=True``) exactly, by writing the solution as
``u = lift(z) + distance(z) * network(z)`` with ``distance = 0`` on the constrained faces
(Lu, Pestourie et al. 2021). A boundary left without a condition is "unknown": only the data and
the PDE inform it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from bpinn.models.fields import FieldValue
from bpinn.models.pdes import partial
from bpinn.models.problem import Domain

CONDITION_KINDS = ("dirichlet", "neumann", "periodic", "initial", "initial_rate")

# value(z) -> scalar target, z the full physical coordinate vector
ValueFn = Callable[[jnp.ndarray], jnp.ndarray]


@dataclass(frozen=True)
class UnknownValue:
    """A condition value that is itself unknown: the coefficient ``name`` (a scalar with a prior,
    such as an unknown wall temperature, or a field, such as an unknown initial condition
    u0(x)), inferred with everything else."""

    name: str


@dataclass(frozen=True, eq=False)
class Condition:
    """One boundary or initial condition.

    Parameters
    ----------
    kind : "dirichlet" (u = g), "neumann" (outward normal derivative = g), "periodic"
        (u and its normal derivative agree on opposite faces), "initial" (u(x, t0) = g) or
        "initial_rate" (du/dt(x, t0) = g: the second initial condition of an equation of
        second order in time, such as the wave equation; soft only).
    boundary : for dirichlet/neumann a face "x_min", "x_max", "y_min", "y_max" or "all"; for
        periodic the axis "x" or "y"; ignored for initial and initial_rate.
    value : the target g, a number, a function of the coordinate vector, or an
        :class:`UnknownValue` naming a coefficient; ignored for periodic.
    hard : impose exactly through an output transform (dirichlet and initial only; not with
        an unknown value, whose condition is a likelihood term like the readings).
    points : optional (n, ndim) points with ``targets`` (n,): Dirichlet data given as readings.
    output : for a system (several unknown functions), the index of the output the condition
        is on; None for a single unknown function.
    """

    kind: str
    boundary: str = "all"
    value: float | ValueFn | UnknownValue = 0.0
    hard: bool = False
    points: np.ndarray | None = None
    targets: np.ndarray | None = None
    output: int | None = None

    def __post_init__(self):
        if self.kind not in CONDITION_KINDS:
            raise ValueError(
                f"condition kind {self.kind!r} is unknown; valid: {', '.join(CONDITION_KINDS)}"
            )
        if self.hard and self.kind not in ("dirichlet", "initial"):
            raise ValueError(
                f"hard = true is available for dirichlet and initial conditions, not {self.kind}"
            )
        if self.hard and self.points is not None:
            raise ValueError("a Dirichlet condition given as data points cannot be hard")
        if self.hard and self.unknown is not None:
            raise ValueError(
                f"the value of this {self.kind} condition is the unknown coefficient "
                f"{self.unknown!r}, which is imposed softly: set hard = false")

    @property
    def unknown(self) -> str | None:
        """The coefficient the value is, when the value is unknown; None otherwise."""
        return self.value.name if isinstance(self.value, UnknownValue) else None

    def value_fn(self) -> Callable:
        """``g(z, coeffs)``: the target at ``z``; ``coeffs`` (the coefficient values by name)
        is read only by an unknown value."""
        if isinstance(self.value, UnknownValue):
            name = self.value.name

            def unknown(z, coeffs):
                v = coeffs[name]
                return v(z) if isinstance(v, FieldValue) else jnp.asarray(v, dtype=z.dtype)

            return unknown
        if callable(self.value):
            known = self.value
            return lambda z, coeffs: known(z)
        constant = float(self.value)
        return lambda z, coeffs: jnp.full((), constant, dtype=z.dtype)

    @property
    def is_zero(self) -> bool:
        return (not callable(self.value) and self.unknown is None
                and float(self.value) == 0.0)


def faces(domain: Domain, boundary: str) -> list[tuple[int, int]]:
    """(axis, side) pairs for a boundary name; side 0 is the lower face, 1 the upper."""
    names = domain.coord_names[: domain.space_dims]
    if boundary == "all":
        return [(axis, side) for axis in range(domain.space_dims) for side in (0, 1)]
    for axis, name in enumerate(names):
        if boundary == f"{name}_min":
            return [(axis, 0)]
        if boundary == f"{name}_max":
            return [(axis, 1)]
    valid = ["all"] + [f"{n}_{s}" for n in names for s in ("min", "max")]
    raise ValueError(f"boundary {boundary!r} is unknown for this domain; valid: {valid}")


def halton(n: int, dim: int, *, skip: int = 1) -> np.ndarray:
    """The first ``n`` points of the Halton sequence in [0, 1)^dim (deterministic)."""
    primes = [2, 3, 5, 7, 11, 13][:dim]
    out = np.empty((n, dim))
    for j, base in enumerate(primes):
        for i in range(n):
            k, f, r = i + skip, 1.0, 0.0
            while k > 0:
                f /= base
                r += f * (k % base)
                k //= base
            out[i, j] = r
    return out


def face_points(domain: Domain, axis: int, side: int, n: int) -> np.ndarray:
    """``n`` deterministic points on a spatial face (the face's coordinate held fixed)."""
    lo, hi = domain.lower, domain.upper
    free = [i for i in range(domain.ndim) if i != axis]
    pts = np.empty((n, domain.ndim))
    if free:
        u = halton(n, len(free)) if len(free) > 1 else (np.arange(n)[:, None] + 0.5) / n
        pts[:, free] = lo[free] + u * (hi[free] - lo[free])
    pts[:, axis] = hi[axis] if side else lo[axis]
    return pts


def initial_points(domain: Domain, n: int) -> np.ndarray:
    lo, hi = domain.lower, domain.upper
    s = domain.space_dims
    u = halton(n, s) if s > 1 else (np.arange(n)[:, None] + 0.5) / n
    pts = np.empty((n, domain.ndim))
    pts[:, :s] = lo[:s] + u * (hi[:s] - lo[:s])
    pts[:, s] = lo[s]
    return pts


@dataclass(frozen=True, eq=False)
class SoftTerm:
    """A soft condition: ``residual_fn(u_fn, z, coeffs)`` should equal ``targets`` at
    ``points`` (``coeffs``: the coefficient values by name, read by unknown condition values)."""

    name: str
    points: np.ndarray
    residual_fn: Callable
    targets: np.ndarray | None = None  # zeros when None


def soft_terms(domain: Domain, conditions, *, num_points: int) -> list[SoftTerm]:
    """Likelihood terms for every condition not imposed as a hard constraint."""
    terms = []
    for i, cond in enumerate(conditions):
        if cond.hard:
            continue
        start = len(terms)
        terms.extend(_condition_terms(domain, cond, i, num_points))
        if cond.output is not None:
            terms[start:] = [_on_output(term, cond.output) for term in terms[start:]]
    return terms


def _on_output(term: SoftTerm, k: int) -> SoftTerm:
    """The term applied to output ``k`` of a vector-valued solution."""
    fn = term.residual_fn
    return SoftTerm(term.name, term.points,
                    lambda u_fn, z, coeffs: fn(lambda y: u_fn(y)[k], z, coeffs), term.targets)


def _condition_terms(domain: Domain, cond: Condition, i: int, num_points: int):
    """The soft terms of condition ``i``."""
    terms = []
    name = f"{cond.kind}_{i}"
    if cond.kind in ("initial", "initial_rate"):
        if not domain.has_time:
            raise ValueError(f"an {cond.kind} condition needs a time domain ([domain] t = "
                             "[t0, t1]); in a problem written with time as x (an ODE), use "
                             "dirichlet / neumann conditions at x_min")
        g = cond.value_fn()
        fn = (_value_residual(g) if cond.kind == "initial"
              else _time_derivative_residual(g, domain.time_index))
        terms.append(SoftTerm(name, initial_points(domain, num_points), fn))
    elif cond.kind == "dirichlet" and cond.points is not None:
        pts = np.asarray(cond.points, dtype=float)
        targets = np.asarray(cond.targets, dtype=float)
        terms.append(SoftTerm(name, pts, lambda u_fn, z, coeffs: u_fn(z), targets))
    elif cond.kind in ("dirichlet", "neumann"):
        g = cond.value_fn()
        for axis, side in faces(domain, cond.boundary):
            pts = face_points(domain, axis, side, num_points)
            fn = (
                _value_residual(g)
                if cond.kind == "dirichlet"
                else _normal_derivative_residual(g, axis, side)
            )
            label = f"{name}_{domain.coord_names[axis]}_{'max' if side else 'min'}"
            terms.append(SoftTerm(label, pts, fn))
    elif cond.kind == "periodic":
        axis = _periodic_axis(domain, cond.boundary)
        pts = face_points(domain, axis, 0, num_points)
        shift = domain.upper[axis] - domain.lower[axis]
        terms.append(SoftTerm(f"{name}_value", pts, _periodic_residual(axis, shift, 0)))
        terms.append(SoftTerm(f"{name}_slope", pts, _periodic_residual(axis, shift, 1)))
    return terms


def _value_residual(g):
    return lambda u_fn, z, coeffs: u_fn(z) - g(z, coeffs)


def _time_derivative_residual(g, time_index):
    return lambda u_fn, z, coeffs: partial(u_fn, z, time_index) - g(z, coeffs)


def _normal_derivative_residual(g, axis, side):
    sign = 1.0 if side else -1.0

    def residual(u_fn, z, coeffs):
        return sign * partial(u_fn, z, axis) - g(z, coeffs)

    return residual


def _periodic_axis(domain: Domain, boundary: str) -> int:
    names = domain.coord_names[: domain.space_dims]
    if boundary not in names:
        raise ValueError(f"periodic boundary must name a spatial axis {names}, got {boundary!r}")
    return names.index(boundary)


def _periodic_residual(axis, shift, order):
    def residual(u_fn, z, coeffs):
        z_other = z.at[axis].add(shift)
        if order == 0:
            return u_fn(z_other) - u_fn(z)
        return partial(u_fn, z_other, axis) - partial(u_fn, z, axis)

    return residual


def system_hard_constraint(domain: Domain, conditions, num_outputs: int):
    """(lift, distance, per output) for a system: ``lift(z)`` and ``distance(z)`` return one
    value per output, each from that output's own hard conditions (lift 0 and distance 1 for an
    output without any); ``per output`` lists each output's own (lift, distance) pair, None
    where it has none. (None, None, per output) when no condition is hard."""
    per_output = [hard_constraint(domain, [c for c in conditions if c.output == k])
                  for k in range(num_outputs)]
    if all(lift is None for lift, _ in per_output):
        return None, None, per_output

    def lift(z):
        return jnp.stack([f(z) if f is not None else jnp.zeros((), z.dtype)
                          for f, _ in per_output])

    def distance(z):
        return jnp.stack([d(z) if d is not None else jnp.ones((), z.dtype)
                          for _, d in per_output])

    return lift, distance, per_output


def _known_value(cond: Condition) -> ValueFn:
    """``g(z)`` of a condition whose value is known (every hard condition's is)."""
    g = cond.value_fn()
    return lambda z: g(z, None)


def hard_constraint(domain: Domain, conditions) -> tuple[Callable | None, Callable | None]:
    """(lift, distance) functions that impose every ``hard`` condition exactly.

    The distance is a product of normalised distances to the constrained faces (and to t0 for
    the initial condition). The lift matches the prescribed values: the initial value, plus in
    1-D space a linear blend of the two Dirichlet boundary values corrected at t0, which is exact
    when the data are compatible (the initial value equals the boundary value at the corners).
    In 2-D space hard Dirichlet faces must be homogeneous (value 0).
    """
    hard = [c for c in conditions if c.hard]
    if not hard:
        return None, None
    lo, hi = domain.lower, domain.upper
    span = hi - lo
    dirichlet: dict[tuple[int, int], ValueFn] = {}
    initial = None
    for cond in hard:
        if cond.kind == "initial":
            if not domain.has_time:
                raise ValueError("an initial condition needs a time domain ([domain] t = [t0, t1])")
            initial = _known_value(cond)
            continue
        for face in faces(domain, cond.boundary):
            if domain.space_dims > 1 and not cond.is_zero:
                raise ValueError(
                    "hard Dirichlet conditions in 2-D space must be homogeneous (value 0); "
                    "impose non-zero boundary values softly (hard = false)"
                )
            dirichlet[face] = _known_value(cond)
    tidx = domain.time_index

    def distance(z):
        # Normalised to peak at 1 inside the domain: a distance that is small everywhere would
        # force large network outputs, which the weight prior penalises.
        d = jnp.ones((), dtype=z.dtype)
        for axis, side in dirichlet:
            d = d * ((hi[axis] - z[axis]) if side else (z[axis] - lo[axis])) / span[axis]
            if (axis, 1 - side) in dirichlet:
                d = d * 2.0  # the pair's product peaks at 1/4 mid-interval
        if initial is not None:
            d = d * (z[tidx] - lo[tidx]) / span[tidx]
        return d

    def boundary_blend(z):
        # Linear interpolation of the 1-D Dirichlet values across x.
        if not dirichlet or domain.space_dims > 1:
            return jnp.zeros((), dtype=z.dtype)
        w_hi = (z[0] - lo[0]) / span[0]
        g_lo = dirichlet.get((0, 0))
        g_hi = dirichlet.get((0, 1))
        z_lo, z_hi = z.at[0].set(lo[0]), z.at[0].set(hi[0])
        if g_lo is not None and g_hi is not None:
            return (1.0 - w_hi) * g_lo(z_lo) + w_hi * g_hi(z_hi)
        return g_lo(z_lo) if g_lo is not None else g_hi(z_hi)

    def lift(z):
        if initial is None:
            return boundary_blend(z)
        z0 = z.at[tidx].set(lo[tidx])
        return initial(z0) + boundary_blend(z) - boundary_blend(z0)

    return lift, distance
