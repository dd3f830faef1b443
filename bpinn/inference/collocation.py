"""Residual-based adaptive collocation: move the residual points to where the PDE is violated.

A fixed Halton set spends most of its points where the solution is smooth and easy; near a
shock or a sharp layer the residual can be large between points and nobody notices. Residual-
based adaptive distribution (RAD; Wu, Zhu, Tan, Kartha, Lu 2023) draws the points anew with
probability proportional to ``|r(z)| / mean|r| + 1``: concentrated where the residual of the
current fit is large, but never zero anywhere, so no region is left unconstrained.

In the Bayesian model the collocation points are a quadrature of the physics likelihood, not
data: moving them changes which functions count as satisfying the PDE, and therefore the
posterior, in the way a finer grid changes a classical solution. The points used are recorded
in the results (``constant_data.collocation_points``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bpinn.models.likelihood import BPINN, collocation_points

POOL_FACTOR = 8  # candidates per collocation point kept


def resample_collocation(model: BPINN, values: dict, rng_key, *, round_index: int = 0
                         ) -> tuple[BPINN, dict]:
    """The model with its collocation points redrawn from the residual at ``values``.

    ``values`` are named constrained values of one position (weights and coefficients), e.g.
    the best MAP fit. Candidates are ``POOL_FACTOR`` times as many Halton points, taken further
    along the sequence in every round so no round sees the same pool. Returns the new model and
    figures of the resampling (mean |r| on the pool before, the share of points moved into the
    top decile of |r|).
    """
    n = int(model.collocation.shape[0])
    domain = model.problem.domain
    pool = collocation_points(domain, POOL_FACTOR * n, skip=1 + n + round_index * POOL_FACTOR * n)
    coeffs = model.coefficient_values(values)
    r = np.abs(np.asarray(model.residuals(values["weights"], coeffs, pool)))
    if not np.all(np.isfinite(r)):
        raise FloatingPointError("the PDE residual of the MAP fit is not finite on the "
                                 "resampling pool; collocation points cannot be resampled")
    density = r / max(float(np.mean(r)), np.finfo(float).tiny) + 1.0
    chosen = jax.random.choice(rng_key, pool.shape[0], (n,), replace=False,
                               p=jnp.asarray(density / density.sum()))
    chosen = np.sort(np.asarray(chosen))
    top = r >= np.quantile(r, 0.9)
    info = {
        "round": round_index + 1,
        "pool_size": int(pool.shape[0]),
        "pool_mean_abs_residual": float(np.mean(r)),
        "pool_max_abs_residual": float(np.max(r)),
        "share_in_top_decile": float(np.mean(top[chosen])),
    }
    return model.with_collocation(pool[chosen]), info
