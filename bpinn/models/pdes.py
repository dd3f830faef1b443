"""Pointwise derivative helpers and the built-in PDE operators.

Every operator here acts on one point: ``operator(u_fn, z, coeffs) -> scalar`` with
``u_fn: (ndim,) -> scalar`` and ``z`` of shape ``(ndim,)`` ordered ``(x[, y][, t])``.
Batch with ``jax.vmap`` outside. Derivatives are taken with ``jax.jvp`` along unit vectors,
so a second partial costs two forward passes and no Hessian is ever formed.

The factories return :class:`bpinn.models.problem.PDE` objects whose ``operator`` is the
differential part ``L[u]`` of ``L[u] = f``; the source ``f`` (zero by default) is supplied
separately and subtracted by :func:`bpinn.models.problem.residual`.

A coefficient may be an unknown field (``bpinn.models.fields``): ``coeffs[name]`` is then its
value at ``z`` and ``coeffs["fields"][name]`` the function. The diffusion terms of ``heat``,
``poisson``, ``reaction_diffusion`` and ``burgers`` then take the divergence form
``div(c grad u) = c lap(u) + grad c . grad u``; with a number the two forms agree.

Examples
--------
A custom operator written with the helpers, here ``u_t - D * lap(u) + a * u``:

>>> import jax.numpy as jnp
>>> from bpinn.models.problem import PDE
>>> def damped_heat(u_fn, z, coeffs):
...     return (partial(u_fn, z, 1) - coeffs["D"] * laplacian(u_fn, z, 1)
...             + coeffs["a"] * u_fn(z))
>>> pde = PDE("damped_heat", ("D", "a"), damped_heat, "u_t = D * (u_xx) - a * u + f")
>>> u_fn = lambda z: jnp.exp(-(0.5 + 2.0) * z[1]) * jnp.sin(z[0])  # exact for D=0.5, a=2
>>> r = pde.operator(u_fn, jnp.array([0.3, 0.2]), {"D": 0.5, "a": 2.0})
>>> bool(abs(r) < 1e-6)
True
"""

from __future__ import annotations

import operator as _operator
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from bpinn.models.fields import FIELDS_KEY
from bpinn.models.problem import PDE, Domain, SolutionFn

__all__ = [
    "BUILTIN_PDES",
    "REACTION_TERMS",
    "advection",
    "burgers",
    "derivative",
    "gradient",
    "heat",
    "laplacian",
    "make_pde",
    "partial",
    "poisson",
    "reaction_diffusion",
    "second_partial",
]


# ---------------------------------------------------------------------------------------------
# Derivative helpers
# ---------------------------------------------------------------------------------------------


def _as_point(z, caller: str) -> jnp.ndarray:
    z = jnp.asarray(z)
    if z.ndim != 1:
        raise ValueError(
            f"{caller}: z must be a single point of shape (ndim,), got shape {z.shape}; "
            "batch over points with jax.vmap outside"
        )
    return z


def _check_index(i, ndim: int, caller: str) -> int:
    if isinstance(i, bool):
        raise TypeError(f"{caller}: i must be an int, got {i!r}")
    try:
        i = _operator.index(i)
    except TypeError:
        raise TypeError(
            f"{caller}: i must be an int coordinate index, got {type(i).__name__} {i!r}"
        ) from None
    if not 0 <= i < ndim:
        raise ValueError(
            f"{caller}: coordinate index i must satisfy 0 <= i < {ndim} for a point with "
            f"{ndim} coordinates, got {i}"
        )
    return i


def _unit(z: jnp.ndarray, i: int) -> jnp.ndarray:
    return jnp.zeros_like(z).at[i].set(1)


def _directional(fn, e):
    """The derivative of ``fn`` along ``e``, as a function of the point (one forward pass)."""
    return lambda w: jax.jvp(fn, (w,), (e,))[1]


def gradient(u_fn: SolutionFn, z) -> jnp.ndarray:
    """Gradient of a scalar field at one point, by reverse mode.

    Parameters
    ----------
    u_fn : callable
        ``u_fn(z) -> scalar`` with ``z`` of shape ``(ndim,)``.
    z : array of shape (ndim,)
        The point, coordinates ordered ``(x[, y][, t])``.

    Returns
    -------
    array of shape (ndim,)
        ``(du/dz_0, ..., du/dz_{ndim-1})``, time derivative included when ``z`` has a time
        coordinate.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> gradient(lambda z: z[0] ** 2 * z[1], jnp.array([3.0, 2.0])).tolist()
    [12.0, 9.0]
    """
    z = _as_point(z, "gradient")
    return jax.grad(u_fn)(z)


