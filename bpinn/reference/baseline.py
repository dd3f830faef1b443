"""The classical point estimate a scientist would make without Bayesian machinery.

Nonlinear least squares of the sensor readings against a reference forward model over the
unknown coefficients (log-parameterised where the prior says they are positive), started from
the prior median and a few prior draws, with the textbook asymptotic standard errors
``sigma_hat^2 (J^T J)^-1``. It is the baseline the B-PINN and the reference posterior are
compared with; it knows nothing of priors beyond where to start.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions.transforms import ExpTransform, biject_to
from scipy.optimize import least_squares

from bpinn.reference.registry import problem_forward

NUM_STARTS = 5


def least_squares_estimate(problem, *, num_starts: int = NUM_STARTS, seed: int = 0,
                           forward=None) -> dict[str, Any]:
    """Least-squares coefficients, their asymptotic standard errors and the noise estimate.

    Parameters
    ----------
    problem : a ``bpinn.models.problem.Problem`` whose PDE has a reference solver.
    num_starts : the prior median plus ``num_starts - 1`` prior draws; the best fit is kept.
    forward : ``forward(coeffs) -> u`` at the sensors; built from the problem when None.

    Returns
    -------
    dict with ``coefficients`` (name -> estimate), ``standard_errors`` (name -> delta-method
    sd), ``sigma_hat`` (residual rms with the degrees-of-freedom correction), ``cost`` and
    ``success``.
    """
    from bpinn.models.fields import GaussianProcessField
    from bpinn.models.priors import Prior

    forward = forward or problem_forward(problem)
    names = [n for n in problem.coefficient_names if isinstance(problem.coefficients[n], Prior)]
    if not names:
        raise ValueError("least_squares_estimate: the problem has no unknown coefficients")
    if problem.pde.is_system:
        raise ValueError(f"least_squares_estimate: a system (outputs {list(problem.pde.outputs)})"
                         " has no least-squares baseline here; it fits one unknown function")
    fields = [n for n, q in problem.coefficients.items() if isinstance(q, GaussianProcessField)]
    if fields:
        raise ValueError(f"least_squares_estimate: coefficient fields ({', '.join(fields)}) have "
                         "no least-squares baseline here; it estimates scalar coefficients")
    fixed = {n: jnp.asarray(q.value) for n, q in problem.coefficients.items() if n not in names}
    dists = [problem.coefficients[n].distribution() for n in names]
    logs = [isinstance(biject_to(d.support), ExpTransform) for d in dists]
    y = jnp.asarray(problem.observations.values)

    def coefficients(theta):
        vals = {n: (jnp.exp(t) if lg else t) for n, t, lg in zip(names, theta, logs, strict=True)}
        return {**fixed, **vals}

    residual = jax.jit(lambda theta: forward(coefficients(theta)) - y)
    jacobian = jax.jit(jax.jacfwd(residual))

    rng = jax.random.key(seed)
    starts = []
    for i in range(num_starts):
        vals = [d.sample(jax.random.fold_in(rng, 100 * i + j)) if i else d.median()
                if hasattr(d, "median") else d.mean for j, d in enumerate(dists)]
        starts.append([float(jnp.log(v)) if lg else float(v)
                       for v, lg in zip(vals, logs, strict=True)])
    fits = [least_squares(lambda t: np.asarray(residual(jnp.asarray(t))), np.asarray(s),
                          jac=lambda t: np.asarray(jacobian(jnp.asarray(t))), method="lm")
            for s in starts]
    fits = [f for f in fits if np.isfinite(f.cost)]
    if not fits:
        raise RuntimeError("least_squares_estimate: every start failed (non-finite residuals)")
    best = min(fits, key=lambda f: f.cost)
    n, p = y.size, len(names)
    sigma_hat = float(np.sqrt(2 * best.cost / max(n - p, 1)))
    jac = np.asarray(jacobian(jnp.asarray(best.x)))
    cov_theta = sigma_hat**2 * np.linalg.pinv(jac.T @ jac)
    estimate = {n: float(np.exp(t) if lg else t) for n, t, lg in zip(names, best.x, logs,
                                                                    strict=True)}
    # delta method: sd(exp(t)) = exp(t) sd(t)
    se = {n: float(np.sqrt(cov_theta[i, i]) * (estimate[n] if logs[i] else 1.0))
          for i, n in enumerate(names)}
    return {"coefficients": estimate, "standard_errors": se, "sigma_hat": sigma_hat,
            "cost": float(best.cost), "success": bool(best.success)}
