"""Which built-in PDEs have a classical reference solver, and forward models built from them.

A forward model is a pure function ``forward(coeffs) -> u at the sensor points``: the domain,
the initial and boundary data, the source and the resolution are bound once, the coefficients
(a mapping keyed by the names of :mod:`bpinn.models.pdes`) are the only argument. It is
jit-able and differentiable in the coefficients, which is what simulating sensor data and a
classical Bayesian inversion (NUTS over the coefficients) need::

    solver = reference_solver("heat")
    forward = solver.forward(domain, points, initial=u0, boundary="dirichlet")
    logdensity = lambda c: log_prior(c) + normal_loglik(data, forward(c), sigma)

Data use the package's pointwise conventions: ``initial(z)`` and a Dirichlet value ``g(z)``
take the full coordinate vector ``z = (x[, y], t)`` (as ``Condition.value`` does), and
``source(z, coeffs)`` is a ``bpinn.models.problem.SourceFn``. :func:`problem_forward` reads all
of them from a :class:`bpinn.models.problem.Problem`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from bpinn.models.fields import GaussianProcessField
from bpinn.models.pdes import make_pde
from bpinn.models.problem import Domain, zero_source
from bpinn.reference.mol import (
    burgers_mol,
    heat_mol,
    reaction_diffusion_mol,
    reaction_diffusion_steady,
)
from bpinn.reference.spectral import advection_spectral, heat_spectral, poisson_spectral

__all__ = [
    "REFERENCE_SOLVERS",
    "ReferenceSolver",
    "available_reference_solvers",
    "problem_forward",
    "reference_solver",
]

ForwardFn = Callable[[Mapping[str, jnp.ndarray]], jnp.ndarray]


@dataclass(frozen=True)
class ReferenceSolver:
    """A classical solver for one built-in PDE.

    Parameters
    ----------
    pde_name : str
        The PDE's name in ``bpinn.models.pdes.BUILTIN_PDES``.
    method : str
        One line: the numerical method.
    coverage : str
        One line: the dimensions, boundaries and data it handles.
    """

    pde_name: str
    method: str
    coverage: str
    _build: Callable[..., ForwardFn] = field(repr=False)

    def forward(
        self,
        domain: Domain,
        points,
        *,
        initial=None,
        boundary=None,
        boundary_values=0.0,
        source=None,
        options: Mapping[str, object] | None = None,
        method: str = "auto",
        grid_shape=64,
        num_cells: int = 128,
        num_steps: int = 400,
    ) -> ForwardFn:
        """Bind the data and return ``forward(coeffs) -> u`` at ``points``.

        Parameters
        ----------
        domain : Domain
            The problem's domain (physical units).
        points : array of shape (num_points, domain.ndim)
            Sensor coordinates ``(x[, y][, t])`` inside the domain.
        initial : number or callable, keyword-only
            ``u(z)`` at ``t = t0``, a function of the coordinate vector ``z = (x[, y], t0)``;
            required for time-dependent PDEs.
        boundary : "dirichlet", "periodic" or a tuple per axis, keyword-only
            Default: periodic for advection, Dirichlet otherwise.
        boundary_values : number, callable or (lower, upper), keyword-only, default 0.0
            Dirichlet data ``g(z)`` on the faces (a number, or a function of the coordinate
            vector on the face); in 1-D a pair gives ``x = a`` and ``x = b`` separately.
            Spectral solvers need constants (and in 2-D one constant for all faces).
        source : callable, keyword-only, optional
            ``source(z, coeffs) -> scalar``, the right-hand side ``f``.
        options : mapping, keyword-only, optional
            PDE options as for ``make_pde`` (e.g. ``{"reaction": "cubic"}``).
        method : "auto", "spectral", "mol" or "newton", keyword-only
            Only heat has a choice: "auto" takes the exact spectral series unless a source or
            time-dependent boundary values need the method of lines. Steady reaction-diffusion
            is solved by Newton's method ("newton").
        grid_shape : int or tuple, keyword-only, default 64
            Spectral nodes per axis.
        num_cells, num_steps : int, keyword-only, defaults 128 and 400
            Method-of-lines resolution.

        Returns
        -------
        callable
            ``forward(coeffs)`` with ``coeffs`` a mapping holding (at least) every coefficient
            of the PDE; extra keys such as noise scales are ignored. Returns shape
            ``(num_points,)``.
        """
        pde = make_pde(self.pde_name, domain, **dict(options or {}))
        points = _check_points(points, domain, self.pde_name)
        settings = _Settings(
            domain=domain, points=points, options=dict(pde.options), initial=initial,
            boundary=boundary, boundary_values=boundary_values, source=source, method=method,
            grid_shape=grid_shape, num_cells=num_cells, num_steps=num_steps,
        )
        solve = self._build(settings)
        names = pde.coefficient_names

        def forward(coeffs: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
            missing = [name for name in names if name not in coeffs]
            if missing:
                raise ValueError(
                    f"reference {self.pde_name} forward model: coefficient(s) {missing} missing "
                    f"from coeffs (got {sorted(coeffs)}); this PDE needs {list(names)}"
                )
            return solve(coeffs)

        return forward


@dataclass(frozen=True)
class _Settings:
    domain: Domain
    points: jnp.ndarray
    options: dict
    initial: object
    boundary: object
    boundary_values: object
    source: object
    method: str
    grid_shape: object
    num_cells: int
    num_steps: int


# ---------------------------------------------------------------------------------------------
# Adapters from the package's pointwise conventions to the solvers' grid conventions
# ---------------------------------------------------------------------------------------------


def _check_points(points, domain: Domain, pde_name: str) -> jnp.ndarray:
    caller = f"reference {pde_name} forward model"
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[1] != domain.ndim:
        raise ValueError(
            f"{caller}: points must have shape (num_points, {domain.ndim}) with columns "
            f"{domain.coord_names}, got shape {points.shape}"
        )
    try:
        inside = domain.contains(np.asarray(points))
    except jax.errors.TracerArrayConversionError:
        return points
    if not np.all(inside):
        first = np.asarray(points)[~inside][0].tolist()
        raise ValueError(
            f"{caller}: {int(np.sum(~inside))} point(s) lie outside the domain "
            f"{domain.lower.tolist()} .. {domain.upper.tolist()}, e.g. {first}"
        )
    return points


def _is_constant(value) -> bool:
    return isinstance(value, numbers.Real | np.ndarray | jax.Array) and np.ndim(value) == 0


def _pointwise(value, name: str, pde_name: str) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """A number or a function of the coordinate vector, as a function of the vector."""
    if callable(value):
        return value
    if _is_constant(value):
        return lambda z: jnp.asarray(value, dtype=z.dtype)
    raise TypeError(
        f"reference {pde_name} forward model: {name} must be a number or a function of the "
        f"coordinate vector, got {type(value).__name__} {value!r}"
    )


def _on_mesh(pointwise, trailing: tuple = ()):
    """``f(*mesh)`` for the spectral solvers from a pointwise ``f(z)``, with ``z`` completed by
    the ``trailing`` coordinates (e.g. ``(t0,)``)."""

    def values(*mesh):
        columns = [m.ravel() for m in mesh]
        columns += [jnp.full(columns[0].shape, c, dtype=columns[0].dtype) for c in trailing]
        return jax.vmap(pointwise)(jnp.stack(columns, axis=1)).reshape(mesh[0].shape)

    return values


def _on_nodes(pointwise, t):
    """``f(x)`` over an array of nodes at the fixed time ``t``, from a pointwise ``f(z)``."""
    return lambda x: jax.vmap(lambda xi: pointwise(jnp.stack([xi, jnp.asarray(t, x.dtype)])))(x)


def _boundary_kinds(settings: _Settings, default: str) -> tuple[str, ...]:
    boundary = default if settings.boundary is None else settings.boundary
    dims = settings.domain.space_dims
    kinds = (boundary,) * dims if isinstance(boundary, str) else tuple(boundary)
    if len(kinds) != dims or any(kind not in ("dirichlet", "periodic") for kind in kinds):
        raise ValueError(
            f"boundary must be 'dirichlet', 'periodic' or a tuple of them with one entry per "
            f"spatial axis ({dims}), got {settings.boundary!r}"
        )
    return kinds


def _dirichlet_pair(settings: _Settings) -> tuple[object, object]:
    values = settings.boundary_values
    if isinstance(values, tuple | list):
        if settings.domain.space_dims != 1 or len(values) != 2:
            raise ValueError(
                "boundary_values may be a pair (lower, upper) only in 1-D space; give one value "
                f"for all faces in 2-D, got {values!r}"
            )
        return values[0], values[1]
    return values, values


def _check_no_boundary_values(settings: _Settings, kinds) -> None:
    """Dirichlet data given for a fully periodic problem are a mistake, not something to drop."""
    unused = [
        g for g in _dirichlet_pair(settings) if callable(g) or not _is_constant(g) or g != 0
    ]
    if "dirichlet" not in kinds and unused:
        raise ValueError(
            f"boundary_values {settings.boundary_values!r} are Dirichlet data, but every axis "
            f"is periodic (boundary={kinds}); drop them"
        )


def _constant_boundary_values(settings: _Settings, kinds, pde_name: str):
    """Boundary values for the spectral solvers: None, a constant, or a 1-D pair of constants."""
    _check_no_boundary_values(settings, kinds)
    if "dirichlet" not in kinds:
        return None
    lower, upper = _dirichlet_pair(settings)
    if not (_is_constant(lower) and _is_constant(upper)):
        raise ValueError(
            f"the spectral {pde_name} solver needs constant Dirichlet values, got "
            f"{settings.boundary_values!r}; time- or space-dependent values need the method of "
            "lines (1-D heat: method='mol')"
        )
    if settings.domain.space_dims == 1:
        return (lower, upper)
    return lower


def _mol_arguments(settings: _Settings, pde_name: str) -> dict:
    """Keyword arguments shared by the method-of-lines solvers, checked once, eagerly."""
    domain = settings.domain
    if domain.space_dims != 1 or not domain.has_time:
        raise ValueError(
            f"the method-of-lines {pde_name} solver covers 1-D space with time; got {domain!r}"
        )
    (kind,) = _boundary_kinds(settings, "dirichlet")
    _check_no_boundary_values(settings, (kind,))
    a, b = domain.space[0]
    boundary_values = None
    if kind == "dirichlet":
        boundary_values = tuple(
            _boundary_in_time(_pointwise(g, "boundary_values", pde_name), x_face)
            for g, x_face in zip(_dirichlet_pair(settings), (a, b), strict=True)
        )
    return dict(
        interval=(a, b), time=domain.time, boundary=kind, boundary_values=boundary_values,
        num_cells=settings.num_cells, num_steps=settings.num_steps,
        initial=_on_nodes(_initial(settings, pde_name), domain.time[0]),
    )


def _mol_source(settings: _Settings, coeffs):
    """``source(x, t)`` over the nodes from the pointwise ``source(z, coeffs)``, or None."""
    if settings.source is None:
        return None
    pointwise_source = settings.source

    def source(x, t):
        return jax.vmap(lambda xi: pointwise_source(jnp.stack([xi, t]), coeffs))(x)

    return source


def _boundary_in_time(pointwise, x_face: float):
    return lambda t: pointwise(jnp.stack([jnp.asarray(x_face, jnp.result_type(t, float)), t]))


def _initial(settings: _Settings, pde_name: str):
    if settings.initial is None:
        raise ValueError(
            f"the reference {pde_name} solver needs an initial condition: pass initial=u0 "
            "(a number or a function of the coordinate vector (x[, y], t0))"
        )
    return _pointwise(settings.initial, "initial", pde_name)


def _check_method(settings: _Settings, allowed: tuple[str, ...], pde_name: str) -> None:
    if settings.method not in ("auto",) + allowed:
        raise ValueError(
            f"method must be 'auto' or one of {allowed} for the {pde_name} reference solver, "
            f"got {settings.method!r}"
        )


# ---------------------------------------------------------------------------------------------
# One builder per PDE: settings -> solve(coeffs)
# ---------------------------------------------------------------------------------------------


def _build_heat(settings: _Settings):
    _check_method(settings, ("spectral", "mol"), "heat")
    lower, upper = _dirichlet_pair(settings)
    needs_mol = settings.source is not None or callable(lower) or callable(upper)
    use_mol = settings.method == "mol" or (settings.method == "auto" and needs_mol)
    if not use_mol and needs_mol:
        raise ValueError(
            "the spectral heat solver has no source term and needs constant boundary values; "
            "use method='mol' (1-D) for a source or time-dependent boundary values"
        )
    if use_mol:
        arguments = _mol_arguments(settings, "heat")
        return lambda coeffs: heat_mol(
            settings.points, coeffs["D"], source=_mol_source(settings, coeffs), **arguments
        )
    kinds = _boundary_kinds(settings, "dirichlet")
    boundary_values = _constant_boundary_values(settings, kinds, "heat")
    domain = settings.domain
    initial = _on_mesh(_initial(settings, "heat"), (domain.time[0],))
    return lambda coeffs: heat_spectral(
        settings.points, coeffs["D"], initial, space=domain.space, boundary=kinds,
        boundary_values=boundary_values, t0=domain.time[0], grid_shape=settings.grid_shape,
    )


def _build_advection(settings: _Settings):
    _check_method(settings, ("spectral",), "advection")
    kinds = _boundary_kinds(settings, "periodic")
    if kinds != ("periodic",) * len(kinds) or settings.source is not None:
        raise ValueError(
            "the advection reference solver covers periodic boundaries without a source, "
            f"got boundary={settings.boundary!r}, source={settings.source!r}"
        )
    _check_no_boundary_values(settings, kinds)
    domain = settings.domain
    names = ("c",) if domain.space_dims == 1 else ("c_x", "c_y")
    initial = _on_mesh(_initial(settings, "advection"), (domain.time[0],))
    return lambda coeffs: advection_spectral(
        settings.points, jnp.stack([jnp.asarray(coeffs[n]) for n in names]), initial,
        space=domain.space, t0=domain.time[0], grid_shape=settings.grid_shape,
    )


def _build_poisson(settings: _Settings):
    _check_method(settings, ("spectral",), "poisson")
    kinds = _boundary_kinds(settings, "dirichlet")
    boundary_values = _constant_boundary_values(settings, kinds, "poisson")
    domain = settings.domain
    pointwise_source = settings.source if settings.source is not None else zero_source

    def solve(coeffs):
        source = _on_mesh(lambda z: pointwise_source(z, coeffs))
        return poisson_spectral(
            settings.points, coeffs["k"], source, space=domain.space, boundary=kinds,
            boundary_values=boundary_values, grid_shape=settings.grid_shape,
        )

    return solve


def _build_reaction_diffusion(settings: _Settings):
    if not settings.domain.has_time:
        return _build_steady_reaction_diffusion(settings)
    _check_method(settings, ("mol",), "reaction_diffusion")
    reaction = settings.options["reaction"]
    arguments = _mol_arguments(settings, "reaction_diffusion")
    return lambda coeffs: reaction_diffusion_mol(
        settings.points, coeffs["D"], coeffs["k"], reaction=reaction,
        source=_mol_source(settings, coeffs), **arguments,
    )


def _build_steady_reaction_diffusion(settings: _Settings):
    name = "steady reaction_diffusion"
    _check_method(settings, ("newton",), name)
    domain = settings.domain
    if domain.space_dims != 1:
        raise ValueError(f"the {name} reference solver covers 1-D space; got {domain!r}")
    (kind,) = _boundary_kinds(settings, "dirichlet")
    if kind != "dirichlet":
        raise ValueError(f"the {name} reference solver needs Dirichlet ends, got {kind!r}")
    a, b = domain.space[0]
    ends = tuple(_pointwise(g, "boundary_values", name)(jnp.array([face]))
                 for g, face in zip(_dirichlet_pair(settings), (a, b), strict=True))
    reaction = settings.options["reaction"]

    def solve(coeffs):
        source = None
        if settings.source is not None:
            def source(x):
                return jax.vmap(lambda xi: settings.source(xi[None], coeffs))(x)
        return reaction_diffusion_steady(
            settings.points, coeffs["D"], coeffs["k"], reaction=reaction, interval=(a, b),
            boundary_values=ends, source=source, num_cells=settings.num_cells)

    return solve


def _build_burgers(settings: _Settings):
    _check_method(settings, ("mol",), "burgers")
    arguments = _mol_arguments(settings, "burgers")
    return lambda coeffs: burgers_mol(
        settings.points, coeffs["nu"], source=_mol_source(settings, coeffs), **arguments
    )


REFERENCE_SOLVERS: dict[str, ReferenceSolver] = {
    solver.pde_name: solver
    for solver in (
        ReferenceSolver(
            "heat",
            "exact spectral series (heat_spectral); Crank-Nicolson method of lines (heat_mol) "
            "when a source or time-dependent boundary values need it",
            "spectral: 1-D/2-D, periodic or constant Dirichlet per axis, no source; "
            "method of lines: 1-D, periodic or Dirichlet g(t), source f(x, t)",
            _build_heat,
        ),
        ReferenceSolver(
            "advection",
            "exact spectral shift of every Fourier mode (advection_spectral)",
            "1-D/2-D, periodic, no source",
            _build_advection,
        ),
        ReferenceSolver(
            "poisson",
            "spectral division of every mode by k |kappa|^2 (poisson_spectral)",
            "1-D/2-D, periodic (zero-mean) or constant Dirichlet per axis, source f(x[, y])",
            _build_poisson,
        ),
        ReferenceSolver(
            "reaction_diffusion",
            "IMEX method of lines, Crank-Nicolson diffusion + Heun reaction "
            "(reaction_diffusion_mol)",
            "1-D with time, every reaction kind, periodic or Dirichlet g(t), source f(x, t); "
            "steady 1-D with Dirichlet ends and source f(x) by damped Newton on the same grid "
            "(reaction_diffusion_steady)",
            _build_reaction_diffusion,
        ),
        ReferenceSolver(
            "burgers",
            "IMEX method of lines, Crank-Nicolson viscosity + Heun advection (burgers_mol)",
            "1-D with time, periodic or Dirichlet g(t), source f(x, t)",
            _build_burgers,
        ),
    )
}


def available_reference_solvers() -> tuple[str, ...]:
    """Names of the PDEs (``bpinn.models.pdes``) that have a reference solver, sorted.

    Examples
    --------
    >>> available_reference_solvers()
    ('advection', 'burgers', 'heat', 'poisson', 'reaction_diffusion')
    """
    return tuple(sorted(REFERENCE_SOLVERS))


def reference_solver(pde_name: str) -> ReferenceSolver:
    """The classical reference solver of a built-in PDE.

    Parameters
    ----------
    pde_name : str
        A name of ``bpinn.models.pdes.BUILTIN_PDES``.

    Returns
    -------
    ReferenceSolver
        Call ``.forward(domain, points, initial=..., ...)`` for a forward model.

    Raises
    ------
    ValueError
        ``no reference solver for PDE 'X'; available: ...`` for any other name.

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> domain = Domain(space=((0.0, 1.0),), time=(0.0, 1.0))
    >>> forward = reference_solver("heat").forward(
    ...     domain, np.array([[0.5, 1.0]]), initial=lambda z: jnp.sin(jnp.pi * z[0]))
    >>> u = forward({"D": 0.1})
    >>> bool(np.allclose(u, np.exp(-0.1 * np.pi**2)))
    True
    """
    try:
        return REFERENCE_SOLVERS[pde_name]
    except (KeyError, TypeError):
        raise ValueError(
            f"no reference solver for PDE {pde_name!r}; available: "
            f"{', '.join(available_reference_solvers())}; or give your own forward model as "
            "[problem] reference = 'module:function' (forward(points, coeffs) -> u)"
        ) from None


def problem_forward(problem, points=None, **resolution) -> ForwardFn:
    """A reference forward model for a :class:`bpinn.models.problem.Problem`.

    Where the problem gives its own forward model (``[problem] reference``,
    ``Problem.reference``), that is it, at the points; it embodies the conditions and source
    itself, and ``resolution`` does not apply. Otherwise the built-in solver of the PDE: it reads
    the PDE (name and options), domain, source and conditions from the problem: an
    ``initial`` condition gives the initial data, ``periodic`` conditions make their axis
    periodic, and every other face needs a ``dirichlet`` condition with a value (a number or a
    function of the coordinate vector). Neumann conditions, Dirichlet data given as readings
    and faces without a condition have no reference counterpart and raise ``ValueError``.

    Parameters
    ----------
    problem : Problem
        The validated inverse problem.
    points : array of shape (num_points, ndim), optional
        Where to predict; default the observation points ``problem.observations.coords``.
    **resolution
        ``method``, ``grid_shape``, ``num_cells``, ``num_steps``: see
        :meth:`ReferenceSolver.forward`.

    Returns
    -------
    callable
        ``forward(coeffs) -> u`` at the points (for a system, one column per output).
    """
    domain = problem.domain
    if points is None:
        points = _observation_points(problem)
    if problem.reference is not None:
        # the user's own forward model ([problem] reference) stands in for any built-in solver
        at = jnp.asarray(_check_points(points, domain, problem.pde.name))
        user = problem.reference
        # (points,), or (points, outputs) for a system
        shape = (at.shape[0],) + ((len(problem.pde.outputs),) if problem.pde.is_system else ())
        return lambda coeffs: jnp.reshape(jnp.asarray(user(at, coeffs)), shape)
    fields = [n for n, q in problem.coefficients.items() if isinstance(q, GaussianProcessField)]
    if fields:
        raise ValueError(f"the built-in reference solvers take constant coefficients; "
                         f"{', '.join(fields)} is a coefficient field. Give your own solver as "
                         "[problem] reference = 'module:function' (forward(points, coeffs), "
                         "where coeffs[name] is the field as a function of one point)")
    unknown = [c.unknown for c in problem.conditions if c.unknown is not None]
    if unknown:
        raise ValueError(f"the built-in reference solvers take known boundary and initial "
                         f"values; {', '.join(unknown)} is an unknown condition value. Give "
                         "your own solver as [problem] reference = 'module:function' "
                         "(forward(points, coeffs), where coeffs[name] is the value: a number, "
                         "or for a field a function of one point)")
    solver = reference_solver(problem.pde.name)
    kinds = ["dirichlet"] * domain.space_dims
    face_values: dict[tuple[int, int], object] = {}
    initial = None
    space_names = domain.coord_names[: domain.space_dims]
    for cond in problem.conditions:
        if cond.kind == "initial":
            initial = cond.value
        elif cond.kind == "periodic":
            kinds[space_names.index(cond.boundary)] = "periodic"
        elif cond.kind == "dirichlet" and cond.points is None:
            for face in _faces(cond.boundary, space_names):
                face_values[face] = cond.value
        else:
            raise ValueError(
                f"problem_forward: a {cond.kind} condition"
                f"{' given as readings' if cond.kind == 'dirichlet' else ''} has no reference "
                "solver counterpart; reference solvers take periodic faces, Dirichlet values "
                "and an initial condition"
            )
    missing = [
        f"{space_names[axis]}_{'max' if side else 'min'}"
        for axis, kind in enumerate(kinds) if kind == "dirichlet"
        for side in (0, 1) if (axis, side) not in face_values
    ]
    if missing:
        raise ValueError(
            f"problem_forward: face(s) {missing} have no condition; a reference solver needs a "
            "Dirichlet value or a periodic condition on every face"
        )
    if domain.space_dims == 1:
        boundary_values = (face_values.get((0, 0), 0.0), face_values.get((0, 1), 0.0))
    else:
        values = list(face_values.values())
        if not all(_is_constant(v) for v in values) or len({float(v) for v in values}) > 1:
            raise ValueError(
                "problem_forward: in 2-D space the reference solvers need one constant Dirichlet "
                f"value on every Dirichlet face, got {values}"
            )
        boundary_values = float(values[0]) if values else 0.0
    source = None if problem.source is zero_source else problem.source
    return solver.forward(
        domain, points, initial=initial, boundary=tuple(kinds), boundary_values=boundary_values,
        source=source, options=problem.pde.options, **resolution,
    )


def _faces(boundary: str, space_names) -> list[tuple[int, int]]:
    if boundary == "all":
        return [(axis, side) for axis in range(len(space_names)) for side in (0, 1)]
    for axis, name in enumerate(space_names):
        for side, word in enumerate(("min", "max")):
            if boundary == f"{name}_{word}":
                return [(axis, side)]
    raise ValueError(f"problem_forward: unknown boundary {boundary!r}")


def _observation_points(problem) -> np.ndarray:
    coords = getattr(problem.observations, "coords", None)
    if coords is None:
        raise ValueError(
            "problem_forward: pass points=...; the problem's observations have no 'coords' "
            f"({type(problem.observations).__name__})"
        )
    return np.asarray(coords, dtype=float)
