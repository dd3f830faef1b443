"""Fast transforms shared by the spectral and method-of-lines solvers (private).

Only what ``jax.numpy.fft`` lacks: the type-I discrete sine transform, which diagonalises both
the sine series on a grid of interior points and the three-point Laplacian with zero Dirichlet
ends.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def dst1(values, axis: int = -1) -> jnp.ndarray:
    """Unnormalised type-I discrete sine transform along one axis.

    ``S_k = sum_{j=1}^{n} v_j sin(pi k j / (n + 1))`` for ``k = 1..n``. Applying it twice
    multiplies by ``(n + 1) / 2``, so the inverse is ``dst1(S) * 2 / (n + 1)``.

    Computed by an FFT of the odd extension ``(0, v, 0, -reversed(v))`` of length
    ``2 (n + 1)``, whose transform is ``-2 i S_k``: ``O(n log n)`` and differentiable.

    Parameters
    ----------
    values : array, real or complex
        Samples ``v_1..v_n`` along ``axis``.
    axis : int
        The axis to transform.

    Returns
    -------
    jax.Array
        ``S_1..S_n`` along ``axis``, real for real input, complex for complex input.
    """
    values = jnp.moveaxis(jnp.asarray(values), axis, -1)
    n = values.shape[-1]
    zero = jnp.zeros(values.shape[:-1] + (1,), dtype=values.dtype)
    extension = jnp.concatenate([zero, values, zero, -values[..., ::-1]], axis=-1)
    if jnp.iscomplexobj(values):
        spectrum = jnp.fft.fft(extension, axis=-1)
        sines = 0.5j * lax.slice_in_dim(spectrum, 1, n + 1, axis=-1)
    else:
        spectrum = jnp.fft.rfft(extension, axis=-1)
        sines = -0.5 * jnp.imag(lax.slice_in_dim(spectrum, 1, n + 1, axis=-1))
    return jnp.moveaxis(sines, -1, axis)
