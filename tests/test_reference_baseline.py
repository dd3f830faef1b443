"""The least-squares baseline on the heat case: with 48 readings and a one-parameter model the
least-squares estimate and its standard error must sit on the exact posterior (grid posterior
of D: 0.06911 +- 0.00118 with a LogNormal prior that is flat at this scale)."""

import pytest

from bpinn.api import prepare
from bpinn.config import load_config
from bpinn.reference.baseline import least_squares_estimate


def test_least_squares_matches_the_exact_posterior(heat_case):
    problem = prepare(load_config(heat_case())).problem
    fit = least_squares_estimate(problem)
    assert fit["success"]
    assert fit["coefficients"]["D"] == pytest.approx(0.06911, abs=0.5 * 0.00118)
    assert fit["standard_errors"]["D"] == pytest.approx(0.00118, rel=0.2)
    assert fit["sigma_hat"] == pytest.approx(0.0224, rel=0.15)  # posterior mean of sigma
