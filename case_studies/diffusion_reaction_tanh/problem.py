"""Exact solution and source of the steady nonlinear diffusion-reaction case.

lambda u'' + k tanh(u) = f on x in [-0.7, 0.7], lambda = 0.01 known, true k = 0.7, with the
manufactured solution u = sin(6x)^3 (the inverse problem of Yang, Meng and Karniadakis 2021,
section on 1-D nonlinear diffusion-reaction). bpinn's ``reaction_diffusion`` without time reads
``-D u'' - k tanh(u) = f``, so with D = lambda its source is minus the paper's f.
"""

import jax.numpy as jnp

LAMBDA, TRUE_K = 0.01, 0.7


def exact_u(x):
    return jnp.sin(6.0 * x) ** 3


def exact_u_xx(x):
    s, c = jnp.sin(6.0 * x), jnp.cos(6.0 * x)
    return 216.0 * s * c**2 - 108.0 * s**3


def source(z):
    """bpinn's f(z) = -(lambda u'' + k tanh(u)) at the true k."""
    x = z[0]
    return -(LAMBDA * exact_u_xx(x) + TRUE_K * jnp.tanh(exact_u(x)))


def boundary(z):
    """u at the two ends, from the exact solution."""
    return exact_u(z[0])
