"""End to end: ``bpinn run`` on a tiny heat-diffusion config, then what it wrote.

The run is far too short to say anything about the posterior; this checks the plumbing (files,
groups, variables, shapes, summary keys, the ``summary`` command, reproducibility). Recovery of
the true D is the job of the slow integration test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bpinn.api import run
from bpinn.cli import EXIT_WARNINGS, main
from bpinn.inference.results import read_results

NUM_CHAINS, NUM_SAMPLES, NUM_READINGS = 2, 20, 48
TINY_INFERENCE = {
    "num_chains": NUM_CHAINS, "num_warmup": 30, "num_samples": NUM_SAMPLES,
    "map_adam_steps": 300, "map_lbfgs_steps": 20, "max_tree_depth": 4,
}
TINY_MODEL = {"width": 8, "num_collocation": 32}

PARAMETER_KEYS = {"mean", "sd", "q2.5", "q97.5", "hdi94_low", "hdi94_high", "r_hat", "ess_bulk",
                  "ess_tail"}
GROUPS = {"posterior", "sample_stats", "prior", "posterior_predictive", "observed_data",
          "constant_data", "log_likelihood"}
SAMPLE_STATS = {"diverging", "acceptance_rate", "n_steps", "tree_depth", "lp", "energy"}


@pytest.fixture(scope="module")
def tiny_run(make_heat_case):
    case = make_heat_case("tiny_run")
    config = case(inference=TINY_INFERENCE, model=TINY_MODEL)
    outdir = case.root / "results"
    return config, outdir, main(["run", str(config), "-o", str(outdir), "--quiet"])


def test_run_writes_posterior_and_summary(tiny_run):
    _, outdir, code = tiny_run
    assert code == 0
    assert sorted(p.name for p in outdir.iterdir()) == [
        "posterior.nc", "report.html", "results.csv", "summary.json"]


def test_posterior_file_layout(tiny_run):
    _, outdir, _ = tiny_run
    dt = read_results(outdir / "posterior.nc")
    assert GROUPS <= set(dt.children)
    sample = (NUM_CHAINS, NUM_SAMPLES)

    posterior = dt["posterior"]
    assert {"D", "sigma"} <= set(posterior.data_vars)
    assert posterior["D"].shape == sample
    assert posterior["sigma"].shape == sample
    assert "weights" not in posterior.data_vars  # save_weights defaults to false

    stats = dt["sample_stats"]
    assert SAMPLE_STATS <= set(stats.data_vars)
    for name in SAMPLE_STATS:
        assert stats[name].shape == sample, name
    assert stats["diverging"].dtype == bool

    assert "D" in dt["prior"].data_vars
    assert dt["prior"]["D"].sizes["chain"] == 1

    assert dt["posterior_predictive"]["u_obs"].shape == (*sample, NUM_READINGS)
    observed = dt["observed_data"]["u_obs"]
    assert observed.dims == ("obs",) and observed.shape == (NUM_READINGS,)
    constant = dt["constant_data"]
    for coord in ("x", "t"):
        assert constant[coord].dims == ("obs",) and constant[coord].shape == (NUM_READINGS,)
    assert 0.0 <= float(constant["x"].min()) and float(constant["x"].max()) <= 1.0

    loglik = dt["log_likelihood"]["u_obs"]
    assert loglik.shape == (*sample, NUM_READINGS)
    assert loglik.sizes["obs"] == NUM_READINGS
    assert bool(np.isfinite(loglik.values).all())


def test_observed_data_are_the_sensor_readings(tiny_run):
    config, outdir, _ = tiny_run
    dt = read_results(outdir)
    rows = np.genfromtxt(config.parent / "sensors.csv", delimiter=",", names=True, dtype=None,
                         encoding="utf-8")
    np.testing.assert_array_equal(np.sort(dt["observed_data"]["u_obs"].values),
                                  np.sort(rows["u"]))


def test_summary_json_contents(tiny_run):
    _, outdir, _ = tiny_run
    summary = json.loads((outdir / "summary.json").read_text())
    assert summary["method"] == "nuts"
    assert summary["seed"] == 0
    for name in ("D", "sigma"):
        entry = summary["parameters"][name]
        assert PARAMETER_KEYS <= set(entry), name
        assert isinstance(entry["mean"], float)
    diagnostics = summary["diagnostics"]
    assert {"divergences", "max_r_hat", "min_ess_bulk", "warnings"} <= set(diagnostics)
    assert isinstance(diagnostics["divergences"], int)
    assert isinstance(diagnostics["warnings"], list)
    timing = summary["timing"]
    for key in ("compile_s", "map_s", "warmup_s", "sampling_s", "total_s"):
        assert isinstance(timing[key], float) and timing[key] >= 0.0, key
    assert summary["truth"] == {"D": 0.07, "sigma": 0.02}


def test_summary_command_prints_the_table(tiny_run, capsys):
    _, outdir, _ = tiny_run
    capsys.readouterr()
    assert main(["summary", str(outdir / "posterior.nc")]) == 0
    out = capsys.readouterr().out
    assert "D " in out and "sigma" in out
    assert main(["summary", str(outdir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((outdir / "summary.json").read_text())
    assert (printed["method"], printed["seed"]) == (saved["method"], saved["seed"])
    for name in ("D", "sigma"):
        for key in ("mean", "sd", "q2.5", "q97.5"):
            assert printed["parameters"][name][key] == pytest.approx(
                saved["parameters"][name][key], rel=1e-12), (name, key)


def test_rerun_into_the_same_outdir_needs_overwrite(tiny_run, capsys):
    config, outdir, _ = tiny_run
    before = (outdir / "posterior.nc").read_bytes()
    capsys.readouterr()
    assert main(["run", str(config), "-o", str(outdir), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (outdir / "posterior.nc").read_bytes() == before


def test_same_seed_same_draws(tiny_run):
    # Compilation, not sampling, dominates a run this small, so the second run with the same
    # seed reuses the tiny config (and checks that the CLI and the API agree) rather than
    # running a smaller config twice.
    config, outdir, _ = tiny_run
    saved = read_results(outdir)
    again = run(config, seed=0)
    assert again.paths == {}  # nothing is written without an outdir
    for group, name in [("posterior", "D"), ("posterior", "sigma"), ("sample_stats", "lp"),
                        ("posterior_predictive", "u_obs"), ("prior", "D")]:
        a, b = saved[group][name].values, again.datatree[group][name].values
        assert a.dtype == b.dtype == np.float64, f"{group}/{name}"
        assert a.tobytes() == b.tobytes(), f"{group}/{name} differs between two runs"


def test_run_metadata_survives_the_netcdf_round_trip(tiny_run):
    """NetCDF readers consume CF-reserved attribute names (``coordinates``): the recorded
    metadata must come back intact from the file."""
    from bpinn.inference.results import decode_attrs

    _, outdir, _ = tiny_run
    attrs = decode_attrs(read_results(outdir / "posterior.nc"))
    assert attrs["coord_names"] == ["x", "t"]
    assert attrs["inference"]["num_samples"] == NUM_SAMPLES  # the settings as run
    assert attrs["method"] == "nuts" and attrs["exact_mcmc"] is True


def test_strict_exits_3_when_the_run_has_warnings_but_still_writes(tiny_run, tmp_path, capsys):
    # 2 chains x 20 draws cannot reach 400 effective draws: the run warns about ESS.
    config, _, _ = tiny_run
    outdir = tmp_path / "strict"
    code = main(["run", str(config), "-o", str(outdir), "--quiet", "--no-report", "--strict"])
    assert code == EXIT_WARNINGS
    assert "--strict" in capsys.readouterr().err
    summary = json.loads((outdir / "summary.json").read_text())
    assert any("ESS" in w for w in summary["diagnostics"]["warnings"])


def test_predictions_hold_the_field_on_a_grid_over_the_domain(tiny_run):
    _, outdir, _ = tiny_run
    dt = read_results(outdir)
    u = dt["predictions"]["u"]
    assert u.dims == ("chain", "draw", "field_x", "field_t")
    assert set(u["draw"].values) <= set(dt["posterior"]["draw"].values)
    x, t = u["field_x"].values, u["field_t"].values
    assert (x[0], x[-1], t[0], t[-1]) == (0.0, 1.0, 0.0, 1.0)
    # The heat case imposes u(x, 0) = sin(pi x) + 0.5 sin(3 pi x) and u = 0 at x = 0, 1 exactly
    # (hard constraints), so every draw must show them, in the right orientation.
    u0 = np.sin(np.pi * x) + 0.5 * np.sin(3 * np.pi * x)
    np.testing.assert_allclose(u.isel(field_t=0).values, np.broadcast_to(u0, u.shape[:2] + x.shape),
                               atol=1e-12)
    np.testing.assert_allclose(u.isel(field_x=[0, -1]).values, 0.0, atol=1e-12)


def test_rerun_from_a_results_file_gives_the_same_draws(tiny_run, tmp_path, capsys):
    config, outdir, _ = tiny_run
    # The results record the config's tables: the file itself may be gone (its data stays).
    hidden = config.with_name("moved_away.toml")
    config.rename(hidden)
    try:
        code = main(["run", "--from", str(outdir), "-o", str(tmp_path / "again"), "--quiet",
                     "--no-report"])
    finally:
        hidden.rename(config)
    assert code == 0, capsys.readouterr().err
    first, again = read_results(outdir), read_results(tmp_path / "again")
    for group, name in [("posterior", "D"), ("posterior", "sigma"), ("sample_stats", "lp")]:
        assert first[group][name].values.tobytes() == again[group][name].values.tobytes()


def test_rerun_refuses_changed_data(tiny_run, tmp_path, capsys):
    config, outdir, _ = tiny_run
    sensors = config.parent / "sensors.csv"
    original = sensors.read_bytes()
    sensors.write_bytes(original.replace(b"0.", b"0.0", 1))  # one reading altered
    try:
        code = main(["run", "--from", str(outdir), "-o", str(tmp_path / "again"), "--quiet"])
    finally:
        sensors.write_bytes(original)
    assert code == 2
    err = capsys.readouterr().err
    assert "sensors.csv" in err and "changed since the recorded run" in err
    assert not (tmp_path / "again").exists()


def test_design_ranks_grid_points_from_the_results(tiny_run, capsys):
    _, outdir, _ = tiny_run
    capsys.readouterr()
    assert main(["design", str(outdir), "--top", "3", "--json"]) == 0
    design = json.loads(capsys.readouterr().out)
    gains = [c["information_gain"] for c in design["candidates"]]
    assert len(gains) == 3 and gains == sorted(gains, reverse=True)
    assert all(0 <= c["x"] <= 1 and 0 <= c["t"] <= 1 for c in design["candidates"])


def test_truth_of_known_quantities_is_dropped_and_scalar_sigma_covers_every_group():
    from bpinn.api import _reported_truth

    posterior = {"D": np.zeros((2, 5)), "sigma": np.zeros((2, 5, 3))}
    truth = {"D": 0.07, "K": 1.0, "sigma": 0.02}  # K: a fixed coefficient, not reported
    assert _reported_truth(truth, posterior) == {"D": 0.07, "sigma": [0.02, 0.02, 0.02]}


@pytest.mark.parametrize("kwargs,expected", [
    ({"overrides": {"method": "reference", "seed": 4}}, {"method": "reference", "seed": 4}),
    ({"overrides": {"method": "reference"}, "method": "laplace"}, {"method": "laplace"}),
    ({"seed": 7}, {"seed": 7}),
])
def test_run_keeps_method_and_seed_given_in_overrides(monkeypatch, kwargs, expected):
    # seed= and method= left at None must not erase the same keys passed in overrides.
    import bpinn.api

    seen = {}

    class Stop(Exception):
        pass

    def fake_load_config(path, *, overrides=None, tables=None):
        seen.update(overrides)
        raise Stop

    monkeypatch.setattr(bpinn.api, "load_config", fake_load_config)
    with pytest.raises(Stop):
        bpinn.api.run("config.toml", **kwargs)
    assert {k: seen.get(k) for k in expected} == expected
