"""HMC with a fixed number of leapfrog steps: the sampler of the original B-PINN paper, a baseline.

Yang, Meng & Karniadakis (2021, J. Comput. Phys. 425, 109913) sampled B-PINN posteriors with
Hamiltonian Monte Carlo of a fixed number ``L`` of leapfrog steps per transition. This method runs
that sampler (blackjax's ``hmc``) in the same whitened coordinates as ``nuts`` (curvature of the
posterior at a MAP, ``nuts.curvature_preconditioner``), so a comparison with ``nuts`` isolates
what NUTS's adaptive trajectory length buys. The step size is tuned by dual averaging toward
``target_acceptance`` during warmup and then frozen.

Step-size jitter: every transition multiplies the step size by a uniform factor in
``[1 - jitter, 1 + jitter]`` (Neal 2011, "MCMC using Hamiltonian dynamics", section 5.4.2.2).
Whitened, the posterior is close to ``N(0, I)``, where ``L`` leapfrog steps rotate phase space by
nearly one fixed angle: near a multiple of pi every transition returns the chain to (minus) its
start and it explores nothing. The factor is drawn independently of the state, so each
transition is still an exact Metropolis step; ``L`` stays fixed.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.step_size import dual_averaging_adaptation

from bpinn.inference import implicit_prior
from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.nuts import Preconditioner, _whitened_logdensity, curvature_preconditioner
from bpinn.inference.target import Target, chunked_scan, concat_outputs

STEP_SIZE_JITTER = 0.1
INITIAL_STEP_SIZE = 0.5  # as ``nuts``: whitened scales are ~1; dual averaging moves it


class HMCTrace(NamedTuple):
    position: jnp.ndarray  # (num_chains, num_draws, dim), unconstrained, unwhitened
    logdensity: jnp.ndarray
    diverging: jnp.ndarray
    acceptance_rate: jnp.ndarray
    energy: jnp.ndarray  # Hamiltonian at the kept state (Stan's energy__), for E-BFMI


class HMCResult(NamedTuple):
    trace: HMCTrace
    step_size: jnp.ndarray  # (num_chains,) adapted step size (before jitter)
    preconditioner: Preconditioner
    warmup_acceptance: jnp.ndarray  # (num_chains,) over the second half of warmup


def acceptance_and_kept_energy(state, info) -> tuple[jnp.ndarray, jnp.ndarray]:
    """A blackjax HMC transition's acceptance probability (0 where it is not finite) and the
    Hamiltonian of the state kept. blackjax reports the proposal's energy even when it is
    rejected; E-BFMI needs the kept state's: on rejection, the start with its drawn momentum."""
    start_energy = -state.logdensity + 0.5 * jnp.sum(info.momentum**2)
    energy = jnp.where(info.is_accepted, info.energy, start_energy)
    acceptance = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0)
    return acceptance, energy


