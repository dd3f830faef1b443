"""The Fisher-KPP case study (nonlinear reaction-diffusion, D and k unknown) and the method
comparison's table, which runs on it as well as on the heat case."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script

from bpinn.api import run

CASE = CASE_STUDIES / "fisher_kpp"


def test_shipped_readings_are_what_make_data_writes():
    rows = case_script("fisher_kpp", "make_data").make_readings()
    with open(CASE / "sensors.csv", newline="") as f:
        shipped = list(csv.DictReader(f))
    assert len(rows) == len(shipped) == 48
    for (sensor, x, t, u), row in zip(rows, shipped, strict=True):
        assert (sensor, x, t) == (row["sensor"], float(row["x"]), float(row["t"]))
        assert u == pytest.approx(float(row["u"]), abs=1e-12)


def test_readings_show_the_logistic_growth():
    """The reaction is visible in the data: without it (k = 0) the maximum principle keeps the
    field below its initial maximum; the true field at the sensors rises well above that."""
    make_data = case_script("fisher_kpp", "make_data")
    grid = np.linspace(0.0, 1.0, 1001)
    initial_max = max(float(make_data.u0(np.array([x, 0.0]))) for x in grid)
    x = np.array(make_data.SENSOR_X)
    late = make_data.true_field(x, np.full_like(x, 0.8))
    assert late.max() > 1.2 * initial_max


def _row(method, mean, **extra):
    coefficient = {"mean": mean, "sd": 0.004, "q2.5": mean - 0.008, "q97.5": mean + 0.008,
                   "shift_in_gold_sd": (mean - 0.05) / 0.004, "sd_ratio": 1.0, "r_hat": 1.0,
                   "ess_bulk": 500.0}
    return {"method": method, "exact_mcmc": True, "coefficients": {"D": coefficient},
            "field_coverage_90": 0.9, "wall_s": 60.0, "max_r_hat": 1.0, "ess_per_s": 8.3,
            **extra}


def test_comparison_table_labels_corrections_and_refusals():
    compare = case_script("method_comparison", "compare")
    gold = {"label": "reference inversion",
            "coefficients": {"D": {"mean": 0.05, "sd": 0.004, "q2.5": 0.042, "q97.5": 0.058}}}
    rows = [_row("nuts", 0.0498, implicit_prior="corrected"),
            _row("hmc", 0.001, implicit_prior=None),
            {"method": "laplace_last_layer", "exact_mcmc": False, "refused": "not supported"}]
    lines = compare.table(rows, gold).splitlines()
    width = lines[0].count("|")
    assert all(line.count("|") == width for line in lines), "ragged markdown table"
    assert lines[2].startswith("| reference inversion | gold standard | 0.05 ± 0.004")
    assert "| nuts (implied prior corrected) | MCMC | 0.0498 ± 0.004" in lines[3]
    assert "| -0.05 | 1.00 |" in lines[3]
    assert lines[4].startswith("| hmc | MCMC |") and "| -12.25 |" in lines[4]
    assert "refused: not supported" in lines[5]


@pytest.mark.slow
def test_default_bpinn_recovers_both_coefficients(tmp_path):
    """Reduced run of the default method (implied prior corrected; the output layer is sampled,
    the PDE being nonlinear): the truths D = 0.05 and k = 2 lie inside the 95% intervals.
    Uncorrected, this posterior settles on the trivial solution (D near 0, the growth read as
    noise): docs/sampling.md, section 7."""
    result = run(CASE / "config.toml", overrides={"num_chains": 2, "num_warmup": 150,
                                                  "num_samples": 150, "max_tree_depth": 8})
    assert result.summary["method_info"]["implicit_prior"]["mode"] == "corrected"
    for name, truth in (("D", 0.05), ("k", 2.0)):
        p = result.summary["parameters"][name]
        assert p["q2.5"] <= truth <= p["q97.5"], (name, p)