def partial(u_fn: SolutionFn, z, i: int) -> jnp.ndarray:
    """First partial derivative ``du/dz_i`` at one point, by one forward-mode pass.

    Parameters
    ----------
    u_fn : callable
        ``u_fn(z) -> scalar`` with ``z`` of shape ``(ndim,)``.
    z : array of shape (ndim,)
        The point.
    i : int
        Coordinate index, ``0 <= i < ndim`` (use ``domain.time_index`` for ``u_t``).

    Returns
    -------
    scalar array

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> float(partial(lambda z: z[0] ** 2 * z[1], jnp.array([3.0, 2.0]), 1))
    9.0
    """
    z = _as_point(z, "partial")
    i = _check_index(i, z.shape[0], "partial")
    return jax.jvp(u_fn, (z,), (_unit(z, i),))[1]


def second_partial(u_fn: SolutionFn, z, i: int) -> jnp.ndarray:
    """Unmixed second partial derivative ``d2u/dz_i^2`` at one point.

    Computed as a forward-over-forward directional derivative along the unit vector
    ``e_i``, so the cost is a small constant times one evaluation of ``u_fn`` and the
    Hessian is never formed.

    Parameters
    ----------
    u_fn : callable
        ``u_fn(z) -> scalar`` with ``z`` of shape ``(ndim,)``.
    z : array of shape (ndim,)
        The point.
    i : int
        Coordinate index, ``0 <= i < ndim``.

    Returns
    -------
    scalar array

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> float(second_partial(lambda z: z[0] ** 3 * z[1], jnp.array([2.0, 5.0]), 0))
    60.0
    """
    z = _as_point(z, "second_partial")
    i = _check_index(i, z.shape[0], "second_partial")
    e = _unit(z, i)
    return _directional(_directional(u_fn, e), e)(z)


def derivative(u_fn: SolutionFn, z, *axes: int) -> jnp.ndarray:
    """Any partial derivative at one point: ``d^n u / dz_{axes[0]} ... dz_{axes[n-1]}``.

    For the third and fourth derivatives of dispersive and beam equations (KdV's ``u_xxx``,
    Kuramoto-Sivashinsky's and Euler-Bernoulli's ``u_xxxx``) and mixed terms such as ``u_xy``
    or ``u_xt``. One forward-mode pass per axis, nested; no Hessian or higher tensor is
    formed. XLA removes the repeated terms of the nested passes, so the cost grows about
    linearly in the order (the weights' gradient of u_xxxx costs 4-6 plain forward passes;
    Taylor mode, ``jax.experimental.jet``, is no faster: docs/benchmarks.md). For a system
    every output is differentiated at once.

    Parameters
    ----------
    u_fn : callable
        ``u_fn(z) -> scalar`` (or one value per output) with ``z`` of shape ``(ndim,)``.
    z : array of shape (ndim,)
        The point.
    *axes : int
        The coordinate index of each differentiation, in any order (they commute); at least
        one.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> u = lambda z: z[0] ** 4 * z[1] ** 2
    >>> float(derivative(u, jnp.array([1.0, 3.0]), 0, 0, 0))  # 24 x y^2
    216.0
    >>> float(derivative(u, jnp.array([1.0, 3.0]), 0, 1))  # 8 x^3 y
    24.0
    """
    z = _as_point(z, "derivative")
    if not axes:
        raise ValueError("derivative: name at least one axis, e.g. derivative(u_fn, z, 0, 0) "
                         "for u_xx")
    fn = u_fn
    for i in axes:
        fn = _directional(fn, _unit(z, _check_index(i, z.shape[0], "derivative")))
    return fn(z)


