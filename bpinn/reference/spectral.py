"""Closed-form spectral solutions of linear constant-coefficient PDEs: no time stepping.

Each solver expands grid data in the modes that diagonalise its operator, multiplies every mode
by its exact factor (``exp(-D kappa^2 t)`` for heat, ``exp(-i c kappa t)`` for advection,
``1 / (k kappa^2)`` for Poisson, ...) and sums the series at the requested points. The result is
the exact solution of the PDE for the trigonometric interpolant of the data: exact to rounding
for band-limited data, spectrally accurate for smooth periodic data, and evaluated at arbitrary
points by summing the series (no grid interpolation). Every function is pure ``jax.numpy``:
jit-able, and differentiable in the coefficients, the data and the points.

Boundaries, chosen per spatial axis (``boundary="periodic"``, ``"dirichlet"`` or a tuple):

* ``"periodic"``: ``n`` nodes ``a + j L / n``, ``j = 0..n-1``, modes ``exp(i kappa (x - a))``
  with ``kappa = 2 pi m / L``, ``|m| <= n / 2``. For even ``n`` the Nyquist mode is split evenly
  between ``m = -n/2`` and ``m = +n/2`` (a cosine), so real data give a real interpolant and an
  advected Nyquist mode moves like every other mode.
* ``"dirichlet"``: ``n`` interior nodes ``a + j L / (n + 1)``, ``j = 1..n``, modes
  ``sin(kappa (x - a))`` with ``kappa = pi m / L``, ``m = 1..n``: ``u = 0`` at both ends, or the
  values given by ``boundary_values`` through a steady harmonic lift. Data that do not vanish at
  the ends (after the lift) converge only algebraically (Gibbs), as for any sine series.

:func:`spectral_grid` returns the nodes. Initial data and sources are given either as samples on
those nodes (an array of shape ``grid_shape``) or as a vectorised function ``f(x)`` / ``f(x, y)``
that is called once on the ``indexing="ij"`` mesh of the nodes.

Conventions and coefficient names follow :mod:`bpinn.models.pdes`:

* :func:`heat_spectral`: ``u_t = D lap(u)``, coefficient ``D``.
* :func:`advection_spectral`: ``u_t + c u_x = 0`` (1-D) or ``u_t + c_x u_x + c_y u_y = 0``
  (2-D), periodic.
* :func:`poisson_spectral`: ``-k lap(u) = f``, coefficient ``k``.
* :func:`schrodinger_spectral`: the linear Schrodinger equation ``i h_t + a lap(h) = 0``
  (``a = 0.5`` by default), complex. The nonlinear ``|h|^2 h`` term would need time stepping
  (split-step), so it is not provided.

Advection-diffusion is not a PDE of :mod:`bpinn.models.pdes`, so it has no solver here (its
multiplier would be ``exp((-i c kappa - D kappa^2) t)``).

Coordinates of ``points`` are ordered ``(x[, y][, t])`` as everywhere in bpinn.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

from bpinn.reference._transforms import dst1

__all__ = [
    "BOUNDARY_KINDS",
    "advection_spectral",
    "heat_spectral",
    "poisson_spectral",
    "schrodinger_spectral",
    "spectral_grid",
]

BOUNDARY_KINDS = ("periodic", "dirichlet")
DEFAULT_GRID_SIZE = 64

GridData = jnp.ndarray | np.ndarray | Callable[..., jnp.ndarray]


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _check_space(space, caller: str) -> tuple[tuple[float, float], ...]:
    """``(a, b)`` for 1-D or ``((a, b), (c, d))`` (as in ``Domain.space``) -> tuple of pairs."""
    message = (
        f"{caller}: space must be an interval (a, b) or a tuple of one or two intervals "
        f"((a, b)[, (c, d)]) with finite a < b, got {space!r}"
    )
    try:
        if len(space) == 2 and all(isinstance(v, numbers.Real) for v in space):
            space = (space,)
        pairs = tuple((float(lo), float(hi)) for lo, hi in space)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not 1 <= len(pairs) <= 2 or not all(
        np.isfinite(lo) and np.isfinite(hi) and lo < hi for lo, hi in pairs
    ):
        raise ValueError(message)
    return pairs


def _check_boundary(boundary, dims: int, caller: str) -> tuple[str, ...]:
    kinds = (boundary,) * dims if isinstance(boundary, str) else tuple(boundary)
    if len(kinds) != dims or any(kind not in BOUNDARY_KINDS for kind in kinds):
        raise ValueError(
            f"{caller}: boundary must be one of {BOUNDARY_KINDS} or a tuple of them with one "
            f"entry per spatial axis ({dims}), got {boundary!r}"
        )
    return kinds


def _check_grid_shape(grid_shape, dims: int, caller: str) -> tuple[int, ...] | None:
    if grid_shape is None:
        return None
    sizes = (grid_shape,) * dims if isinstance(grid_shape, numbers.Integral) else grid_shape
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = ()
    if len(sizes) != dims or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 2 for n in sizes
    ):
        raise ValueError(
            f"{caller}: grid_shape must be an int >= 2 or a tuple of {dims} such ints, "
            f"got {grid_shape!r}"
        )
    return tuple(int(n) for n in sizes)


def _check_points(points, num_columns: int, names: str, caller: str) -> jnp.ndarray:
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[1] != num_columns:
        raise ValueError(
            f"{caller}: points must have shape (num_points, {num_columns}) with columns "
            f"{names}, got shape {points.shape}"
        )
    return points


def _check_scalar(value, name: str, caller: str) -> jnp.ndarray:
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(f"{caller}: {name} must be a scalar, got shape {value.shape}")
    return value


def _column_names(dims: int, with_time: bool) -> str:
    names = ("x", "y")[:dims] + (("t",) if with_time else ())
    return "(" + ", ".join(names) + ")"


# ---------------------------------------------------------------------------------------------
# Grid, transforms, series
# ---------------------------------------------------------------------------------------------


def _axis_nodes(kind: str, n: int, interval: tuple[float, float]) -> np.ndarray:
    a, b = interval
    if kind == "periodic":
        return a + (b - a) * np.arange(n) / n
    return a + (b - a) * np.arange(1, n + 1) / (n + 1)


def spectral_grid(space, grid_shape, boundary="periodic") -> tuple[np.ndarray, ...]:
    """Nodes on which the spectral solvers take their data, one 1-D array per spatial axis.

    Parameters
    ----------
    space : (a, b) or tuple of (low, high) pairs
        The spatial box (physical length units), as in ``Domain.space``.
    grid_shape : int or tuple of int
        Number of nodes per axis (``>= 2``).
    boundary : "periodic", "dirichlet" or a tuple of them, one per axis
        Periodic axes get ``n`` nodes ``a + j L / n`` (``b`` excluded: it is ``a`` again);
        Dirichlet axes get ``n`` interior nodes ``a + j L / (n + 1)`` (both ends excluded).

    Returns
    -------
    tuple of numpy arrays
        The node coordinates of each axis; sample data on ``np.meshgrid(*nodes, indexing="ij")``.

    Examples
    --------
    >>> spectral_grid((0.0, 1.0), 4)[0].tolist()
    [0.0, 0.25, 0.5, 0.75]
    >>> spectral_grid((0.0, 1.0), 3, "dirichlet")[0].tolist()
    [0.25, 0.5, 0.75]
    """
    caller = "spectral_grid"
    pairs = _check_space(space, caller)
    kinds = _check_boundary(boundary, len(pairs), caller)
    sizes = _check_grid_shape(grid_shape, len(pairs), caller)
    if sizes is None:
        raise ValueError(f"{caller}: grid_shape must be given, got None")
    return tuple(_axis_nodes(*spec) for spec in zip(kinds, sizes, pairs, strict=True))


def _grid_values(data: GridData, pairs, kinds, grid_shape, name: str, caller: str):
    """Samples of ``data`` on the spectral grid, and the grid's nodes."""
    dims = len(pairs)
    sizes = _check_grid_shape(grid_shape, dims, caller)
    if callable(data):
        sizes = sizes or (DEFAULT_GRID_SIZE,) * dims
        nodes = tuple(_axis_nodes(*spec) for spec in zip(kinds, sizes, pairs, strict=True))
        mesh = [jnp.asarray(m) for m in np.meshgrid(*nodes, indexing="ij")]
        values = jnp.asarray(data(*mesh))
        if values.shape != sizes:
            raise ValueError(
                f"{caller}: {name} must be vectorised, returning an array of the mesh's shape "
                f"{sizes}; got shape {values.shape}"
            )
        return values, nodes
    values = jnp.asarray(data)
    if values.ndim != dims or min(values.shape) < 2:
        raise ValueError(
            f"{caller}: {name} samples must be a {dims}-D array with >= 2 nodes per axis (or a "
            f"function of the mesh), got shape {values.shape}"
        )
    if sizes is not None and values.shape != sizes:
        raise ValueError(
            f"{caller}: {name} samples have shape {values.shape} but grid_shape is {sizes}"
        )
    nodes = tuple(_axis_nodes(*spec) for spec in zip(kinds, values.shape, pairs, strict=True))
    return values, nodes


