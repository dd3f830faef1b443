"""Adjusted microcanonical sampler (MAMS: blackjax's ``adjusted_mclmc_dynamic``) in the same
whitened coordinates as the ``nuts`` method.

Why: adjusted MCLMC moves with a unit-norm velocity (isokinetic dynamics) and corrects with a
Metropolis test, so its draws are asymptotically exact like NUTS's, while each draw costs a
tuned average number of gradient evaluations instead of a tree of up to ``2**max_tree_depth``.
Each chain

1. is centred on a MAP fit and whitened by the damped Hessian there, exactly as ``nuts`` does
   (``curvature_preconditioner``; the network weights damped by ``weight_damping``);
2. starts at a draw ``eta ~ N(0, I)`` of that Laplace approximation;
3. is tuned by blackjax's ``adjusted_mclmc_find_L_and_step_size`` (vmapped: every chain is
   tuned on its own) with its trajectory length fixed at ``L = sqrt(dim)``: MAMS's
   ``L = sqrt(sum of variances)`` evaluated on the whitened Laplace approximation, whose
   variances are 1. Dual averaging then sets the step size at that ``L`` (blackjax's first
   pass, which keeps ``L`` while the step size moves). With ``adapt_mass_matrix`` the first half
   of the warmup runs blackjax's full scheme instead (at its default 2 steps per proposal) to
   estimate a diagonal mass matrix in whitened coordinates, and the second half tunes the step
   size at fixed ``L`` as above;
4. draws with the tuned step size and ``L``; the number of integration steps of each proposal is
   random with mean ``L / step_size`` (blackjax's randomised trajectory length), capped by
   ``max_integration_steps`` (``2**max_tree_depth - 1``: a draw never costs more on average
   than the longest NUTS tree the same settings allow).

Why not blackjax's own trajectory length: blackjax 1.7's tuner pins ``L =
target_num_integration_steps * step_size`` (default 2 steps), i.e. it tunes the step size at a
chosen number of steps per proposal and never chooses ``L``. At 2 steps the sampler is close to
a random walk: on the reduced heat case of the tests (dim 339, 2 chains of 200 draws) the
chains of D did not mix (R-hat 1.9, ESS 3), while ``L = sqrt(dim)`` gave R-hat 1.03 to 1.10 and
ESS 20 to 71 over three seeds (NUTS: 1.02 and 130 from 511 leapfrog steps a draw).

``n_steps`` counts isokinetic McLachlan steps, two gradient evaluations each (``nuts`` counts
leapfrog steps, one each).

Target acceptance: ``settings.target_acceptance`` (default 0.9), the value the MAMS authors
recommend for the second-order (McLachlan) integrator blackjax uses by default (Robnik,
Cohn-Gordon & Seljak 2025; blackjax's sampling-book example; ``mclmc_lrd_warmup``'s
``adjusted_target=0.9``): higher than HMC's 0.65 because a rejection wastes a whole trajectory
and the energy error of the isokinetic dynamics is heavy-tailed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
from blackjax.mcmc import adjusted_mclmc_dynamic

from bpinn.inference import implicit_prior
from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.nuts import Preconditioner, _whitened_logdensity, curvature_preconditioner
from bpinn.inference.target import Target, chunked_scan, concat_outputs
from bpinn.utils import progress_bar

# blackjax's default average number of integration steps per proposal: its scale pass runs at
# this length (only with ``adapt_mass_matrix``), and it is the least number of steps we use.
SCALE_STAGE_STEPS = 2.0
# blackjax's (and Stan's) threshold on the energy error for flagging a transition divergent;
# blackjax flags a non-finite energy error too.
DIVERGENCE_THRESHOLD = 1000.0


class MCLMCTrace(NamedTuple):
    position: jnp.ndarray  # (num_chains, num_draws, dim), unconstrained, unwhitened
    logdensity: jnp.ndarray
    diverging: jnp.ndarray
    acceptance_rate: jnp.ndarray
    n_steps: jnp.ndarray


class MCLMCResult(NamedTuple):
    trace: MCLMCTrace
    step_size: jnp.ndarray  # (num_chains,), in whitened coordinates
    trajectory_length: jnp.ndarray  # (num_chains,) L, in whitened coordinates
    inverse_mass_matrix: jnp.ndarray  # (num_chains, dim), in whitened coordinates
    preconditioner: Preconditioner
    num_tuning_steps: jnp.ndarray  # (num_chains,) integration steps spent by the tuner


def blackjax_tuner(target: Target, kernel: Callable, *, num_steps: int,
                   target_acceptance: float, scale_pass: bool):
    """blackjax's adjusted-MCLMC tuner for one chain, vmapped over chains and jitted.

    The returned function maps ``(state, key, preconditioner, params, steps)`` (each with a
    leading chain axis; ``params`` the ``MCLMCAdaptationState`` to start from, ``steps`` the
    average number of integration steps per proposal, which fixes ``L = steps * step size``
    at entry) to ``(state, params, integration steps spent)``.

    Parameters
    ----------
    target : the posterior; each chain sees it whitened by its own preconditioner.
    kernel : a ``blackjax.mcmc.adjusted_mclmc_dynamic`` kernel.
    num_steps : proposals made.
    target_acceptance : dual-averaging target.
    scale_pass : False: one pass of dual averaging of the step size at fixed ``L``. True:
        blackjax's full scheme in three equal passes (the 1:1 ratio of its defaults): dual
        averaging, an estimate of the variances of the draws that sets a diagonal inverse mass
        matrix and rescales the step size, dual averaging again.
    """
    fractions = (1.0 / 3.0, 1.0 / 3.0) if scale_pass else (1.0, 0.0)

    def tune_one(state, key, pc, params, steps):
        return blackjax.adjusted_mclmc_find_L_and_step_size(
            mclmc_kernel=kernel,
            logdensity_fn=_whitened_logdensity(target, pc),
            num_steps=num_steps,
            state=state,
            rng_key=key,
            target=target_acceptance,
            frac_tune1=fractions[0],
            frac_tune2=fractions[1],
            frac_tune3=0.0,  # blackjax's default; its final L is pinned to steps * step anyway
            diagonal_preconditioning=scale_pass,
            params=params,
            target_num_integration_steps=steps,
        )

    return jax.jit(jax.vmap(tune_one))


def run_adjusted_mclmc(
    rng_key,
    target: Target,
    map_positions: jnp.ndarray,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    target_acceptance: float = 0.9,
    trajectory_length: float | None = None,
    max_integration_steps: float = 1023.0,
    damping=0.0,
    curvature_floor: float = 1.0,
    adapt_mass_matrix: bool = False,
    initial_spread: float = 1.0,
    divergence_threshold: float = DIVERGENCE_THRESHOLD,
    progress: bool = False,
) -> tuple[MCLMCResult, dict]:
    """Sample ``target`` with one adjusted-MCLMC chain per row of ``map_positions``.

    Parameters
    ----------
    rng_key : JAX PRNG key.
    target : the posterior (``bpinn.inference.target.make_target``).
    map_positions : (num_chains, dim) MAP fits, one per chain (the whitening centres).
    num_warmup, num_samples : tuning proposals and kept draws per chain.
    target_acceptance : dual-averaging target of the step-size tuner.
    trajectory_length : L in whitened coordinates, for tuning the step size and for sampling;
        None for ``sqrt(dim)`` (see the module docstring).
    max_integration_steps : cap on the average number of integration steps per proposal
        (``2**max_tree_depth - 1`` keeps a draw no dearer than the longest NUTS tree).
    damping : added to the diagonal of the preconditioning Hessian (scalar or per coordinate).
    curvature_floor : lower bound on the eigenvalues of the preconditioning Hessian.
    adapt_mass_matrix : spend half the warmup on blackjax's scale pass, which sets a diagonal
        mass matrix (in whitened coordinates); otherwise the identity is kept.
    initial_spread : chains start at ``initial_spread * N(0, I)`` in whitened coordinates.
    divergence_threshold : energy error above which a transition is flagged divergent.
    progress : show progress bars on stderr.

    Returns
    -------
    (MCLMCResult, timing) where timing has ``precondition_s``, ``warmup_s``, ``sampling_s`` and
    ``compile_s`` (compilation of the tuner and of the sampling loop, excluded from the others).

    Examples
    --------
    >>> # result, timing = run_adjusted_mclmc(key, target, centers)  # doctest: +SKIP
    >>> # result.trace.position.shape  # (chain, draw, target.dim)   # doctest: +SKIP
    """
    num_chains, dim = map_positions.shape
    if num_warmup < 20:
        raise ValueError(f"num_warmup must be >= 20 for step-size tuning, got {num_warmup}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not max_integration_steps >= SCALE_STAGE_STEPS:
        raise ValueError(f"max_integration_steps must be >= {SCALE_STAGE_STEPS}, "
                         f"got {max_integration_steps}")
    length_scale = float(np.sqrt(dim)) if trajectory_length is None else trajectory_length
    if not length_scale > 0:
        raise ValueError(f"trajectory_length must be positive, got {trajectory_length}")
    init_key, tune_key, sample_key = jax.random.split(rng_key, 3)
    timing = {}

    t0 = time.perf_counter()
    precond = jax.jit(
        jax.vmap(lambda c: curvature_preconditioner(
            target, c, damping=damping, floor=curvature_floor))
    )(map_positions)
    jax.block_until_ready(precond)
    timing["precondition_s"] = time.perf_counter() - t0

    kernel = adjusted_mclmc_dynamic.build_kernel(
        integration_steps_fn=adjusted_mclmc_dynamic.make_random_trajectory_length_fn(True),
        divergence_threshold=divergence_threshold,
    )

    def init_state(pc, key):
        # A draw from the damped Laplace approximation at the centre, as in ``nuts``; the
        # second key seeds the random number of integration steps of each proposal.
        position_key, length_key = jax.random.split(key)
        eta0 = initial_spread * jax.random.normal(position_key, (dim,))
        return adjusted_mclmc_dynamic.init(eta0, _whitened_logdensity(target, pc), length_key)

    states = jax.jit(jax.vmap(init_state))(precond, jax.random.split(init_key, num_chains))

    # ---- warmup: blackjax's tuner, each chain on its own ----------------------------------
    # blackjax's starting step size, 0.2 sqrt(dim); its mass matrix, the identity.
    params = MCLMCAdaptationState(
        L=jnp.full((num_chains,), 0.2 * np.sqrt(dim) * SCALE_STAGE_STEPS),
        step_size=jnp.full((num_chains,), 0.2 * np.sqrt(dim)),
        inverse_mass_matrix=jnp.ones((num_chains, dim)),
    )
    num_scale = num_warmup // 2 if adapt_mass_matrix else 0
    tune_step = blackjax_tuner(target, kernel, num_steps=num_warmup - num_scale,
                               target_acceptance=target_acceptance, scale_pass=False)
    scale_key, step_key = (jax.random.split(k, num_chains) for k in jax.random.split(tune_key))
    spent = jnp.zeros((num_chains,), dtype=int)
    tune_compile, t_warmup = 0.0, 0.0
    with progress_bar(total=num_warmup, desc="Tuning", enabled=progress) as bar:
        if num_scale:
            steps = jnp.full((num_chains,), SCALE_STAGE_STEPS)
            tune_scale = blackjax_tuner(target, kernel, num_steps=num_scale,
                                        target_acceptance=target_acceptance, scale_pass=True)
            t0 = time.perf_counter()
            compiled = tune_scale.lower(states, scale_key, precond, params, steps).compile()
            t1 = time.perf_counter()
            states, params, spent = compiled(states, scale_key, precond, params, steps)
            jax.block_until_ready(states)
            tune_compile, t_warmup = t1 - t0, time.perf_counter() - t1
            bar.update(num_scale)
        # Fixed L: the tuner's entry pin sets L = steps * step size = length_scale.
        steps = jnp.clip(length_scale / params.step_size, SCALE_STAGE_STEPS,
                         max_integration_steps)
        t0 = time.perf_counter()
        compiled = tune_step.lower(states, step_key, precond, params, steps).compile()
        t1 = time.perf_counter()
        states, params, spent_step = compiled(states, step_key, precond, params, steps)
        jax.block_until_ready(states)
        tune_compile += t1 - t0
        timing["warmup_s"] = t_warmup + time.perf_counter() - t1
        step_size, inverse_mass_matrix = params.step_size, params.inverse_mass_matrix
        # The tuner ends by re-pinning L to its entry number of steps times the new step size,
        # which would shorten the trajectory the step size was calibrated at: keep L.
        steps_per_draw = jnp.clip(length_scale / step_size, SCALE_STAGE_STEPS,
                                  max_integration_steps)
        bar.set_postfix_str(f"step size {float(jnp.median(step_size)):.3g}, "
                            f"steps per draw {float(jnp.median(steps_per_draw)):.3g}")
        bar.update(num_warmup - num_scale)
    num_tuning_steps = spent + spent_step

    # ---- sampling ------------------------------------------------------------------------
    def sample_one(state, key, pc, eps, imm, steps):
        state, info = kernel(
            key, state, _whitened_logdensity(target, pc), eps,
            inverse_mass_matrix=imm, integration_steps_params=(steps,),
        )
        theta = pc.center + pc.factor @ state.position
        out = (theta, state.logdensity, info.is_divergent, info.acceptance_rate,
               info.num_integration_steps)
        return state, out

    def sample_step(states, keys):
        return jax.vmap(sample_one)(states, keys, precond, step_size, inverse_mass_matrix,
                                    steps_per_draw)

    keys = jax.random.split(sample_key, (num_samples, num_chains))
    t0 = time.perf_counter()
    states, outs, sampling_compile = chunked_scan(
        sample_step, states, keys, length=num_samples, desc="Sampling", progress=progress,
        postfix_fn=lambda c, o: f"divergences {int(jnp.sum(o[2]))} in chunk",
    )
    trace = concat_outputs(outs)  # (draw, chain, ...)
    jax.block_until_ready(trace)
    timing["sampling_s"] = time.perf_counter() - t0 - sampling_compile
    timing["compile_s"] = tune_compile + sampling_compile
    trace = MCLMCTrace(*(jnp.swapaxes(a, 0, 1) for a in trace))
    result = MCLMCResult(
        trace=trace,
        step_size=step_size,
        trajectory_length=steps_per_draw * step_size,
        inverse_mass_matrix=inverse_mass_matrix,
        preconditioner=precond,
        num_tuning_steps=num_tuning_steps,
    )
    return result, timing


def sample(rng_key, ctx: MethodContext) -> Draws:
    """The ``mclmc`` method: adjusted MCLMC, whitened and centred exactly like ``nuts``."""
    inf = ctx.settings
    removal = implicit_prior.for_method(rng_key, ctx)
    target = removal.applied_to(ctx.target)
    centers = ctx.chain_centers()
    damping = ctx.weight_damping()
    max_steps = float(2**inf.max_tree_depth - 1)
    result, timing = run_adjusted_mclmc(
        rng_key, target, centers, num_warmup=inf.num_warmup, num_samples=inf.num_samples,
        target_acceptance=inf.target_acceptance, max_integration_steps=max_steps,
        damping=damping, curvature_floor=inf.curvature_floor,
        adapt_mass_matrix=inf.adapt_mass_matrix, progress=ctx.progress,
    )
    trace = result.trace
    stats = {
        "diverging": trace.diverging, "acceptance_rate": trace.acceptance_rate,
        "n_steps": trace.n_steps, "lp": trace.logdensity,
    }
    info = {
        "step_size": np.asarray(result.step_size).tolist(),
        "L": np.asarray(result.trajectory_length).tolist(),
        "max_integration_steps": max_steps,
        "target_acceptance": inf.target_acceptance,
        "divergence_threshold": DIVERGENCE_THRESHOLD,
        "num_tuning_integration_steps": np.asarray(result.num_tuning_steps).tolist(),
        "chain_init": inf.chain_init,
    }
    implicit_prior.record(removal, info, timing, trace.position)
    return Draws(trace.position, stats, info, timing)


METHOD = Method(
    name="mclmc",
    run=sample,
    exact_mcmc=True,
    description=(
        "Adjusted microcanonical sampler (blackjax adjusted_mclmc_dynamic, Metropolis-corrected) "
        "whitened by the damped Hessian at the MAP like nuts; step size from blackjax's tuner, "
        "L = sqrt(dim) in whitened coordinates."
    ),
    limitations=(
        "the trajectory length L is set from the whitened Laplace approximation (sqrt of the "
        "dimension), not from the autocorrelation of the draws: flat weight directions wider "
        "than the approximation are explored by a slower random walk",
        "no energy statistic: the isokinetic dynamics has no Gaussian kinetic energy, so E-BFMI "
        "does not apply",
    ),
    implicit_prior="removed",
)
