"""Initial condition of the Fisher-KPP case study, referenced from config.toml."""

import jax.numpy as jnp


def u0(z):
    """u(x, 0) = 0.2 sin(pi x) + 0.3 sin(2 pi x)**2: small, so the logistic growth has room to
    saturate; ``z`` is the coordinate vector (x, t)."""
    x = z[0]
    return 0.2 * jnp.sin(jnp.pi * x) + 0.3 * jnp.sin(2 * jnp.pi * x) ** 2
