"""Heat equation with a linear decay term: u_t = D u_xx - k u, with D > 0 and k > 0.

The built-in ``reaction_diffusion`` with ``reaction = "linear"`` is ``u_t = D u_xx + k u``: its k
is a growth rate, so a decay would need k < 0, which a log-normal prior cannot express. This
operator writes the decay with the opposite sign so that both coefficients are positive.
"""

from bpinn.models.pdes import partial, second_partial


def operator(u_fn, z, coeffs):
    """L[u](z) = u_t - D u_xx + k u for z = (x, t); the PDE is L[u] = 0."""
    return (partial(u_fn, z, 1) - coeffs["D"] * second_partial(u_fn, z, 0)
            + coeffs["k"] * u_fn(z))
