"""The gold standard: classical Bayesian inversion with a reference solver as forward model.

Same priors, same sensor data, same noise model as the B-PINN; the network and the physics
residual are replaced by a classical solver (``bpinn.reference``) that satisfies the PDE to its
discretisation error. The posterior over the coefficients and noise scales is sampled with the
same preconditioned NUTS as the default method (a handful of dimensions, so it is cheap), and the
results have the same layout, so ``--method reference`` and ``--method nuts`` can be compared
cell for cell.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import Predictive

from bpinn.inference.map import fit_map
from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.nuts import run_nuts
from bpinn.inference.target import make_target
from bpinn.reference.registry import problem_forward

MAP_ADAM_STEPS = 500
MAP_LBFGS_STEPS = 200
SCREEN_DRAWS = 1024  # prior draws whose log density is evaluated to choose the MAP starts


def screened_starts(rng_key, target, model_fn, num_starts: int) -> jnp.ndarray:
    """The ``num_starts`` best of ``SCREEN_DRAWS`` prior draws, by posterior log density.

    The likelihood of a classical inversion can have many local modes (a wave speed matched
    one period late; a decay rate traded against an amplitude). Gradient fits from the prior
    median then end in whichever basin they start in, and NUTS started there samples that mode
    with nothing flagging it. The forward model is cheap, so scanning the prior first finds the
    global basin whenever its prior mass is not negligible.
    """
    draws = Predictive(model_fn, num_samples=SCREEN_DRAWS)(rng_key)
    draws = {k: v for k, v in draws.items() if k in target.site_slices}
    pool = jax.jit(jax.vmap(target.from_constrained))(draws)
    logdensity = jax.jit(jax.vmap(target.logdensity_fn))(pool)
    logdensity = jnp.where(jnp.isfinite(logdensity), logdensity, -jnp.inf)
    return pool[jnp.argsort(-logdensity)[:num_starts]]


def check(model, settings) -> None:
    """A reference solver must exist for the PDE and its conditions; raises ValueError."""
    del settings
    if model.problem.source_data is not None:
        raise ValueError("[source_data] readings of the source have no place in the classical "
                         "inversion (its source is a known function); drop them to compare")
    problem_forward(model.problem)


def sample(rng_key, ctx: MethodContext) -> Draws:
    """NUTS over the coefficients and noise scales with the reference forward model."""
    inf, model = ctx.settings, ctx.model
    t0 = time.perf_counter()
    forward = problem_forward(model.problem)
    target_key, init_key, nuts_key = jax.random.split(rng_key, 3)
    model_fn = model.classical_model(forward)
    target = make_target(target_key, model_fn)
    # Half the starts spread around the prior medians, half the best of a prior scan.
    spread_key, screen_key = jax.random.split(init_key)
    num_screened = max(1, inf.num_chains // 2)
    spread = target.initial_position + 0.5 * jax.random.normal(
        spread_key, (inf.num_chains - num_screened, target.dim))
    starts = jnp.concatenate(
        [screened_starts(screen_key, target, model_fn, num_screened), spread])
    fit = fit_map(target, starts, num_adam_steps=MAP_ADAM_STEPS, learning_rate=0.05,
                  num_lbfgs_steps=MAP_LBFGS_STEPS, physics_ramp=0.0, progress=ctx.progress)
    centers = jnp.broadcast_to(fit.best(), fit.position.shape)
    map_s = time.perf_counter() - t0 - fit.compile_seconds
    result, timing = run_nuts(
        nuts_key, target, centers, num_warmup=inf.num_warmup, num_samples=inf.num_samples,
        max_tree_depth=inf.max_tree_depth, target_acceptance=inf.target_acceptance,
        damping=0.0, curvature_floor=1e-6, adapt_mass_matrix=True, progress=ctx.progress,
    )
    trace = result.trace
    info = {"step_size": np.asarray(result.step_size).tolist(),
            "max_tree_depth": inf.max_tree_depth,
            "forward_model": ("the config's own forward model ([problem] reference)"
                              if model.problem.reference is not None
                              else f"reference solver for '{model.problem.pde.name}'")}
    timing = {**timing, "reference_map_s": map_s,
              "compile_s": timing["compile_s"] + fit.compile_seconds}

    def predictor(points):
        at_points = forward if points is None else problem_forward(model.problem, points)
        return lambda values: at_points(model.coefficient_values(values))

    return Draws(trace.position, trace.sample_stats(), info, timing, target=target,
                 predictor=predictor)


METHOD = Method(
    name="reference",
    run=sample,
    exact_mcmc=True,
    description=("Classical Bayesian inversion: NUTS over the coefficients with a reference "
                 "solver in place of the network (the gold standard where a solver exists)."),
    limitations=("not a B-PINN: no network, no physics residual; its accuracy is the solver's "
                 "discretisation error",),
    needs_map=False,
    implicit_prior="none",
    check=check,
)
