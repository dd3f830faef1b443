"""The backward heat problem: u_t = D u_xx on [0, 1], u = 0 at both ends, the initial
temperature u0(x) unknown, D known. Readings of u at later times; the question is what they
say about u0.

``forward`` is the exact solution as a sine series: u0 is projected on sin(k pi x) by
Gauss-Legendre quadrature and each mode decays as exp(-D k^2 pi^2 t). Mode k is damped by
exp(-D k^2 pi^2 t1) by the time of the first readings t1, so the fine detail of u0 is lost and
only its smooth part can be recovered. ``config.toml`` names it as the problem's reference
solver, the gold standard (``--method reference``).
"""

import jax
import jax.numpy as jnp
import numpy as np

NUM_MODES = 80
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(400)
_XQ = 0.5 * (_NODES + 1.0)  # quadrature on [0, 1]
_WQ = 0.5 * _WEIGHTS
_K = np.arange(1, NUM_MODES + 1)


def u0_true(z):
    """The initial temperature the readings were simulated from: a broad and a narrow pulse."""
    x = z[0]
    return jnp.exp(-(((x - 0.35) / 0.12) ** 2)) + 0.5 * jnp.exp(-(((x - 0.7) / 0.08) ** 2))


def sine_coefficients(u0):
    """b_k = 2 int_0^1 u0(x) sin(k pi x) dx for k = 1..NUM_MODES; ``u0`` takes a point (x, t)."""
    points = jnp.stack([jnp.asarray(_XQ), jnp.zeros(_XQ.size)], axis=1)
    values = jax.vmap(u0)(points)
    return 2.0 * jnp.sin(jnp.pi * _K[:, None] * _XQ[None, :]) @ (_WQ * values)


def forward(points, coeffs):
    """u at ``points`` (n, 2) of (x, t): coeffs["u0"] is the initial value as a function of one
    point, coeffs["D"] the diffusion coefficient."""
    b = sine_coefficients(coeffs["u0"])
    x, t = points[:, 0], points[:, 1]
    decay = jnp.exp(-coeffs["D"] * (jnp.pi * _K[None, :]) ** 2 * t[:, None])
    return (decay * jnp.sin(jnp.pi * _K[None, :] * x[:, None])) @ b
