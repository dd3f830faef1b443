"""Tests for bpinn.inference.results: DataTree layout, summary.json, atomic files.

Synthetic draws at fixed seeds stand in for a sampler. Recovery bounds are five Monte-Carlo
standard errors of the generating distribution, so a correct implementation fails them with
probability ~1e-6 per check (and never at these fixed seeds).
"""

from __future__ import annotations

import json
import math
import os

import arviz_stats
import numpy as np
import pytest
import xarray as xr

from bpinn.inference import results
from bpinn.inference.results import (
    build_datatree,
    decode_attrs,
    format_summary,
    read_results,
    summarize,
    write_results,
)
from bpinn.utils import atomic_write_bytes

NUM_CHAINS, NUM_DRAWS, NUM_OBS = 4, 500, 6
D_TRUE, D_SD = 0.07, 0.001
GROUPS = ["S1", "S2"]
SIGMA_TRUE, SIGMA_SD = np.array([0.05, 0.10]), np.array([0.004, 0.006])
TIMING = {"compile_s": 1.5, "warmup_s": 2.0, "sampling_s": 3.0, "total_s": 6.5}
PARAM_KEYS = {
    "mean",
    "sd",
    "median",
    "q2.5",
    "q97.5",
    "hdi94_low",
    "hdi94_high",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "mcse_mean",
}


def _clean_draws(seed=0, num_chains=NUM_CHAINS):
    rng = np.random.default_rng(seed)
    shape = (num_chains, NUM_DRAWS)
    posterior = {
        "D": rng.normal(D_TRUE, D_SD, shape),
        "sigma": rng.normal(SIGMA_TRUE, SIGMA_SD, (*shape, len(GROUPS))),
    }
    sample_stats = {
        "diverging": np.zeros(shape, dtype=bool),
        "acceptance_rate": rng.uniform(0.7, 0.95, shape),
        "n_steps": rng.integers(3, 16, shape),
        "tree_depth": rng.integers(1, 5, shape),
        "lp": rng.normal(size=shape),
        "energy": rng.normal(size=shape),
    }
    return posterior, sample_stats


def _full_tree(seed=0, **overrides):
    rng = np.random.default_rng(seed + 100)
    posterior, sample_stats = _clean_draws(seed)
    kwargs = dict(
        posterior=posterior,
        sample_stats=sample_stats,
        prior={"D": rng.lognormal(-3, 1, (1, NUM_DRAWS))},
        posterior_predictive={"u_obs": rng.normal(size=(NUM_CHAINS, NUM_DRAWS, NUM_OBS))},
        log_likelihood={"u_obs": rng.normal(size=(NUM_CHAINS, NUM_DRAWS, NUM_OBS))},
        observed_data={"u_obs": rng.normal(size=NUM_OBS)},
        constant_data={
            "x": np.linspace(0.0, 1.0, NUM_OBS),
            "t": np.full(NUM_OBS, 0.5),
            "group": np.array([0, 0, 0, 1, 1, 1]),
        },
        coords={"group": GROUPS},
        attrs={
            "problem": "heat",
            "num_warmup": 500,
            "step_size": 0.1,
            "config": {"nuts": {"max_tree_depth": 10}, "sensors": ["S1", "S2"]},
            "is_synthetic": True,
        },
    )
    kwargs.update(overrides)
    return build_datatree(**kwargs)


def _summary(dt, **kwargs):
    kwargs = {"var_names": ["D", "sigma"], "method": "nuts", "seed": 0, "timing": TIMING, **kwargs}
    return summarize(dt, **kwargs)


@pytest.fixture(scope="module")
def tree():
    return _full_tree()


@pytest.fixture(scope="module")
def clean_summary(tree):
    return _summary(tree, truth={"D": D_TRUE, "sigma": SIGMA_TRUE.tolist()})


# --------------------------------------------------------------------------- layout
def test_arviz_stats_summary_is_available():
    # arviz_stats silently drops `summary` when xarray-einstats is missing.
    assert callable(getattr(arviz_stats, "summary", None))


