"""The kinked-Poisson case study (case_studies/kinked_poisson): its closed-form solution, its
data and its exact posterior, which the B-PINN variants are judged against."""

from __future__ import annotations

import numpy as np
from case_study_support import CASE_STUDIES, case_script

make_data = case_script("kinked_poisson", "make_data")
analyse = case_script("kinked_poisson")


def test_closed_form_solves_the_problem():
    k = make_data.TRUE_K
    x = np.linspace(0.0, 1.0, 20001)
    h = x[1] - x[0]
    u = make_data.exact_u(x)
    lhs = -k * (u[2:] - 2 * u[1:-1] + u[:-2]) / h**2
    f = ((x[1:-1] >= make_data.A) & (x[1:-1] <= make_data.B)).astype(float)
    away = (np.abs(x[1:-1] - make_data.A) > 2 * h) & (np.abs(x[1:-1] - make_data.B) > 2 * h)
    np.testing.assert_allclose(lhs[away], f[away], atol=1e-6)
    assert u[0] == 0.0 and abs(u[-1]) < 1e-15
    slope = np.diff(u) / h  # continuous slope: no jump larger than the second difference's
    assert np.max(np.abs(np.diff(slope))) < 2 * h / k


def test_make_data_reproduces_the_shipped_readings():
    shipped = np.genfromtxt(CASE_STUDIES / "kinked_poisson" / "sensors.csv", delimiter=",",
                            names=True)
    np.testing.assert_allclose(shipped["x"], make_data.SENSORS_X, atol=5e-5)
    np.testing.assert_allclose(shipped["u"], make_data.readings(), atol=5e-9)


def test_exact_posterior_covers_the_truth_at_the_precision_the_design_gives():
    post = analyse.exact_posterior()
    assert post["q2.5"] < make_data.TRUE_K < post["q97.5"]
    # u = w / k: linearised, sd(k) = k * sigma / ||w / k|| over the 15 sensors
    w = make_data.exact_u(make_data.SENSORS_X, k=1.0)
    linear_sd = make_data.TRUE_K**2 * make_data.NOISE_SD / np.linalg.norm(w)
    assert abs(post["sd"] / linear_sd - 1) < 0.05