def _fourier_coefficients(values: jnp.ndarray, axis: int) -> jnp.ndarray:
    """Coefficients of ``exp(2 pi i m (x - a) / L)``, ordered ``m = -n//2 .. n//2``."""
    n = values.shape[axis]
    coefficients = jnp.fft.fftshift(jnp.fft.fft(values, axis=axis), axes=axis) / n
    if n % 2 == 0:
        # On the grid the Nyquist mode cannot be told from its mirror image: share it evenly
        # between m = -n/2 and +n/2, which keeps the interpolant real for real data.
        nyquist = 0.5 * lax.slice_in_dim(coefficients, 0, 1, axis=axis)
        rest = lax.slice_in_dim(coefficients, 1, n, axis=axis)
        coefficients = jnp.concatenate([nyquist, rest, nyquist], axis=axis)
    return coefficients


def _mode_coefficients(values: jnp.ndarray, kinds: Sequence[str]) -> jnp.ndarray:
    """Tensor-product mode coefficients of grid samples (complex)."""
    coefficients = values.astype(jnp.result_type(values, 1j))
    for axis, kind in enumerate(kinds):
        if kind == "periodic":
            coefficients = _fourier_coefficients(coefficients, axis)
        else:
            n = coefficients.shape[axis]
            coefficients = dst1(coefficients, axis) * (2.0 / (n + 1))
    return coefficients