def laplacian(u_fn: SolutionFn, z, space_dims: int) -> jnp.ndarray:
    """Spatial Laplacian: the sum of ``d2u/dz_i^2`` over the first ``space_dims`` coordinates.

    Coordinates after the spatial ones (time) are left out, so for ``z = (x, y, t)`` and
    ``space_dims=2`` this is ``u_xx + u_yy``.

    Parameters
    ----------
    u_fn : callable
        ``u_fn(z) -> scalar`` with ``z`` of shape ``(ndim,)``.
    z : array of shape (ndim,)
        The point.
    space_dims : int
        Number of leading spatial coordinates, ``1 <= space_dims <= ndim``
        (``domain.space_dims``).

    Returns
    -------
    scalar array

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> u = lambda z: z[0] ** 2 + 3 * z[1] ** 2 + z[2] ** 2  # (x, y, t)
    >>> float(laplacian(u, jnp.array([1.0, 1.0, 1.0]), 2))
    8.0
    """
    z = _as_point(z, "laplacian")
    ndim = z.shape[0]
    if isinstance(space_dims, bool) or not isinstance(space_dims, int):
        raise TypeError(f"laplacian: space_dims must be an int, got {space_dims!r}")
    if not 1 <= space_dims <= ndim:
        raise ValueError(
            f"laplacian: space_dims must satisfy 1 <= space_dims <= {ndim} for a point "
            f"with {ndim} coordinates, got {space_dims}"
        )
    total = second_partial(u_fn, z, 0)
    for i in range(1, space_dims):
        total = total + second_partial(u_fn, z, i)
    return total


# ---------------------------------------------------------------------------------------------
# Validation shared by the factories
# ---------------------------------------------------------------------------------------------


def _check_domain(name: str, domain) -> None:
    if not isinstance(domain, Domain):
        raise TypeError(
            f"{name}: domain must be a bpinn.models.problem.Domain, "
            f"got {type(domain).__name__} {domain!r}"
        )


def _require_time(name: str, domain: Domain) -> None:
    if not domain.has_time:
        raise ValueError(
            f"{name}: the PDE is time-dependent and needs a domain with a time interval, "
            f"e.g. Domain(space=..., time=(t0, t1)); got steady {domain!r}"
        )


def _require_steady(name: str, domain: Domain, hint: str) -> None:
    if domain.has_time:
        raise ValueError(
            f"{name}: the PDE is steady and needs a domain without time (time=None); "
            f"got {domain!r}. {hint}"
        )


def _check_options(name: str, options: Mapping[str, object], defaults: Mapping[str, object]):
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        valid = ", ".join(repr(k) for k in defaults) if defaults else "none"
        raise ValueError(f"{name}: unknown option(s) {unknown}; valid options: {valid}")
    return {**defaults, **options}


def _coeff(coeffs: Mapping[str, jnp.ndarray], key: str, name: str, names: tuple[str, ...]):
    try:
        return coeffs[key]
    except KeyError:
        raise KeyError(
            f"{name}: coefficient {key!r} missing from coeffs (got {sorted(coeffs)}); "
            f"this PDE needs {list(names)}"
        ) from None


def _diffusion(u_fn, z, coeffs, key: str, space_dims: int, name: str, names: tuple[str, ...]):
    """``div(c grad u)`` for the coefficient ``key``: ``c * lap(u)`` for a number, plus
    ``grad c . grad u`` when c is a coefficient field (``bpinn.models.fields``): a
    space-varying diffusivity or conductivity acts in divergence (conservation) form."""
    out = _coeff(coeffs, key, name, names) * laplacian(u_fn, z, space_dims)
    field = coeffs.get(FIELDS_KEY, {}).get(key)
    if field is not None:
        for i in range(space_dims):
            out = out + partial(field, z, i) * partial(u_fn, z, i)
    return out


def _lap_text(space_dims: int) -> str:
    return "(u_xx + u_yy)" if space_dims == 2 else "(u_xx)"


# ---------------------------------------------------------------------------------------------
# Built-in PDEs
# ---------------------------------------------------------------------------------------------


def heat(domain: Domain, **options) -> PDE:
    """Heat (diffusion) equation ``u_t = D * lap(u) + f``, operator ``u_t - D * lap(u)``.

    Parameters
    ----------
    domain : Domain
        1-D or 2-D space with time.
    **options
        None are accepted.

    Returns
    -------
    PDE
        Coefficient ``"D"`` (diffusivity).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pde = heat(Domain(space=((0.0, 1.0),), time=(0.0, 1.0)))
    >>> pde.equation
    'u_t = D * (u_xx) + f'
    >>> u = lambda z: jnp.exp(-0.1 * jnp.pi**2 * z[1]) * jnp.sin(jnp.pi * z[0])
    >>> bool(abs(pde.operator(u, jnp.array([0.3, 0.5]), {"D": 0.1})) < 1e-5)
    True
    """
    name = "heat"
    _check_domain(name, domain)
    opts = _check_options(name, options, {})
    _require_time(name, domain)
    sd, ti = domain.space_dims, domain.time_index
    names = ("D",)

    def operator(u_fn, z, coeffs):
        return partial(u_fn, z, ti) - _diffusion(u_fn, z, coeffs, "D", sd, name, names)

    return PDE(name, names, operator, f"u_t = D * {_lap_text(sd)} + f", opts)


