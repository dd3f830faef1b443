"""The inverse problem as data: domain, PDE operator, conditions and observations.

Everything here is in the user's physical units. The network sees rescaled coordinates, but
that rescaling lives inside the solution function (``bpinn.models.networks``), so a PDE
operator differentiates a function of *physical* coordinates and the chain rule is exact.

Coordinates are always ordered ``(x[, y][, t])``: space first, time last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from bpinn.models.fields import coefficients_at

# u_fn(z) -> scalar, z of shape (ndim,) in physical units; for a system, a vector with one
# entry per output (PDE.outputs).
SolutionFn = Callable[[jnp.ndarray], jnp.ndarray]
# operator(u_fn, z, coeffs) -> scalar: the differential part L[u](z) of L[u] = f; for a system,
# a vector with one entry per equation.
OperatorFn = Callable[[SolutionFn, jnp.ndarray, Mapping[str, jnp.ndarray]], jnp.ndarray]
# source(z, coeffs) -> scalar: the right-hand side f(z).
SourceFn = Callable[[jnp.ndarray, Mapping[str, jnp.ndarray]], jnp.ndarray]
# flux(u_fn, z, coeffs) -> (F, G) with L[u] = -dF/dx + G: the divergence form a weak
# (variational) residual needs, for steady 1-D problems.
FluxFn = Callable[[SolutionFn, jnp.ndarray, Mapping[str, jnp.ndarray]],
                  tuple[jnp.ndarray, jnp.ndarray]]

SPACE_NAMES = ("x", "y")
TIME_NAME = "t"


@dataclass(frozen=True)
class Domain:
    """A box in space (1-D or 2-D), optionally times an interval in time.

    Parameters
    ----------
    space : tuple of (low, high) pairs, one per spatial dimension (named x, then y).
    time : (t0, t1) or None for a steady problem.

    Examples
    --------
    >>> d = Domain(space=((0.0, 1.0),), time=(0.0, 2.0))
    >>> d.coord_names
    ('x', 't')
    """

    space: tuple[tuple[float, float], ...]
    time: tuple[float, float] | None = None

    def __post_init__(self):
        if not 1 <= len(self.space) <= 2:
            raise ValueError(
                f"Domain: space must have 1 or 2 dimensions, got {len(self.space)}"
            )
        bounds = list(self.space) + ([self.time] if self.time is not None else [])
        for name, (lo, hi) in zip(self.coord_names, bounds, strict=True):
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"Domain: bounds of {name!r} must be finite with low < high, "
                    f"got [{lo}, {hi}]"
                )

    @property
    def space_dims(self) -> int:
        return len(self.space)

    @property
    def has_time(self) -> bool:
        return self.time is not None

    @property
    def ndim(self) -> int:
        return self.space_dims + int(self.has_time)

    @property
    def coord_names(self) -> tuple[str, ...]:
        names = SPACE_NAMES[: self.space_dims]
        return names + ((TIME_NAME,) if self.has_time else ())

    @property
    def time_index(self) -> int | None:
        """Index of t in a coordinate vector, or None for steady problems."""
        return self.space_dims if self.has_time else None

    @property
    def lower(self) -> np.ndarray:
        lo = [b[0] for b in self.space] + ([self.time[0]] if self.has_time else [])
        return np.asarray(lo, dtype=float)

    @property
    def upper(self) -> np.ndarray:
        hi = [b[1] for b in self.space] + ([self.time[1]] if self.has_time else [])
        return np.asarray(hi, dtype=float)

    def contains(self, points: np.ndarray, *, rtol: float = 1e-9) -> np.ndarray:
        """Boolean mask of rows of ``points`` (n, ndim) that lie in the closed box."""
        span = self.upper - self.lower
        tol = rtol * span
        points = np.asarray(points, dtype=float)
        return np.all((points >= self.lower - tol) & (points <= self.upper + tol), axis=-1)


@dataclass(frozen=True)
class PDE:
    """A PDE ``L[u](z; coeffs) = f(z)``, with L given pointwise.

    ``operator(u_fn, z, coeffs)`` returns ``L[u](z)`` for one point; the residual used by the
    likelihood is ``operator(u_fn, z, coeffs) - source(z, coeffs)``. ``coefficient_names``
    lists every coefficient the operator reads from ``coeffs`` (each must be declared known or
    given a prior in the config).

    A system of equations has several ``outputs`` (the unknown functions, e.g. ``("u", "v")``):
    ``u_fn(z)`` then returns a vector with one entry per output, in that order, and the operator
    a vector with one entry per equation (``num_equations``; not necessarily one per output).
    """

    name: str
    coefficient_names: tuple[str, ...]
    operator: OperatorFn
    equation: str = ""  # the PDE written out in plain text, for summaries and reports
    options: Mapping[str, object] = field(default_factory=dict)
    flux: FluxFn | None = None  # divergence form, for the weak residual (steady 1-D)
    outputs: tuple[str, ...] = ("u",)
    num_equations: int = 1

    @property
    def is_system(self) -> bool:
        """Several unknown functions (a vector-valued solution), not one."""
        return len(self.outputs) > 1


def zero_source(z, coeffs):
    del coeffs
    return jnp.zeros((), dtype=z.dtype)


def residual(pde: PDE, source: SourceFn, u_fn: SolutionFn, z, coeffs):
    """Pointwise PDE residual ``L[u](z) - f(z)``; batch it with ``jax.vmap`` outside.
    Coefficient fields are evaluated at ``z`` (``bpinn.models.fields.coefficients_at``)."""
    coeffs = coefficients_at(coeffs, z)
    # asarray: a system's operator may return its equations as a list
    return jnp.asarray(pde.operator(u_fn, z, coeffs)) - source(z, coeffs)


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything the user states about the inverse problem, validated and in physical units.

    ``coefficients`` maps every name in ``coefficient_names`` to a ``Fixed`` value, a
    ``Prior`` or a ``GaussianProcessField`` (an unknown coefficient field); ``noise`` is the
    sensor noise sd (one, or one per sensor group when ``per_group_noise``); ``source_data``
    are optional noisy measurements of the source f at points, with their own noise
    ``source_noise``. ``truth`` holds numbers, and for a field a function of the point.
    """

    domain: Domain
    pde: PDE
    coefficients: Mapping[str, object]
    observations: object  # bpinn.data.Observations
    noise: object  # Fixed | Prior
    conditions: tuple = ()
    source: SourceFn = zero_source
    source_description: str = "0"
    source_data: object | None = None  # bpinn.data.Observations of f
    source_noise: object | None = None  # Fixed | Prior
    per_group_noise: bool = False
    likelihood: str = "normal"  # or "student_t"
    student_t_df: float = 4.0
    truth: Mapping[str, object] = field(default_factory=dict)
    holdout: object | None = None  # bpinn.data.Observations kept out of the likelihood
    # the user's forward model, forward(points (n, ndim), coeffs) -> u (n,): the reference
    # solver of a PDE without a built-in one (bpinn.reference.registry.problem_forward)
    reference: Callable | None = None
    # direct readings of coefficient fields (bpinn.models.fields.FieldReadings)
    field_data: tuple = ()

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        """The PDE's coefficients, then those only a condition reads (an unknown boundary or
        initial value)."""
        pde = self.pde.coefficient_names
        extra = [c.unknown for c in self.conditions
                 if c.unknown is not None and c.unknown not in pde]
        return pde + tuple(dict.fromkeys(extra))

    def __post_init__(self):
        declared = set(self.coefficients)
        needed = set(self.coefficient_names)
        if needed - declared:
            first = sorted(needed - declared)[0]
            raise ValueError(
                f"the problem reads coefficient(s) {sorted(needed - declared)} that have "
                "neither a value nor a prior; declare each under [coefficients], e.g. "
                f'{first} = {{ prior = "LogNormal", loc = 0.0, scale = 1.0 }}'
            )
        if declared - needed:
            raise ValueError(
                f"[coefficients] declares {sorted(declared - needed)}, which neither the "
                f"{self.pde.name} PDE nor a condition reads; the PDE's coefficients are "
                f"{list(self.pde.coefficient_names)}"
            )
        if self.likelihood not in ("normal", "student_t"):
            raise ValueError(
                f"likelihood {self.likelihood!r} is unknown; valid: 'normal', 'student_t'"
            )
        if not self.student_t_df > 0:
            raise ValueError(f"student_t_df must be > 0, got {self.student_t_df!r}")
        for readings in self.field_data:
            spec = self.coefficients.get(readings.field)
            if not hasattr(spec, "basis_on"):  # a GaussianProcessField; no import cycle
                raise ValueError(
                    f"field readings of {readings.field!r}: not a coefficient field of this "
                    "problem; readings can be given for a coefficient declared with "
                    "field = \"gp\"")
            if readings.log and not spec.log:
                raise ValueError(
                    f"field readings of {readings.field!r} are of its log, but the field is "
                    "declared with log = false (it may be negative); read the field itself")
        if self.source_data is not None and self.source_noise is None:
            raise ValueError("measured source values need a source noise (fixed or a prior)")