def _wavenumbers(kind: str, n: int, interval: tuple[float, float]) -> np.ndarray:
    """Angular wavenumbers (radians per length unit) of the modes of one axis."""
    length = interval[1] - interval[0]
    if kind == "periodic":
        return 2.0 * np.pi * np.arange(-(n // 2), n // 2 + 1) / length
    return np.pi * np.arange(1, n + 1) / length


def _basis(kind: str, kappa: jnp.ndarray, offset: jnp.ndarray) -> jnp.ndarray:
    """Modes of one axis at the points: shape (num_points, num_modes)."""
    phase = offset[:, None] * kappa[None, :]
    if kind == "periodic":
        return jnp.exp(1j * phase)
    return jnp.sin(phase).astype(jnp.result_type(phase, 1j))


def _sum_modes(coefficients: jnp.ndarray, factors: Sequence[jnp.ndarray]) -> jnp.ndarray:
    """``sum_{i[,j]} c_{i[j]} F0[m, i] [F1[m, j]]`` without forming an (M, K0, K1) tensor."""
    if len(factors) == 1:
        return factors[0] @ coefficients
    return jnp.sum((factors[0] @ coefficients) * factors[1], axis=1)


def _harmonic_lift(boundary_values, pairs, kinds, caller: str):
    """A steady harmonic ``lift(*coords)`` carrying the Dirichlet values, or None.

    A constant (any dimension) or, in 1-D, the straight line through ``(a, g_a)`` and
    ``(b, g_b)``: both have zero Laplacian, so ``u - lift`` solves the same heat or Poisson
    equation with zero Dirichlet values.
    """
    if boundary_values is None:
        return None
    if "dirichlet" not in kinds:
        raise ValueError(
            f"{caller}: boundary_values are Dirichlet data, but no axis has a Dirichlet "
            f"boundary (boundary={kinds})"
        )
    if isinstance(boundary_values, tuple | list):
        if len(pairs) != 1 or len(boundary_values) != 2:
            raise ValueError(
                f"{caller}: a pair of boundary values (g_a, g_b) is supported in 1-D only; in "
                f"2-D give one constant for every Dirichlet face, got {boundary_values!r}"
            )
        (a, b), (g_a, g_b) = pairs[0], boundary_values
        g_a = _check_scalar(g_a, "boundary_values[0]", caller)
        g_b = _check_scalar(g_b, "boundary_values[1]", caller)
        return lambda x: g_a + (g_b - g_a) * (x - a) / (b - a)
    g = _check_scalar(boundary_values, "boundary_values", caller)
    return lambda *coords: jnp.broadcast_to(g, jnp.shape(coords[0]))


def _series_data(data, pairs, kinds, grid_shape, lift, name: str, caller: str):
    """Mode coefficients of ``data - lift`` and the wavenumbers of each axis."""
    values, nodes = _grid_values(data, pairs, kinds, grid_shape, name, caller)
    if lift is not None:
        mesh = [jnp.asarray(m) for m in np.meshgrid(*nodes, indexing="ij")]
        values = values - lift(*mesh)
    coefficients = _mode_coefficients(values, kinds)
    kappas = [
        jnp.asarray(_wavenumbers(kind, len(axis_nodes), interval))
        for kind, axis_nodes, interval in zip(kinds, nodes, pairs, strict=True)
    ]
    return coefficients, kappas


def _evolve(points, initial, axis_exponent, *, pairs, kinds, t0, grid_shape, lift, real, caller):
    """Exact evolution ``sum_modes c exp(sum_d axis_exponent(d, kappa_d) (t - t0)) basis``.

    ``axis_exponent(axis, kappa)`` is the part of a mode's growth rate (per time unit) due to
    one axis; the rates of the PDEs here are sums over axes, so each mode's factor is a product
    of per-axis factors and the series is summed axis by axis.
    """
    dims = len(pairs)
    points = _check_points(points, dims + 1, _column_names(dims, True), caller)
    coefficients, kappas = _series_data(initial, pairs, kinds, grid_shape, lift, "initial", caller)
    elapsed = points[:, dims] - t0
    factors = []
    for axis, (kind, kappa, (a, _)) in enumerate(zip(kinds, kappas, pairs, strict=True)):
        decay = jnp.exp(axis_exponent(axis, kappa)[None, :] * elapsed[:, None])
        factors.append(_basis(kind, kappa, points[:, axis] - a) * decay)
    u = _sum_modes(coefficients, factors)
    if real:
        u = jnp.real(u)
    if lift is not None:
        u = u + lift(*(points[:, axis] for axis in range(dims)))
    return u


# ---------------------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------------------


def heat_spectral(
    points,
    D,
    initial: GridData,
    *,
    space,
    boundary="periodic",
    boundary_values=None,
    t0: float = 0.0,
    grid_shape=None,
) -> jnp.ndarray:
    """Exact solution of the heat equation ``u_t = D lap(u)`` from grid data, at any points.

    Each mode decays as ``exp(-D |kappa|^2 (t - t0))``; for a sine mode on ``[a, b]`` that is
    ``exp(-D (m pi / L)^2 (t - t0))``.

    Parameters
    ----------
    points : array of shape (num_points, dims + 1)
        Columns ``(x[, y], t)`` in physical units. ``t >= t0`` is intended: for ``t < t0`` the
        high modes grow (the ill-posed backward heat equation).
    D : scalar
        Diffusivity (length^2 / time), as in ``bpinn.models.pdes.heat``. May be traced.
    initial : array of shape grid_shape, or callable
        ``u(., t0)`` sampled on :func:`spectral_grid` (Dirichlet axes: interior nodes only), or
        a vectorised ``initial(x[, y])`` evaluated there.
    space : (a, b) or tuple of (low, high) pairs, keyword-only
        The spatial box (1-D or 2-D).
    boundary : "periodic", "dirichlet" or tuple, keyword-only, default "periodic"
        Per-axis boundary kind.
    boundary_values : None, scalar or (g_a, g_b), keyword-only
        Constant Dirichlet values: one constant for every Dirichlet face, or in 1-D a pair for
        ``x = a`` and ``x = b`` (a steady linear lift). ``None`` means zero.
    t0 : float, keyword-only, default 0.0
        Initial time.
    grid_shape : int or tuple, keyword-only, optional
        Nodes per axis; inferred from array data, default 64 for callable data.

    Returns
    -------
    jax.Array of shape (num_points,)
        ``u`` at the points (real).

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> pts = np.array([[0.3, 0.5]])  # (x, t)
    >>> u = heat_spectral(pts, 0.1, lambda x: jnp.sin(jnp.pi * x), space=(0.0, 1.0),
    ...                   boundary="dirichlet", grid_shape=16)
    >>> bool(np.allclose(u, np.sin(0.3 * np.pi) * np.exp(-0.1 * np.pi**2 * 0.5)))
    True
    """
    caller = "heat_spectral"
    pairs = _check_space(space, caller)
    kinds = _check_boundary(boundary, len(pairs), caller)
    D = _check_scalar(D, "D", caller)
    lift = _harmonic_lift(boundary_values, pairs, kinds, caller)
    return _evolve(
        points, initial, lambda axis, kappa: -D * kappa**2,
        pairs=pairs, kinds=kinds, t0=t0, grid_shape=grid_shape, lift=lift, real=True,
        caller=caller,
    )


def advection_spectral(
    points, c, initial: GridData, *, space, t0: float = 0.0, grid_shape=None
) -> jnp.ndarray:
    """Exact solution of periodic linear advection: ``u(x, t) = u0(x - c (t - t0))``.

    ``u_t + c u_x = 0`` (1-D) or ``u_t + c_x u_x + c_y u_y = 0`` (2-D), as in
    ``bpinn.models.pdes.advection``; each Fourier mode is shifted exactly by the factor
    ``exp(-i c kappa (t - t0))``, so the trigonometric interpolant of the data is transported
    without any numerical dispersion or diffusion.

    Parameters
    ----------
    points : array of shape (num_points, dims + 1)
        Columns ``(x[, y], t)``.
    c : scalar (1-D) or pair (c_x, c_y) (2-D)
        Velocity (length / time). May be traced.
    initial : array of shape grid_shape, or callable
        ``u(., t0)`` on the periodic :func:`spectral_grid`, or a vectorised ``initial(x[, y])``.
    space : (a, b) or tuple of (low, high) pairs, keyword-only
        The periodic box.
    t0 : float, keyword-only, default 0.0
        Initial time.
    grid_shape : int or tuple, keyword-only, optional
        Nodes per axis; inferred from array data, default 64 for callable data.

    Returns
    -------
    jax.Array of shape (num_points,)

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> u0 = lambda x: jnp.cos(2 * jnp.pi * x)
    >>> u = advection_spectral(np.array([[0.1, 0.3]]), 0.5, u0, space=(0.0, 1.0), grid_shape=8)
    >>> bool(np.allclose(u, np.cos(2 * np.pi * (0.1 - 0.5 * 0.3))))
    True
    """
    caller = "advection_spectral"
    pairs = _check_space(space, caller)
    dims = len(pairs)
    velocity = jnp.atleast_1d(jnp.asarray(c))
    if velocity.shape != (dims,):
        raise ValueError(
            f"{caller}: c must be a scalar in 1-D or a pair (c_x, c_y) in 2-D; got shape "
            f"{np.shape(c)} for a {dims}-D space"
        )
    return _evolve(
        points, initial, lambda axis, kappa: -1j * velocity[axis] * kappa,
        pairs=pairs, kinds=("periodic",) * dims, t0=t0, grid_shape=grid_shape, lift=None,
        real=True, caller=caller,
    )


def schrodinger_spectral(
    points,
    initial: GridData,
    *,
    space,
    boundary="periodic",
    dispersion=0.5,
    t0: float = 0.0,
    grid_shape=None,
) -> jnp.ndarray:
    """Exact solution of the linear Schrodinger equation ``i h_t + a lap(h) = 0`` (complex).

    Each mode rotates as ``exp(-i a |kappa|^2 (t - t0))``; ``a = 0.5`` gives the free
    particle ``i h_t + 0.5 h_xx = 0``. The cubic (nonlinear) Schrodinger equation is not
    covered: its ``|h|^2 h`` term needs time stepping.

    Parameters
    ----------
    points : array of shape (num_points, dims + 1)
        Columns ``(x[, y], t)``.
    initial : complex array of shape grid_shape, or callable
        ``h(., t0)`` on :func:`spectral_grid`, or a vectorised ``initial(x[, y])``.
    space : (a, b) or tuple of (low, high) pairs, keyword-only
        The spatial box.
    boundary : "periodic", "dirichlet" or tuple, keyword-only, default "periodic"
        Per-axis boundary kind (Dirichlet: ``h = 0`` at the ends).
    dispersion : scalar, keyword-only, default 0.5
        The coefficient ``a`` (length^2 / time). May be traced.
    t0 : float, keyword-only, default 0.0
        Initial time.
    grid_shape : int or tuple, keyword-only, optional
        Nodes per axis; inferred from array data, default 64 for callable data.

    Returns
    -------
    jax.Array of shape (num_points,), complex

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> kappa, t = 2 * np.pi, 0.2  # plane wave: h = exp(i (kappa x - kappa^2 t / 2))
    >>> h = schrodinger_spectral(np.array([[0.3, t]]), lambda x: jnp.exp(1j * kappa * x),
    ...                          space=(0.0, 1.0), grid_shape=8)
    >>> bool(np.allclose(h, np.exp(1j * (kappa * 0.3 - kappa**2 * t / 2))))
    True
    """
    caller = "schrodinger_spectral"
    pairs = _check_space(space, caller)
    kinds = _check_boundary(boundary, len(pairs), caller)
    dispersion = _check_scalar(dispersion, "dispersion", caller)
    return _evolve(
        points, initial, lambda axis, kappa: -1j * dispersion * kappa**2,
        pairs=pairs, kinds=kinds, t0=t0, grid_shape=grid_shape, lift=None, real=False,
        caller=caller,
    )


def poisson_spectral(
    points,
    k,
    source: GridData,
    *,
    space,
    boundary="dirichlet",
    boundary_values=None,
    grid_shape=None,
) -> jnp.ndarray:
    """Spectral solution of ``-k lap(u) = f`` (``bpinn.models.pdes.poisson``) at any points.

    Each mode of ``f`` is divided by ``k |kappa|^2``. With every axis periodic the problem is
    solvable only for zero-mean ``f``: the mean of ``f`` is dropped and the solution returned
    has zero mean (it is defined up to a constant).

    Parameters
    ----------
    points : array of shape (num_points, dims)
        Columns ``(x[, y])``.
    k : scalar
        Conductivity (as in ``pdes.poisson``). May be traced.
    source : array of shape grid_shape, or callable
        ``f`` sampled on :func:`spectral_grid`, or a vectorised ``source(x[, y])``. On
        Dirichlet axes convergence is spectral when ``f`` and its even derivatives vanish at the
        ends, and algebraic otherwise.
    space : (a, b) or tuple of (low, high) pairs, keyword-only
        The spatial box.
    boundary : "periodic", "dirichlet" or tuple, keyword-only, default "dirichlet"
        Per-axis boundary kind.
    boundary_values : None, scalar or (g_a, g_b), keyword-only
        Constant Dirichlet values (see :func:`heat_spectral`); ``None`` means zero.
    grid_shape : int or tuple, keyword-only, optional
        Nodes per axis; inferred from array data, default 64 for callable data.

    Returns
    -------
    jax.Array of shape (num_points,)

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> f = lambda x: 2.0 * jnp.pi**2 * jnp.sin(jnp.pi * x)  # u = sin(pi x) for k = 2
    >>> u = poisson_spectral(np.array([[0.25]]), 2.0, f, space=(0.0, 1.0), grid_shape=8)
    >>> bool(np.allclose(u, np.sin(np.pi * 0.25)))
    True
    """
    caller = "poisson_spectral"
    pairs = _check_space(space, caller)
    dims = len(pairs)
    kinds = _check_boundary(boundary, dims, caller)
    k = _check_scalar(k, "k", caller)
    points = _check_points(points, dims, _column_names(dims, False), caller)
    lift = _harmonic_lift(boundary_values, pairs, kinds, caller)
    # The lift is harmonic, so it changes only the boundary data, never f.
    coefficients, kappas = _series_data(source, pairs, kinds, grid_shape, None, "source", caller)
    squared = sum(
        jnp.reshape(kappa**2, (-1,) + (1,) * (dims - 1 - axis))
        for axis, kappa in enumerate(kappas)
    )
    # Only the all-periodic mean mode has kappa = 0; it is dropped (zero-mean solution).
    safe = jnp.where(squared > 0, squared, 1.0)
    coefficients = jnp.where(squared > 0, coefficients / (k * safe), 0.0)
    factors = [
        _basis(kind, kappa, points[:, axis] - a)
        for axis, (kind, kappa, (a, _)) in enumerate(zip(kinds, kappas, pairs, strict=True))
    ]
    u = jnp.real(_sum_modes(coefficients, factors))
    if lift is not None:
        u = u + lift(*(points[:, axis] for axis in range(dims)))
    return u
