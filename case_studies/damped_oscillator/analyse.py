"""The exact posterior of the damped-oscillator case by quadrature, independent of bpinn.

The closed-form solution (numpy, make_data.exact) and the config's priors (mu ~ LogNormal(0, 1),
k ~ LogNormal(3, 1), sigma ~ HalfNormal(0.1)) on a grid over (log mu, log k, sigma) centred on
the least-squares fit and 10 of its standard errors wide: posterior means and sds of mu and k.

    .venv/bin/python case_studies/damped_oscillator/analyse.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

HERE = Path(__file__).parent
PRIOR_LOG_MU, PRIOR_LOG_K, PRIOR_SCALE, NOISE_PRIOR_SD = 0.0, 3.0, 1.0, 0.1


def exact(t, mu, k):
    d = mu / 2
    w = np.sqrt(np.asarray(k - d**2, dtype=complex))
    return np.real(np.exp(-d * t) * (np.cos(w * t) + d * np.sin(w * t) / w))


def read_csv(path=HERE / "sensors.csv"):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["x"]) for r in rows]), np.array([float(r["u"]) for r in rows])


def exact_posterior(t, u, points=(81, 81, 60)) -> dict:
    """Means and sds of mu and k (and sigma) under the config's priors, by quadrature."""
    fit = least_squares(lambda p: exact(t, np.exp(p[0]), np.exp(p[1])) - u, x0=[0.0, 3.0])
    resid_sd = np.sqrt(np.sum(fit.fun**2) / (t.size - 2))
    se = resid_sd * np.sqrt(np.diag(np.linalg.inv(fit.jac.T @ fit.jac)))
    log_mu = fit.x[0] + np.linspace(-10, 10, points[0]) * se[0]
    log_k = fit.x[1] + np.linspace(-10, 10, points[1]) * se[1]
    sigma = np.linspace(0.2, 3.0, points[2]) * resid_sd
    lm, lk = np.meshgrid(log_mu, log_k, indexing="ij")
    sq = np.sum((exact(t[None, None, :], np.exp(lm)[..., None], np.exp(lk)[..., None])
                 - u) ** 2, axis=-1)                                     # (mu, k)
    s = sigma[None, None, :]
    log_post = (-t.size * np.log(s) - sq[..., None] / (2 * s**2)        # likelihood
                - (lm[..., None] - PRIOR_LOG_MU) ** 2 / (2 * PRIOR_SCALE**2)  # log-scale priors
                - (lk[..., None] - PRIOR_LOG_K) ** 2 / (2 * PRIOR_SCALE**2)   # (Jacobians in)
                - s**2 / (2 * NOISE_PRIOR_SD**2))
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    out = {}
    for name, values in (("mu", np.exp(lm)[..., None]), ("k", np.exp(lk)[..., None]),
                         ("sigma", s)):
        mean = float(np.sum(w * values))
        out[name] = (mean, float(np.sqrt(np.sum(w * (values - mean) ** 2))))
    # the grid must hold the posterior: negligible mass on its outer faces
    out["edge_mass"] = float(w[[0, -1]].sum() + w[:, [0, -1]].sum() + w[:, :, [0, -1]].sum())
    return out


if __name__ == "__main__":
    post = exact_posterior(*read_csv())
    for name in ("mu", "k", "sigma"):
        print(f"{name}: {post[name][0]:.5g} +- {post[name][1]:.3g}")
    print(f"mass on the grid's faces: {post['edge_mass']:.2e}")