def test_groups_variables_and_dims(tree):
    assert set(tree.children) == {
        "posterior",
        "sample_stats",
        "prior",
        "posterior_predictive",
        "log_likelihood",
        "observed_data",
        "constant_data",
    }
    post = tree["posterior"]
    assert set(post.data_vars) == {"D", "sigma"}
    assert post["D"].dims == ("chain", "draw")
    assert post["sigma"].dims == ("chain", "draw", "group")
    assert list(post["sigma"].coords["group"].values) == GROUPS
    assert dict(post.sizes) == {"chain": NUM_CHAINS, "draw": NUM_DRAWS, "group": 2}

    stats = tree["sample_stats"]
    assert set(stats.data_vars) == set(results.SAMPLE_STATS_VARS)
    assert stats["diverging"].dtype == bool
    assert tree["prior"]["D"].dims == ("chain", "draw")
    assert tree["prior"].sizes["chain"] == 1
    for group in ("posterior_predictive", "log_likelihood"):
        assert tree[group]["u_obs"].dims == ("chain", "draw", "obs")
    assert tree["observed_data"]["u_obs"].dims == ("obs",)
    const = tree["constant_data"]
    assert {name: const[name].dims for name in const.data_vars} == {
        "x": ("obs",),
        "t": ("obs",),
        "group": ("obs",),
    }


def test_only_given_groups_are_present():
    posterior, _ = _clean_draws()
    dt = build_datatree(posterior=posterior, coords={"group": GROUPS})
    assert set(dt.children) == {"posterior"}


def test_explicit_dims_override_defaults():
    dt = build_datatree(
        posterior={"theta": np.zeros((2, 10, 3, 4))},
        dims={"theta": ["space", "time"]},
        coords={"time": [0.0, 0.1, 0.2, 0.3]},
    )
    assert dt["posterior"]["theta"].dims == ("chain", "draw", "space", "time")
    np.testing.assert_allclose(dt["posterior"]["theta"].coords["time"], [0.0, 0.1, 0.2, 0.3])


def test_attrs_flat_on_root_and_recoverable(tree):
    for value in tree.attrs.values():
        assert isinstance(value, str | int | float)
    attrs = decode_attrs(tree)
    assert attrs == {
        "problem": "heat",
        "num_warmup": 500,
        "step_size": 0.1,
        "config": {"nuts": {"max_tree_depth": 10}, "sensors": ["S1", "S2"]},
        "is_synthetic": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"posterior": {"D": np.zeros(10)}}, "leading dims"),
        (
            {"posterior": {"D": np.zeros((4, 10))}, "sample_stats": {"lp": np.zeros((2, 10))}},
            "share chain and draw",
        ),
        ({"posterior": {"net/w": np.zeros((4, 10))}}, "scope_divider"),
        ({"posterior": {}}, "empty"),
    ],
)
def test_build_datatree_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_datatree(**kwargs)


def test_build_datatree_rejects_unserialisable_attr():
    with pytest.raises(TypeError, match="attrs"):
        build_datatree(posterior={"D": np.zeros((1, 2))}, attrs={"bad": object()})


# --------------------------------------------------------------------------- files
def test_write_read_round_trip(tree, clean_summary, tmp_path):
    paths = write_results(tmp_path / "run", tree, clean_summary)
    assert paths == {
        "posterior": tmp_path / "run" / "posterior.nc",
        "summary": tmp_path / "run" / "summary.json",
    }
    assert sorted(os.listdir(tmp_path / "run")) == ["posterior.nc", "summary.json"]

    back = read_results(paths["posterior"])
    # Fully in memory: the data survive the file's removal.
    os.remove(paths["posterior"])
    xr.testing.assert_identical(back, tree)
    assert back["sample_stats"]["diverging"].dtype == bool
    assert decode_attrs(back) == decode_attrs(tree)
    assert json.loads(paths["summary"].read_text()) == clean_summary


def test_read_results_accepts_directory_and_reports_missing(tree, clean_summary, tmp_path):
    write_results(tmp_path, tree, clean_summary)
    xr.testing.assert_identical(read_results(tmp_path), tree)
    with pytest.raises(FileNotFoundError, match="no results file"):
        read_results(tmp_path / "nowhere")


def test_atomic_write_bytes_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["a.json"]
    # Not mkstemp's private 0o600: results are meant to be read by others.
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_write_bytes_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_bytes(b"old")

    def broken_fsync(fd):
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "fsync", broken_fsync)  # fails after the bytes were written
    with pytest.raises(OSError, match="disk vanished"):
        atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.json"]


