"""Numerical faults: a non-finite log density is a divergence, a diverging MAP is restarted and
then fails with a clear message. (Runs are float64 throughout: tests/test_api.py checks the
dtypes of the saved draws.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bpinn import api
from bpinn.api import MAP_RESTARTS, MAPError
from bpinn.cli import EXIT_FAILED, main
from bpinn.config import load_config
from bpinn.inference.map import MAPResult
from bpinn.inference.nuts import run_nuts
from bpinn.inference.target import make_target

WALL = 1.0


def _walled_gaussian(physics_weight=1.0):
    # The log density is NaN beyond x0 = WALL, as when a residual overflows in some region.
    x = numpyro.sample("x", dist.Normal(0, 1).expand([2]))
    numpyro.factor("wall", jnp.where(x[0] > WALL, jnp.nan, 0.0))


def test_nan_log_density_is_a_divergence_not_a_crash():
    target = make_target(jax.random.key(0), _walled_gaussian)
    result, _ = run_nuts(jax.random.key(1), target, jnp.zeros((2, 2)), num_warmup=50,
                         num_samples=300)
    trace = result.trace
    # 16% of N(0, 1) lies beyond the wall, so trajectories must cross it and be rejected.
    assert int(np.sum(trace.diverging)) > 0
    assert np.all(np.isfinite(trace.position)) and np.all(np.isfinite(trace.logdensity))
    assert float(np.max(trace.position[..., 0])) <= WALL


TINY = {"num_chains": 2, "num_warmup": 20, "num_samples": 10, "map_adam_steps": 50,
        "map_lbfgs_steps": 0}


def _settings_and_model(config):
    cfg = load_config(config)
    return cfg.inference, api.prepare(cfg)


def test_diverged_map_fits_are_restarted_from_fresh_starts(heat_case, monkeypatch):
    settings, model = _settings_and_model(heat_case(inference=TINY, model={"width": 8}))
    calls = []
    real_fit_map = api.fit_map

    def first_start_diverges_once(target, starts, **kwargs):
        calls.append(np.asarray(starts))
        fit = real_fit_map(target, starts, **kwargs)
        if len(calls) == 1:
            fit = MAPResult(fit.position, fit.logdensity.at[0].set(jnp.nan), fit.trace,
                            fit.compile_seconds)
        return fit

    monkeypatch.setattr(api, "fit_map", first_start_diverges_once)
    ctx = api.method_context(model, settings, jax.random.key(0), jax.random.key(1))
    assert ctx.map_restarts == 1 and len(calls) == 2
    assert not np.array_equal(calls[0][0], calls[1][0])  # the diverged start was replaced
    np.testing.assert_array_equal(calls[0][1], calls[1][1])  # the good one was kept
    assert np.all(np.isfinite(ctx.map_fit.logdensity))


def test_map_that_always_diverges_fails_clearly(heat_case, monkeypatch):
    settings, model = _settings_and_model(heat_case(inference=TINY, model={"width": 8}))
    real_fit_map = api.fit_map

    def always_nan(target, starts, **kwargs):
        fit = real_fit_map(target, starts, **kwargs)
        return MAPResult(fit.position, jnp.full_like(fit.logdensity, jnp.nan), fit.trace,
                         fit.compile_seconds)

    monkeypatch.setattr(api, "fit_map", always_nan)
    with pytest.raises(MAPError, match=f"after {MAP_RESTARTS} restarts.*map_learning_rate"):
        api.method_context(model, settings, jax.random.key(0), jax.random.key(1))


def test_cli_reports_a_diverging_map_and_leaves_nothing(heat_case, capsys):
    # A learning rate of 1e12 throws the coefficients to overflow on the first Adam steps.
    config = heat_case(inference={**TINY, "map_learning_rate": 1e12}, model={"width": 8})
    outdir = heat_case.root / "out"
    code = main(["run", str(config), "-o", str(outdir), "--quiet", "--no-report"])
    assert code == EXIT_FAILED
    err = capsys.readouterr().err
    assert "MAP optimisation diverged" in err and "map_learning_rate" in err
    assert "Traceback" not in err
    assert not outdir.exists()
