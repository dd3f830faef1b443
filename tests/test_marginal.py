"""The output layer integrated out analytically (``bpinn.inference.marginal``).

The identity checked first is exact algebra: for a model Gaussian and affine in the output
layer w, ``log p(r, w) = log p(r) + log N(w; mean, P^-1)`` for every w. The sampling test uses
Monte Carlo bounds only (as in tests/test_method_mcmc.py).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import multivariate_normal
from monte_carlo import assert_same_posterior, draw_summary

from bpinn.api import prepare, run
from bpinn.config import ConfigError, load_config
from bpinn.inference.marginal import OutputMarginal, check_affine, output_marginal
from bpinn.inference.methods import get_method
from bpinn.inference.target import make_target

TINY_MODEL = {"width": 8, "num_collocation": 32}
TRUE_D = 0.07


def tiny_heat(heat_case, *edits, **sections):
    model = prepare(load_config(heat_case(*edits, model=TINY_MODEL, **sections)))
    return model, make_target(jax.random.key(0), model.model)


def random_position(model, target, seed):
    """Random network weights (non-zero features), D and sigma near their prior medians."""
    return target.from_constrained(model.initial_values(jax.random.key(seed)))


def test_marginal_and_conditional_factor_the_joint_density(heat_case):
    model, target = tiny_heat(heat_case)
    marginal = OutputMarginal.build(model, target)
    assert marginal.dim == target.dim - (TINY_MODEL["width"] + 1)
    reduced = marginal.reduce(random_position(model, target, 1))
    cond = jax.jit(marginal.conditional)(reduced)
    covariance = jnp.linalg.inv(cond.cholesky @ cond.cholesky.T)
    for seed in range(3):
        w = cond.mean + 0.5 * jax.random.normal(jax.random.key(seed), cond.mean.shape)
        joint = target.logdensity_fn(marginal.embed(reduced, w))
        factored = cond.log_marginal + multivariate_normal.logpdf(w, cond.mean, covariance)
        np.testing.assert_allclose(factored, joint, rtol=1e-9)


def test_completed_draw_keeps_the_reduced_position(heat_case):
    model, target = tiny_heat(heat_case)
    marginal = OutputMarginal.build(model, target)
    reduced = marginal.reduce(random_position(model, target, 2))
    full, logdensity = marginal.complete(jax.random.key(0), reduced)
    np.testing.assert_array_equal(marginal.reduce(full), reduced)
    np.testing.assert_allclose(logdensity, target.logdensity_fn(full), rtol=1e-9)
    other, _ = marginal.complete(jax.random.key(1), reduced)
    assert not np.allclose(full[marginal.output], other[marginal.output])


def test_nonlinear_pde_is_refused(heat_case):
    model, target = tiny_heat(heat_case, ('pde = "heat"', 'pde = "burgers"'),
                              ("D = {", "nu = {"), drop=("D = 0.07",))
    marginal = OutputMarginal.build(model, target)
    with pytest.raises(ValueError, match="'pde_residual' is not affine"):
        check_affine(marginal, jax.random.key(0),
                     marginal.reduce(random_position(model, target, 1)))
    # "auto" falls back to sampling the layer and says why
    resolved, note = output_marginal(model, target, "auto", jax.random.key(0))
    assert resolved is None and note.startswith("sampled (auto:") and "affine" in note
    with pytest.raises(ValueError, match="output_layer = 'marginal'.*not affine"):
        get_method("nuts").check(model, dataclasses.replace(
            load_config(heat_case()).inference, output_layer="marginal"))


def test_heat_case_is_affine_and_auto_integrates(heat_case):
    model, target = tiny_heat(heat_case)
    resolved, note = output_marginal(model, target, "auto", jax.random.key(0))
    assert isinstance(resolved, OutputMarginal) and note == "marginal"


def test_student_t_readings_are_refused_before_any_work(heat_case):
    config = load_config(heat_case(("[data]\n", '[data]\nlikelihood = "student_t"\n'),
                                   inference={"output_layer": "marginal"}, model=TINY_MODEL))
    with pytest.raises(ValueError, match="student_t"):
        get_method("nuts").check(prepare(config), config.inference)


def test_config_rejects_unknown_mode_and_other_methods(heat_case):
    with pytest.raises(ConfigError, match="output_layer.*'sampled', 'marginal', 'auto'"):
        load_config(heat_case(inference={"output_layer": "integrated"}))
    with pytest.raises(ConfigError, match="output_layer.*method 'nuts' only"):
        load_config(heat_case(inference={"output_layer": "marginal", "method": "hmc"}))


def test_run_reports_the_output_layer_mode(heat_case):
    config = heat_case(model=TINY_MODEL, inference={
        "output_layer": "marginal", "num_chains": 2, "num_warmup": 30, "num_samples": 20,
        "map_adam_steps": 300, "map_lbfgs_steps": 20, "max_tree_depth": 4,
        "save_weights": True})
    result = run(config)
    assert result.summary["method_info"]["output_layer"] == "marginal"
    weights = result.datatree["posterior"]["weights"].values
    assert weights.shape[:2] == (2, 20)
    # the output layer (last width + 1 entries) is drawn, not left at zero
    assert np.all(np.std(weights[..., -(TINY_MODEL["width"] + 1):], axis=(0, 1)) > 0)
    # lp is the joint log density of the completed draw, as for the other methods, plus the
    # term that removes the physics terms' implied prior (the default corrects it here)
    model = prepare(load_config(config))
    target = make_target(jax.random.key(0), model.model)
    posterior = result.datatree["posterior"]
    values = {name: jnp.asarray(posterior[name].values[0, 0]) for name in ("weights", "D", "sigma")}
    implied = result.summary["method_info"]["implicit_prior"]
    assert implied["mode"] == "corrected"
    row = implied["coefficients"]["D"]
    correction = -row["slope"] * (np.log(float(values["D"])) - row["at_unconstrained"])
    np.testing.assert_allclose(result.datatree["sample_stats"]["lp"].values[0, 0],
                               target.logdensity_fn(target.from_constrained(values)) + correction,
                               rtol=1e-9)


@pytest.mark.slow
def test_marginal_nuts_agrees_with_sampled_output_layer(heat_context, heat_nuts_draws):
    """Same model, data and MAP: the posterior of D from NUTS with the output layer integrated
    out and from NUTS over every weight agree within Monte Carlo error (means within 3 combined
    MCSE, sds within 3 standard errors of their log ratio), and each covers the truth."""
    ctx = heat_context()
    summaries = {}
    for mode in ("sampled", "marginal"):
        if mode == "sampled":
            draws = heat_nuts_draws
        else:
            # Depth 8: short trajectories suffice once the output layer is integrated out
            # (docs/benchmarks.md); the bounds use each run's own ESS either way. The implied
            # prior stays in, as in the sampled run: both must target the same posterior.
            draws = get_method("nuts").run(jax.random.key(1), dataclasses.replace(
                ctx, settings=dataclasses.replace(ctx.settings, output_layer=mode,
                                                  max_tree_depth=8, implicit_prior="ignored")))
        assert draws.info["output_layer"] == mode
        flat = draws.position.reshape(-1, ctx.target.dim)
        d = np.asarray(jax.vmap(ctx.target.constrained)(flat)["D"]).reshape(
            draws.position.shape[:2])
        summaries[mode] = draw_summary(d)
        assert abs(d.mean() - TRUE_D) <= 3 * d.std(), (mode, summaries[mode])
    assert_same_posterior(summaries["sampled"], summaries["marginal"])
