"""The misplaced-sensors case study: the heat case read after the field has decayed
(case_studies/sensors_misplaced).

Analytic truth (README; the formulas and the quadrature are in the case's analyse.py):

- d u / d D = -pi^2 t exp(-D pi^2 t) sin(pi x) - 4.5 pi^2 t exp(-9 D pi^2 t) sin(3 pi x). Its
  first term peaks at t = 1 / (D pi^2) = 1.45, beyond the shipped window [0, 1]: readings at
  t >= 0.9 there inform D *more* per reading than the shipped ones. Readings at t = 9.1 .. 9.8
  (window [0, 10]), where the amplitude is below a tenth of the noise sd, carry about a
  thousandth of the shipped readings' Fisher information.
- With those decayed readings the exact posterior is one-sided: the readings exclude D below
  about 0.048 (a larger field would have been seen) and leave everything above it to the prior:
  contraction of log D 0.648 (so the variance verdict is "identified"), 95% interval
  [0.048, 0.41], a factor 8.5 wide; the power-scaling check must call it prior-sensitive.
- The most informative new reading is early: near t = 1 / (D pi^2) for the D the posterior
  still allows, i.e. t <= 1 / (0.048 pi^2) = 2.1, never among the decayed readings.
"""


import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import run

CASE = CASE_STUDIES / "sensors_misplaced"
analyse = case_script("sensors_misplaced")

REFERENCE = {"num_chains": 2, "num_warmup": 200, "num_samples": 500}
REDUCED = {"num_chains": 2, "num_warmup": 100, "num_samples": 150, "max_tree_depth": 6,
           "map_adam_steps": 3000, "map_lbfgs_steps": 300}
GRID_STEP_T = 10.0 / 40  # the predictions grid: 41 points over t in [0, 10]


@pytest.fixture(scope="module")
def exact():
    return analyse.exact_posterior(*analyse.read_csv(CASE / "sensors.csv"))


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sensors_misplaced")
    return copy_case("sensors_misplaced", root, ("config.toml", "initial.py", "sensors.csv"))


def test_sensitivity_formula_and_fisher_information_of_the_designs():
    x, t = np.array([0.3, 0.5, 0.8]), np.array([0.2, 1.0, 9.5])
    h = 1e-6
    fd = (analyse.two_mode(x, t, 0.07 + h) - analyse.two_mode(x, t, 0.07 - h)) / (2 * h)
    np.testing.assert_allclose(analyse.du_dD(x, t, 0.07), fd, rtol=1e-6)
    shipped, late, decayed = (analyse.fisher(times) for times in analyse.DESIGNS.values())
    # t >= 0.93 is closer to the sensitivity peak t = 1.45 than 0.1 .. 0.8: more information
    assert late["fisher_D"] > shipped["fisher_D"]
    # the decayed readings: amplitude below a tenth of the noise sd, information ~1e-3 of shipped
    assert decayed["max_abs_u"] < 0.1 * analyse.NOISE_SD
    assert decayed["fisher_D"] < 0.01 * shipped["fisher_D"]


@pytest.fixture(scope="module")
def reference_run(case_dir):
    return run(case_dir / "config.toml", method="reference", overrides=REFERENCE)


@pytest.mark.slow
def test_reference_posterior_is_the_one_sided_exact_one(reference_run, exact):
    summary = reference_run.summary
    c = summary["identifiability"]["contraction"]["D"]["contraction"]
    # 4 Monte Carlo sds of the estimated contraction: relative sd of a sample variance from ess
    # effective draws is sqrt((kurtosis - 1) / ess), kurtosis of the exact posterior of log D
    ess = summary["parameters"]["D"]["ess_bulk"]
    tol = 4 * (1 - exact["contraction"]) * np.sqrt((exact["kurtosis"] - 1) / ess)
    assert abs(c - exact["contraction"]) < tol, (c, exact["contraction"], tol)
    # one-sided: the interval spans a large factor (exact 8.5) and the prior decides its top
    D = reference_run.datatree["posterior"]["D"].values.ravel()
    lo, hi = np.quantile(D, [0.025, 0.975])
    assert hi / lo > 4
    assert lo < analyse.TRUE_D < hi
    sens = summary["identifiability"]["prior_sensitivity"]["parameters"]["D"]
    assert sens["prior"] >= 0.05 and sens["verdict"] != "data-driven", sens


