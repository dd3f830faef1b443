"""Steady incompressible Navier-Stokes in 2-D as a system of three unknown functions: the
velocity (u, v) and the pressure p, with the kinematic viscosity nu unknown.

    u u_x + v u_y + p_x - nu (u_xx + u_yy) = 0
    u v_x + v v_y + p_y - nu (v_xx + v_yy) = 0
    u_x + v_y = 0

Kovasznay's flow (1948) solves them exactly behind a grid of cylinders, for any Reynolds
number Re = 1 / nu, with lam = Re / 2 - sqrt(Re^2 / 4 + 4 pi^2):

    u = 1 - exp(lam x) cos(2 pi y),  v = lam / (2 pi) exp(lam x) sin(2 pi y),
    p = (1 - exp(2 lam x)) / 2.

The pressure enters through its gradient only, so its level is never determined by the
equations: a constant added to p leaves every residual unchanged.
"""

import jax.numpy as jnp
import numpy as np

from bpinn.models.pdes import partial, second_partial

NU_TRUE = 0.025  # Re = 40


def exact(z, nu=NU_TRUE):
    """(u, v, p) of Kovasznay's flow at the point z = (x, y)."""
    re = 1.0 / nu
    lam = re / 2 - jnp.sqrt(re**2 / 4 + 4 * np.pi**2)
    x, y = z[0], z[1]
    e = jnp.exp(lam * x)
    return jnp.stack([1 - e * jnp.cos(2 * np.pi * y),
                      lam / (2 * np.pi) * e * jnp.sin(2 * np.pi * y),
                      0.5 * (1 - jnp.exp(2 * lam * x))])


def operator(u_fn, z, coeffs):
    """The three residuals (x-momentum, y-momentum, continuity) at one point; ``u_fn(z)``
    returns (u, v, p) and the helpers differentiate all three at once."""
    nu = coeffs["nu"]
    u, v, _ = u_fn(z)
    d_x, d_y = partial(u_fn, z, 0), partial(u_fn, z, 1)
    lap = second_partial(u_fn, z, 0) + second_partial(u_fn, z, 1)
    return jnp.stack([u * d_x[0] + v * d_y[0] + d_x[2] - nu * lap[0],
                      u * d_x[1] + v * d_y[1] + d_y[2] - nu * lap[1],
                      d_x[0] + d_y[1]])
