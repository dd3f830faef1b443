"""The source of the kinked-Poisson case: f = 1 on [0.3, 0.7], 0 elsewhere (it jumps twice)."""

import jax.numpy as jnp

A, B = 0.3, 0.7


def f(z):
    return jnp.where((z[0] >= A) & (z[0] <= B), 1.0, 0.0)