def advection(domain: Domain, **options) -> PDE:
    """Linear advection with constant velocity.

    1-D: ``u_t + c * u_x = f``, coefficient ``"c"``.
    2-D: ``u_t + c_x * u_x + c_y * u_y = f``, coefficients ``"c_x"``, ``"c_y"``.

    Parameters
    ----------
    domain : Domain
        1-D or 2-D space with time.
    **options
        None are accepted.

    Returns
    -------
    PDE

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pde = advection(Domain(space=((0.0, 1.0),), time=(0.0, 1.0)))
    >>> pde.coefficient_names
    ('c',)
    >>> u = lambda z: jnp.sin(z[0] - 2.0 * z[1])
    >>> bool(abs(pde.operator(u, jnp.array([0.3, 0.5]), {"c": 2.0})) < 1e-6)
    True
    """
    name = "advection"
    _check_domain(name, domain)
    opts = _check_options(name, options, {})
    _require_time(name, domain)
    sd, ti = domain.space_dims, domain.time_index
    if sd == 1:
        names = ("c",)
        equation = "u_t + c * u_x = f"
    else:
        names = ("c_x", "c_y")
        equation = "u_t + c_x * u_x + c_y * u_y = f"

    def operator(u_fn, z, coeffs):
        out = partial(u_fn, z, ti)
        for i, key in enumerate(names):
            out = out + _coeff(coeffs, key, name, names) * partial(u_fn, z, i)
        return out

    return PDE(name, names, operator, equation, opts)


def poisson(domain: Domain, **options) -> PDE:
    """Steady diffusion with scalar conductivity: ``-div(k grad u) = -k * lap(u) = f``.

    Parameters
    ----------
    domain : Domain
        1-D or 2-D space, no time.
    **options
        None are accepted.

    Returns
    -------
    PDE
        Coefficient ``"k"`` (conductivity).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pde = poisson(Domain(space=((0.0, 1.0), (0.0, 1.0))))
    >>> pde.equation
    '-k * (u_xx + u_yy) = f'
    >>> float(pde.operator(lambda z: z[0] ** 2 + z[1] ** 2, jnp.array([0.2, 0.7]), {"k": 3.0}))
    -12.0
    """
    name = "poisson"
    _check_domain(name, domain)
    opts = _check_options(name, options, {})
    _require_steady(
        name, domain, "For time-dependent diffusion use 'heat' or 'reaction_diffusion'."
    )
    sd = domain.space_dims
    names = ("k",)

    def operator(u_fn, z, coeffs):
        return -_diffusion(u_fn, z, coeffs, "k", sd, name, names)

    def flux(u_fn, z, coeffs):  # -k u'' = -(k u')': F = k u', G = 0
        return _coeff(coeffs, "k", name, names) * partial(u_fn, z, 0), jnp.zeros(())

    return PDE(name, names, operator, f"-k * {_lap_text(sd)} = f", opts,
               flux=flux if sd == 1 else None)


# name -> (R(u), plain-text R(u)); R is applied pointwise to the scalar u.
REACTION_TERMS: dict[str, tuple[Callable[[jnp.ndarray], jnp.ndarray], str]] = {
    "logistic": (lambda u: u * (1 - u), "u * (1 - u)"),
    "cubic": (lambda u: u - u**3, "(u - u**3)"),
    "tanh": (jnp.tanh, "tanh(u)"),
    "linear": (lambda u: u, "u"),
    "quadratic": (lambda u: u**2, "u**2"),
}


