"""Lotka-Volterra predator-prey, a system of two ODEs with time written as the coordinate x:

    du/dt = alpha u - beta u v,    dv/dt = delta u v - gamma v,    u(0) = U0, v(0) = V0,

u the prey, v the predators. ``operator`` is the system for the B-PINN (one residual per
equation); ``forward`` the reference solution (``[problem] reference``): classical RK4 with a
fixed step, written with jax.numpy so NUTS can differentiate through it.
"""

import jax
import jax.numpy as jnp

from bpinn.models.pdes import partial

U0, V0 = 1.0, 1.0
T_END = 8.0     # the domain's end, a little over one period (about 7.3) at the true values
STEPS = 2000    # RK4 steps over [0, T_END]: h = 0.004, global error about 1e-10


def rhs(y, coeffs):
    """The right-hand side at states y of shape (..., 2)."""
    u, v = y[..., 0], y[..., 1]
    return jnp.stack([coeffs["alpha"] * u - coeffs["beta"] * u * v,
                      coeffs["delta"] * u * v - coeffs["gamma"] * v], axis=-1)


def operator(u_fn, z, coeffs):
    du, dv = partial(u_fn, z, 0)
    f = rhs(u_fn(z), coeffs)
    return jnp.stack([du - f[0], dv - f[1]])


def trajectory(coeffs, steps=STEPS):
    """The RK4 states at t = k T_END / steps, k = 0 .. steps: shape (steps + 1, 2)."""
    h = T_END / steps

    def step(y, _):
        k1 = rhs(y, coeffs)
        k2 = rhs(y + h / 2 * k1, coeffs)
        k3 = rhs(y + h / 2 * k2, coeffs)
        k4 = rhs(y + h * k3, coeffs)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y, y

    dtype = jnp.result_type(float, *(jnp.asarray(c) for c in coeffs.values()))
    y0 = jnp.array([U0, V0], dtype=dtype)
    _, ys = jax.lax.scan(step, y0, None, length=steps)
    return jnp.concatenate([y0[None], ys])


def forward(points, coeffs, steps=STEPS):
    """(u, v) at times points[:, 0] in [0, T_END]: shape (n, 2).

    Between RK4 nodes, the cubic Hermite interpolant with the ODE's right-hand side as slope:
    O(h^4) in value and C^1 in t, so jax derivatives of it satisfy the ODE to O(h^3) (exactly
    at the nodes), which an operator check through ``partial`` needs.
    """
    ys = trajectory(coeffs, steps)
    fs = rhs(ys, coeffs)
    h = T_END / steps
    t = jnp.asarray(points)[:, 0]
    i = jnp.clip(jnp.floor(t / h).astype(jnp.int32), 0, steps - 1)
    s = (t / h - i)[:, None]
    return ((1 + 2 * s) * (1 - s) ** 2 * ys[i] + s * (1 - s) ** 2 * h * fs[i]
            + s**2 * (3 - 2 * s) * ys[i + 1] - s**2 * (1 - s) * h * fs[i + 1])


def exact_first_integral(u, v, coeffs):
    """delta u - gamma ln u + beta v - alpha ln v, constant along every solution."""
    return (coeffs["delta"] * u - coeffs["gamma"] * jnp.log(u)
            + coeffs["beta"] * v - coeffs["alpha"] * jnp.log(v))
