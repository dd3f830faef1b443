"""ChEES-HMC: jittered HMC whose step size and trajectory length are tuned across chains.

Why: whitened by the curvature at the MAP (``nuts.curvature_preconditioner``), the heat case's
posterior is close to a standard normal in most directions, yet NUTS reaches its maximum tree
depth on nearly every draw (255 leapfrog steps at depth 8): its U-turn rule keeps doubling along
the few long directions. ChEES-HMC (Hoffman, Radul & Sountsov 2021, "An adaptive MCMC scheme
for setting trajectory lengths in Hamiltonian Monte Carlo") instead picks one trajectory length
for all chains, by maximising the change in the chains' expected squared distance from their
mean during warmup, and jitters it per transition (a quasi-random Halton fraction of it), so no
tree is built. Measured on the heat case (docs/benchmarks.md): 16 chains of 400 warmup and 300
draws, the implied-prior measurement included, took 79 s against the shipped NUTS run's 348 s,
with 3.5 times its effective draws of D per second of the whole run and every convergence
target met. Its warmup must be long enough for the trajectory length to grow: after 200 steps
it was too short and R-hat stayed near 1.03.

The chains share one whitening, at the best MAP fit; each starts at its own draw of the damped
Laplace approximation there (dispersed starts, so R-hat means something). The adaptation is
cross-chain: it wants many chains (16 or more), which one vectorised program runs at once.
Warmup is one compiled loop (blackjax's ``chees_adaptation``); sampling is chunked like the
other samplers, with progress and checkpoints.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from bpinn.inference.hmc import acceptance_and_kept_energy
from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.nuts import (
    Preconditioner,
    _whitened_logdensity,
    curvature_preconditioner,
    finish_draws,
    prepare_target,
)
from bpinn.inference.target import Target, chunked_scan, concat_outputs
from bpinn.utils import progress_bar

INITIAL_STEP_SIZE = 0.5  # whitened scales are about 1, as for ``nuts``
# Adam on the log trajectory length; blackjax's examples and the paper use this rate.
TRAJECTORY_LEARNING_RATE = 0.025
MIN_CHAINS = 4  # the cross-chain criterion averages over chains: fewer is too noisy


class ChEESTrace(NamedTuple):
    position: jnp.ndarray  # (num_chains, num_draws, dim), unconstrained, unwhitened
    logdensity: jnp.ndarray
    diverging: jnp.ndarray
    acceptance_rate: jnp.ndarray
    n_steps: jnp.ndarray  # leapfrog steps of each transition (jittered)
    energy: jnp.ndarray  # Hamiltonian at the kept state, for E-BFMI

    def sample_stats(self) -> dict:
        return {"diverging": self.diverging, "acceptance_rate": self.acceptance_rate,
                "n_steps": self.n_steps, "lp": self.logdensity, "energy": self.energy}


class ChEESResult(NamedTuple):
    trace: ChEESTrace
    step_size: float
    trajectory_length: float  # in whitened units: mean leapfrog steps x step size, unjittered
    preconditioner: Preconditioner


def run_chees(
    rng_key,
    target: Target,
    center: jnp.ndarray,
    *,
    num_chains: int,
    num_warmup: int = 500,
    num_samples: int = 500,
    target_acceptance: float = 0.8,
    max_leapfrog_steps: int = 1023,
    damping=0.0,
    curvature_floor: float = 1.0,
    fixed: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[ChEESResult, dict]:
    """Sample ``target`` with ``num_chains`` ChEES-HMC chains whitened at ``center``.

    Parameters
    ----------
    rng_key : JAX PRNG key.
    target : anything with a ``logdensity_fn`` of a flat position (a ``Target`` or an
        ``OutputMarginal``).
    center : (dim,) the MAP fit the whitening is computed at.
    num_chains : chains, run as one vectorised program; the adaptation is cross-chain.
    num_warmup, num_samples : adaptation steps and kept draws per chain.
    target_acceptance : the step size's dual-averaging target.
    max_leapfrog_steps : cap on the leapfrog steps of one transition.
    damping, curvature_floor : as ``nuts.curvature_preconditioner``.
    fixed : flat indices held at ``center``'s values (not sampled).
    progress : progress bars on stderr.

    Returns
    -------
    (ChEESResult, timing) with ``precondition_s``, ``warmup_s`` (compilation included: the
    warmup is one compiled loop), ``sampling_s`` and ``compile_s`` (of the sampling loop).
    """
    if num_chains < MIN_CHAINS:
        raise ValueError(f"ChEES-HMC adapts across chains and needs num_chains >= {MIN_CHAINS} "
                         f"(16 or more is better), got {num_chains}")
    if num_warmup < 20:
        raise ValueError(f"num_warmup must be >= 20 for the adaptation, got {num_warmup}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    init_key, warmup_key, sample_key = jax.random.split(rng_key, 3)
    timing = {}

    t0 = time.perf_counter()
    precond = jax.jit(lambda c: curvature_preconditioner(
        target, c, damping=damping, floor=curvature_floor, fixed=fixed))(center)
    jax.block_until_ready(precond)
    timing["precondition_s"] = time.perf_counter() - t0
    logdensity = _whitened_logdensity(target, precond)
    dim = precond.factor.shape[1]

    # ---- warmup: step size and trajectory length, across chains -----------------------------
    # Dispersed starts: each chain's own draw of the damped Laplace approximation.
    starts = jax.random.normal(init_key, (num_chains, dim))
    adaptation = blackjax.chees_adaptation(
        logdensity, num_chains, target_acceptance_rate=target_acceptance,
        max_leapfrog_steps=max_leapfrog_steps)
    t0 = time.perf_counter()
    with progress_bar(total=1, desc=f"Warmup ({num_warmup} ChEES steps, one loop)",
                      enabled=progress) as bar:
        (states, parameters), _ = adaptation.run(
            warmup_key, starts, INITIAL_STEP_SIZE, optax.adam(TRAJECTORY_LEARNING_RATE),
            num_warmup, max_sampling_steps=num_samples)
        jax.block_until_ready(states)
        if bar is not None:
            bar.update(1)
    timing["warmup_s"] = time.perf_counter() - t0
    step_size = float(parameters["step_size"])
    (mean_steps,) = parameters["integration_steps_params"]
    kernel = blackjax.dynamic_hmc(logdensity, **parameters)

    # ---- sampling ------------------------------------------------------------------------
    def sample_one(state, key):
        new_state, info = kernel.step(key, state)
        acceptance, energy = acceptance_and_kept_energy(state, info)
        theta = precond.center + precond.factor @ new_state.position
        return new_state, (theta, new_state.logdensity, info.is_divergent, acceptance,
                           info.num_integration_steps, energy)

    def sample_step(states, keys):
        return jax.vmap(sample_one)(states, keys)

    keys = jax.random.split(sample_key, (num_samples, num_chains))
    t0 = time.perf_counter()
    states, outs, sampling_compile = chunked_scan(
        sample_step, states, keys, length=num_samples, desc="Sampling", progress=progress,
        postfix_fn=lambda c, o: f"divergences {int(jnp.sum(o[2]))} in chunk",
    )
    trace = concat_outputs(outs)  # (draw, chain, ...)
    jax.block_until_ready(trace)
    timing["sampling_s"] = time.perf_counter() - t0 - sampling_compile
    timing["compile_s"] = sampling_compile
    trace = ChEESTrace(*(jnp.swapaxes(a, 0, 1) for a in trace))
    return ChEESResult(trace=trace, step_size=step_size,
                       trajectory_length=float(mean_steps) * step_size,
                       preconditioner=precond), timing


def sample(rng_key, ctx: MethodContext) -> Draws:
    """The ``chees`` method: ChEES-HMC, whitened at the best MAP fit, on the same target as
    ``nuts`` (output layer integrated out where allowed, implied prior removed)."""
    inf = ctx.settings
    prepared, rng_key, complete_key = prepare_target(rng_key, ctx, sampler="chees")
    result, timing = run_chees(
        rng_key, prepared.target, prepared.centers[0], num_chains=inf.num_chains,
        num_warmup=inf.num_warmup, num_samples=inf.num_samples,
        target_acceptance=inf.target_acceptance,
        max_leapfrog_steps=2**inf.max_tree_depth - 1, damping=prepared.damping,
        curvature_floor=inf.curvature_floor, progress=ctx.progress,
    )
    steps = np.asarray(result.trace.n_steps)
    info = {"step_size": result.step_size, "trajectory_length": result.trajectory_length,
            "mean_leapfrog_steps": float(steps.mean()),
            "max_leapfrog_steps": 2**inf.max_tree_depth - 1,
            "output_layer": prepared.output_layer}
    return finish_draws(prepared, complete_key, result.trace.position,
                        result.trace.sample_stats(), info, timing)


def check(model, settings) -> None:
    """Refuse settings ChEES-HMC cannot run, before any work starts."""
    del model
    if settings.num_chains < MIN_CHAINS:
        raise ValueError(f"num_chains = {settings.num_chains}: ChEES-HMC adapts its trajectory "
                         f"length across chains and needs at least {MIN_CHAINS} (16 or more "
                         "is better; they run as one vectorised program)")
    if settings.chain_init != "best_map":
        raise ValueError(f"chain_init = {settings.chain_init!r}: ChEES-HMC's chains share one "
                         "whitening and one trajectory length, at the best MAP fit; use "
                         "chain_init = 'best_map' (or method 'nuts' to compare modes)")
    if settings.num_warmup < 20:
        raise ValueError(
            f"num_warmup = {settings.num_warmup}: the adaptation needs num_warmup >= 20")


METHOD = Method(
    name="chees",
    run=sample,
    exact_mcmc=True,
    description="ChEES-HMC (blackjax): jittered HMC whose trajectory length is tuned across "
                "many chains, whitened at the MAP like 'nuts'; no tree building.",
    limitations=(
        "one trajectory length for every chain and direction: a posterior whose directions "
        "need very different lengths mixes its slowest direction less well than NUTS would",
    ),
    check=check,
    implicit_prior="removed",
)
