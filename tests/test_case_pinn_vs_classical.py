"""The pinn-vs-classical case study (case_studies/pinn_vs_classical): its classical parts.

Analytic expectations, from the problem (heat equation, two sine modes, D = 0.07, noise sd 0.02):

* the FD forward model (Crank-Nicolson, 128 cells, 400 steps) differs from the exact solution
  mostly through the three-point Laplacian's eigenvalue error for mode k, a relative
  (k pi dx)^2 / 12; the error of mode k at time t is then about b_k (k pi dx)^2 / 12 * s e^-s
  with s = D (k pi)^2 t, at most b_k (k pi dx)^2 / (12 e): 8.3e-5 for mode 3 (b_3 = 0.5) plus
  1.8e-5 for mode 1; Crank-Nicolson's time error, b_k lambda^2 dt^2 / (12 e) with lambda =
  9 D pi^2, is 4e-6. Bound: 2e-4, twice the sum;
* the FD grid-search estimate then differs from the exact-model least-squares minimiser by about
  that error over the readings' sensitivity |du/dD| (2 to 3 at these points): 5e-5, plus the
  fine grid's spacing (ratio 1.023^(2/200): 1.6e-5 at D = 0.07). Bound: 1e-4;
* with 50 readings the exact posterior mean and the FD estimate lie within 4 posterior sds of
  the truth (a 4-sd bound: failure probability about 6e-5 per realisation if the posterior is
  calibrated, which it is by construction: same model and priors as the simulation).

No B-PINN sampling here: one reduced run takes about two minutes on two cores.
"""

import numpy as np
import pytest
from case_study_support import case_script
from scipy.optimize import minimize_scalar

study = case_script("pinn_vs_classical", "study")

N = 50
REALISATIONS = 3


def test_design_is_nested_and_inside_the_domain():
    big = study.design(N)
    assert big.shape == (N, 2)
    for n in study.NS:
        assert np.array_equal(study.design(n), big[:n])
    assert np.all((big[:, 0] > 0.05) & (big[:, 0] < 0.95))
    assert np.all((big[:, 1] > 0.05) & (big[:, 1] < 1.0))
    assert len({tuple(p) for p in big}) == N


def test_readings_are_deterministic_and_differ_between_realisations():
    a, b, c = study.readings(5, 0), study.readings(5, 0), study.readings(5, 1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert np.array_equal(a[0], c[0]) and not np.array_equal(a[2], c[2])


def test_fd_forward_model_matches_the_exact_solution():
    pts = np.column_stack([np.linspace(0.02, 0.98, 25), np.linspace(0.0, 1.0, 25)])
    pts = np.array([[x, t] for x in pts[:, 0] for t in pts[:, 1]])
    fd = study.fd_predictions(pts, np.array([study.TRUE_D]))[0]
    exact = study.exact_field(pts[:, 0], pts[:, 1])
    assert np.max(np.abs(fd - exact)) < 2e-4


@pytest.mark.parametrize("r", range(REALISATIONS))
def test_classical_estimates_with_fifty_readings(r):
    x, t, u = study.readings(N, r)
    exact = study.exact_posterior(x, t, u)
    fd = study.fd_grid_search(x, t, u)
    assert not fd["at_grid_edge"]
    assert exact["q2.5"] < exact["mean"] < exact["q97.5"]
    assert abs(exact["mean"] - study.TRUE_D) < 4 * exact["sd"]
    assert abs(fd["estimate"] - study.TRUE_D) < 4 * exact["sd"]

    def sse(log_d):
        return float(np.sum((study.exact_field(x, t, np.exp(log_d)) - u) ** 2))

    ls = np.exp(minimize_scalar(sse, bounds=(np.log(0.01), np.log(0.5)), method="bounded",
                                options={"xatol": 1e-8}).x)
    assert abs(fd["estimate"] - ls) < 1e-4
