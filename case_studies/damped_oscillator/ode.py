"""The damped oscillator u'' + mu u' + k u = 0 with time written as the coordinate x.

``operator`` is the equation for the B-PINN; ``exact`` its closed-form solution for u(0) = 1,
u'(0) = 0, the forward model of the classical reference inversion (``[problem] reference``).
"""

import jax.numpy as jnp

from bpinn.models.pdes import partial, second_partial


def operator(u_fn, z, coeffs):
    return second_partial(u_fn, z, 0) + coeffs["mu"] * partial(u_fn, z, 0) + coeffs["k"] * u_fn(z)


def exact(points, coeffs):
    """u(t) = exp(-d t) (cos(w t) + d / w sin(w t)), d = mu / 2, w = sqrt(k - d^2): complex w
    covers the overdamped regime (k < d^2) too, where cos and sin turn into cosh and sinh."""
    t = points[:, 0]
    d = coeffs["mu"] / 2
    w = jnp.sqrt(jnp.asarray(coeffs["k"] - d**2) + 0j)
    u = jnp.exp(-d * t) * (jnp.cos(w * t) + d * jnp.sin(w * t) / w)
    return jnp.real(u)
