"""The calibration statistics on a conjugate toy where the exact posterior is known.

y_1..y_n ~ N(theta, s^2), theta ~ N(m0, s0^2): the posterior is normal with precision
1/s0^2 + n/s^2. Exact posterior draws must give coverage inside the binomial band and uniform
SBC ranks; a posterior with half the right sd (over-confident) must be caught by both.
"""

import numpy as np
import pytest

from bpinn.calibration import (
    binomial_band,
    calibration_summary,
    interval_coverage,
    run_calibration,
    sbc_ranks,
)

M0, S0, S, N_OBS = 1.0, 0.5, 0.3, 5
NUM_DATASETS, NUM_DRAWS = 400, 999


def conjugate_loop(sd_factor: float, seed: int = 0):
    def draw_truth(rng):
        return {"theta": rng.normal(M0, S0)}

    def simulate(rng, truth):
        return rng.normal(truth["theta"], S, N_OBS)

    def infer(y, i):
        precision = 1 / S0**2 + len(y) / S**2
        mean = (M0 / S0**2 + y.sum() / S**2) / precision
        rng = np.random.default_rng(1000 + i)
        return {"theta": rng.normal(mean, sd_factor / np.sqrt(precision), NUM_DRAWS)}

    return run_calibration(np.random.default_rng(seed), NUM_DATASETS, draw_truth, simulate, infer)


def test_exact_posterior_is_calibrated():
    truths, draws = conjugate_loop(sd_factor=1.0)
    summary = calibration_summary(truths, draws)["theta"]
    assert all(summary["in_band"].values()), summary["coverage"]
    # p-value of a correct posterior is uniform: below 0.001 once in a thousand seeds
    assert summary["sbc"]["p_value"] > 1e-3
    assert abs(summary["mean_bias"]) < 3 * S / np.sqrt(N_OBS) / np.sqrt(NUM_DATASETS)


def test_overconfident_posterior_is_caught():
    truths, draws = conjugate_loop(sd_factor=0.5)
    summary = calibration_summary(truths, draws)["theta"]
    # a 90% interval at half the sd covers P(|z| < 0.82) = 0.59 of the truths
    assert summary["coverage"]["0.9"] < summary["band"]["0.9"][0]
    assert not summary["in_band"]["0.9"]
    assert summary["sbc"]["p_value"] < 1e-3  # ranks pile up at both ends


def test_reference_comparison_reports_sd_ratio():
    truths, draws = conjugate_loop(sd_factor=0.5)
    _, ref = conjugate_loop(sd_factor=1.0)
    theta = calibration_summary(truths, draws, reference=ref)["theta"]
    entry = theta["vs_reference"]
    assert entry["mean_sd_ratio"] == pytest.approx(0.5, rel=0.05)  # draws' own sd noise ~2%
    per = theta["per_dataset"]  # the same datasets, one record each, in order
    np.testing.assert_allclose(per["truth"], truths["theta"])
    np.testing.assert_allclose(per["mean"], draws["theta"].mean(-1))
    np.testing.assert_allclose(per["reference_sd"], ref["theta"].std(-1))
    # the exact reference is calibrated on the same datasets where the draws are not
    assert entry["reference_coverage"]["0.9"] > theta["coverage"]["0.9"]
    assert len(per["reference_inside"]["0.9"]) == NUM_DATASETS
    assert np.mean(per["reference_inside"]["0.9"]) == entry["reference_coverage"]["0.9"]


def test_coverage_by_finds_where_in_the_prior_a_posterior_fails():
    """A posterior over-confident only for theta > M0 under-covers in the upper third of the
    truths alone; the lower third stays inside its band."""
    from bpinn.calibration import coverage_by

    truths, exact = conjugate_loop(sd_factor=1.0)
    _, narrow = conjugate_loop(sd_factor=0.3)
    theta = truths["theta"]
    mixed = np.where((theta > M0)[:, None], narrow["theta"], exact["theta"])
    per = calibration_summary(truths, {"theta": mixed})["theta"]["per_dataset"]
    assert len(per["inside"]["0.9"]) == NUM_DATASETS
    low, _, high = coverage_by(per["inside"]["0.9"], per["truth"], 0.9, bins=3)
    assert low["in_band"] and low["to"] < M0 < high["from"]
    # a 90% interval at 0.3 of the sd covers P(|z| < 0.49) = 0.38 of the truths
    assert high["coverage"] < high["band"][0]
    assert sum(r["num_datasets"] for r in (low, high)) < NUM_DATASETS
    with pytest.raises(ValueError, match=r"two \(N,\) arrays"):
        coverage_by([True, False], [1.0], 0.9)


