"""Method-of-lines finite differences for 1-D time-dependent PDEs, second order in space and time.

Solvers, with the sign conventions and coefficient names of :mod:`bpinn.models.pdes`:

* :func:`heat_mol`: ``u_t = D u_xx + f(x, t)``;
* :func:`reaction_diffusion_mol`: ``u_t = D u_xx + k R(u) + f(x, t)`` with ``R`` one of
  ``bpinn.models.pdes.REACTION_TERMS`` (logistic, cubic, tanh, linear, quadratic);
* :func:`burgers_mol`: ``u_t + u u_x = nu u_xx + f(x, t)``;
* :func:`reaction_diffusion_steady`: the steady ``-D u_xx - k R(u) = f(x)``, by Newton's method
  on the same grid (no time stepping).

Space: a uniform grid of ``num_cells`` cells on ``[a, b]`` (:func:`mol_grid`), the three-point
Laplacian and, for Burgers, the central difference of the flux ``(u^2 / 2)_x``; both second
order. Boundaries: Dirichlet (values ``g_a(t)``, ``g_b(t)`` at the end nodes) or periodic.

Time: the IMEX trapezoidal rule (Crank-Nicolson for the diffusion, Heun for the reaction and
advection), on ``num_steps`` equal steps over ``time = (t0, t1)``::

    F       = (F(t^n) + F(t^{n+1})) / 2
    u*      = u^n + dt/2 A (u^n + u*)     + dt F + dt N(u^n, t^n)
    u^{n+1} = u^n + dt/2 A (u^n + u^{n+1}) + dt F + dt/2 (N(u^n, t^n) + N(u*, t^{n+1}))

with ``A`` the diffusion operator, ``F(t)`` the terms free of ``u`` (the source and the boundary
values' share of the Laplacian) and ``N`` the reaction and advection terms. Without ``N`` (heat)
this is plain Crank-Nicolson. Both stages are second order and their coupling conditions hold,
so the scheme is second order in ``dt``. Crank-Nicolson is A-stable, so diffusion sets no step
limit; the explicit terms do (roughly ``dt |u| / dx <~ 1`` for Burgers, ``dt k <~ 1`` for
reactions). ``A`` is circulant (periodic) or diagonalised by the type-I sine transform
(Dirichlet), so each implicit solve is two FFTs, exact and differentiable. The loop is a
``jax.lax.scan``: everything is jit-able and differentiable in the coefficients (reverse mode
stores all steps).

Output at arbitrary ``(x, t)``: every step is stored and the grid solution is interpolated by
4-point (cubic) Lagrange polynomials in x and in t. Interpolation errors are O(dx^4) and O(dt^4)
for smooth solutions, below the scheme's O(dx^2 + dt^2), and requested times (or nodes) that fall
on a step (or node) are reproduced exactly. Requested points must lie in ``[a, b] x [t0, t1]``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bpinn.models.pdes import REACTION_TERMS
from bpinn.reference._transforms import dst1

__all__ = [
    "BOUNDARY_KINDS",
    "burgers_mol",
    "heat_mol",
    "mol_grid",
    "reaction_diffusion_mol",
    "reaction_diffusion_steady",
]

BOUNDARY_KINDS = ("dirichlet", "periodic")

# source(x, t) -> array like x: vectorised over the grid nodes at one time.
SourceFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
# g(t) -> scalar: a Dirichlet boundary value as a function of time.
BoundaryValue = float | Callable[[jnp.ndarray], jnp.ndarray]


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _check_pair(pair, name: str, caller: str) -> tuple[float, float]:
    message = f"{caller}: {name} must be a pair (low, high) of finite floats with low < high"
    try:
        lo, hi = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{message}, got {pair!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{message}, got {pair!r}")
    return lo, hi


def _check_count(value, name: str, minimum: int, caller: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{caller}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_scalar(value, name: str, caller: str) -> jnp.ndarray:
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(f"{caller}: {name} must be a scalar, got shape {value.shape}")
    return value


def _check_points(points, interval, time, caller: str) -> jnp.ndarray:
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f"{caller}: points must have shape (num_points, 2) with columns (x, t), "
            f"got shape {points.shape}"
        )
    try:
        concrete = np.asarray(points)
    except jax.errors.TracerArrayConversionError:
        return points  # traced under jit: the caller vouches for the range
    for column, (lo, hi), name in ((0, interval, "x"), (1, time, "t")):
        tol = 1e-9 * (hi - lo)
        values = concrete[:, column]
        if values.size and (values.min() < lo - tol or values.max() > hi + tol):
            raise ValueError(
                f"{caller}: requested {name} values must lie in [{lo}, {hi}] (the solver "
                f"interpolates, it does not extrapolate); got [{values.min()}, {values.max()}]"
            )
    return points


def _boundary_functions(boundary_values, periodic: bool, caller: str):
    """``(g_a, g_b)``: functions of time for the two Dirichlet ends, or None if periodic."""
    if periodic:
        if boundary_values is not None:
            raise ValueError(
                f"{caller}: boundary_values are Dirichlet data; drop them for periodic "
                f"boundaries, got {boundary_values!r}"
            )
        return None
    if boundary_values is None:
        boundary_values = 0.0
    if not isinstance(boundary_values, tuple | list):
        boundary_values = (boundary_values, boundary_values)
    if len(boundary_values) != 2:
        raise ValueError(
            f"{caller}: boundary_values must be one value for both ends or a pair (g_a, g_b); "
            f"each a number or a function g(t) -> scalar; got {boundary_values!r}"
        )

    def as_function(value, end):
        if callable(value):
            return value
        value = _check_scalar(value, f"boundary value at {end}", caller)
        return lambda t: value

    return as_function(boundary_values[0], "x = a"), as_function(boundary_values[1], "x = b")


# ---------------------------------------------------------------------------------------------
# Grid, interpolation
# ---------------------------------------------------------------------------------------------


def mol_grid(interval, num_cells: int, boundary: str = "dirichlet") -> np.ndarray:
    """Nodes of the finite-difference grid: ``a + j (b - a) / num_cells``.

    Parameters
    ----------
    interval : (a, b)
        The spatial interval (length units).
    num_cells : int
        Number of cells (``>= 4``).
    boundary : "dirichlet" or "periodic"
        Dirichlet grids include both ends (``num_cells + 1`` nodes); periodic grids stop before
        ``b``, which is ``a`` again (``num_cells`` nodes).

    Returns
    -------
    numpy array
        Node coordinates, on which array-valued ``initial`` data must be sampled.

    Examples
    --------
    >>> mol_grid((0.0, 1.0), 4).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> mol_grid((0.0, 1.0), 4, "periodic").tolist()
    [0.0, 0.25, 0.5, 0.75]
    """
    caller = "mol_grid"
    a, b = _check_pair(interval, "interval", caller)
    num_cells = _check_count(num_cells, "num_cells", 4, caller)
    if boundary not in BOUNDARY_KINDS:
        raise ValueError(f"{caller}: boundary must be one of {BOUNDARY_KINDS}, got {boundary!r}")
    num_nodes = num_cells if boundary == "periodic" else num_cells + 1
    return a + (b - a) * np.arange(num_nodes) / num_cells


def _cubic_stencil(position: jnp.ndarray, num_nodes: int, periodic: bool):
    """Indices and weights of 4-point Lagrange interpolation at fractional node positions.

    The stencil is centred (nodes ``floor(p) - 1 .. floor(p) + 2``), shifted inwards at the
    ends of a non-periodic grid and wrapped around on a periodic one.
    """
    base = jnp.floor(position).astype(jnp.int32) - 1
    if not periodic:
        base = jnp.clip(base, 0, num_nodes - 4)
    s = position - base
    weights = jnp.stack(
        [
            -(s - 1) * (s - 2) * (s - 3) / 6,
            s * (s - 2) * (s - 3) / 2,
            -s * (s - 1) * (s - 3) / 2,
            s * (s - 1) * (s - 2) / 6,
        ],
        axis=-1,
    )
    index = base[:, None] + jnp.arange(4)
    if periodic:
        index = index % num_nodes
    return index, weights


# ---------------------------------------------------------------------------------------------
# The integrator
# ---------------------------------------------------------------------------------------------


def _integrate(
    points,
    diffusivity,
    physics_fn,
    initial,
    *,
    interval,
    time,
    boundary,
    boundary_values,
    source,
    num_cells,
    num_steps,
    caller,
):
    """Solve ``u_t = diffusivity u_xx + physics_fn(padded u) + source`` and sample at points.

    ``physics_fn(padded)`` gets the unknowns with one neighbour added at each end (the boundary
    value, or the periodic image) and returns the explicit terms at the unknowns; None for a
    linear problem (then every step is plain Crank-Nicolson).
    """
    a, b = _check_pair(interval, "interval", caller)
    t0, t1 = _check_pair(time, "time", caller)
    if boundary not in BOUNDARY_KINDS:
        raise ValueError(f"{caller}: boundary must be one of {BOUNDARY_KINDS}, got {boundary!r}")
    num_cells = _check_count(num_cells, "num_cells", 4, caller)
    num_steps = _check_count(num_steps, "num_steps", 3, caller)
    points = _check_points(points, (a, b), (t0, t1), caller)
    diffusivity = _check_scalar(diffusivity, "the diffusivity", caller)
    periodic = boundary == "periodic"
    ends = _boundary_functions(boundary_values, periodic, caller)

    nodes = mol_grid((a, b), num_cells, boundary)
    unknown_nodes = jnp.asarray(nodes if periodic else nodes[1:-1])
    dx = (b - a) / num_cells
    dt = (t1 - t0) / num_steps

    if callable(initial):
        u0 = jnp.asarray(initial(unknown_nodes))
        if u0.shape != unknown_nodes.shape:
            raise ValueError(
                f"{caller}: initial must be vectorised, returning shape {unknown_nodes.shape} "
                f"for nodes of shape {unknown_nodes.shape}; got shape {u0.shape}"
            )
    else:
        u0 = jnp.asarray(initial)
        if u0.shape != nodes.shape:
            raise ValueError(
                f"{caller}: initial samples must have shape {nodes.shape}, one per node of "
                f"mol_grid(interval, {num_cells}, {boundary!r}); got shape {u0.shape}"
            )
        if not periodic:
            u0 = u0[1:-1]  # the end values come from boundary_values
    dtype = jnp.result_type(u0, diffusivity, float)
    u0 = u0.astype(dtype)

    # Eigenvalues of the three-point Laplacian in the basis that diagonalises it.
    if periodic:
        modes = np.arange(num_cells // 2 + 1)
        eigenvalues = -4.0 / dx**2 * np.sin(np.pi * modes / num_cells) ** 2

        def transform(v):
            return jnp.fft.rfft(v)

        def inverse(v_hat):
            return jnp.fft.irfft(v_hat, n=num_cells)
    else:
        modes = np.arange(1, num_cells)
        eigenvalues = -4.0 / dx**2 * np.sin(0.5 * np.pi * modes / num_cells) ** 2

        def transform(v):
            return dst1(v)

        def inverse(v_hat):
            return dst1(v_hat) * (2.0 / num_cells)

    half_step = 0.5 * dt * diffusivity * jnp.asarray(eigenvalues)
    explicit_factor = 1.0 + half_step
    implicit_factor = 1.0 / (1.0 - half_step)

    def pad(u, t):
        if periodic:
            return jnp.concatenate([u[-1:], u, u[:1]])
        g_a, g_b = ends
        return jnp.concatenate([jnp.reshape(g_a(t), (1,)), u, jnp.reshape(g_b(t), (1,))])

    def forcing(t):
        # Terms free of u: the source, and the boundary values' share of the Laplacian. Both
        # stages take their trapezoidal average, as Crank-Nicolson does for the diffusion; an
        # explicit (stage-order one) treatment would leave an O(dt) error in the predictor next
        # to the boundary, which the stiffness D dt / dx^2 turns into a visible order loss.
        out = jnp.zeros_like(u0)
        if source is not None:
            out = out + source(unknown_nodes, t)
        if not periodic:
            g_a, g_b = ends
            out = out.at[0].add(diffusivity * g_a(t) / dx**2)
            out = out.at[-1].add(diffusivity * g_b(t) / dx**2)
        return out

    def explicit_terms(u, t):
        return physics_fn(pad(u, t).astype(dtype))

    def step(u, n):
        t = t0 + n * dt
        base_hat = explicit_factor * transform(u) + 0.5 * dt * transform(
            forcing(t) + forcing(t + dt)
        )
        if physics_fn is None:  # linear: plain Crank-Nicolson
            u_next = inverse(base_hat * implicit_factor)
            return u_next, u_next
        terms_hat = transform(explicit_terms(u, t))
        predicted = inverse((base_hat + dt * terms_hat) * implicit_factor)
        terms_hat = 0.5 * (terms_hat + transform(explicit_terms(predicted, t + dt)))
        u_next = inverse((base_hat + dt * terms_hat) * implicit_factor)
        return u_next, u_next

    if source is not None:
        probe = jnp.shape(source(unknown_nodes, jnp.asarray(t0, dtype)))
        if probe != unknown_nodes.shape:
            raise ValueError(
                f"{caller}: source(x, t) must be vectorised in x, returning shape "
                f"{unknown_nodes.shape} for nodes of that shape; got shape {probe}"
            )
    _, states = lax.scan(step, u0, jnp.arange(num_steps, dtype=dtype))
    states = jnp.concatenate([u0[None], states])
    if not periodic:
        times = t0 + dt * jnp.arange(num_steps + 1, dtype=dtype)
        g_a, g_b = (jax.vmap(g)(times).astype(dtype) for g in ends)
        states = jnp.concatenate([g_a[:, None], states, g_b[:, None]], axis=1)

    x_index, x_weights = _cubic_stencil((points[:, 0] - a) / dx, states.shape[1], periodic)
    t_index, t_weights = _cubic_stencil((points[:, 1] - t0) / dt, num_steps + 1, False)
    window = states[t_index[:, :, None], x_index[:, None, :]]  # (num_points, 4 times, 4 nodes)
    return jnp.einsum("mj,mi,mji->m", t_weights, x_weights, window)


def _central_difference_of_flux(padded, dx):
    """``(u^2 / 2)_x`` by central differences of the flux: second order and conservative."""
    return (padded[2:] ** 2 - padded[:-2] ** 2) / (4.0 * dx)


# ---------------------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------------------

_SHARED_PARAMETERS = """
    interval : (a, b), keyword-only
        The spatial interval (length units).
    time : (t0, t1), keyword-only
        Initial and final time; ``num_steps`` equal steps span it.
    boundary : "dirichlet" or "periodic", keyword-only, default "dirichlet"
    boundary_values : number, callable or pair, keyword-only, optional
        Dirichlet values ``g(t)``: one for both ends or a pair ``(g_a, g_b)``, each a number or
        a function of the (scalar) time; default zero. Must be omitted for periodic boundaries.
    source : callable, keyword-only, optional
        ``source(x, t)``: the forcing ``f``, vectorised over the array of unknown nodes ``x``
        at one time ``t``. It may close over traced coefficients.
    num_cells : int, keyword-only, default 128
        Grid cells; error O(num_cells^-2).
    num_steps : int, keyword-only, default 400
        Time steps; error O(num_steps^-2).
