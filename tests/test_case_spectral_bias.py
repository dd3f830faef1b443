"""The spectral-bias case study (case_studies/spectral_bias): a heat field with a mode-8 component.

Stated from the design (make_data.py): u = exp(-pi^2 D t) sin(pi x) + 0.5 exp(-64 pi^2 D t)
sin(8 pi x), D = 0.01, 72 readings (x = i/13, t = 0.05..0.30), noise sd 0.03. The Fisher
information of the design at the truth gives sd(D) = 2.98e-4 (3% of D), almost all of it from
mode 8 (mode 1 alone: 2.56e-3). The gold standard (``--method reference``) must therefore
contain the truth, be about that narrow, and agree with the exact posterior by quadrature. Only
the reference method runs here (about 25 s); the B-PINN runs are in analyse.py.
"""

import copy

import numpy as np
import pytest
from case_study_support import CASE_STUDIES, case_script, copy_case

from bpinn.api import run
from bpinn.data import write_readings_csv

CASE = CASE_STUDIES / "spectral_bias"
analyse = case_script("spectral_bias")
make_data = case_script("spectral_bias", "make_data")

REFERENCE = {"num_chains": 2, "num_warmup": 200, "num_samples": 500}


def test_make_data_reproduces_sensors_csv(tmp_path):
    out = tmp_path / "sensors.csv"
    write_readings_csv(out, make_data.make_readings())
    assert out.read_bytes() == (CASE / "sensors.csv").read_bytes()


def test_the_design_puts_the_information_in_mode_8():
    x, t, y = analyse.readings()
    assert y.size == 72 and np.unique(x).size == 12 and np.unique(t).size == 6
    # no sensor on a node of sin(8 pi x): 13 and 8 are coprime
    assert np.min(np.abs(np.sin(8 * np.pi * np.unique(x)))) > 0.2
    # the readings are the exact field plus noise of about the stated sd
    resid = y - analyse.two_mode(x, t, analyse.TRUE_D)
    assert 0.7 * analyse.TRUE_SIGMA < resid.std() < 1.3 * analyse.TRUE_SIGMA
    both, low, high = (analyse.fisher_sd(modes=m) for m in ((1, 8), (1,), (8,)))
    assert both < 0.05 * analyse.TRUE_D  # D determined to a few percent
    assert low > 5 * high  # mode 1 alone carries < 4% of the information


@pytest.fixture(scope="module")
def exact():
    return analyse.exact_posterior()


def test_exact_posterior_is_as_narrow_as_the_design_allows(exact):
    lo, hi = exact["q"][[0, 2]]
    assert lo < analyse.TRUE_D < hi
    # sigma is estimated from 72 readings (relative sd ~ 1/sqrt(2 * 71) = 8%)
    assert 0.75 < exact["sd"] / analyse.fisher_sd() < 1.3


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("spectral_bias")
    case_dir = copy_case("spectral_bias", root, ("config.toml", "initial.py", "sensors.csv"))
    return run(case_dir / "config.toml", method="reference", overrides=REFERENCE)


def test_reference_posterior_contains_the_truth_and_matches_the_exact_one(reference_run, exact):
    D = reference_run.datatree["posterior"]["D"].values.ravel()
    p = reference_run.summary["parameters"]["D"]
    lo, hi = np.quantile(D, [0.025, 0.975])
    assert lo < analyse.TRUE_D < hi
    assert D.std() < 1.4 * analyse.fisher_sd()  # the design's bound, with room for sigma
    assert abs(D.mean() - exact["mean"]) < 4 * p["mcse_mean"]
    # the sd of ess draws has relative Monte Carlo sd ~ 1 / sqrt(2 ess) (near-Gaussian)
    assert abs(D.std() / exact["sd"] - 1) < 4 / np.sqrt(2 * p["ess_bulk"])
    assert reference_run.summary["diagnostics"]["max_r_hat"] < 1.01


def test_field_errors_of_the_reference_run(reference_run):
    """The field diagnostics analyse.py reports: the exact solver at posterior draws of D must
    reproduce the field and its mode-8 coefficient to within what sd(D) allows."""
    err = analyse.field_errors(reference_run.datatree)
    assert err["rel_l2"] < 0.01
    assert err["rel_l2_mode1"] < 0.005
    # mode-8 amplitude sensitivity: |d log a8 / d log D| = 64 pi^2 D t <= 1.9; sd(log D) = 0.03
    assert err["rel_l2_mode8"] < 0.05
    assert err["rel_l2_other"] < 1e-3  # nothing but modes 1 and 8
    np.testing.assert_allclose(err["a8_true"], 0.5 * np.exp(-64 * np.pi**2 * 0.01 * err["t"]),
                               atol=1e-12)


def test_variants_change_only_the_model_table():
    base = analyse.model_tables("mlp")
    for name, changes in analyse.VARIANTS.items():
        tables = analyse.model_tables(name)
        expected = copy.deepcopy(base)
        expected["model"].update(changes)
        assert tables == expected
        assert tables["model"]["network"] == changes.get("network", "mlp")
