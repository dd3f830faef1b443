"""The empirical NTK diagnostic (``bpinn.ntk``) on a tiny heat model with soft conditions.

The checks have known answers: whitened residuals recomputed by hand, Jacobians against finite
differences, traces against numpy, the balancing algebra, and the physics of the likelihood
scale (an sd ``c`` times larger divides the term's kernel by ``c**2``).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

from bpinn.api import prepare
from bpinn.cli import EXIT_BAD_INPUT, main
from bpinn.config import load_config
from bpinn.inference.target import make_target
from bpinn.models.problem import residual
from bpinn.ntk import (
    balanced_weights,
    format_ntk_report,
    ntk_report,
    ntk_traces,
    observed_terms,
    plot_ntk,
    subsample_indices,
    term_jacobians,
)

TINY = {"width": 4, "depth": 1, "num_collocation": 16, "num_condition_points": 6}
POINTS = 8  # subsample cap: below the 48 readings and 16 collocation points, above 6
RESIDUAL_NOISE = 0.05
SOFT = ("hard = true\n\n[[conditions]]", "hard = false\n\n[[conditions]]")  # Dirichlet soft


def build(path):
    model = prepare(load_config(path))
    target_key, init_key = jax.random.split(jax.random.key(0))
    target = make_target(target_key, model.model)
    flat = target.from_constrained(model.initial_values(init_key))
    return model, target, flat


@pytest.fixture(scope="module")
def case(make_heat_case):
    return make_heat_case("ntk")


@pytest.fixture(scope="module")
def tiny(case):
    return build(case(SOFT, model=TINY, name="tiny.toml"))


@pytest.fixture(scope="module")
def jacobians(tiny):
    model, target, flat = tiny
    return jax.jit(lambda f: term_jacobians(model, target, f, max_points=POINTS))(flat)


def test_observed_terms_are_the_hand_computed_whitened_residuals(tiny):
    model, target, flat = tiny
    terms = jax.jit(lambda f: observed_terms(model, target, f))(flat)
    values = target.constrained(flat)
    tr = numpyro.handlers.trace(numpyro.handlers.substitute(
        numpyro.handlers.seed(model.model, rng_seed=0), data=values)).get_trace()
    observed = {n for n, s in tr.items() if s["type"] == "sample" and s["is_observed"]}
    assert set(terms) == observed  # every observed site, whatever they are
    assert {"u_obs", "pde_residual", "condition.dirichlet_0_x_min"} <= set(terms)

    p = model.problem
    w = values["weights"]
    u_pred = model.predict(w, p.observations.coords)
    np.testing.assert_allclose(
        terms["u_obs"], (p.observations.values - u_pred) / values["sigma"], rtol=1e-10)
    u = model.u_fn(w)
    r = jax.vmap(lambda z: residual(p.pde, p.source, u, z, {"D": values["D"]}))(
        jnp.asarray(model.collocation))
    np.testing.assert_allclose(terms["pde_residual"], -r / RESIDUAL_NOISE, rtol=1e-10)
    assert terms["condition.dirichlet_0_x_min"].shape == (TINY["num_condition_points"],)


def test_student_t_readings_are_whitened_by_their_scale(case):
    model, target, flat = build(case(
        SOFT, ('value = "u"', 'value = "u"\nlikelihood = "student_t"\nstudent_t_df = 3'),
        model=TINY, name="student.toml"))
    terms = observed_terms(model, target, flat)
    values = target.constrained(flat)
    obs = model.problem.observations
    expected = (obs.values - model.predict(values["weights"], obs.coords)) / values["sigma"]
    np.testing.assert_allclose(terms["u_obs"], expected, rtol=1e-10)


def test_subsample_is_evenly_spaced_and_capped():
    np.testing.assert_array_equal(subsample_indices(5, 8), np.arange(5))
    idx = subsample_indices(48, 8)
    assert idx.size == 8 and idx[0] == 0 and idx[-1] == 47
    assert np.all(np.diff(idx) >= 6)
    with pytest.raises(ValueError, match="max_points"):
        subsample_indices(10, 0)


def test_term_jacobians_match_finite_differences(tiny, jacobians):
    model, target, flat = tiny
    start, stop = target.site_slices["weights"]
    terms = jax.jit(lambda f: observed_terms(model, target, f))
    sizes = {name: e.size for name, e in terms(flat).items()}
    assert sizes["u_obs"] == 48 and sizes["pde_residual"] == 16
    for name, jac in jacobians.items():
        assert jac.shape == (min(sizes[name], POINTS), stop - start)
    eps = 1e-6
    for k in (start, (start + stop) // 2, stop - 1):
        up = terms(flat.at[k].add(eps))
        down = terms(flat.at[k].add(-eps))
        for name, jac in jacobians.items():
            idx = subsample_indices(up[name].size, POINTS)
            fd = (up[name][idx] - down[name][idx]) / (2 * eps)
            np.testing.assert_allclose(jac[:, k - start], fd, rtol=1e-5,
                                       atol=1e-6 * float(jnp.max(jnp.abs(jac))),
                                       err_msg=f"{name}, weight {k - start}")


def test_traces_and_spectra_agree_with_numpy(tiny, jacobians, tmp_path):
    model, target, flat = tiny
    traces = jax.jit(lambda f: ntk_traces(model, target, f, max_points=POINTS))(flat)
    for name, jac in jacobians.items():
        j = np.asarray(jac)
        np.testing.assert_allclose(traces[name], np.trace(j @ j.T) / j.shape[0], rtol=1e-10)

    report = ntk_report(model, target, {"initialisation": flat}, max_points=POINTS)
    assert list(report.spectra["initialisation"])[0] == "u_obs"  # the model's order
    for name, spec in report.spectra["initialisation"].items():
        j = np.asarray(jacobians[name])
        assert spec.num_points == j.shape[0]
        assert np.all(spec.eigenvalues >= 0)
        assert np.all(np.diff(spec.eigenvalues) <= 0)
        np.testing.assert_allclose(spec.eigenvalues.sum(), spec.trace, rtol=1e-10)
        np.testing.assert_allclose(spec.mean_eigenvalue, traces[name], rtol=1e-10)
        np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(j @ j.T))[::-1],
                                   spec.eigenvalues, rtol=1e-6, atol=1e-9 * spec.trace)
    assert report.spectra["initialisation"]["pde_residual"].total_points == 16
    assert report.spectra["initialisation"]["pde_residual"].sd == pytest.approx(RESIDUAL_NOISE)

    # Balanced: weighted mean eigenvalues all equal; relative to the data term, the factor
    # on each sd is 1/sqrt(weight).
    weights = report.weights["initialisation"]
    weighted = [weights[n] * s.mean_eigenvalue
                for n, s in report.spectra["initialisation"].items()]
    np.testing.assert_allclose(weighted, weighted[0], rtol=1e-10)
    (pde,) = [c for c in report.scales["initialisation"] if c.term == "pde_residual"]
    assert pde.setting == "[model] residual_noise" and pde.fixed
    assert pde.current == RESIDUAL_NOISE
    assert pde.weight == pytest.approx(weights["pde_residual"] / weights["u_obs"])

    text = format_ntk_report(report)
    assert "[model] residual_noise (pde_residual) = 0.05 ->" in text
    out = report.to_dict()
    json.dumps(out, allow_nan=False)
    assert out["positions"]["initialisation"]["terms"]["u_obs"]["num_points"] == POINTS
    plot_ntk(report, tmp_path / "ntk.png")
    assert (tmp_path / "ntk.png").read_bytes()[:4] == b"\x89PNG"


def test_balanced_weights_equalise_the_mean_eigenvalues():
    traces = {"a": 2.0, "b": 8.0, "c": 0.5}
    w = balanced_weights(traces)
    mean = (2.0 + 8.0 + 0.5) / 3
    for name, t in traces.items():
        assert float(w[name]) * t == pytest.approx(mean, rel=1e-12)
    assert np.mean([float(w[n]) * t for n, t in traces.items()]) == pytest.approx(mean)

    guarded = jax.jit(balanced_weights)({"a": 2.0, "b": 0.0, "c": jnp.nan, "d": 6.0})
    assert float(guarded["b"]) == 1.0 and float(guarded["c"]) == 1.0  # cannot be balanced
    assert float(guarded["a"]) == pytest.approx(2.0) and float(guarded["d"]) == pytest.approx(
        2 / 3)  # mean of the valid traces only: 4
    assert {n: float(v) for n, v in balanced_weights({"a": 0.0}).items()} == {"a": 1.0}
    assert balanced_weights({}) == {}


def test_a_larger_residual_sd_divides_the_residual_kernel_by_its_square(case, tiny):
    """The whitened residual is r / s, so its kernel scales as 1 / s**2; the data term does not
    see the residual sd. And the balancing sd does not depend on the sd one started from."""
    c = 4.0
    model, target, flat = tiny
    wide, wide_target, _ = build(case(
        SOFT, (f"residual_noise = {RESIDUAL_NOISE}", f"residual_noise = {c * RESIDUAL_NOISE}"),
        model=TINY, name="wide.toml"))
    assert wide_target.site_slices == target.site_slices  # same flat layout
    narrow_t = ntk_traces(model, target, flat, max_points=POINTS)
    wide_t = ntk_traces(wide, wide_target, flat, max_points=POINTS)
    np.testing.assert_allclose(wide_t["pde_residual"], narrow_t["pde_residual"] / c**2,
                               rtol=1e-10)
    for name in narrow_t:
        if name != "pde_residual":
            np.testing.assert_allclose(wide_t[name], narrow_t[name], rtol=1e-12)

    def balancing_sd(m, t):
        report = ntk_report(m, t, {"here": flat}, max_points=POINTS)
        (change,) = [s for s in report.scales["here"] if s.term == "pde_residual"]
        return change.balanced

    assert balancing_sd(wide, wide_target) == pytest.approx(balancing_sd(model, target),
                                                            rel=1e-9)


def test_cli_writes_json_and_png_without_map(case, tmp_path, capsys):
    config = case(SOFT, model=TINY, name="cli.toml")
    outdir = tmp_path / "ntk_out"
    code = main(["ntk", str(config), "-o", str(outdir), "--no-map", "--quiet",
                 "--points", str(POINTS)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "at initialisation" in captured.out and "pde_residual" in captured.out
    result = json.loads((outdir / "ntk.json").read_text())
    assert list(result["positions"]) == ["initialisation"]
    assert result["max_points"] == POINTS
    assert (outdir / "ntk.png").read_bytes()[:4] == b"\x89PNG"

    # A second run refuses to replace them without --overwrite.
    assert main(["ntk", str(config), "-o", str(outdir), "--no-map", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_bad_config_exits_2_naming_the_file(case, tmp_path, capsys):
    bad = case(model={"width": -3}, name="bad.toml")
    outdir = tmp_path / "never"
    assert main(["ntk", str(bad), "-o", str(outdir), "--no-map", "--quiet"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "width" in err
    assert "Traceback" not in err
    assert not outdir.exists()
    missing = tmp_path / "missing.toml"
    assert main(["ntk", str(missing), "-o", str(outdir)]) == EXIT_BAD_INPUT
    assert f"{missing}: config file not found" in capsys.readouterr().err