def test_each_datasets_implied_prior_shift_is_recorded(monkeypatch):
    """The shift a run measured reaches its dataset's record; a run that measured none (the
    reference method, or a result saved before) gives NaN, written as null."""
    import bpinn.api
    from bpinn import calibration

    config = "case_studies/heat_diffusion/config.toml"
    info = {"implicit_prior": {"mode": "corrected",
                               "coefficients": {"D": {"slope": -60.0, "shift_in_sds": -1.3}}}}
    fake = {"D": np.ones((2, 3)), "sigma": np.ones((2, 3))}
    monkeypatch.setattr(bpinn.api, "posterior_samples_and_info", lambda *a, **k: (fake, info))
    readings = calibration._load(config, {})[1].problem.observations.values
    result = calibration._infer_one(config, {}, readings, ["D", "sigma"])
    assert result["D"].shape == (6,)
    np.testing.assert_array_equal(result[calibration.IMPLIED_SHIFT], [-1.3])
    info.clear()
    assert np.isnan(calibration._infer_one(config, {}, readings, ["D"])[
        calibration.IMPLIED_SHIFT]).all()
    truths, draws = conjugate_loop(sd_factor=1.0)
    shift = np.linspace(-3, 0, NUM_DATASETS)
    shift[0] = np.nan
    per = calibration_summary(truths, draws, per_dataset={
        "theta": {calibration.IMPLIED_SHIFT: shift}})["theta"]["per_dataset"]
    assert per[calibration.IMPLIED_SHIFT][0] is None
    assert per[calibration.IMPLIED_SHIFT][-1] == 0.0
    rows = calibration.coverage_by(per["inside"]["0.9"], per[calibration.IMPLIED_SHIFT], 0.9)
    assert sum(r["num_datasets"] for r in rows) == NUM_DATASETS - 1  # the None left out


def test_coverage_within_warned_and_unwarned_datasets():
    """When the runs that warn are exactly the over-confident ones, the datasets without a
    warning are calibrated and those with one are not; an unmeasured shift is in neither."""
    from bpinn.calibration import warned_groups

    truths, exact = conjugate_loop(sd_factor=1.0)
    _, narrow = conjugate_loop(sd_factor=0.3)
    bad = truths["theta"] > M0
    mixed = np.where(bad[:, None], narrow["theta"], exact["theta"])
    shift = np.where(bad, -5.0, -0.5)
    shift[0] = np.nan
    groups = warned_groups(shift)
    assert groups["warned"].sum() + groups["not_warned"].sum() == NUM_DATASETS - 1
    entry = calibration_summary(truths, {"theta": mixed}, groups={"theta": groups})["theta"]
    within = entry["coverage_within"]
    assert not entry["in_band"]["0.9"]
    assert within["not_warned"]["in_band"]["0.9"]
    assert within["not_warned"]["num_datasets"] == int((~bad[1:]).sum())
    # a 90% interval at 0.3 of the sd covers P(|z| < 0.49) = 0.38 of the truths
    assert within["warned"]["coverage"]["0.9"] < within["warned"]["band"]["0.9"][0]
    # Beside the gold standard, the unwarned datasets agree with it and the warned do not.
    against = calibration_summary(truths, {"theta": mixed}, reference=exact,
                                  groups={"theta": groups})["theta"]["coverage_within"]
    assert against["not_warned"]["vs_reference"]["median_sd_ratio"] == pytest.approx(1.0)
    assert against["warned"]["vs_reference"]["median_sd_ratio"] == pytest.approx(0.3, rel=0.05)
    assert against["not_warned"]["vs_reference"]["reference_coverage"] == \
        against["not_warned"]["coverage"]
    nobody = calibration_summary(truths, exact, groups={"theta": {
        "none": np.zeros(NUM_DATASETS, bool)}})["theta"]["coverage_within"]["none"]
    assert nobody == {"num_datasets": 0}
    with pytest.raises(ValueError, match=r"group 'half' of 'theta'"):
        calibration_summary(truths, exact, groups={"theta": {"half": np.ones(3, bool)}})