def reaction_diffusion(domain: Domain, **options) -> PDE:
    """Reaction-diffusion ``u_t = D * lap(u) + k * R(u) + f`` (or its steady form).

    With time: operator ``u_t - D * lap(u) - k * R(u)``.
    Without time: operator ``-D * lap(u) - k * R(u)``.

    Parameters
    ----------
    domain : Domain
        1-D or 2-D space, with or without time.
    reaction : {"logistic", "cubic", "tanh", "linear", "quadratic"}, default "logistic"
        ``R(u)``: ``u * (1 - u)`` (Fisher-KPP), ``u - u**3`` (Allen-Cahn), ``tanh(u)``, ``u``,
        ``u**2`` (the B-PINN paper's 2-D diffusion-reaction case).

    Returns
    -------
    PDE
        Coefficients ``"D"`` (diffusivity) and ``"k"`` (reaction rate).

    Examples
    --------
    >>> pde = reaction_diffusion(Domain(space=((0.0, 1.0),), time=(0.0, 1.0)),
    ...                          reaction="cubic")
    >>> pde.equation
    'u_t = D * (u_xx) + k * (u - u**3) + f'
    >>> dict(pde.options)
    {'reaction': 'cubic'}
    """
    name = "reaction_diffusion"
    _check_domain(name, domain)
    opts = _check_options(name, options, {"reaction": "logistic"})
    reaction = opts["reaction"]
    if not isinstance(reaction, str) or reaction not in REACTION_TERMS:
        raise ValueError(
            f"{name}: option reaction must be one of {sorted(REACTION_TERMS)}, got {reaction!r}"
        )
    react_fn, react_text = REACTION_TERMS[reaction]
    sd, ti = domain.space_dims, domain.time_index
    names = ("D", "k")
    lap = _lap_text(sd)
    if domain.has_time:
        equation = f"u_t = D * {lap} + k * {react_text} + f"
    else:
        equation = f"-D * {lap} - k * {react_text} = f"

    def operator(u_fn, z, coeffs):
        k = _coeff(coeffs, "k", name, names)
        out = -_diffusion(u_fn, z, coeffs, "D", sd, name, names) - k * react_fn(u_fn(z))
        if ti is not None:
            out = out + partial(u_fn, z, ti)
        return out

    return PDE(name, names, operator, equation, opts)


def burgers(domain: Domain, **options) -> PDE:
    """1-D viscous Burgers equation ``u_t + u * u_x = nu * u_xx + f``.

    Parameters
    ----------
    domain : Domain
        1-D space with time.
    **options
        None are accepted.

    Returns
    -------
    PDE
        Coefficient ``"nu"`` (viscosity).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pde = burgers(Domain(space=((-1.0, 1.0),), time=(0.0, 1.0)))
    >>> # travelling front u = c - A tanh(A (x - c t) / (2 nu)) is an exact solution
    >>> c, A, nu = 0.5, 1.0, 0.2
    >>> u = lambda z: c - A * jnp.tanh(A * (z[0] - c * z[1]) / (2 * nu))
    >>> bool(abs(pde.operator(u, jnp.array([0.1, 0.3]), {"nu": nu})) < 1e-5)
    True
    """
    name = "burgers"
    _check_domain(name, domain)
    opts = _check_options(name, options, {})
    if domain.space_dims != 1 or not domain.has_time:
        raise ValueError(
            f"{name}: needs a 1-D space with time, e.g. Domain(space=((a, b),), "
            f"time=(t0, t1)); got {domain!r}"
        )
    ti = domain.time_index
    names = ("nu",)

    def operator(u_fn, z, coeffs):
        u, u_x = jax.jvp(u_fn, (z,), (_unit(z, 0),))
        return partial(u_fn, z, ti) + u * u_x - _diffusion(u_fn, z, coeffs, "nu", 1, name, names)

    return PDE(name, names, operator, "u_t + u * u_x = nu * u_xx + f", opts)


BUILTIN_PDES: dict[str, Callable[..., PDE]] = {
    "heat": heat,
    "advection": advection,
    "poisson": poisson,
    "reaction_diffusion": reaction_diffusion,
    "burgers": burgers,
}


def make_pde(name: str, domain: Domain, **options) -> PDE:
    """Build a built-in PDE by name.

    Parameters
    ----------
    name : str
        A key of :data:`BUILTIN_PDES`: ``"heat"``, ``"advection"``, ``"poisson"``,
        ``"reaction_diffusion"`` or ``"burgers"``.
    domain : Domain
        The problem's domain; each PDE checks it is compatible.
    **options
        Passed to the factory (e.g. ``reaction="cubic"``).

    Returns
    -------
    PDE

    Examples
    --------
    >>> pde = make_pde("poisson", Domain(space=((0.0, 1.0),)))
    >>> pde.name, pde.coefficient_names
    ('poisson', ('k',))
    """
    try:
        factory = BUILTIN_PDES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"make_pde: unknown PDE name {name!r}; valid names: {sorted(BUILTIN_PDES)}"
        ) from None
    return factory(domain, **options)
