"""The heat-diffusion case study end to end at reduced size: the posterior must cover the truth.

Bounds come from the problem, not from the run: the 95% interval must contain the true D = 0.07,
and the posterior sd must be of the order of the exact-forward-model posterior sd for these data
(0.0012, see docs/sampling.md): within a factor 3 either way, where "ten times wider or narrower"
would mean the physics or the noise model is broken.
"""

from pathlib import Path

import pytest

from bpinn.api import run

CASE = Path(__file__).resolve().parent.parent / "case_studies" / "heat_diffusion" / "config.toml"
EXACT_SD = 0.0012


@pytest.mark.slow
def test_heat_case_reduced_size_covers_truth():
    result = run(CASE, overrides={"num_chains": 2, "num_warmup": 150, "num_samples": 150})
    d = result.summary["parameters"]["D"]
    assert d["q2.5"] < 0.07 < d["q97.5"], d
    assert EXACT_SD / 3 < d["sd"] < 3 * EXACT_SD, d
    sigma = result.summary["parameters"]["sigma"]
    assert sigma["q2.5"] < 0.02 < sigma["q97.5"], sigma