"""


def heat_mol(
    points,
    D,
    initial,
    *,
    interval,
    time,
    boundary: str = "dirichlet",
    boundary_values=None,
    source: SourceFn | None = None,
    num_cells: int = 128,
    num_steps: int = 400,
) -> jnp.ndarray:
    """Heat equation with a source, ``u_t = D u_xx + f(x, t)``, by Crank-Nicolson differences.

    Parameters
    ----------
    points : array of shape (num_points, 2)
        Columns ``(x, t)`` where the solution is wanted.
    D : scalar
        Diffusivity (length^2 / time). May be traced.
    initial : callable or array
        Vectorised ``initial(x)``, or samples on :func:`mol_grid` (Dirichlet: the end samples
        are ignored, the ends take ``boundary_values``).
    {shared}
    Returns
    -------
    jax.Array of shape (num_points,)

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> u = heat_mol(np.array([[0.5, 1.0]]), 0.1, lambda x: jnp.sin(jnp.pi * x),
    ...              interval=(0.0, 1.0), time=(0.0, 1.0), num_cells=64, num_steps=64)
    >>> bool(abs(u[0] - np.exp(-0.1 * np.pi**2)) < 1e-4)
    True
    """
    return _integrate(
        points, D, None, initial,
        interval=interval, time=time, boundary=boundary, boundary_values=boundary_values,
        source=source, num_cells=num_cells, num_steps=num_steps, caller="heat_mol",
    )


def reaction_diffusion_mol(
    points,
    D,
    k,
    initial,
    *,
    reaction: str = "logistic",
    interval,
    time,
    boundary: str = "dirichlet",
    boundary_values=None,
    source: SourceFn | None = None,
    num_cells: int = 128,
    num_steps: int = 400,
) -> jnp.ndarray:
    """Reaction-diffusion ``u_t = D u_xx + k R(u) + f(x, t)``, IMEX (CN + Heun) finite differences.

    Parameters
    ----------
    points : array of shape (num_points, 2)
        Columns ``(x, t)``.
    D : scalar
        Diffusivity (length^2 / time). May be traced.
    k : scalar
        Reaction rate (1 / time). May be traced.
    initial : callable or array
        Vectorised ``initial(x)``, or samples on :func:`mol_grid`.
    reaction : str, keyword-only, default "logistic"
        A key of ``bpinn.models.pdes.REACTION_TERMS``: ``"logistic"`` ``u (1 - u)``,
        ``"cubic"`` ``u - u^3``, ``"tanh"`` ``tanh(u)``, ``"linear"`` ``u``.
    {shared}
    Returns
    -------
    jax.Array of shape (num_points,)

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> u = reaction_diffusion_mol(np.array([[0.5, 1.0]]), 0.1, 1.0, jnp.zeros_like,
    ...     reaction="logistic", interval=(0.0, 1.0), time=(0.0, 1.0), boundary_values=1.0,
    ...     num_cells=32, num_steps=64)
    >>> bool(0.0 < u[0] < 1.0)
    True
    """
    caller = "reaction_diffusion_mol"
    if not isinstance(reaction, str) or reaction not in REACTION_TERMS:
        raise ValueError(
            f"{caller}: reaction must be one of {sorted(REACTION_TERMS)}, got {reaction!r}"
        )
    react = REACTION_TERMS[reaction][0]
    k = _check_scalar(k, "k", caller)
    return _integrate(
        points, D, lambda padded: k * react(padded[1:-1]), initial,
        interval=interval, time=time, boundary=boundary, boundary_values=boundary_values,
        source=source, num_cells=num_cells, num_steps=num_steps, caller=caller,
    )


def burgers_mol(
    points,
    nu,
    initial,
    *,
    interval,
    time,
    boundary: str = "dirichlet",
    boundary_values=None,
    source: SourceFn | None = None,
    num_cells: int = 128,
    num_steps: int = 400,
) -> jnp.ndarray:
    """Viscous Burgers ``u_t + u u_x = nu u_xx + f(x, t)``, IMEX (CN + Heun) finite differences.

    The advection is explicit: keep ``dt max|u| / dx`` below about 1, and resolve the viscous
    layer (``dx`` well below ``nu / max|u|``) or central differences will oscillate.

    Parameters
    ----------
    points : array of shape (num_points, 2)
        Columns ``(x, t)``.
    nu : scalar
        Viscosity (length^2 / time). May be traced.
    initial : callable or array
        Vectorised ``initial(x)``, or samples on :func:`mol_grid`.
    {shared}
    Returns
    -------
    jax.Array of shape (num_points,)

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> u = burgers_mol(np.array([[0.0, 0.5]]), 0.1, lambda x: -jnp.sin(jnp.pi * x),
    ...                 interval=(-1.0, 1.0), time=(0.0, 0.5), num_cells=64, num_steps=100)
    >>> bool(abs(u[0]) < 1e-12)  # odd initial data stay odd: u(0, t) = 0
    True
    """
    caller = "burgers_mol"
    a, b = _check_pair(interval, "interval", caller)
    dx = (b - a) / _check_count(num_cells, "num_cells", 4, caller)
    return _integrate(
        points, nu, lambda padded: -_central_difference_of_flux(padded, dx), initial,
        interval=interval, time=time, boundary=boundary, boundary_values=boundary_values,
        source=source, num_cells=num_cells, num_steps=num_steps, caller=caller,
    )


for _solver in (heat_mol, reaction_diffusion_mol, burgers_mol):
    _solver.__doc__ = _solver.__doc__.replace(
        "    {shared}\n", _SHARED_PARAMETERS.lstrip("\n") + "\n"
    )
del _solver


# ---------------------------------------------------------------------------------------------
# Steady problems: Newton's method on the same grid
# ---------------------------------------------------------------------------------------------

NEWTON_STEPS = 40
# Damped Newton: each step takes the best of these fractions of the Newton step (smallest
# residual), so a start far from the solution does not overshoot into another branch.
NEWTON_STEP_FRACTIONS = tuple(0.5**j for j in range(6))
# Converged when max |F| <= tol * scale, F the discrete residual in the units of f, scale the
# size of its terms (1 + max |f| + |k| max |R(u)| + 4 |D| max |u| / dx^2) and tol the larger of
# NEWTON_TOL and 1000 machine epsilons (float32 runs cannot reach 1e-8). Newton converges
# quadratically to round-off (1e-13 in float64 on the tests' cases); a start that does not
# converge stalls orders of magnitude above this.
NEWTON_TOL = 1e-8


def reaction_diffusion_steady(
    points,
    D,
    k,
    *,
    reaction: str = "logistic",
    interval,
    boundary_values=0.0,
    source: Callable[[jnp.ndarray], jnp.ndarray] | None = None,
    num_cells: int = 128,
    newton_steps: int = NEWTON_STEPS,
) -> jnp.ndarray:
    """Steady reaction-diffusion ``-D u_xx - k R(u) = f(x)`` with Dirichlet ends, by Newton.

    The three-point Laplacian on :func:`mol_grid` (second order), solved for the interior nodes
    by damped Newton from the straight line between the boundary values, with dense Jacobian
    solves. Derivatives in ``D``, ``k`` and whatever ``source`` closes over are implicit
    (``jax.lax.custom_root``): exact for the discrete solution and cheap, whatever the number of
    Newton steps. The solution is interpolated to ``points`` by 4-point Lagrange polynomials.

    A nonlinear boundary-value problem can have several solutions, or none: this returns the
    one Newton reaches from the straight line, and NaN everywhere when it has not converged
    (``NEWTON_TOL``), so that an inversion treats such coefficients as impossible rather than
    fitting an unconverged iterate.

    Parameters
    ----------
    points : array of shape (num_points, 1)
        Positions ``x`` in ``interval``.
    D, k : scalar
        Diffusivity and reaction rate. May be traced.
    reaction : str, keyword-only
        A key of ``bpinn.models.pdes.REACTION_TERMS``.
    interval : (a, b), keyword-only
    boundary_values : number or pair, keyword-only, default 0.0
        ``u(a)`` and ``u(b)`` (one number for both, or a pair). May be traced.
    source : callable, keyword-only, optional
        Vectorised ``f(x)`` over the grid nodes.
    num_cells : int, keyword-only, default 128
    newton_steps : int, keyword-only, default ``NEWTON_STEPS``

    Returns
    -------
    jax.Array of shape (num_points,)

    Examples
    --------
    >>> import numpy as np
    >>> u = reaction_diffusion_steady(np.array([[0.5]]), 1.0, 0.0, reaction="linear",
    ...                               interval=(0.0, 1.0), source=lambda x: 2.0 + 0.0 * x)
    >>> round(float(u[0]), 6)  # -u'' = 2, u(0) = u(1) = 0: u = x (1 - x)
    0.25
    """
    caller = "reaction_diffusion_steady"
    if not isinstance(reaction, str) or reaction not in REACTION_TERMS:
        raise ValueError(
            f"{caller}: reaction must be one of {sorted(REACTION_TERMS)}, got {reaction!r}"
        )
    react = REACTION_TERMS[reaction][0]
    a, b = _check_pair(interval, "interval", caller)
    num_cells = _check_count(num_cells, "num_cells", 4, caller)
    newton_steps = _check_count(newton_steps, "newton_steps", 1, caller)
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[1] != 1:
        raise ValueError(f"{caller}: points must have shape (num_points, 1) with column x, "
                         f"got shape {points.shape}")
    if not isinstance(boundary_values, tuple | list):
        boundary_values = (boundary_values, boundary_values)
    if len(boundary_values) != 2:
        raise ValueError(f"{caller}: boundary_values must be one number or a pair (u(a), u(b)), "
                         f"got {boundary_values!r}")
    g_a, g_b = (_check_scalar(v, "boundary value", caller) for v in boundary_values)
    D, k = _check_scalar(D, "D", caller), _check_scalar(k, "k", caller)

    x = jnp.asarray(mol_grid((a, b), num_cells))
    dx = (b - a) / num_cells
    interior = x[1:-1]
    f = jnp.zeros_like(interior) if source is None else jnp.asarray(source(interior))
    f = jnp.broadcast_to(f, interior.shape)
    second_difference = (jnp.diag(jnp.full(num_cells - 1, -2.0)) + jnp.eye(num_cells - 1, k=1)
                         + jnp.eye(num_cells - 1, k=-1)) / dx**2
    from_ends = jnp.zeros(num_cells - 1).at[0].set(g_a / dx**2).at[-1].add(g_b / dx**2)

    def residual(u):
        return -D * (second_difference @ u + from_ends) - k * react(u) - f

    def jacobian(u):
        return -D * second_difference - k * jnp.diag(jax.vmap(jax.grad(react))(u))

    fractions = jnp.asarray(NEWTON_STEP_FRACTIONS)

    def newton(residual_fn, start):
        def step(_, u):
            direction = jnp.linalg.solve(jacobian(u), residual_fn(u))
            candidates = u[None] - fractions[:, None] * direction[None]
            size = jax.vmap(lambda c: jnp.sum(residual_fn(c) ** 2))(candidates)
            size = jnp.where(jnp.isfinite(size), size, jnp.inf)
            return candidates[jnp.argmin(size)]

        return lax.fori_loop(0, newton_steps, step, start)

    def tangent_solve(linear_fn, rhs):
        return jnp.linalg.solve(jax.jacobian(linear_fn)(rhs), rhs)

    start = g_a + (g_b - g_a) * (interior - a) / (b - a)
    u = lax.custom_root(residual, start, newton, tangent_solve)
    scale = (1.0 + jnp.max(jnp.abs(f)) + jnp.abs(k) * jnp.max(jnp.abs(react(u)))
             + 4.0 * jnp.abs(D) * jnp.max(jnp.abs(u)) / dx**2)
    tol = max(NEWTON_TOL, 1000.0 * float(jnp.finfo(u.dtype).eps))
    converged = jnp.max(jnp.abs(residual(u))) <= tol * scale
    nodes = jnp.concatenate([g_a[None], u, g_b[None]])
    index, weights = _cubic_stencil((points[:, 0] - a) / dx, num_cells + 1, periodic=False)
    values = jnp.sum(nodes[index] * weights, axis=-1)
    return jnp.where(converged, values, jnp.nan)
