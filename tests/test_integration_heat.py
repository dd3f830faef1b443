"""The heat-diffusion case study end to end, exactly as shipped (what `make demo` runs).

Bounds are the issue's acceptance targets and the problem's known answers, not values read off a
run: the 95% interval of D contains the true 0.07 and that of the noise sd the true 0.02; the
posterior sd of D is of the order of the exact-forward-model posterior sd for these data
(0.00118, benchmarks/heat_demo.py): within a factor 3 either way; R-hat(D) <= 1.01, bulk
ESS(D) >= 400 and divergences below 1% of draws.

Why full size: a reduced run (2 chains x 150 draws) gave the 95% interval [0.0650, 0.0694],
missing 0.07. The B-PINN posterior of D sits about one exact-posterior sd below the exact one
(docs/sampling.md, section 3), so the truth is near its upper 2.5% quantile and a short run's
Monte-Carlo error decides coverage. The shipped run is the one users get; it is tested as is.
"""

from pathlib import Path

import pytest

from bpinn.api import run

CASE = Path(__file__).resolve().parent.parent / "case_studies" / "heat_diffusion" / "config.toml"
EXACT_SD = 0.00118


@pytest.mark.slow
def test_heat_case_as_shipped_meets_targets():
    result = run(CASE)
    d = result.summary["parameters"]["D"]
    assert d["q2.5"] < 0.07 < d["q97.5"], d
    assert EXACT_SD / 3 < d["sd"] < 3 * EXACT_SD, d
    assert d["r_hat"] <= 1.01, d
    assert d["ess_bulk"] >= 400, d
    sigma = result.summary["parameters"]["sigma"]
    assert sigma["q2.5"] < 0.02 < sigma["q97.5"], sigma
    assert result.summary["diagnostics"]["divergence_rate"] < 0.01
