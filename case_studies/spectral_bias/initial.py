"""Initial condition of the spectral-bias case study, referenced from config.toml."""

import jax.numpy as jnp


def u0(z):
    """u(x, 0) = sin(pi x) + 0.5 sin(8 pi x); ``z`` is the coordinate vector (x, t)."""
    x = z[0]
    return jnp.sin(jnp.pi * x) + 0.5 * jnp.sin(8 * jnp.pi * x)
