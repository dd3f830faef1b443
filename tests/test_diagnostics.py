"""Identifiability diagnostics on posteriors built to have a known answer.

The synthetic case: priors log k, log q ~ N(0, 1) independently; the data determine only the
product k q (log k + log q has posterior sd 0.01) and leave log k - log q at its prior
(variance 2). The diagnostics must name log k - log q as the null direction and log k + log q
as identified.
"""

import numpy as np
import pytest

from bpinn.diagnostics import (
    chain_agreement,
    contraction,
    format_identifiability,
    identify,
    principal_directions,
    prior_sensitivity,
    sensor_design,
)
from bpinn.inference.results import build_datatree

CHAINS, DRAWS, PRIOR_DRAWS = 4, 1000, 4000


def product_identified_tree(seed=0, chain_offsets=(0.0, 0.0, 0.0, 0.0), attrs=None):
    rng = np.random.default_rng(seed)
    total = rng.normal(0.0, 0.01, (CHAINS, DRAWS))  # log k + log q
    diff = rng.normal(0.0, np.sqrt(2.0), (CHAINS, DRAWS))  # log k - log q, as in the prior
    diff += np.asarray(chain_offsets)[:, None]
    log_k, log_q = (total + diff) / 2, (total - diff) / 2
    posterior = {"k": np.exp(log_k), "q": np.exp(log_q),
                 "sigma": np.exp(rng.normal(np.log(0.02), 0.05, (CHAINS, DRAWS)))}
    prior = {"k": np.exp(rng.normal(0, 1, (1, PRIOR_DRAWS))),
             "q": np.exp(rng.normal(0, 1, (1, PRIOR_DRAWS))),
             "sigma": np.abs(rng.normal(0, 0.1, (1, PRIOR_DRAWS)))}
    return build_datatree(posterior=posterior, prior=prior, attrs=attrs)


def test_contraction_separates_identified_from_prior_driven():
    c = contraction(product_identified_tree(), ["k", "q", "sigma"])
    # each marginal: posterior var (0.01^2 + 2) / 4 = 0.50 against prior var 1
    assert c["k"]["contraction"] == pytest.approx(0.5, abs=0.06)
    assert c["sigma"]["contraction"] > 0.95
    assert c["sigma"]["verdict"] == "identified"
    assert c["sigma"]["overlap"] < c["k"]["overlap"]


def test_principal_directions_find_the_null_space():
    pd = principal_directions(product_identified_tree(), ["k", "q"])
    least, most = pd["directions"]
    assert least["combination"] == "log k - log q"
    assert least["variance_ratio"] == pytest.approx(1.0, abs=0.1)  # 4000 prior draws: ~3%
    assert least["verdict"] == "not identified (prior-driven)"
    assert most["combination"] == "log k + log q"
    assert most["contraction"] > 0.99
    assert pd["null_directions"] == ["log k - log q"]
    assert pd["posterior_correlation"][0][1] == pytest.approx(-1.0, abs=0.01)


def test_chain_agreement_flags_chains_in_different_places():
    agree = chain_agreement(product_identified_tree(), ["k", "q"])
    assert agree["disagreeing"] == []
    apart = chain_agreement(product_identified_tree(chain_offsets=(-3, -1, 1, 3)), ["k", "q"])
    assert set(apart["disagreeing"]) == {"k", "q"}
    assert "several solutions" in apart["verdict"]


def test_identify_writes_plain_verdicts():
    report = identify(product_identified_tree())
    text = format_identifiability(report)
    assert "log k - log q is not identified (prior-driven)" in text
    assert "the data determine log k + log q" in text
    assert report["prior_sensitivity"]["available"] is False  # no log_prior group here


def test_prior_sensitivity_flags_a_prior_driven_parameter():
    """theta ~ N(0, 1) prior and one reading y = 0.3 with sd 10: the posterior is the prior
    almost exactly, so power-scaling the prior moves it and power-scaling the likelihood not."""
    rng = np.random.default_rng(1)
    precision = 1 + 1 / 100
    theta = rng.normal(0.3 / 100 / precision, 1 / np.sqrt(precision), (4, 1000))
    informed = rng.normal(0.3, 0.01, (4, 1000))  # as if the data had sd 0.01: prior irrelevant
    dt = build_datatree(
        posterior={"theta": theta, "phi": informed},
        log_prior={"theta": -0.5 * theta**2, "phi": -0.5 * informed**2},
        log_likelihood={"y": -0.5 * ((0.3 - theta) / 10) ** 2 - 0.5 * ((0.3 - informed) / 0.01)
                        ** 2},
    )
    sens = prior_sensitivity(dt, ["theta", "phi"])["parameters"]
    assert sens["theta"]["verdict"] == "prior-driven: the data are weakly informative"
    assert sens["phi"]["verdict"] == "data-driven"