def test_write_results_failure_mid_netcdf_keeps_old_files(
    tree, clean_summary, tmp_path, monkeypatch
):
    write_results(tmp_path, tree, clean_summary)
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}

    def half_written(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89HDF partial")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", half_written)
    with pytest.raises(RuntimeError, match="mid-write"):
        write_results(tmp_path, tree, {**clean_summary, "seed": 99})
    after = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert after == before


# --------------------------------------------------------------------------- summary
def test_summary_schema_and_types(clean_summary):
    s = clean_summary
    assert s["method"] == "nuts" and s["seed"] == 0
    assert set(s["parameters"]) == {"D", "sigma[S1]", "sigma[S2]"}
    assert set(results.PARAMETER_KEYS) == PARAM_KEYS
    for entry in s["parameters"].values():
        assert PARAM_KEYS | {"truth", "truth_in_95"} == set(entry)
        for key in PARAM_KEYS | {"truth"}:
            assert type(entry[key]) is float, key
        assert type(entry["truth_in_95"]) is bool
    d = s["diagnostics"]
    assert {
        "divergences",
        "divergence_rate",
        "num_draws",
        "num_chains",
        "max_r_hat",
        "min_ess_bulk",
        "max_tree_depth_fraction",
        "warnings",
    } <= set(d)
    assert (d["divergences"], d["divergence_rate"]) == (0, 0.0)
    assert type(d["divergences"]) is int and type(d["divergence_rate"]) is float
    assert (d["num_chains"], d["num_draws"]) == (NUM_CHAINS, NUM_DRAWS)
    assert d["max_r_hat"] == max(e["r_hat"] for e in s["parameters"].values())
    assert d["min_ess_bulk"] == min(e["ess_bulk"] for e in s["parameters"].values())
    assert d["max_tree_depth_fraction"] is None  # no max_tree_depth attr or argument
    assert s["timing"] == {"map_s": None, **TIMING}
    assert s["truth"] == {"D": D_TRUE, "sigma": SIGMA_TRUE.tolist()}
    json.dumps(s, allow_nan=False)


def test_summary_recovers_generating_distribution(clean_summary):
    n = NUM_CHAINS * NUM_DRAWS
    params = clean_summary["parameters"]
    truths = {"D": (D_TRUE, D_SD)} | {
        f"sigma[{g}]": (m, sd) for g, m, sd in zip(GROUPS, SIGMA_TRUE, SIGMA_SD, strict=True)
    }
    for name, (mu, sd) in truths.items():
        p = params[name]
        # iid draws: se(mean) = sd/sqrt(n); se(sd) ~= sd/sqrt(2(n-1)) for a normal.
        assert abs(p["mean"] - mu) < 5 * sd / math.sqrt(n), name
        assert abs(p["sd"] - sd) < 5 * sd / math.sqrt(2 * (n - 1)), name
        assert abs(p["median"] - mu) < 5 * 1.2533 * sd / math.sqrt(n), name
        # The arviz MCSE of an iid mean is sd/sqrt(n) up to the noise of the ESS estimate.
        assert p["mcse_mean"] == pytest.approx(sd / math.sqrt(n), rel=0.2), name
        # se of the 2.5% quantile: sqrt(p(1-p)/n) / pdf(z_0.975) = 0.06 sd at n = 2000.
        q_bound = 5 * math.sqrt(0.025 * 0.975 / n) / 0.05845 * sd
        assert abs(p["q2.5"] - (mu - 1.95996 * sd)) < q_bound, name
        assert abs(p["q97.5"] - (mu + 1.95996 * sd)) < q_bound, name
        # HDI endpoints have no closed-form se; a generous bound still catches a wrong prob.
        assert abs(p["hdi94_low"] - (mu - 1.88079 * sd)) < 2 * q_bound, name
        assert abs(p["hdi94_high"] - (mu + 1.88079 * sd)) < 2 * q_bound, name
        assert p["r_hat"] < 1.01 and p["ess_bulk"] > 1000 and p["ess_tail"] > 1000
        assert p["truth_in_95"] is True


def test_clean_iid_run_has_no_warnings(clean_summary):
    assert clean_summary["diagnostics"]["warnings"] == []
    assert "WARNING" not in format_summary(clean_summary)


