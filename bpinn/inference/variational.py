"""Variational approximations: numpyro SVI with three guide families, and blackjax Pathfinder.

None of these is MCMC. Each fits a Gaussian (in the unconstrained space) to the posterior by
maximising an ELBO and returns independent draws from it. What a Gaussian family cannot
represent (skewness, several modes and, for the factorised guides, the correlations between the
factors) is silently missing from the results, and reverse-KL fits typically underestimate
posterior variances.

SVI (``svi_meanfield``, ``svi_lowrank``, ``svi_structured``)
    Adam on the ELBO of a numpyro autoguide. By default (``svi_coordinates = "whitened"``) the
    guide lives in coordinates where the damped Laplace approximation at the best MAP fit is a
    standard normal (``laplace_whitening``, the same curvature that preconditions NUTS), and it
    starts as that approximation. A mean-field guide there is a full-covariance Gaussian in the
    weights, its correlations taken from the curvature, and the guide's own parameters only
    rescale and shift it. With ``"raw"`` the guide lives on the model's own sites and starts
    at the MAP with small scales (``INIT_SCALE``). The ELBO trace is returned (thinned) with a
    check that it stopped rising.

Pathfinder (``pathfinder``)
    One L-BFGS path per chain (blackjax); along each path the Gaussian built from the L-BFGS
    inverse-Hessian estimate with the highest ELBO is kept, and the chain's draws come from it.
    Paths start at the MAP fits, not at the random ``ctx.starts``: on the heat case, paths from
    the random starts (no physics ramp, unlike the MAP fit) chose Gaussians in the region where
    D is about 0 and the sensor noise explains the data (D = 0.0003, sigma = 0.33).

What was measured on the reduced heat case (tests/test_method_variational.py, 2000 SVI steps,
seed 0; truth D = 0.07, NUTS 0.0673 +- 0.00136, noise sd 0.023):

- raw coordinates: svi_meanfield 0.0616 +- 0.00035, svi_lowrank 0.0576 +- 0.00037,
  svi_structured 0.0614 +- 0.00038, and the means keep moving with the number of steps. The
  posterior near the MAP is narrow and strongly correlated across the 337 weights, so a
  mean-field or low-rank Gaussian there has a very low ELBO (about -1800), and the ELBO rises as
  the guide moves toward the broad region where D is about 0 and the noise explains the data
  (mean-field, 20000 steps: D = 0.0004, sigma = 0.35, ELBO -280 and still rising).
- whitened coordinates: all three guides 0.0645-0.0646 +- 0.00105-0.00109 (sd 0.8 of NUTS's),
  ELBO +186 to +189 and converged, noise sd 0.027. They no longer drift, and agree with each
  other, but sit 2 NUTS sds low. The inflated noise sd is not the cause: with the noise sd
  fixed at NUTS's 0.023, mean-field gave 0.0650 +- 0.00108 (the Laplace method 0.0680 +-
  0.00164 on the same context). Why a Gaussian fitted by reverse KL sits low here is open.
- pathfinder 0.0689 +- 0.00060 (sd 0.44 of NUTS's).
- With the implied prior removed (``[inference] implicit_prior``, the default since these
  figures; ``bpinn.inference.implicit_prior.for_method``), against NUTS on the same corrected
  target, 0.0695 +- 0.00138: whitened mean-field 0.0657 +- 0.00102 (2.8 NUTS sds low),
  Pathfinder 0.0700 +- 0.00049. Raw coordinates cannot remove it.
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
from numpyro import distributions as dist
from numpyro.distributions import constraints
from numpyro.infer import SVI, Trace_ELBO, init_to_value
from numpyro.infer.autoguide import (
    AutoGuideList,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)

from bpinn.inference import implicit_prior
from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.nuts import curvature_preconditioner
from bpinn.inference.target import Target, chunked_scan, concat_outputs
from bpinn.utils import progress_bar

WEIGHT_SITE = "weights"

# Initial sd of every guide coordinate (unconstrained space). At the heat case's MAP the
# Laplace sd of log D is 0.02 and the weight curvatures reach 1e7 (sd 3e-4): guides that start
# wider draw networks whose PDE residuals are orders of magnitude off.
INIT_SCALE = 1e-3
# The same in whitened coordinates (``svi_coordinates = "whitened"``), where 1 is the damped
# Laplace approximation's sd: the guide starts as that approximation.
WHITENED_INIT_SCALE = 1.0
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


def meanfield_guide(model_fn: Callable, init_values: dict, *, init_scale: float = INIT_SCALE,
                    weight_site: str = WEIGHT_SITE):
    """Independent normals on every unconstrained coordinate (numpyro ``AutoNormal``).

    Parameters
    ----------
    model_fn : the numpyro model.
    init_values : constrained site values for the guide's means (e.g. the MAP).
    init_scale : initial sd of every coordinate.
    weight_site : unused (every guide constructor takes it; see ``structured_guide``).

    Examples
    --------
    >>> # fit, _ = fit_svi(key, model, meanfield_guide(model, map_values), num_steps=1000,
    >>> #                  learning_rate=0.005)                                # doctest: +SKIP
    """
    del weight_site
    return AutoNormal(model_fn, init_loc_fn=init_to_value(values=init_values),
                      init_scale=init_scale)


def lowrank_guide(model_fn: Callable, init_values: dict, *, rank: int,
                  init_scale: float = INIT_SCALE, weight_site: str = WEIGHT_SITE):
    """One normal over all sites with covariance ``diag + W W^T``, ``W`` with ``rank`` columns
    (numpyro ``AutoLowRankMultivariateNormal``); other parameters as ``meanfield_guide``."""
    del weight_site
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
    # the globals' guide traces the model once to learn its sites; substitute the weights there,
    # so that a site with a flat prior (``whitened_model``) is never sampled
    guide.append(AutoMultivariateNormal(
        numpyro.handlers.block(numpyro.handlers.substitute(model_fn, data=init_values),
                               hide=[weight_site]), init_loc_fn=init,
        init_scale=init_scale, prefix="auto_globals",
    ))
    weights_model = numpyro.handlers.block(
        numpyro.handlers.substitute(model_fn, data=init_values), expose=[weight_site])
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


def guide_draws_with_density(rng_key, fit: SVIFit, num_draws: int) -> tuple[dict, jnp.ndarray]:
    """``num_draws`` independent draws of the fitted guide (site name -> (num_draws, ...)
    constrained values) and, per draw, the guide's log density at it, summed over its sample
    sites: a low-rank guide's one joint Gaussian site and the unit-Jacobian sites it maps to.
    The log density is the importance ratio's denominator in coordinates where the sites are
    unconstrained (the whitened ones); in raw coordinates the sites carry their constraints'
    Jacobians. Each draw runs the guide under its own seed, so the parts of a guide list get
    keys of their own (traceable: jit it)."""
    def one(key):
        guide = numpyro.handlers.substitute(fit.guide, data=fit.params)
        trace = numpyro.handlers.trace(numpyro.handlers.seed(guide, key)).get_trace()
        sites = [site for site in trace.values()
                 if site["type"] == "sample" and not site["is_observed"]]
        log_q = sum(jnp.sum(site["fn"].log_prob(site["value"])) for site in sites)
        return {site["name"]: site["value"] for site in sites}, log_q

    return jax.vmap(one)(jax.random.split(rng_key, num_draws))


def pareto_k(log_ratios) -> float:
    """Pareto k-hat of the importance ratios posterior / approximation over independent draws
    of the approximation (PSIS; Yao, Vehtari, Simpson and Gelman 2018, "Yes, but did it
    work?"). It sees what the ELBO cannot: how far the approximation's tails and centre are
    from the posterior's. Constant offsets (normalising constants, a linear map's Jacobian)
    do not change it."""
    from arviz_stats.base import array_stats

    ratios = np.asarray(log_ratios, dtype=float).ravel()
    if not np.all(np.isfinite(ratios)):
        return float("inf")
    if np.ptp(ratios) == 0.0:  # the approximation is the posterior: no tail at all
        return float("-inf")
    # psislw takes log-likelihood values (PSIS-LOO) and uses their negatives as log ratios
    return float(array_stats.psislw(ratios.max() - ratios)[1])


def pareto_k_threshold(num_draws: int) -> float:
    """Above it the draws cannot be trusted: min(1 - 1 / log10(S), 0.7) for S draws (Vehtari et
    al. 2024, Pareto smoothed importance sampling, JMLR)."""
    return float(min(1.0 - 1.0 / np.log10(num_draws), 0.7))


def importance_check(log_p, log_q) -> dict:
    """``pareto_k`` and its threshold as JSON-ready info, with a warning when it is above."""
    num_draws = int(np.size(log_p))
    k, threshold = pareto_k(np.asarray(log_p) - np.asarray(log_q)), pareto_k_threshold(num_draws)
    out = {"pareto_k": k, "pareto_k_threshold": threshold}
    if not k <= threshold:
        out["warning"] = (
            f"Pareto k-hat of the importance ratios posterior / approximation is {k:.2f} over "
            f"{num_draws} draws, above {threshold:.2f}: the approximation is far from the "
            "posterior in ways its own objective does not show, so its means and intervals "
            "cannot be trusted (compare with nuts)")
    return out


# ---- whitened coordinates ------------------------------------------------------------------


class Whitening(NamedTuple):
    """``theta = center + factor @ eta``: coordinates in which the damped Laplace approximation
    at ``center`` is a standard normal.

    ``eta`` lists the coefficients and noise scales first (``num_globals`` of them) and the
    network weights after, and ``factor`` is block lower-triangular in that order (a Cholesky
    factor of the Laplace covariance): the first ``num_globals`` coordinates of ``eta`` move the
    coefficients (and, through the off-diagonal block, the network that fits them); the rest
    move only the weights. A guide's block structure in ``eta`` is therefore a structure over
    coefficients and weights, with their Laplace correlation built in.
    """

    center: jnp.ndarray  # (dim,)
    factor: jnp.ndarray  # (dim, dim)
    num_globals: int

    def position(self, eta):
        """Flat unconstrained ``theta`` for whitened ``eta`` (leading batch axes allowed)."""
        return self.center + eta @ self.factor.T

    def site_sizes(self) -> dict:
        """``eta`` as numpyro sites: ``GLOBALS_SITE`` then ``WEIGHTS_SITE``, empty ones left out."""
        sizes = {GLOBALS_SITE: self.num_globals,
                 WEIGHTS_SITE: self.center.shape[-1] - self.num_globals}
        return {name: size for name, size in sizes.items() if size > 0}

    def position_of_sites(self, values: dict):
        """``position`` of ``eta`` given as sites (``site_sizes``' names, leading axes allowed)."""
        return self.position(jnp.concatenate([values[n] for n in self.site_sizes()], axis=-1))


def laplace_whitening(target: Target, center, *, damping, floor: float) -> Whitening:
    """The ``Whitening`` of the damped Hessian at ``center``, as NUTS is preconditioned
    (``nuts.curvature_preconditioner``: ``damping`` on the weights' diagonal, eigenvalues
    floored at ``floor``), re-factored with the coefficients first."""
    weights = np.zeros(target.dim, bool)
    if WEIGHT_SITE in target.site_slices:
        weights[slice(*target.site_slices[WEIGHT_SITE])] = True
    order = np.concatenate([np.flatnonzero(~weights), np.flatnonzero(weights)])

    @jax.jit  # one program, as nuts builds its preconditioner, not op by op
    def factor_at(center, damping):
        precond = curvature_preconditioner(target, center, damping=damping, floor=floor)
        covariance = precond.factor @ precond.factor.T
        cholesky = jnp.linalg.cholesky(covariance[np.ix_(order, order)])
        return jnp.zeros_like(cholesky).at[order].set(cholesky)

    return Whitening(center=center, factor=factor_at(center, damping),
                     num_globals=int((~weights).sum()))


GLOBALS_SITE = "whitened_globals"
WEIGHTS_SITE = "whitened_weights"


def whitened_model(target: Target, whitening: Whitening) -> Callable:
    """A numpyro model of the posterior in ``whitening``'s coordinates: site ``GLOBALS_SITE``
    (the coefficients' coordinates) and ``WEIGHTS_SITE`` (the weights'), flat priors, and the
    target's log density as a factor (the map is linear: its Jacobian is a constant)."""
    def model():
        eta = {name: numpyro.sample(
                   name, dist.ImproperUniform(constraints.real_vector, (), (size,)))
               for name, size in whitening.site_sizes().items()}
        # block: the target evaluates the B-PINN model under its own numpyro handlers, whose
        # sites must not reach the handlers that trace this model
        with numpyro.handlers.block():
            log_density = target.logdensity_fn(whitening.position_of_sites(eta))
        numpyro.factor("log_density", log_density)

    return model


def _batched_logdensity(target: Target, flat):
    return jax.lax.map(target.logdensity_fn, flat, batch_size=LP_BATCH_SIZE)


class SVIProblem(NamedTuple):
    """What SVI fits, in the coordinates ``[inference] svi_coordinates`` names.

    model_fn : the numpyro model the guide is fitted to.
    init_values : the guide's initial means (site name -> constrained value).
    init_scale : the guide's initial sd of every coordinate.
    weight_site : the site holding the network weights (for ``structured_guide``).
    to_flat : guide draws (site -> (n, ...)) -> (n, dim) flat unconstrained target positions.
    """

    model_fn: Callable
    init_values: dict
    init_scale: float
    weight_site: str
    to_flat: Callable


def svi_problem(ctx: MethodContext, target: Target | None = None) -> SVIProblem:
    """The model, start and coordinates for SVI on ``target`` (by default ``ctx.target``; the
    implied prior's ``Corrected`` one where it is removed), started at ``ctx``'s best MAP.

    ``"whitened"``: the guide lives in ``laplace_whitening`` coordinates, where it starts as the
    damped Laplace approximation (means 0, sds 1). ``"raw"``: the B-PINN model's own sites, the
    guide at the MAP with sds ``INIT_SCALE``; only ``ctx.target`` can be fitted there.
    """
    inf, center = ctx.settings, ctx.best_map()
    target = ctx.target if target is None else target
    if inf.svi_coordinates == "raw":
        if target is not ctx.target:
            raise ValueError(f"svi_coordinates = 'raw': {RAW_KEEPS_IMPLICIT_PRIOR}")
        def to_flat(values):
            return jax.vmap(target.from_constrained)({n: values[n] for n in target.site_slices})

        return SVIProblem(ctx.model.model, target.constrained(center), INIT_SCALE, WEIGHT_SITE,
                          to_flat)
    whitening = laplace_whitening(target, center, damping=ctx.weight_damping(),
                                  floor=inf.curvature_floor)
    return SVIProblem(whitened_model(target, whitening),
                      {n: jnp.zeros(size) for n, size in whitening.site_sizes().items()},
                      WHITENED_INIT_SCALE, WEIGHTS_SITE, whitening.position_of_sites)


def run_svi(rng_key, ctx: MethodContext, make_guide: Callable) -> Draws:
    """Fit ``make_guide(model_fn, init_values, init_scale=..., weight_site=...)`` to ``ctx``'s
    posterior (in the coordinates of ``svi_problem``); return its draws.

    Draws are ``num_chains x num_samples`` independent draws of the one fitted guide (the
    "chains" are only a reshaping, so R-hat says nothing). sample_stats holds ``lp``, the
    target log density of each draw, comparable with the ``lp`` of NUTS (with the implied
    prior removed where ``[inference] implicit_prior`` says so, as for NUTS). info holds the
    thinned ELBO trace, ``elbo_convergence``, ``importance_check`` (whitened coordinates) and
    ``info["warnings"]`` from both.
    """
    inf = ctx.settings
    fit_key, draw_key = jax.random.split(rng_key)
    removal = implicit_prior.for_method(rng_key, ctx, unsupported=_svi_unsupported(inf))
    target = removal.applied_to(ctx.target)
    t0 = time.perf_counter()
    problem = svi_problem(ctx, target)
    setup_seconds = time.perf_counter() - t0
    guide = make_guide(problem.model_fn, problem.init_values, init_scale=problem.init_scale,
                       weight_site=problem.weight_site)
    fit, timing = fit_svi(
        fit_key, problem.model_fn, guide, num_steps=inf.svi_steps,
        learning_rate=inf.svi_learning_rate, num_particles=inf.svi_num_particles,
        progress=ctx.progress,
    )
    timing["whitening_s"] = setup_seconds
    num_draws = inf.num_chains * inf.num_samples

    def draw_fn(key, params):
        values, log_q = guide_draws_with_density(key, fit._replace(params=params), num_draws)
        flat = problem.to_flat(values)
        return flat, _batched_logdensity(target, flat), log_q

    t0 = time.perf_counter()
    draw_fn = jax.jit(draw_fn).lower(draw_key, fit.params).compile()
    timing["compile_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    flat, lp, log_q = jax.block_until_ready(draw_fn(draw_key, fit.params))
    timing["sampling_s"] = time.perf_counter() - t0
    # whitened sites are unconstrained and linear in the target's coordinates: lp - log q is
    # the importance ratio up to a constant. Raw sites carry their constraints' Jacobians.
    checks = (elbo_convergence(fit.elbo),
              importance_check(lp, log_q) if inf.svi_coordinates == "whitened"
              else {"pareto_k": None})
    info = {
        "elbo_trace": thin(fit.elbo),
        "elbo_trace_steps": [int(s) for s in thin(np.arange(1, fit.elbo.size + 1))],
        "svi_steps": int(fit.elbo.size),
        "learning_rate": float(inf.svi_learning_rate),
        "num_particles": int(inf.svi_num_particles),
        "coordinates": inf.svi_coordinates,
        "init": ("damped Laplace approximation at the best MAP fit"
                 if inf.svi_coordinates == "whitened" else "best MAP fit"),
        **{k: v for check in checks for k, v in check.items() if k != "warning"},
        "warnings": [check["warning"] for check in checks if "warning" in check],
    }
    implicit_prior.record(removal, info, timing, flat)
    shape = (inf.num_chains, inf.num_samples)
    return Draws(flat.reshape(*shape, target.dim), {"lp": lp.reshape(shape)}, info, timing)


# ---- Pathfinder ----------------------------------------------------------------------------


class PathfinderResult(NamedTuple):
    """One row per path.

    position : (num_paths, num_samples, dim) draws from the Gaussian each path chose.
    logdensity : (num_paths, num_samples) target log density of the draws.
    log_q : (num_paths, num_samples) the path's Gaussian's log density at them.
    elbo : (num_paths,) ELBO estimate of the chosen Gaussian.
    best_iteration : (num_paths,) its index along the path (0 is the start).
    num_iterations : (num_paths,) L-BFGS iterations the path took.
    """

    position: jnp.ndarray
    logdensity: jnp.ndarray
    log_q: jnp.ndarray
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
        draws, log_q = blackjax.vi.pathfinder.sample(draw_key, state, num_samples)
        summary = (state.elbo, jnp.argmax(info.path.elbo), num_iterations, log_q)
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
    elbo, best, iterations, log_q = (jnp.stack(a) for a in zip(*summaries, strict=True))
    return PathfinderResult(position, lp, log_q, elbo, best, iterations), timing


def pathfinder(rng_key, ctx: MethodContext) -> Draws:
    """The ``pathfinder`` method: path c starts at MAP fit c and gives chain c's draws.

    A path shorter than ``2 * PATHFINDER_HISTORY`` iterations (a start already at a mode)
    has too few curvature pairs for a covariance estimate: ``info["warnings"]`` says so, and
    also names the paths whose Gaussian fails the importance check (``pareto_k``, per path).
    """
    removal = implicit_prior.for_method(rng_key, ctx)
    result, timing = run_pathfinder(
        rng_key, removal.applied_to(ctx.target), ctx.map_fit.position,
        num_samples=ctx.settings.num_samples, progress=ctx.progress,
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
    info["warnings"] = []
    short = [c for c, n in enumerate(iterations) if n < 2 * PATHFINDER_HISTORY]
    if short:
        info["warnings"].append(
            f"the L-BFGS paths of chains {short} took fewer than {2 * PATHFINDER_HISTORY} "
            "iterations (their MAP fits were already converged), too few to estimate a "
            "covariance: their draws are not a posterior approximation"
        )
    checks = [importance_check(lp, log_q)
              for lp, log_q in zip(result.logdensity, result.log_q, strict=True)]
    info["pareto_k"] = [c["pareto_k"] for c in checks]
    info["pareto_k_threshold"] = checks[0]["pareto_k_threshold"]
    failed = [c for c, check in enumerate(checks) if "warning" in check]
    if failed:  # one message, the worst path's figures
        worst = max(failed, key=lambda c: checks[c]["pareto_k"])
        info["warnings"].append(f"chains {failed}, at worst: {checks[worst]['warning']}")
    implicit_prior.record(removal, info, timing, result.position)
    return Draws(result.position, {"lp": result.logdensity}, info, timing)


# ---- methods -------------------------------------------------------------------------------


RAW_KEEPS_IMPLICIT_PRIOR = ("the guide is fitted to the B-PINN model's own sites, where the "
                            "implied prior cannot be removed")


def _svi_unsupported(settings) -> str | None:
    """Why these settings cannot remove the implied prior (None: they can)."""
    if settings.svi_coordinates == "raw":
        return f"svi_coordinates = 'raw': {RAW_KEEPS_IMPLICIT_PRIOR}"
    return None


def _check_svi(model, settings) -> None:
    del model
    implicit_prior.check_supported(settings, settings.method, _svi_unsupported(settings))
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
    return run_svi(rng_key, ctx, lambda model_fn, values, **kw: lowrank_guide(
        model_fn, values, rank=rank, **kw))


def svi_structured(rng_key, ctx: MethodContext) -> Draws:
    """The ``svi_structured`` method.

    The weights get a mean-field guide: with a rank-8 factor instead, the heat case's ELBO
    after 2000 steps was the same (-1802 against -1801, noise about 5) and the fit took 50%
    longer.
    """
    return run_svi(rng_key, ctx, structured_guide)


_GAUSSIAN = ("a single Gaussian in the unconstrained space: skewness, heavy tails and other "
             "modes of the posterior are not represented")
_ELBO_DRIFT = ("the fitted Gaussian can sit off the posterior's centre: on the heat case the "
               "whitened guides gave D 2.8 NUTS sds low (implied prior removed from both), and "
               "in svi_coordinates = 'raw' the ELBO drifted toward D = 0 with the noise "
               "explaining the data; check the ELBO trace and compare with NUTS")

SVI_MEANFIELD = Method(
    name="svi_meanfield",
    run=svi_meanfield,
    exact_mcmc=False,
    description="SVI (numpyro) with a mean-field normal guide (AutoNormal), by default in "
                "coordinates whitened by the Laplace curvature at the MAP.",
    limitations=(
        "independent normals in its coordinates: in 'whitened' ones the correlations are those "
        "of the Laplace curvature at the MAP, rescaled; in 'raw' ones there are none. Variances "
        "are typically underestimated (on the heat case the sd of D was 0.8 of NUTS's whitened, "
        "a quarter raw)",
        _GAUSSIAN,
        _ELBO_DRIFT,
    ),
    check=_check_svi,
    implicit_prior="removed",
)

SVI_LOWRANK = Method(
    name="svi_lowrank",
    run=svi_lowrank,
    exact_mcmc=False,
    description="SVI (numpyro) with a low-rank plus diagonal normal guide over all parameters "
                "(rank svi_rank), by default in coordinates whitened by the Laplace curvature at "
                "the MAP.",
    limitations=(
        "adds correlations only along svi_rank directions to those of its coordinates (the "
        "Laplace curvature's when 'whitened'); variances are typically underestimated (on the "
        "heat case the sd of D was 0.8 of NUTS's whitened, a quarter raw)",
        _GAUSSIAN,
        _ELBO_DRIFT,
    ),
    check=_check_svi,
    implicit_prior="removed",
)

SVI_STRUCTURED = Method(
    name="svi_structured",
    run=svi_structured,
    exact_mcmc=False,
    description="SVI (numpyro): full-covariance normal over the coefficients and noise scales, "
                "independent mean-field normal over the network weights; by default in "
                "coordinates whitened by the Laplace curvature at the MAP.",
    limitations=(
        "the weights' block is independent of the coefficients' block: whitened, the Laplace "
        "curvature's coupling of D to the network is kept and only rescaled; raw, the "
        "uncertainty of D that comes from the network's freedom (a different D with a different "
        "network) is missing (on the heat case the sd of D was 0.8 of NUTS's whitened, a "
        "quarter raw)",
        "cannot show correlations between network weights",
        _GAUSSIAN,
        _ELBO_DRIFT,
    ),
    check=_check_svi,
    implicit_prior="removed",
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
    implicit_prior="removed",
)