def _stand_in_run(config_path, overrides, values, names):
    """Instead of inference: draws that ignore the data; odd seeds warn of a strong shift."""
    from bpinn.calibration import IMPLIED_SHIFT

    seed = overrides["seed"]
    draws = np.random.default_rng(seed).uniform(0.01, 0.3, 120)
    return {**{n: draws for n in names},
            IMPLIED_SHIFT: np.array([-3.0 if seed % 2 else -0.5])}


def test_calibrate_splits_coverage_by_the_runs_warning(heat_case, monkeypatch, tmp_path,
                                                       capsys):
    """Each dataset's measured shift decides its group in calibration.json, and the CLI prints
    the groups' coverage."""
    import json

    from bpinn import calibration
    from bpinn.cli import main

    monkeypatch.setattr(calibration, "_infer_one", _stand_in_run)
    config = heat_case()
    result = calibration.calibrate(config, num_datasets=5, seed=10)
    within = result["parameters"]["D"]["coverage_within"]
    assert within["warned"]["num_datasets"] == 2 and within["not_warned"]["num_datasets"] == 3
    assert set(result["coverage_within"]) == {"warned", "not_warned"}
    assert "coverage_within" not in result["parameters"]["sigma"]  # no shift for the noise
    inside = np.asarray(result["parameters"]["D"]["per_dataset"]["inside"]["0.9"])
    assert within["warned"]["coverage"]["0.9"] == inside[[1, 3]].mean()
    assert main(["calibrate", str(config), "--datasets", "5", "--seed", "10", "--quiet",
                 "-o", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "  warned (2 datasets): 0.5:" in printed and "  not_warned (3 datasets)" in printed
    written = json.loads((tmp_path / "out" / "calibration.json").read_text())
    assert written["parameters"]["D"]["coverage_within"] == json.loads(json.dumps(within))


def test_plot_shows_each_datasets_standardised_error(tmp_path):
    from bpinn.calibration import plot_calibration

    truths, draws = conjugate_loop(sd_factor=0.5)
    _, ref = conjugate_loop(sd_factor=1.0)
    result = {"method": "toy", "num_datasets": NUM_DATASETS,
              "parameters": calibration_summary(truths, draws, reference=ref)}
    plot_calibration(result, tmp_path / "calibration.png")
    assert (tmp_path / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_binomial_band_matches_known_values():
    lo, hi = binomial_band(100, 0.9)
    assert (lo, hi) == (0.84, 0.95)  # binom(100, 0.9) 2.5% and 97.5% quantiles: 84, 95
    assert binomial_band(1000, 0.5)[0] == pytest.approx(0.469, abs=1e-3)


def test_coverage_and_ranks_on_hand_made_draws():
    draws = np.tile(np.linspace(0, 1, 101), (3, 1))
    truth = np.array([0.5, 0.97, -1.0])
    assert interval_coverage(truth, draws, (0.9,))[0.9] == pytest.approx(1 / 3)
    ranks = sbc_ranks(truth, draws, num=11)
    assert ranks.tolist() == [5, 10, 0]  # thinned draws are 0, 0.1, ..., 1.0


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(N,\) and draws \(N, S\)"):
        interval_coverage(np.zeros(3), np.zeros((4, 10)))
    with pytest.raises(ValueError, match="at least 99 posterior draws"):
        sbc_ranks(np.zeros(3), np.zeros((3, 10)))


def test_calibrate_without_a_reference_solver_is_a_clear_error(heat_case):
    from bpinn.calibration import calibrate
    from bpinn.config import ConfigError

    config = heat_case(('kind = "dirichlet"\nboundary = "all"\nvalue = 0.0\nhard = true',
                        'kind = "neumann"\nboundary = "all"\nvalue = 0.0'))
    with pytest.raises(ConfigError, match="cannot simulate calibration data.*neumann"):
        calibrate(config, num_datasets=5, method="nuts")


def test_calibrate_fixed_truth_needs_every_value(heat_case):
    from bpinn.calibration import calibrate
    from bpinn.config import ConfigError

    config = heat_case(drop=("D = 0.07",))
    with pytest.raises(ConfigError, match=r"truth = 'fixed' needs a value for \['D'\]"):
        calibrate(config, num_datasets=5, truth="fixed")


def test_interrupted_calibration_resumes_with_identical_results(heat_case, monkeypatch, tmp_path):
    from bpinn import calibration
    from bpinn.calibration import calibrate

    config = heat_case(inference={"num_chains": 2, "num_warmup": 100, "num_samples": 100})
    kwargs = {"num_datasets": 3, "method": "reference", "seed": 4}
    uninterrupted = calibrate(config, **kwargs)
    real = calibration._infer_one
    calls = []

    class Killed(Exception):
        pass

    def dies_on_the_third(*task):
        calls.append(task)
        if len(calls) == 3:
            raise Killed  # as a crash or Ctrl-C would, after two datasets were saved
        return real(*task)

    monkeypatch.setattr(calibration, "_infer_one", dies_on_the_third)
    with pytest.raises(Killed):
        calibrate(config, **kwargs, checkpoint_dir=tmp_path)
    assert len(list(tmp_path.glob("dataset-*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(calibration, "_infer_one", lambda *task: calls.append(task) or real(*task))
    resumed = calibrate(config, **kwargs, checkpoint_dir=tmp_path)
    assert len(calls) == 1  # only the dataset that was interrupted is sampled again
    for name, entry in uninterrupted["parameters"].items():
        assert resumed["parameters"][name] == entry, name
    # A changed setting or reading misses the saved datasets instead of reusing them.
    cache = calibration._TaskCache(tmp_path)
    config_path, overrides, values, names = calls[0]
    assert cache.load(calls[0]) is not None
    assert cache.load((config_path, {**overrides, "num_samples": 101}, values, names)) is None
    assert cache.load((config_path, overrides, values * (1 + 1e-5), names)) is None
    # ... but readings that differ in the last bits (another machine's simulator) hit them.
    assert cache.load((config_path, overrides, np.nextafter(values, np.inf), names)) is not None


def test_shards_merged_give_the_unsplit_calibration(heat_case, monkeypatch, tmp_path):
    import shutil

    from bpinn import calibration
    from bpinn.calibration import calibrate
    from bpinn.config import ConfigError

    config = heat_case(inference={"num_chains": 2, "num_warmup": 100, "num_samples": 100})
    kwargs = {"num_datasets": 3, "method": "reference", "seed": 4}
    unsplit = calibrate(config, **kwargs)
    # Two "machines", each with its own copy of the checkpoint folder.
    first = calibrate(config, **kwargs, checkpoint_dir=tmp_path / "a", shard=(0, 2))
    second = calibrate(config, **kwargs, checkpoint_dir=tmp_path / "b", shard=(1, 2))
    assert first["datasets"] == [0, 2] and second["datasets"] == [1]
    assert "parameters" not in first  # a shard alone cannot be summarised
    merged = tmp_path / "merged"
    for part in ("a", "b"):
        shutil.copytree(tmp_path / part, merged, dirs_exist_ok=True)
    real, calls = calibration._infer_one, []
    monkeypatch.setattr(calibration, "_infer_one", lambda *task: calls.append(task) or real(*task))
    summary = calibrate(config, **kwargs, checkpoint_dir=merged)
    assert calls == []  # every dataset came from a shard
    for name, entry in unsplit["parameters"].items():
        assert summary["parameters"][name] == entry, name
    assert "coverage_within" not in summary  # the reference measures no implied prior
    with pytest.raises(ConfigError, match="0 <= K < M"):
        calibrate(config, **kwargs, checkpoint_dir=merged, shard=(2, 2))
    with pytest.raises(ConfigError, match="checkpoint directory"):
        calibrate(config, **kwargs, shard=(0, 2))