def _disagreeing_chains():
    posterior, stats = _clean_draws(seed=1)
    posterior["D"] = posterior["D"] + 2 * D_SD * np.arange(NUM_CHAINS)[:, None]
    return posterior, stats


def _autocorrelated():
    posterior, stats = _clean_draws(seed=2)
    rng = np.random.default_rng(2)
    phi = 0.99  # ESS ~ n (1 - phi) / (1 + phi) ~ 10
    z = rng.normal(size=(NUM_CHAINS, NUM_DRAWS))
    ar = np.empty_like(z)
    ar[:, 0] = z[:, 0]
    for i in range(1, NUM_DRAWS):
        ar[:, i] = phi * ar[:, i - 1] + math.sqrt(1 - phi**2) * z[:, i]
    posterior["D"] = D_TRUE + D_SD * ar
    return posterior, stats


def _divergent():
    posterior, stats = _clean_draws(seed=3)
    stats["diverging"] = np.zeros_like(stats["diverging"])
    stats["diverging"][1, :7] = True
    stats["diverging"][3, 100:103] = True
    return posterior, stats


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_disagreeing_chains, "R-hat of D is"),
        (_autocorrelated, "bulk ESS of D is"),
        (_divergent, "10 divergent transition(s) (0.5% of 2000 draws)"),
    ],
    ids=["r_hat", "low_ess", "divergences"],
)
def test_warnings_fire(make, expected):
    posterior, stats = make()
    dt = build_datatree(posterior=posterior, sample_stats=stats, coords={"group": GROUPS})
    s = _summary(dt)
    matching = [w for w in s["diagnostics"]["warnings"] if expected in w]
    assert len(matching) == 1, s["diagnostics"]["warnings"]
    if make is _disagreeing_chains:
        assert s["parameters"]["D"]["r_hat"] > 1.01
        assert "> 1.01: chains disagree" in matching[0]
    if make is _autocorrelated:
        assert s["parameters"]["D"]["ess_bulk"] < 400
    if make is _divergent:
        assert s["diagnostics"]["divergences"] == 10
        assert s["diagnostics"]["divergence_rate"] == pytest.approx(10 / 2000)
    # Only D was perturbed: sigma stays clean.
    assert not any("sigma" in w for w in s["diagnostics"]["warnings"])


def _funnel_divergences(posterior, stats, group=1, fraction=0.15):
    """Divergent draws where sigma[group] is smallest (a funnel), one run per draw."""
    sigma = posterior["sigma"][..., group]
    stats["diverging"] = sigma < np.quantile(sigma, fraction)
    return posterior, stats


def test_divergences_at_small_noise_sd_are_located_and_explained():
    posterior, stats = _funnel_divergences(*_clean_draws(seed=4))
    dt = build_datatree(posterior=posterior, sample_stats=stats, coords={"group": GROUPS})
    s = _summary(dt)
    located = s["diagnostics"]["divergence_locations"]
    assert [(w["parameter"], w["side"]) for w in located] == [("sigma[1]", "small")]
    assert located[0]["median_rank"] < 0.1 and located[0]["divergences"] == 300
    message = [w for w in s["diagnostics"]["warnings"] if "concentrate" in w]
    assert len(message) == 1 and "sigma[1]" in message[0] and "[data] noise" in message[0]
    json.dumps(s, allow_nan=False)


def test_divergences_located_at_large_values_get_no_funnel_advice():
    posterior, stats = _clean_draws(seed=5)
    stats["diverging"] = posterior["D"] > np.quantile(posterior["D"], 0.9)
    dt = build_datatree(posterior=posterior, sample_stats=stats, coords={"group": GROUPS})
    (where,) = results.divergence_locations(dt)
    assert (where["parameter"], where["side"]) == ("D", "large")
    assert "funnel" not in results.divergence_location_warning(where)


def test_scattered_divergences_are_not_located():
    """Divergences at random draws: their ranks are uniform. Seeds 0-19, 40 divergences in 2000
    draws each, three parameters, both sides: at 4 standard errors none may be flagged (a false
    alarm rate of about 6e-5 per parameter and side)."""
    for seed in range(20):
        posterior, stats = _clean_draws(seed=seed)
        rng = np.random.default_rng(seed + 1000)
        flat = np.zeros(NUM_CHAINS * NUM_DRAWS, bool)
        flat[rng.choice(flat.size, 40, replace=False)] = True
        stats["diverging"] = flat.reshape(NUM_CHAINS, NUM_DRAWS)
        dt = build_datatree(posterior=posterior, sample_stats=stats, coords={"group": GROUPS})
        assert results.divergence_locations(dt) == [], seed


