"""Initial condition of the causal-advection case study, referenced from config.toml."""

import jax.numpy as jnp


def u0(z):
    """u(x, 0) = sin(x); ``z`` is the coordinate vector (x, t)."""
    return jnp.sin(z[0])
