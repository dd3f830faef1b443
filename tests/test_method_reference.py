"""The classical reference inversion (``--method reference``): the gold standard must be right.

On the heat case its posterior of D must match the exact-forward-model posterior computed
independently by grid integration over (D, sigma) with the sine-series solution: 0.06911 +-
0.00118 (benchmarks/heat_demo.py, docs/benchmarks.md).
"""

import numpy as np
import pytest

from bpinn.api import run
from bpinn.config import ConfigError

GRID_MEAN, GRID_SD = 0.06911, 0.00118
SMALL = {"num_chains": 2, "num_warmup": 200, "num_samples": 500}


@pytest.fixture(scope="module")
def reference_run(make_heat_case):
    case = make_heat_case("reference")
    return run(case(inference=SMALL), method="reference")


def test_reference_matches_the_grid_posterior(reference_run):
    d = reference_run.summary["parameters"]["D"]
    # Monte Carlo error of the mean: sd / sqrt(ESS); allow 4 of those
    assert abs(d["mean"] - GRID_MEAN) < 4 * GRID_SD / np.sqrt(d["ess_bulk"]) + 1e-5
    assert d["sd"] == pytest.approx(GRID_SD, rel=0.15)  # sd of an sd estimate at ESS >= 200
    assert d["r_hat"] < 1.01
    assert reference_run.summary["diagnostics"]["divergences"] == 0


def test_reference_results_have_the_common_layout(reference_run):
    dt = reference_run.datatree
    assert {"posterior", "sample_stats", "prior", "posterior_predictive", "observed_data",
            "log_likelihood", "log_prior"} <= set(dt.children)
    assert set(dt["posterior"].data_vars) == {"D", "sigma"}  # no network weights
    assert dt["posterior_predictive"]["u_pred"].shape == (2, 500, 48)
    assert reference_run.summary["exact_mcmc"] is True
    assert reference_run.summary["method"] == "reference"


def test_reference_field_over_the_domain_is_the_exact_solution(reference_run):
    # The field stored for maps and sensor design comes from the reference solver itself:
    # u = exp(-D pi^2 t) sin(pi x) + 0.5 exp(-9 D pi^2 t) sin(3 pi x) for each draw's D.
    dt = reference_run.datatree
    u = dt["predictions"]["u"]
    d = dt["posterior"]["D"].sel(draw=u["draw"]).values[..., None, None]
    x, t = u["field_x"].values[:, None], u["field_t"].values[None, :]
    exact = (np.exp(-d * np.pi**2 * t) * np.sin(np.pi * x)
             + 0.5 * np.exp(-9 * d * np.pi**2 * t) * np.sin(3 * np.pi * x))
    np.testing.assert_allclose(u.values, exact, atol=1e-6)


def test_no_reference_solver_is_a_config_error_before_any_work(heat_case):
    # Neumann faces have no reference counterpart
    config = heat_case(('kind = "dirichlet"\nboundary = "all"\nvalue = 0.0\nhard = true',
                        'kind = "neumann"\nboundary = "all"\nvalue = 0.0'))
    with pytest.raises(ConfigError, match="method = 'reference'.*neumann condition"):
        run(config, method="reference", overrides={"map_adam_steps": 10**9})
