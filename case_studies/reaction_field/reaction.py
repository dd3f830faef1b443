"""lambda u'' - k(x) u = f on [0, 1], u(0) = u(1) = 0, with the reaction rate k(x) an unknown
field.

``operator`` is the equation for the B-PINN (``coeffs["k"]`` is the field's value at the point);
``source`` the known right-hand side; ``reference`` a finite-difference solver of the same
boundary-value problem, the forward model of the classical (gold-standard) inversion; ``k_true``
the reaction rate the data were made with (make_data.py: u = sin(pi x)).
"""

import jax
import jax.numpy as jnp

from bpinn.models.pdes import second_partial

LAMBDA = 0.1
GRID = 201  # finite-difference nodes of the reference solver, boundaries included


def operator(u_fn, z, coeffs):
    return LAMBDA * second_partial(u_fn, z, 0) - coeffs["k"] * u_fn(z)


def _k(x):
    return 0.1 + jnp.exp(-0.5 * ((x - 0.5) / 0.15) ** 2)


def _u(x):
    return jnp.sin(jnp.pi * x)


def k_true(z):
    """The reaction rate the data were made with, at point z ([truth] k)."""
    return _k(z[0])


def source(z):
    """f = lambda u'' - k u for the true u and k: f is known, k is not."""
    x = z[0]
    return -(LAMBDA * jnp.pi**2 + _k(x)) * _u(x)


def reference(points, coeffs):
    """u at ``points`` for the coefficient field ``coeffs["k"]``: second-order central
    differences on GRID nodes, linear interpolation between them."""
    x = jnp.linspace(0.0, 1.0, GRID)
    h = x[1] - x[0]
    inner = x[1:-1]
    k = jax.vmap(lambda s: coeffs["k"](jnp.atleast_1d(s)))(inner)
    f = jax.vmap(lambda s: source(jnp.atleast_1d(s)))(inner)
    n = inner.size
    main = -2.0 * LAMBDA / h**2 - k
    off = jnp.full(n - 1, LAMBDA / h**2)
    matrix = jnp.diag(main) + jnp.diag(off, 1) + jnp.diag(off, -1)
    u = jnp.concatenate([jnp.zeros(1), jnp.linalg.solve(matrix, f), jnp.zeros(1)])
    return jnp.interp(points[:, 0], x, u)
