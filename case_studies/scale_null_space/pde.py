"""Steady diffusion with an unknown source strength: -k u'' = q f(x), f(x) = pi^2 sin(pi x).

With u(0) = u(1) = 0 the solution is u = (q / k) sin(pi x): the readings see only the ratio q / k.
"""

import jax.numpy as jnp

from bpinn.models.pdes import second_partial


def operator(u_fn, z, coeffs):
    """L[u](z) = -k u_xx - q f(x); the PDE is L[u] = 0."""
    f = jnp.pi**2 * jnp.sin(jnp.pi * z[0])
    return -coeffs["k"] * second_partial(u_fn, z, 0) - coeffs["q"] * f


def operator_per_unit_k(u_fn, z, coeffs):
    """The same PDE divided by k: L[u](z) = -u_xx - (q / k) f(x).

    Its residual does not grow with the overall scale of (k, q), so a residual likelihood with a
    fixed sd no longer prefers small k and q (see README).
    """
    f = jnp.pi**2 * jnp.sin(jnp.pi * z[0])
    return -second_partial(u_fn, z, 0) - coeffs["q"] / coeffs["k"] * f