def test_single_chain_warns_and_rhat_is_null():
    posterior, stats = _clean_draws(num_chains=1)
    dt = build_datatree(posterior=posterior, sample_stats=stats, coords={"group": GROUPS})
    s = _summary(dt)
    assert s["parameters"]["D"]["r_hat"] is None
    assert s["diagnostics"]["max_r_hat"] is None
    assert [w for w in s["diagnostics"]["warnings"] if "only one chain" in w]
    json.dumps(s, allow_nan=False)


def test_optimiser_without_sample_stats():
    # A MAP estimate: one chain, one draw, no sampler statistics.
    dt = build_datatree(
        posterior={"D": np.array([[0.07]]), "sigma": np.array([[[0.05, 0.1]]])},
        coords={"group": GROUPS},
    )
    s = _summary(dt, method="map", timing={"map_s": 0.4, "total_s": 0.5})
    d = s["diagnostics"]
    assert d["divergences"] is None and d["divergence_rate"] is None
    assert d["max_tree_depth_fraction"] is None
    assert d["warnings"] == []
    assert s["parameters"]["D"]["mean"] == pytest.approx(0.07)
    assert s["parameters"]["D"]["sd"] is None  # NaN -> null
    json.dumps(s, allow_nan=False)


@pytest.mark.parametrize("source", ["argument", "sample_stats_attr", "root_attr"])
def test_max_tree_depth_fraction(source):
    posterior, stats = _clean_draws(seed=4)
    stats["tree_depth"] = np.full((NUM_CHAINS, NUM_DRAWS), 5)
    stats["tree_depth"][0, :50] = 10
    attrs = {"max_tree_depth": 10} if source == "root_attr" else None
    dt = build_datatree(
        posterior=posterior, sample_stats=stats, coords={"group": GROUPS}, attrs=attrs
    )
    kwargs = {"max_tree_depth": 10} if source == "argument" else {}
    if source == "sample_stats_attr":
        dt["sample_stats"].attrs["max_tree_depth"] = 10
    s = _summary(dt, **kwargs)
    assert s["diagnostics"]["max_tree_depth_fraction"] == pytest.approx(50 / 2000)
    assert any("maximum tree depth 10" in w for w in s["diagnostics"]["warnings"])


@pytest.mark.parametrize(
    ("truth", "expected"),
    [
        ({"D": D_TRUE}, {"D": True}),
        ({"D": D_TRUE + 5 * D_SD}, {"D": False}),
        ({"sigma": [0.05, 0.5]}, {"sigma[S1]": True, "sigma[S2]": False}),
        ({"sigma[S2]": 0.1}, {"sigma[S2]": True}),
    ],
)
def test_truth_in_95(tree, truth, expected):
    s = _summary(tree, truth=truth)
    got = {k: v["truth_in_95"] for k, v in s["parameters"].items() if "truth_in_95" in v}
    assert got == expected


@pytest.mark.parametrize(
    ("truth", "match"),
    [({"sigma": [0.05]}, "2 element"), ({"kappa": 1.0}, "neither")],
)
def test_truth_rejects_mismatch(tree, truth, match):
    with pytest.raises(ValueError, match=match):
        _summary(tree, truth=truth)


def test_summary_rejects_unknown_variable_and_reserved_extra(tree):
    with pytest.raises(ValueError, match="not in the posterior"):
        _summary(tree, var_names=["D", "kappa"])
    with pytest.raises(ValueError, match="reserved"):
        _summary(tree, extra={"parameters": {}})
    s = _summary(tree, extra={"problem": "heat", "n_obs": np.int64(6)})
    assert s["problem"] == "heat" and type(s["n_obs"]) is int