def test_prior_sensitivity_needs_enough_draws():
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(1, 8))
    dt = build_datatree(posterior={"theta": theta}, log_prior={"theta": -0.5 * theta**2},
                        log_likelihood={"y": -0.5 * theta**2})
    out = prior_sensitivity(dt, ["theta"])
    assert out["available"] is False and "at least 100" in out["reason"]


def test_local_information_on_the_heat_case(heat_context):
    """Gauss-Newton at the MAP: the variance ratio of log D must give the posterior sd.

    Exact forward model: the sd of D from the grid posterior is 0.00118 at D ~ 0.0691 (log-scale
    sd 0.0171; the prior sd of log D is 1). The linearisation at the MAP and the sample sd differ
    by curvature and sigma uncertainty, so allow 20%. B-PINN: NUTS on this context gives log-scale
    sd 0.00136 / 0.0673 = 0.0202; same 20% allowance.
    """
    from bpinn.diagnostics import local_information

    ctx = heat_context()
    info = local_information(ctx.model, ctx.target, ctx.best_map())
    assert info["names"] == ["log D"]
    exact = info["exact_forward_model"]["directions"][0]
    bpinn = info["bpinn"]["directions"][0]
    assert np.sqrt(exact["variance_ratio"]) == pytest.approx(0.0171, rel=0.2)
    assert np.sqrt(bpinn["variance_ratio"]) == pytest.approx(0.0202, rel=0.2)
    assert info["exact_forward_model"]["num_data_informed"] == 1


def test_identify_names_a_missing_group_and_the_command(tmp_path):
    from bpinn.cli import main
    from bpinn.inference.results import write_results

    dt = build_datatree(posterior={"k": np.ones((2, 10))})
    with pytest.raises(ValueError, match="no prior group.*bpinn run CONFIG"):
        identify(dt)
    write_results(tmp_path, dt, {"method": "nuts"})
    assert main(["identify", str(tmp_path)]) == 2


def test_identify_warns_that_mean_field_cannot_show_correlations():
    dt = product_identified_tree()
    dt.attrs.update({"method": "svi_meanfield"})
    report = identify(dt)
    assert report["verdicts"][0].startswith("svi_meanfield: mean-field VI cannot show correlations")
    # in whitened coordinates (the default) it shows the Laplace curvature's correlations
    whitened = product_identified_tree(attrs={"method": "svi_meanfield",
                                              "method_info": {"coordinates": "whitened"}})
    assert "shows only the correlations of that curvature" in identify(whitened)["verdicts"][0]


def test_sensor_ranking_matches_the_linear_gaussian_answer():
    """u(c) = theta * c for a scalar theta ~ N(0, 1) posterior: a reading at c with noise sd s
    carries information 0.5 log(1 + c^2 / s^2) and reduces Var(theta) by c^2 / (c^2 + s^2).
    The candidate c = 0 (a node of the field) carries none and must rank last."""
    from bpinn.diagnostics import rank_sensor_candidates

    rng = np.random.default_rng(3)
    theta = rng.normal(0.0, 1.0, 200_000)
    candidates = np.array([0.0, 0.5, 2.0, 1.0])
    ranked = rank_sensor_candidates({"theta": theta}, theta[:, None] * candidates, 0.5,
                                    log_scale=False)
    assert [r["index"] for r in ranked] == [2, 3, 1, 0]
    for r in ranked:
        c = candidates[r["index"]]
        assert r["information_gain"] == pytest.approx(0.5 * np.log(1 + c**2 / 0.25), abs=0.01)
        assert r["variance_reduction"]["theta"] == pytest.approx(c**2 / (c**2 + 0.25), abs=0.01)


