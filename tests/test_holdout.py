"""Held-out sensors: kept out of the likelihood, predicted, and their coverage reported."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_api import TINY_INFERENCE, TINY_MODEL  # noqa: E402

from bpinn.api import run  # noqa: E402
from bpinn.calibration import predictive_coverage  # noqa: E402
from bpinn.cli import EXIT_BAD_INPUT, main  # noqa: E402
from bpinn.report import write_report  # noqa: E402

HOLDOUT = 'group = "sensor"\nholdout = ["S3"]'


@pytest.fixture(scope="module")
def held_out_run(make_heat_case):
    case = make_heat_case("holdout_run")
    config = case(('group = "sensor"', HOLDOUT), model=TINY_MODEL)
    return run(config, outdir=case.root / "out", overrides=TINY_INFERENCE), case.root / "out"


def test_held_out_readings_stay_out_of_the_fit_and_are_predicted(held_out_run):
    result, _ = held_out_run
    dt = result.datatree
    # The heat case has 6 sensors of 8 readings: S3's 8 are held out, 40 are fitted.
    assert dt["observed_data"]["u_obs"].size == 40
    assert dt["log_likelihood"]["u_obs"].shape[-1] == 40
    assert dt["observed_data"]["u_holdout"].size == 8
    assert dt["posterior_predictive"]["u_holdout"].shape == (2, 20, 8)
    assert set(np.unique(dt["constant_data"]["holdout_x"].values)) == {0.45}  # S3 sits at 0.45
    summary = result.summary["holdout"]
    assert summary["n"] == 8 and summary["groups"] == ["S3"]
    expected = predictive_coverage(dt["posterior_predictive"]["u_holdout"].values,
                                   dt["observed_data"]["u_holdout"].values)
    assert summary["coverage"] == expected["coverage"]


def test_report_shows_held_out_coverage(held_out_run):
    _, outdir = held_out_run
    text = write_report(outdir).read_text()
    start = text.index("Held-out sensors")
    section = text[start:text.index("</table>", start)]
    assert "S3" in section and "calibrated range" in section
    assert len(re.findall(r"<tr><td>\d+%</td>", section)) == 3  # the 50, 90 and 95% rows


def test_predictive_coverage_counts_readings_inside_central_intervals():
    rng = np.random.default_rng(1)
    replicates = rng.normal(size=(4000, 3))
    readings = np.array([0.0, 1.0, 3.0])  # inside 50%; inside 90% only; outside 95%
    cov = predictive_coverage(replicates, readings)["coverage"]
    assert cov == {"0.5": pytest.approx(1 / 3), "0.9": pytest.approx(2 / 3),
                   "0.95": pytest.approx(2 / 3)}


@pytest.mark.parametrize(("holdout", "extra", "expected"), [
    ('["S9"]', "", ("holdout", "S9", "S1")),
    ('["S1", "S2", "S3", "S4", "S5", "S6"]', "", ("holdout", "every sensor group")),
    ('"S3"', "", ("holdout", "list of sensor group names")),
    ('["S3"]', "per_group_noise = true\n", ("holdout", "per_group_noise")),
])
def test_bad_holdout_is_a_clear_error(heat_case, capsys, holdout, extra, expected):
    config = heat_case(('group = "sensor"', f'group = "sensor"\n{extra}holdout = {holdout}'))
    assert main(["check", str(config)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert all(word in err for word in expected), err
