"""Variational approximations: numpyro SVI with three guide families, and blackjax Pathfinder.

None of these is MCMC. Each fits a Gaussian (in the unconstrained space) to the posterior by
maximising an ELBO and returns independent draws from it. What a Gaussian family cannot
represent (skewness, several modes and, for the factorised guides, the correlations between the
factors) is silently missing from the results, and reverse-KL fits typically underestimate
posterior variances.

SVI (``svi_meanfield``, ``svi_lowrank``, ``svi_structured``)
    Adam on the ELBO of a numpyro autoguide of the B-PINN model. The guide starts at the best
    MAP fit with small scales (``INIT_SCALE``): a PINN's weight posterior is narrow, and a
    guide that starts wide draws networks far from any fit, whose huge residuals swamp the
    gradients. The ELBO trace is returned (thinned) with a check that it stopped rising.

Pathfinder (``pathfinder``)
    One L-BFGS path per chain (blackjax); along each path the Gaussian built from the L-BFGS
    inverse-Hessian estimate with the highest ELBO is kept, and the chain's draws come from it.
    Paths start at the MAP fits, not at the random ``ctx.starts``: on the heat case, paths from
    the random starts (no physics ramp, unlike the MAP fit) chose Gaussians in the region where
    D is about 0 and the sensor noise explains the data (D = 0.0003, sigma = 0.33).

What was measured on the reduced heat case (tests/test_method_variational.py, 2000 SVI steps,
seed 0; truth D = 0.07, NUTS 0.0673 +- 0.00136): svi_meanfield 0.0616 +- 0.00035,
svi_lowrank 0.0576 +- 0.00037, svi_structured 0.0614 +- 0.00038, pathfinder 0.0689 +- 0.00060.
Every method is overconfident about D (sd 0.25 to 0.45 of NUTS's), and the SVI means move
with the number of steps. The reason is the ELBO itself: the posterior near the MAP is narrow
and strongly correlated across the 337 weights, so a mean-field or low-rank Gaussian there has
a very low ELBO (about -1800), and the ELBO rises as the guide moves toward the broad region
where D is about 0 and the noise explains the data (mean-field, 20000 steps: D = 0.0004,
sigma = 0.35, ELBO -280 and still rising). A full-covariance Gaussian at the mode would do
better (Laplace log evidence -210 to -310 depending on how far the fit is converged), so the
drift is a failure of the restricted families, not a second mode with more mass. Longer SVI
runs are therefore *worse* on this problem; the ELBO trace in ``info`` shows the drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from numpyro.infer import SVI, Trace_ELBO, init_to_value
from numpyro.infer.autoguide import (
    AutoGuideList,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)

from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.target import Target, chunked_scan, concat_outputs
from bpinn.utils import progress_bar

WEIGHT_SITE = "weights"

# Initial sd of every guide coordinate (unconstrained space). At the heat case's MAP the
# Laplace sd of log D is 0.02 and the weight curvatures reach 1e7 (sd 3e-4): guides that start
# wider draw networks whose PDE residuals are orders of magnitude off.
INIT_SCALE = 1e-3
# The learning rate decays (cosine) to this fraction of ``svi_learning_rate``: Adam moves every
# coordinate by about the learning rate per step, more than the sd of many weights, so the final
# guide must sit still for its means to mean anything.
FINAL_LEARNING_RATE_FRACTION = 0.05
MAX_TRACE_POINTS = 500
# Convergence check: the mean ELBO of the last CONVERGENCE_WINDOW of steps may exceed that of
# the window before by at most CONVERGENCE_NUM_SE standard errors of the last window's mean.
CONVERGENCE_WINDOW = 0.1
CONVERGENCE_NUM_SE = 2.0
MIN_SVI_STEPS = 20  # two windows of at least two steps each

# Pathfinder. From the MAP fits of the default settings the L-BFGS path keeps raising the log
# density for hundreds of iterations (the fits are not fully converged), and every iteration
# adds a curvature pair; measured on the heat case, D moved from 0.0664 +- 0.0005 (200
# iterations) to 0.0689 +- 0.0006 (1000). FTOL is tiny so that the whole budget is used.
PATHFINDER_MAX_ITER = 1000
PATHFINDER_HISTORY = 10  # 50 gave D sd 0.0013 on the heat case but took 20x longer
PATHFINDER_FTOL = 1e-12
PATHFINDER_GTOL = 1e-8
# Draws per path point for the ELBO that picks the Gaussian; blackjax evaluates all path
# points at once, so memory grows as PATHFINDER_MAX_ITER x this.
PATHFINDER_ELBO_DRAWS = 16
LP_BATCH_SIZE = 256  # draws per batch when evaluating the log density of the draws


class SVIFit(NamedTuple):
    """A fitted guide.

    guide : the numpyro autoguide (set up by the fit).
    params : its fitted parameters (constrained), as ``guide.sample_posterior`` takes them.
    elbo : (num_steps,) the ELBO estimate at every step.
    """

    guide: Any
    params: dict
    elbo: np.ndarray


# ---- guides --------------------------------------------------------------------------------


def meanfield_guide(model_fn: Callable, init_values: dict, *, init_scale: float = INIT_SCALE):
    """Independent normals on every unconstrained coordinate (numpyro ``AutoNormal``).

    Parameters
    ----------
    model_fn : the numpyro model.
    init_values : constrained site values for the guide's means (e.g. the MAP).
    init_scale : initial sd of every coordinate.

    Examples
    --------
    >>> # fit, _ = fit_svi(key, model, meanfield_guide(model, map_values), num_steps=1000,
    >>> #                  learning_rate=0.005)                                # doctest: +SKIP
    """
    return AutoNormal(model_fn, init_loc_fn=init_to_value(values=init_values),
                      init_scale=init_scale)


def lowrank_guide(model_fn: Callable, init_values: dict, *, rank: int,
                  init_scale: float = INIT_SCALE):
    """One normal over all sites with covariance ``diag + W W^T``, ``W`` with ``rank`` columns
    (numpyro ``AutoLowRankMultivariateNormal``); other parameters as ``meanfield_guide``."""
    return AutoLowRankMultivariateNormal(
        model_fn, init_loc_fn=init_to_value(values=init_values), init_scale=init_scale,
        rank=rank,
    )


def structured_guide(model_fn: Callable, init_values: dict, *, weight_rank: int | None = None,
                     init_scale: float = INIT_SCALE, weight_site: str = WEIGHT_SITE):
    """A full-covariance normal over every site except ``weight_site`` (the coefficients and
    noise scales), independent of a normal over the network weights: mean-field by default,
    or low rank with ``weight_rank`` columns.

    Coefficients and weights are independent under this guide, so the posterior correlation
    between them (a different D needs a different network) is not represented.
    """
    init = init_to_value(values=init_values)
    guide = AutoGuideList(model_fn)
    guide.append(AutoMultivariateNormal(
        numpyro.handlers.block(model_fn, hide=[weight_site]), init_loc_fn=init,
        init_scale=init_scale, prefix="auto_globals",
    ))
    weights_model = numpyro.handlers.block(model_fn, expose=[weight_site])
    if weight_rank is None:
        guide.append(AutoNormal(weights_model, init_loc_fn=init, init_scale=init_scale,
                                prefix="auto_weights"))
    else:
        guide.append(AutoLowRankMultivariateNormal(
            weights_model, init_loc_fn=init, init_scale=init_scale, rank=weight_rank,
            prefix="auto_weights",
        ))
    return guide


# ---- SVI -----------------------------------------------------------------------------------


def fit_svi(
    rng_key,
    model_fn: Callable,
    guide,
    *,
    num_steps: int,
    learning_rate: float,
    num_particles: int = 1,
    progress: bool = False,
) -> tuple[SVIFit, dict]:
    """Maximise the ELBO of ``guide`` for ``model_fn`` with Adam.

    Parameters
    ----------
    rng_key : JAX PRNG key.
    model_fn : the numpyro model (called without arguments).
    guide : a numpyro autoguide for it (``meanfield_guide`` and friends).
    num_steps : optimisation steps (>= ``MIN_SVI_STEPS``).
    learning_rate : Adam's initial learning rate; it decays (cosine) to
        ``FINAL_LEARNING_RATE_FRACTION`` of this.
    num_particles : Monte Carlo draws per ELBO estimate.
    progress : show a progress bar with the ELBO (mean over the last chunk of steps).

    Returns
    -------
    (SVIFit, timing) with ``compile_s`` (guide set-up and compilation) and ``optimization_s``.
    """
    if num_steps < MIN_SVI_STEPS:
        raise ValueError(f"num_steps must be >= {MIN_SVI_STEPS}, got {num_steps}")
    schedule = optax.cosine_decay_schedule(
        learning_rate, num_steps, alpha=FINAL_LEARNING_RATE_FRACTION
    )
    optimizer = numpyro.optim.optax_to_numpyro(optax.adam(schedule))
    svi = SVI(model_fn, guide, optimizer, Trace_ELBO(num_particles=num_particles))

    t0 = time.perf_counter()
    state = svi.init(rng_key)  # traces the model and guide
    setup_seconds = time.perf_counter() - t0

    def step(state, _):
        state, loss = svi.update(state)
        return state, -loss

    t0 = time.perf_counter()
    state, outputs, compile_seconds = chunked_scan(
        step, state, jnp.arange(num_steps), length=num_steps, desc="SVI", progress=progress,
        postfix_fn=lambda s, elbo: f"ELBO {float(jnp.mean(elbo)):.6g}",
    )
    elbo = np.asarray(concat_outputs(outputs))
    timing = {"compile_s": setup_seconds + compile_seconds,
              "optimization_s": time.perf_counter() - t0 - compile_seconds}
    return SVIFit(guide=guide, params=svi.get_params(state), elbo=elbo), timing


def elbo_convergence(elbo, *, window: float = CONVERGENCE_WINDOW,
                     num_se: float = CONVERGENCE_NUM_SE) -> dict:
    """Did the ELBO stop rising? Compare the last ``window`` of the steps with the one before.

    The fit counts as converged when the mean ELBO of the last window exceeds that of the
    previous window by at most ``num_se`` standard errors of the last window's mean (the
    per-step estimates are noisy; their spread in the last window sets the scale). It detects
    an ELBO still rising at the end; with a decaying learning rate a flat end can also mean the
    steps became too small to move, so it is necessary, not sufficient, for convergence.

    Returns a JSON-ready dict: ``elbo_converged``, ``elbo_final`` (mean of the last window),
    ``elbo_improvement`` (last minus previous window mean), ``elbo_threshold``,
    ``elbo_window_steps``, and ``warning`` when not converged.

    Examples
    --------
    >>> elbo_convergence(np.linspace(-100.0, -10.0, 1000))["elbo_converged"]
    False
    """
    elbo = np.asarray(elbo, dtype=float)
    size = max(2, int(round(window * elbo.size)))
    if elbo.size < 2 * size:
        raise ValueError(f"need at least {2 * size} ELBO values for window {window}, "
                         f"got {elbo.size}")
    last, previous = elbo[-size:], elbo[-2 * size:-size]
    finite = bool(np.all(np.isfinite(last)) and np.all(np.isfinite(previous)))
    nan = float("nan")
    improvement = float(np.mean(last) - np.mean(previous)) if finite else nan
    threshold = float(num_se * np.std(last, ddof=1) / np.sqrt(size)) if finite else nan
    out = {
        "elbo_converged": bool(finite and improvement <= threshold),
        "elbo_final": float(np.mean(last)) if finite else nan,
        "elbo_improvement": improvement,
        "elbo_threshold": threshold,
        "elbo_window_steps": size,
    }
    if not finite:
        out["warning"] = "the ELBO is not finite in the last windows: the optimisation diverged"
    elif not out["elbo_converged"]:
        out["warning"] = (
            f"the ELBO was still rising: its mean over the last {size} steps exceeds that of the "
            f"{size} steps before by {improvement:.3g}, more than {num_se:g} standard errors "
            f"({threshold:.3g}); the fit has not converged"
        )
    return out


def thin(values, max_points: int = MAX_TRACE_POINTS) -> list[float]:
    """At most ``max_points`` evenly spaced values (the last always included), as floats."""
    values = np.asarray(values, dtype=float)
    stride = max(1, int(np.ceil(values.size / max_points)))
    index = np.arange(values.size - 1, -1, -stride)[::-1]
    return [float(v) for v in values[index]]


def guide_draws(rng_key, fit: SVIFit, target: Target, num_draws: int) -> jnp.ndarray:
    """(num_draws, dim) independent draws of the fitted guide, flat and unconstrained in
    ``target``'s layout (traceable: jit it)."""
    # AutoGuideList.sample_posterior hands the same key to every part, and JAX streams of one
    # key coincide across shapes: the parts' draws would share their noise. One key per part.
    parts = list(fit.guide) if isinstance(fit.guide, AutoGuideList) else [fit.guide]
    values = {}
    for key, part in zip(jax.random.split(rng_key, len(parts)), parts, strict=True):
        values.update(part.sample_posterior(key, fit.params, sample_shape=(num_draws,)))
    values = {name: values[name] for name in target.site_slices}
    return jax.jit(jax.vmap(target.from_constrained))(values)


