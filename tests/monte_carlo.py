"""Monte Carlo bounds shared by the tests that compare two samplers of one posterior."""

from __future__ import annotations

import numpy as np
from arviz_stats.base import array_stats


def draw_summary(draws) -> dict:
    """Mean, sd and the bulk and sd ESS of (chain, draw) draws of one scalar."""
    draws = np.asarray(draws)
    return {"mean": draws.mean(), "sd": draws.std(),
            "ess_bulk": float(array_stats.ess(draws, method="bulk")),
            "ess_sd": float(array_stats.ess(draws, method="sd"))}


def assert_same_posterior(a: dict, b: dict) -> None:
    """Two ``draw_summary`` results of the same posterior: means within 3 combined MCSE
    (sd / sqrt(bulk ESS) each) and sds within 3 standard errors of log(sd_a / sd_b), with
    Var(log sd) ~= 1 / (2 ESS_sd) for a near-Gaussian marginal."""
    mcse = np.hypot(a["sd"] / np.sqrt(a["ess_bulk"]), b["sd"] / np.sqrt(b["ess_bulk"]))
    assert abs(a["mean"] - b["mean"]) <= 3 * mcse, (a, b)
    log_ratio_se = np.sqrt(1 / (2 * a["ess_sd"]) + 1 / (2 * b["ess_sd"]))
    assert abs(np.log(a["sd"] / b["sd"])) <= 3 * log_ratio_se, (a, b)