def _decay_results(with_predictions: bool = True):
    """u = exp(-D pi^2 t) sin(pi x) on a grid, for lognormal draws of D around 0.07."""
    rng = np.random.default_rng(0)
    d = np.exp(rng.normal(np.log(0.07), 0.1, (2, 60)))
    x, t = np.linspace(0, 1, 11), np.linspace(0, 1, 21)
    u = np.exp(-d[..., None, None] * np.pi**2 * t) * np.sin(np.pi * x)[:, None]
    return build_datatree(
        posterior={"D": d, "sigma": np.full((2, 60), 0.01)},
        predictions={"u": u} if with_predictions else None,
        dims={"u": ["field_x", "field_t"]}, coords={"field_x": x, "field_t": t})


def test_sensor_design_ranks_the_most_sensitive_point_first():
    # du/dD = -pi^2 t exp(-D pi^2 t) sin(pi x) peaks at x = 0.5 and t = 1 / (D pi^2) ~ 1.45,
    # beyond the domain, so the best place in [0, 1]^2 is (0.5, 1); the boundary x = 0, 1 and
    # the initial time carry no information at all.
    design = sensor_design(_decay_results(), top=300)
    best = design["candidates"][0]
    assert (best["x"], best["t"]) == (0.5, 1.0)
    assert design["noise_sd"] == pytest.approx(0.01)
    gains = {(c["x"], c["t"]): c["information_gain"] for c in design["candidates"]}
    assert gains[(0.0, 0.5)] == pytest.approx(0.0, abs=1e-9)
    assert gains[(0.5, 0.0)] == pytest.approx(0.0, abs=1e-9)
    assert gains[(0.5, 1.0)] > gains[(0.5, 0.5)] > gains[(0.5, 0.1)]


def test_sensor_design_ranks_points_for_a_coefficient_field():
    """k(x) = exp(a(x) z), one random mode with amplitude a growing in x, and u = k sin(pi x): a
    reading informs the field most where a(x) sin(pi x) peaks on the grid, at x = 0.6 (u is
    nearly linear in log k here, and the reading's noise far exceeds what is not, so the
    Gaussian view holds)."""
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 11)
    z = rng.normal(0.0, 1.0, (2, 200, 1))
    k = np.exp(0.1 * (0.1 + x) * z)
    dt = build_datatree(
        posterior={"k": k, "sigma": np.full((2, 200), 0.02)},
        predictions={"u": k * np.sin(np.pi * x)},
        dims={"k": ["k_x"], "u": ["field_x"]}, coords={"k_x": x, "field_x": x},
        attrs={"coefficient_fields": {"k": {"prior_sd": 1.0, "log": True}}})
    design = sensor_design(dt, top=11)
    assert design["coefficients"] == ["k (field)"]
    assert design["candidates"][0]["x"] == pytest.approx(0.6)
    gains = {round(c["x"], 2): c["information_gain"] for c in design["candidates"]}
    assert gains[0.0] == pytest.approx(0.0, abs=1e-6) and gains[1.0] < gains[0.6]
    assert 0 < design["candidates"][0]["variance_reduction"]["k (field)"] <= 1


def test_sensor_design_without_predictions_names_the_group():
    with pytest.raises(ValueError, match="no predictions group.*bpinn run"):
        sensor_design(_decay_results(with_predictions=False))


def test_a_contracted_but_prior_driven_coefficient_is_not_reported_as_plainly_identified():
    from bpinn.diagnostics import _verdicts

    report = {
        "contraction": {"D": {"verdict": "identified", "contraction": 0.98, "scale": "log"},
                        "sigma": {"verdict": "identified", "contraction": 0.99, "scale": "log"}},
        "principal_directions": {"names": ["D"], "directions": []},
        "chain_agreement": {},
        "prior_sensitivity": {"parameters": {
            "D": {"verdict": "prior-driven: the data are weakly informative", "prior": 0.2,
                  "likelihood": 0.01},
            "sigma": {"verdict": "data-driven", "prior": 0.01, "likelihood": 0.3}}},
    }
    lines = _verdicts(report)
    assert lines[0].startswith("D: identified") and "prior-driven" in lines[0]
    assert "caution" in report["contraction"]["D"]
    assert "but" not in lines[1] and "caution" not in report["contraction"]["sigma"]
