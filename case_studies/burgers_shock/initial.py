"""Initial condition of the Burgers case study, referenced from config.toml."""

import jax.numpy as jnp


def u0(z):
    """u(x, 0) = -sin(pi x); ``z`` is the coordinate vector (x, t)."""
    return -jnp.sin(jnp.pi * z[0])