@pytest.mark.slow
def test_design_ranking_puts_an_early_time_first(reference_run, exact):
    post = reference_run.datatree["posterior"]
    gain, ranked = analyse.ranking_from_draws(post["D"].values.ravel(),
                                              float(post["sigma"].mean()))
    _, _, X, T = analyse.field_grid()
    t_top = T.ravel()[ranked[0]["index"]]
    # the first-mode sensitivity peaks at t = 1 / (D pi^2); the posterior excludes D below its
    # 2.5% quantile, so the best new reading is no later than that peak (plus one grid step)
    assert t_top <= 1 / (exact["q2.5"] * analyse.PI2) + GRID_STEP_T, t_top
    # and a reading where the sensors already are is worth far less (exact ratio ~200)
    assert ranked[0]["information_gain"] > 10 * gain[T >= 9.1].max()


@pytest.fixture(scope="module")
def bpinn_run(case_dir):
    return run(case_dir / "config.toml", overrides=REDUCED)


@pytest.mark.slow
def test_bpinn_design_ranking_puts_an_early_time_first(bpinn_run):
    """The B-PINN path: the ranking over its own predictions grid (the network's field).

    Its posterior of D is not the exact one (README: the residual's approximation error decides
    D where the readings cannot), so the bound is physical, not the exact posterior's: a reading
    informs D only where the field exceeds the noise, t < ln(1 / sigma) / (D pi^2) = 5.66 for the
    true D.
    """
    _, ranked, _ = analyse.ranking_from_predictions(bpinn_run.datatree)
    _, _, X, T = analyse.field_grid()
    t_top = T.ravel()[ranked[0]["index"]]
    assert t_top < np.log(1 / analyse.NOISE_SD) / (analyse.TRUE_D * analyse.PI2), t_top


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "known B-PINN failure (README): with decayed readings the B-PINN's D (0.008-0.02 "
    "uncorrected, ~0.024 with the first-order implied-prior correction, the default; ~0.037 "
    "with a 4-point profile, held at its upper edge) lies below the exact posterior's lower "
    "bound 0.048; the physics terms, not the readings, decide it"))
def test_bpinn_posterior_respects_the_lower_bound(bpinn_run, exact):
    D = bpinn_run.datatree["posterior"]["D"].values.ravel()
    # the readings exclude D below the exact 2.5% quantile: the B-PINN's interval must reach it
    assert np.quantile(D, 0.975) > exact["q2.5"]


@pytest.mark.slow
def test_a_bpinn_posterior_that_misses_the_exact_one_is_flagged(bpinn_run, exact):
    """No silent failure: if the B-PINN's 95% interval of D misses the exact posterior's, bpinn
    must say so, by power-scaling (D not data-driven), by the chains or by the MAP fits."""
    summary = bpinn_run.summary
    D = bpinn_run.datatree["posterior"]["D"].values.ravel()
    lo, hi = np.quantile(D, [0.025, 0.975])
    if hi >= exact["q2.5"] and lo <= exact["q97.5"]:
        return  # overlaps the exact interval: nothing to flag
    ident = summary["identifiability"]
    flags = [ident["prior_sensitivity"]["parameters"]["D"]["verdict"] != "data-driven",
             bool(ident["chain_agreement"].get("disagreeing")),
             any(w.startswith("MAP fits") for w in summary["diagnostics"]["warnings"])]
    assert any(flags), (lo, hi, ident["verdicts"])