def run_hmc(
    rng_key,
    target: Target,
    map_positions: jnp.ndarray,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_leapfrog_steps: int = 50,
    target_acceptance: float = 0.8,
    damping=0.0,
    curvature_floor: float = 1.0,
    step_size_jitter: float = STEP_SIZE_JITTER,
    initial_spread: float = 1.0,
    progress: bool = False,
) -> tuple[HMCResult, dict]:
    """Sample ``target`` with fixed-length HMC, one chain per row of ``map_positions``.

    Parameters
    ----------
    rng_key : JAX PRNG key.
    target : the posterior (``bpinn.inference.target.make_target``).
    map_positions : (num_chains, dim) MAP fits, one per chain (each gets its own whitening).
    num_warmup, num_samples : step-size adaptation steps and kept draws per chain.
    num_leapfrog_steps : leapfrog steps per transition (the paper's ``L``).
    target_acceptance : dual-averaging target for the Metropolis acceptance probability.
    damping : added to the diagonal of the preconditioning Hessian (scalar or per coordinate).
    curvature_floor : lower bound on the eigenvalues of the preconditioning Hessian.
    step_size_jitter : each transition uses ``step_size * U(1 - jitter, 1 + jitter)``; 0 off.
    initial_spread : chains start at ``initial_spread * N(0, I)`` in whitened coordinates
        around their MAP (1: a draw from the damped Laplace approximation).
    progress : progress bars on stderr.

    Returns
    -------
    (HMCResult, timing) where timing has ``precondition_s``, ``warmup_s``, ``sampling_s`` and
    ``compile_s`` (compilation of the warmup and sampling loops, excluded from the others).

    Examples
    --------
    >>> # result, timing = run_hmc(key, target, maps, num_leapfrog_steps=50)  # doctest: +SKIP
    """
    num_chains, dim = map_positions.shape
    if num_warmup < 20:
        raise ValueError(f"num_warmup must be >= 20 for step-size adaptation, got {num_warmup}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not (isinstance(num_leapfrog_steps, int) and num_leapfrog_steps >= 1):
        raise ValueError(f"num_leapfrog_steps must be an integer >= 1, got {num_leapfrog_steps!r}")
    if not 0.0 <= step_size_jitter < 1.0:
        raise ValueError(f"step_size_jitter must be in [0, 1), got {step_size_jitter!r}")
    init_key, warmup_key, sample_key = jax.random.split(rng_key, 3)
    timing = {}

    t0 = time.perf_counter()
    precond = jax.jit(
        jax.vmap(lambda c: curvature_preconditioner(
            target, c, damping=damping, floor=curvature_floor))
    )(map_positions)
    jax.block_until_ready(precond)
    timing["precondition_s"] = time.perf_counter() - t0
    unit_mass = jnp.ones(dim)  # whitened coordinates

    def transition(rng_key, state, pc, step_size):
        jitter_key, step_key = jax.random.split(rng_key)
        factor = jax.random.uniform(
            jitter_key, minval=1.0 - step_size_jitter, maxval=1.0 + step_size_jitter)
        hmc = blackjax.hmc(_whitened_logdensity(target, pc), step_size * factor, unit_mass,
                           num_leapfrog_steps)
        new_state, info = hmc.step(step_key, state)
        acceptance, energy = acceptance_and_kept_energy(state, info)
        return new_state, (acceptance, info.is_divergent, energy)

    def init_state(pc, key):
        eta0 = initial_spread * jax.random.normal(key, (dim,))
        return blackjax.hmc.init(eta0, _whitened_logdensity(target, pc))

    states = jax.jit(jax.vmap(init_state))(precond, jax.random.split(init_key, num_chains))

    # ---- warmup: dual averaging of the step size, per chain ---------------------------------
    da_init, da_update, da_final = dual_averaging_adaptation(target_acceptance)

    def warmup_one(carry, key):
        state, da_state, pc = carry
        state, (acceptance, _, _) = transition(key, state, pc, jnp.exp(da_state.log_step_size))
        return (state, da_update(da_state, acceptance), pc), acceptance

    def warmup_step(carry, keys):
        return jax.vmap(warmup_one)(carry, keys)

    carry = (states, jax.vmap(lambda _: da_init(INITIAL_STEP_SIZE))(jnp.arange(num_chains)),
             precond)
    keys = jax.random.split(warmup_key, (num_warmup, num_chains))
    t0 = time.perf_counter()
    carry, acc_out, warmup_compile = chunked_scan(
        warmup_step, carry, keys, length=num_warmup, desc="Warmup", progress=progress,
        postfix_fn=lambda c, o: f"step size {float(jnp.median(jnp.exp(c[1].log_step_size))):.3g}",
    )
    states, da_state, _ = carry
    jax.block_until_ready(states)
    timing["warmup_s"] = time.perf_counter() - t0 - warmup_compile
    step_size = jax.vmap(da_final)(da_state)
    warmup_acceptance = jnp.mean(concat_outputs(acc_out)[num_warmup // 2:], axis=0)

    # ---- sampling ------------------------------------------------------------------------
    def sample_one(state, key, pc, eps):
        state, (acceptance, diverging, energy) = transition(key, state, pc, eps)
        theta = pc.center + pc.factor @ state.position
        return state, (theta, state.logdensity, diverging, acceptance, energy)

    def sample_step(states, keys):
        return jax.vmap(sample_one)(states, keys, precond, step_size)

    keys = jax.random.split(sample_key, (num_samples, num_chains))
    t0 = time.perf_counter()
    states, outs, sampling_compile = chunked_scan(
        sample_step, states, keys, length=num_samples, desc="Sampling", progress=progress,
        postfix_fn=lambda c, o: f"acceptance {float(jnp.mean(o[3])):.2f} in chunk",
    )
    trace = concat_outputs(outs)  # (draw, chain, ...)
    jax.block_until_ready(trace)
    timing["sampling_s"] = time.perf_counter() - t0 - sampling_compile
    timing["compile_s"] = warmup_compile + sampling_compile
    trace = HMCTrace(*(jnp.swapaxes(a, 0, 1) for a in trace))
    result = HMCResult(trace=trace, step_size=step_size, preconditioner=precond,
                       warmup_acceptance=warmup_acceptance)
    return result, timing


def sample(rng_key, ctx: MethodContext) -> Draws:
    """The ``hmc`` method: fixed-length HMC, whitened at the MAP fits like ``nuts``."""
    inf = ctx.settings
    removal = implicit_prior.for_method(rng_key, ctx)
    target = removal.applied_to(ctx.target)
    centers = ctx.chain_centers()
    damping = ctx.weight_damping()
    result, timing = run_hmc(
        rng_key, target, centers, num_warmup=inf.num_warmup, num_samples=inf.num_samples,
        num_leapfrog_steps=inf.num_leapfrog_steps, target_acceptance=inf.target_acceptance,
        damping=damping, curvature_floor=inf.curvature_floor, progress=ctx.progress,
    )
    trace = result.trace
    stats = {
        "diverging": trace.diverging, "acceptance_rate": trace.acceptance_rate,
        "n_steps": jnp.full(trace.diverging.shape, inf.num_leapfrog_steps),
        "lp": trace.logdensity, "energy": trace.energy,
    }
    info = {
        "step_size": np.asarray(result.step_size).tolist(),
        "num_leapfrog_steps": inf.num_leapfrog_steps,
        "step_size_jitter": STEP_SIZE_JITTER,
        "warmup_acceptance": np.asarray(result.warmup_acceptance).tolist(),
        "chain_init": inf.chain_init,
    }
    implicit_prior.record(removal, info, timing, trace.position)
    return Draws(trace.position, stats, info, timing)


def check(model, settings) -> None:
    """Raise ``ValueError`` for settings this method cannot run."""
    del model
    steps = settings.num_leapfrog_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"num_leapfrog_steps = {steps!r}: must be an integer >= 1")
    if settings.num_warmup < 20:
        raise ValueError(
            f"num_warmup = {settings.num_warmup}: step-size adaptation needs num_warmup >= 20"
        )


METHOD = Method(
    name="hmc",
    run=sample,
    exact_mcmc=True,
    description="HMC with num_leapfrog_steps fixed leapfrog steps (the original B-PINN "
                "sampler), whitened at the MAP like 'nuts'; a baseline.",
    limitations=(
        "the trajectory length is fixed (num_leapfrog_steps x step size): if it is too short "
        "the chain random-walks, which shows only as low ESS and high R-hat",
    ),
    check=check,
    implicit_prior="removed",
)