def test_format_summary_lists_parameters_and_warnings():
    posterior, stats = _divergent()
    posterior["D"] = posterior["D"] + 2 * D_SD * np.arange(NUM_CHAINS)[:, None]
    dt = build_datatree(posterior=posterior, sample_stats=stats, coords={"group": GROUPS})
    s = _summary(dt, truth={"D": D_TRUE})
    text = format_summary(s)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["name", "mean", "sd"]
    for name in s["parameters"]:
        assert any(line.startswith(name + " ") for line in lines), name
    warnings = s["diagnostics"]["warnings"]
    assert len(warnings) >= 2
    for w in warnings:
        assert f"WARNING: {w}" in lines
    assert any(line.startswith("diagnostics:") and "divergences=10" in line for line in lines)


def test_low_e_bfmi_is_a_summary_warning():
    # Energies that barely move between draws while their overall spread is large: the
    # momentum resampling cannot explore the energy levels (E-BFMI near 0).
    rng = np.random.default_rng(0)
    drifting = np.cumsum(rng.normal(size=(2, 400)) * 0.05, axis=1) + 50 * np.arange(2)[:, None]
    healthy = rng.normal(size=(2, 400))
    for energy, expect_warning in ((drifting, True), (healthy, False)):
        dt = build_datatree(posterior={"D": rng.normal(size=(2, 400))},
                            sample_stats={"energy": energy})
        diag = summarize(dt, var_names=["D"], method="nuts", seed=0, timing={})["diagnostics"]
        assert len(diag["bfmi"]) == 2
        assert (min(diag["bfmi"]) < results.BFMI_MIN) == expect_warning
        assert any("E-BFMI" in w for w in diag["warnings"]) == expect_warning


# --------------------------------------------------------------------------- readings fit
def _fit_tree(predicted_mean, readings, noise_sd=0.0, seed=3):
    """A tree whose noise-free predictions scatter (noise_sd) around ``predicted_mean``."""
    rng = np.random.default_rng(seed)
    n = readings.size
    predicted = predicted_mean + noise_sd * rng.normal(size=(NUM_CHAINS, NUM_DRAWS, n))
    posterior, sample_stats = _clean_draws(seed)
    return build_datatree(posterior=posterior, sample_stats=sample_stats,
                          posterior_predictive={"u_pred": predicted},
                          observed_data={"u_obs": readings},
                          dims={"u_pred": ["obs"], "u_obs": ["obs"]}, coords={"group": GROUPS})


FIELD = np.sin(np.linspace(0.0, 3.0, 40))


def test_readings_fit_is_the_share_of_variance_the_field_explains():
    rng = np.random.default_rng(0)
    noise = 0.2 * FIELD.std() * rng.normal(size=FIELD.size)
    readings = FIELD + noise
    fit = results.readings_fit(_fit_tree(FIELD, readings, noise_sd=0.01))
    expected = 1 - np.sum((readings - FIELD) ** 2) / np.sum((readings - readings.mean()) ** 2)
    # the posterior mean of the predictions is FIELD up to 0.01 / sqrt(2000) per reading
    assert fit["r2"] == pytest.approx(expected, abs=1e-3)
    assert fit["n"] == FIELD.size and fit["readings_sd"] == pytest.approx(readings.std())
    assert fit["rms_misfit"] == pytest.approx(np.sqrt(np.mean(noise**2)), rel=0.01)
    # noise a fifth of the spread: about 0.96 of the variance explained, no warning
    s = _summary(_fit_tree(FIELD, readings), var_names=["D"])
    assert s["diagnostics"]["readings_fit"]["r2"] > results.READINGS_R2_MIN
    assert not any("readings" in w for w in s["diagnostics"]["warnings"])


def test_a_field_that_leaves_the_readings_to_noise_is_warned_about():
    """The physics-dominated failure: a flat field, the readings' variance all put to noise."""
    s = _summary(_fit_tree(np.full(FIELD.size, FIELD.mean()), FIELD), var_names=["D"])
    assert s["diagnostics"]["readings_fit"]["r2"] == pytest.approx(0.0, abs=1e-12)
    (warning,) = [w for w in s["diagnostics"]["warnings"] if "readings" in w]
    assert "explains 0% of the variance of the 40 readings" in warning
    assert "residual_noise" in warning
    assert "readings_r2=0.000" in format_summary(s)


def test_readings_fit_needs_predictions_and_readings(tree):
    assert results.readings_fit(tree) is None  # no u_pred in this tree
    assert _summary(tree)["diagnostics"]["readings_fit"] is None