def _batched_logdensity(target: Target, flat):
    return jax.lax.map(target.logdensity_fn, flat, batch_size=LP_BATCH_SIZE)


def run_svi(rng_key, ctx: MethodContext, make_guide: Callable) -> Draws:
    """Fit ``make_guide(model_fn, map_values)`` to ``ctx``'s posterior; return its draws.

    Draws are ``num_chains x num_samples`` independent draws of the one fitted guide (the
    "chains" are only a reshaping, so R-hat says nothing). sample_stats holds ``lp``, the
    target log density of each draw, comparable with the ``lp`` of NUTS. info holds the thinned
    ELBO trace and ``elbo_convergence``.
    """
    inf, target = ctx.settings, ctx.target
    fit_key, draw_key = jax.random.split(rng_key)
    model_fn = ctx.model.model
    guide = make_guide(model_fn, target.constrained(ctx.best_map()))
    fit, timing = fit_svi(
        fit_key, model_fn, guide, num_steps=inf.svi_steps, learning_rate=inf.svi_learning_rate,
        num_particles=inf.svi_num_particles, progress=ctx.progress,
    )
    num_draws = inf.num_chains * inf.num_samples

    def draw_fn(key, params):
        flat = guide_draws(key, fit._replace(params=params), target, num_draws)
        return flat, _batched_logdensity(target, flat)

    t0 = time.perf_counter()
    draw_fn = jax.jit(draw_fn).lower(draw_key, fit.params).compile()
    timing["compile_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    flat, lp = jax.block_until_ready(draw_fn(draw_key, fit.params))
    timing["sampling_s"] = time.perf_counter() - t0
    info = {
        "elbo_trace": thin(fit.elbo),
        "elbo_trace_steps": [int(s) for s in thin(np.arange(1, fit.elbo.size + 1))],
        "svi_steps": int(fit.elbo.size),
        "learning_rate": float(inf.svi_learning_rate),
        "num_particles": int(inf.svi_num_particles),
        "init": "best MAP fit",
        **elbo_convergence(fit.elbo),
    }
    shape = (inf.num_chains, inf.num_samples)
    return Draws(flat.reshape(*shape, target.dim), {"lp": lp.reshape(shape)}, info, timing)


# ---- Pathfinder ----------------------------------------------------------------------------


class PathfinderResult(NamedTuple):
    """One row per path.

    position : (num_paths, num_samples, dim) draws from the Gaussian each path chose.
    logdensity : (num_paths, num_samples) target log density of the draws.
    elbo : (num_paths,) ELBO estimate of the chosen Gaussian.
    best_iteration : (num_paths,) its index along the path (0 is the start).
    num_iterations : (num_paths,) L-BFGS iterations the path took.
    """

    position: jnp.ndarray
    logdensity: jnp.ndarray
    elbo: jnp.ndarray
    best_iteration: jnp.ndarray
    num_iterations: jnp.ndarray


def run_pathfinder(
    rng_key,
    target: Target,
    initial_positions: jnp.ndarray,
    *,
    num_samples: int,
    max_iterations: int = PATHFINDER_MAX_ITER,
    history_size: int = PATHFINDER_HISTORY,
    num_elbo_draws: int = PATHFINDER_ELBO_DRAWS,
    progress: bool = False,
) -> tuple[PathfinderResult, dict]:
    """One Pathfinder path per row of ``initial_positions``, ``num_samples`` draws from each.

    Parameters
    ----------
    rng_key : JAX PRNG key.
    target : the posterior.
    initial_positions : (num_paths, dim) flat unconstrained starting points. A start at an
        exact mode (zero gradient) gives an empty path and a useless unit covariance.
    num_samples : draws per path.
    max_iterations, history_size : L-BFGS iterations and history ("maxcor"); the Gaussian's
        covariance is a diagonal plus a correction of rank ``2 * history_size``.
    num_elbo_draws : draws per path point for the ELBO that picks the Gaussian.
    progress : show a progress bar over the paths.

    Returns
    -------
    (PathfinderResult, timing) with ``compile_s``, ``optimization_s`` and ``sampling_s``.
    """
    num_paths = initial_positions.shape[0]

    def one_path(fit_key, draw_key, start):
        state, info = blackjax.vi.pathfinder.approximate(
            fit_key, target.logdensity_fn, start, num_samples=num_elbo_draws,
            maxiter=max_iterations, maxcor=history_size, ftol=PATHFINDER_FTOL,
            gtol=PATHFINDER_GTOL,
        )
        # blackjax marks the path points beyond the last iteration with ELBO -inf
        num_iterations = jnp.sum(jnp.isfinite(info.path.elbo)) - 1
        draws = blackjax.vi.pathfinder.sample(draw_key, state, num_samples)[0]
        summary = (state.elbo, jnp.argmax(info.path.elbo), num_iterations)
        return draws, summary

    fit_keys = jax.random.split(jax.random.fold_in(rng_key, 0), num_paths)
    draw_keys = jax.random.split(jax.random.fold_in(rng_key, 1), num_paths)
    lp_fn = jax.jit(lambda x: _batched_logdensity(target, x))
    t0 = time.perf_counter()
    path_fn = jax.jit(one_path).lower(fit_keys[0], draw_keys[0], initial_positions[0]).compile()
    lp_fn = lp_fn.lower(jnp.zeros((num_samples, target.dim))).compile()
    compile_seconds = time.perf_counter() - t0
    draws, summaries = [], []
    t0 = time.perf_counter()
    with progress_bar(total=num_paths, desc="Pathfinder", enabled=progress) as bar:
        for fit_key, draw_key, start in zip(fit_keys, draw_keys, initial_positions, strict=True):
            position, summary = path_fn(fit_key, draw_key, start)
            draws.append(position)
            summaries.append(summary)
            bar.set_postfix_str(f"ELBO {float(summary[0]):.6g}")
            bar.update(1)
    position = jax.block_until_ready(jnp.stack(draws))
    optimization_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    lp = jax.block_until_ready(jnp.stack([lp_fn(p) for p in position]))
    timing = {"compile_s": compile_seconds, "optimization_s": optimization_seconds,
              "sampling_s": time.perf_counter() - t0}
    elbo, best, iterations = (jnp.stack(a) for a in zip(*summaries, strict=True))
    return PathfinderResult(position, lp, elbo, best, iterations), timing


def pathfinder(rng_key, ctx: MethodContext) -> Draws:
    """The ``pathfinder`` method: path c starts at MAP fit c and gives chain c's draws.

    A path shorter than ``2 * PATHFINDER_HISTORY`` iterations (a start already at a mode)
    has too few curvature pairs for a covariance estimate: ``info["warning"]`` says so.
    """
    result, timing = run_pathfinder(
        rng_key, ctx.target, ctx.map_fit.position, num_samples=ctx.settings.num_samples,
        progress=ctx.progress,
    )
    iterations = np.asarray(result.num_iterations).tolist()
    info = {
        "path_elbo": np.asarray(result.elbo).tolist(),
        "path_best_iteration": np.asarray(result.best_iteration).tolist(),
        "path_num_iterations": iterations,
        "max_iterations": PATHFINDER_MAX_ITER,
        "history_size": PATHFINDER_HISTORY,
        "start": "MAP fits, one per chain",
    }
    short = [c for c, n in enumerate(iterations) if n < 2 * PATHFINDER_HISTORY]
    if short:
        info["warning"] = (
            f"the L-BFGS paths of chains {short} took fewer than {2 * PATHFINDER_HISTORY} "
            "iterations (their MAP fits were already converged), too few to estimate a "
            "covariance: their draws are not a posterior approximation"
        )
    return Draws(result.position, {"lp": result.logdensity}, info, timing)


# ---- methods -------------------------------------------------------------------------------


def _check_svi(model, settings) -> None:
    del model
    if settings.svi_steps < MIN_SVI_STEPS:
        raise ValueError(
            f"svi_steps = {settings.svi_steps} is too few for the ELBO convergence check; "
            f"use svi_steps >= {MIN_SVI_STEPS}"
        )


def svi_meanfield(rng_key, ctx: MethodContext) -> Draws:
    """The ``svi_meanfield`` method."""
    return run_svi(rng_key, ctx, meanfield_guide)


def svi_lowrank(rng_key, ctx: MethodContext) -> Draws:
    """The ``svi_lowrank`` method (rank ``settings.svi_rank``)."""
    rank = ctx.settings.svi_rank
    return run_svi(rng_key, ctx, lambda model_fn, values: lowrank_guide(
        model_fn, values, rank=rank))


def svi_structured(rng_key, ctx: MethodContext) -> Draws:
    """The ``svi_structured`` method.

    The weights get a mean-field guide: with a rank-8 factor instead, the heat case's ELBO
    after 2000 steps was the same (-1802 against -1801, noise about 5) and the fit took 50%
    longer.
    """
    return run_svi(rng_key, ctx, structured_guide)


_GAUSSIAN = ("a single Gaussian in the unconstrained space: skewness, heavy tails and other "
             "modes of the posterior are not represented")
_ELBO_DRIFT = ("the ELBO can favour a broad wrong region over the narrow posterior mode (on the "
               "heat case it drifts toward D = 0 with the noise explaining the data); check the "
               "ELBO trace and compare with NUTS")

SVI_MEANFIELD = Method(
    name="svi_meanfield",
    run=svi_meanfield,
    exact_mcmc=False,
    description="SVI (numpyro) with a mean-field normal guide (AutoNormal), started at the MAP.",
    limitations=(
        "cannot show posterior correlations; variances are typically underestimated "
        "(on the heat case the sd of D was about a quarter of NUTS's)",
        _GAUSSIAN,
        _ELBO_DRIFT,
    ),
    check=_check_svi,
)

SVI_LOWRANK = Method(
    name="svi_lowrank",
    run=svi_lowrank,
    exact_mcmc=False,
    description="SVI (numpyro) with a low-rank plus diagonal normal guide over all parameters "
                "(rank svi_rank), started at the MAP.",
    limitations=(
        "shows correlations only along svi_rank directions, while the weight posterior is "
        "correlated in many; variances are typically underestimated (on the heat case the sd "
        "of D was about a quarter of NUTS's)",
        _GAUSSIAN,
        _ELBO_DRIFT,
    ),
    check=_check_svi,
)

SVI_STRUCTURED = Method(
    name="svi_structured",
    run=svi_structured,
    exact_mcmc=False,
    description="SVI (numpyro): full-covariance normal over the coefficients and noise scales, "
                "independent mean-field normal over the network weights; started at the MAP.",
    limitations=(
        "coefficients and noise scales are independent of the network weights under this "
        "guide, so the uncertainty of D that comes from the network's freedom (a different D "
        "with a different network) is missing: the sd of D is that given the weights, typically "
        "far too small (on the heat case about a quarter of NUTS's)",
        "cannot show correlations between network weights",
        _GAUSSIAN,
        _ELBO_DRIFT,
    ),
    check=_check_svi,
)

PATHFINDER = Method(
    name="pathfinder",
    run=pathfinder,
    exact_mcmc=False,
    description="Pathfinder (blackjax): one L-BFGS path from each MAP fit; each chain's draws "
                "come from the best Gaussian along its path.",
    limitations=(
        f"the covariance is a diagonal plus a rank-{2 * PATHFINDER_HISTORY} L-BFGS estimate, "
        "so most weight correlations are missing; variances are typically underestimated (on "
        "the heat case the sd of D was about 0.4 of NUTS's)",
        "each chain describes only the mode its MAP fit found; chains that disagree show "
        "several modes, not their relative weights",
        _GAUSSIAN,
    ),
)
