"""NUTS with blackjax, preconditioned by the curvature of the posterior at a MAP.

Why: the weight posterior of a PINN is badly conditioned (curvatures spanning many orders of
magnitude and strongly correlated), so NUTS with a diagonal mass matrix adapted from scratch
saturates the tree depth and mixes the coefficients very slowly. Each chain therefore

1. is given a MAP fit as its centre (the caller decides: one shared best fit, or one per chain);
2. computes the Hessian of the negative log density there, adds ``damping`` to its diagonal
   (the caller damps the network weights only), replaces its eigenvalues by
   ``max(|lambda|, floor)`` (a SoftAbs-style fix for indefinite directions) and whitens the
   parameters with it: ``theta = theta_map + V diag(lambda)^(-1/2) eta``;
3. starts at a draw ``eta ~ N(0, I)`` of that Laplace approximation and runs Stan's windowed
   warmup schedule in ``eta``: dual-averaging step size, and optionally a diagonal mass matrix;
4. draws with NUTS, returning unwhitened positions.

The whitening is a fixed linear map, so it changes efficiency, not the target distribution
(tests/test_inference.py checks this on a Gaussian with known moments). docs/sampling.md has
the measurements behind the defaults.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.adaptation.window_adaptation import build_schedule

from bpinn.inference import implicit_prior
from bpinn.inference.marginal import OutputMarginal, complete_draws, output_marginal
from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.target import (
    Target,
    chunked_scan,
    concat_outputs,
    dense_hessian,
    make_target,
)


class Preconditioner(NamedTuple):
    """``theta = center + eta @ factor.T``; one per chain."""

    center: jnp.ndarray  # (dim,)
    factor: jnp.ndarray  # (dim, dim)
    eigenvalues: jnp.ndarray  # (dim,) curvature spectrum after the floor, for diagnostics


class NUTSTrace(NamedTuple):
    position: jnp.ndarray  # (num_chains, num_draws, dim), unconstrained, unwhitened
    logdensity: jnp.ndarray
    diverging: jnp.ndarray
    acceptance_rate: jnp.ndarray
    n_steps: jnp.ndarray
    tree_depth: jnp.ndarray
    energy: jnp.ndarray

    def sample_stats(self) -> dict:
        """The per-draw statistics under their ArviZ names (``sample_stats`` group)."""
        return {
            "diverging": self.diverging, "acceptance_rate": self.acceptance_rate,
            "n_steps": self.n_steps, "tree_depth": self.tree_depth, "lp": self.logdensity,
            "energy": self.energy,
        }


class NUTSResult(NamedTuple):
    trace: NUTSTrace
    step_size: jnp.ndarray  # (num_chains,)
    inverse_mass_matrix: jnp.ndarray  # (num_chains, dim), in whitened coordinates
    preconditioner: Preconditioner
    warmup_acceptance: jnp.ndarray  # (num_chains,)


def curvature_preconditioner(target: Target | OutputMarginal, center, *, damping,
                             floor: float = 1.0, fixed: np.ndarray | None = None
                             ) -> Preconditioner:
    """Whitening from the damped Hessian of ``-logdensity`` at ``center``.

    ``damping`` (a scalar or one value per coordinate) is added to the Hessian's diagonal before
    the eigen-decomposition; eigenvalues are then replaced by ``max(|lambda|, floor)``.
    ``fixed`` (flat indices) are held at ``center``'s values: the factor has zero rows for them
    and one column per free coordinate, so each chain can hold them at values of its own.

    Why damping: directions that are flat at the mode are often quartic, not Gaussian (a hidden
    unit with a small output weight leaves its input weights free until the output weight moves):
    whitening them by their (near-zero) curvature gives the sampler steps that are far too long.
    Damping only the network weights keeps the natural curvature of the coefficients and noise
    scales, whose posterior widths the sampler must traverse.
    """
    hessian = -dense_hessian(target.logdensity_fn, center)
    hessian = 0.5 * (hessian + hessian.T) + jnp.diag(jnp.broadcast_to(damping, center.shape))
    free = free_coordinates(center.shape[0], fixed)
    eigval, eigvec = jnp.linalg.eigh(hessian[np.ix_(free, free)])
    eigval = jnp.where(jnp.isfinite(eigval), eigval, floor)
    eigval = jnp.maximum(jnp.abs(eigval), floor)
    factor = eigvec / jnp.sqrt(eigval)[None, :]
    if fixed is not None:
        factor = jnp.zeros((center.shape[0], free.size), factor.dtype).at[free].set(factor)
    return Preconditioner(center=center, factor=factor, eigenvalues=eigval)


def free_coordinates(dim: int, fixed=None) -> np.ndarray:
    """The flat indices of ``range(dim)`` not in ``fixed`` (None: all of them)."""
    return np.setdiff1d(np.arange(dim), np.asarray(() if fixed is None else fixed, dtype=int))


def _whitened_logdensity(target: Target, precond: Preconditioner):
    def logdensity(eta):
        return target.logdensity_fn(precond.center + precond.factor @ eta)

    return logdensity


def run_nuts(
    rng_key,
    target: Target,
    map_positions: jnp.ndarray,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    max_tree_depth: int = 10,
    target_acceptance: float = 0.8,
    damping=0.0,
    curvature_floor: float = 1.0,
    adapt_mass_matrix: bool = False,
    initial_spread: float = 1.0,
    fixed: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[NUTSResult, dict]:
    """Sample ``target`` with one NUTS chain per row of ``map_positions``.

    Parameters
    ----------
    rng_key : JAX PRNG key.
    target : the posterior (``bpinn.inference.target.make_target``), or anything with a
        ``logdensity_fn`` of a flat position (``bpinn.inference.marginal.OutputMarginal``).
    map_positions : (num_chains, dim) MAP fits, one per chain.
    num_warmup, num_samples : adaptation steps and kept draws per chain.
    max_tree_depth : maximum number of trajectory doublings.
    target_acceptance : dual-averaging target for the step size.
    damping : added to the diagonal of the preconditioning Hessian (scalar or per coordinate).
    curvature_floor : lower bound on the eigenvalues of the preconditioning Hessian.
    initial_spread : chains start at ``initial_spread * N(0, I)`` in whitened coordinates
        around their MAP (1: a draw from the damped Laplace approximation).
    adapt_mass_matrix : also adapt a diagonal mass matrix (in whitened coordinates) in Stan's
        slow windows; otherwise only the step size is adapted.
    fixed : flat indices held at each chain's own ``map_positions`` values (not sampled).

    Returns
    -------
    (NUTSResult, timing) where timing has ``precondition_s``, ``warmup_s``, ``sampling_s`` and
    ``compile_s`` (compilation of the warmup and sampling loops, excluded from the others).
    """
    num_chains = map_positions.shape[0]
    dim = free_coordinates(map_positions.shape[1], fixed).size  # sampled (whitened) coordinates
    if num_warmup < 20:
        raise ValueError(f"num_warmup must be >= 20 for step-size adaptation, got {num_warmup}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    warmup_key, sample_key = jax.random.split(rng_key)
    timing = {}

    t0 = time.perf_counter()
    precond = jax.jit(
        jax.vmap(lambda c: curvature_preconditioner(
            target, c, damping=damping, floor=curvature_floor, fixed=fixed))
    )(map_positions)
    jax.block_until_ready(precond)
    timing["precondition_s"] = time.perf_counter() - t0

    def kernel(rng_key, state, pc, step_size, inv_mass):
        logdensity = _whitened_logdensity(target, pc)
        nuts = blackjax.nuts(
            logdensity, step_size, inv_mass, max_num_doublings=max_tree_depth
        )
        return nuts.step(rng_key, state)

    def init_state(pc, key):
        # A draw from the (damped) Laplace approximation at the mode: chains that share a MAP
        # still start dispersed, which R-hat needs to mean anything.
        eta0 = initial_spread * jax.random.normal(key, (dim,))
        return blackjax.nuts.init(eta0, _whitened_logdensity(target, pc))

    init_key, warmup_key = jax.random.split(warmup_key)
    states = jax.jit(jax.vmap(init_state))(precond, jax.random.split(init_key, num_chains))

    # ---- warmup: Stan windows, in whitened coordinates -------------------------------------
    da_init, da_update, da_final = dual_averaging_adaptation(target_acceptance)
    mm_init, mm_update, mm_final = mass_matrix_adaptation(
        is_diagonal_matrix=True, imm_shrinkage_to_previous=10.0
    )
    schedule = build_schedule(num_warmup)
    stages = jnp.array([s for s, _ in schedule], dtype=jnp.int32)
    window_ends = jnp.array([e for _, e in schedule], dtype=bool)
    if not adapt_mass_matrix:
        stages, window_ends = jnp.zeros_like(stages), jnp.zeros_like(window_ends)
    initial_step = 0.5  # whitened: the local Gaussian approximation has unit scales

    def warmup_one(carry, xs):
        state, da_state, mm_state, step_size, pc = carry
        key, stage, window_end = xs
        new_state, info = kernel(key, state, pc, step_size, mm_state.inverse_mass_matrix)
        acc = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0)
        da_state = da_update(da_state, acc)
        mm_state = jax.lax.cond(
            stage == 1, lambda m: mm_update(m, new_state.position), lambda m: m, mm_state
        )

        def end_window(args):
            m, d = args
            m = mm_final(m)
            return m, da_init(jnp.exp(d.log_step_size))

        mm_state, da_state = jax.lax.cond(
            window_end, end_window, lambda a: a, (mm_state, da_state)
        )
        step_size = jnp.exp(da_state.log_step_size)
        return (new_state, da_state, mm_state, step_size, pc), acc

    def warmup_step(carry, xs):
        keys, stage, window_end = xs
        carry, acc = jax.vmap(warmup_one, in_axes=(0, (0, None, None)))(
            carry, (keys, stage, window_end)
        )
        return carry, acc

    carry = (
        states,
        jax.vmap(lambda _: da_init(initial_step))(jnp.arange(num_chains)),
        jax.vmap(lambda _: mm_init(dim, jnp.ones(dim)))(jnp.arange(num_chains)),
        jnp.full((num_chains,), initial_step),
        precond,
    )
    keys = jax.random.split(warmup_key, (num_warmup, num_chains))
    t0 = time.perf_counter()
    carry, acc_out, warmup_compile = chunked_scan(
        warmup_step, carry, (keys, stages, window_ends), length=num_warmup,
        desc="Warmup", progress=progress,
        postfix_fn=lambda c, o: f"step size {float(jnp.median(c[3])):.3g}",
    )
    states, da_state, mm_state, _, _ = carry
    jax.block_until_ready(states)
    timing["warmup_s"] = time.perf_counter() - t0 - warmup_compile
    step_size = jax.vmap(da_final)(da_state)
    if not adapt_mass_matrix and bool(jnp.all(map_positions == map_positions[0])):
        # Chains that share a preconditioner share one geometry: pool their step-size estimates
        # (geometric mean). Alone, dual averaging gave the shipped heat case's chains 0.0195 to
        # 0.0267, and the two at 0.0267 made all 33 divergences (1.03%); pooled, 4 (0.13%).
        step_size = jnp.full_like(step_size, jnp.exp(jnp.mean(jnp.log(step_size))))
    inv_mass = mm_state.inverse_mass_matrix
    warmup_acceptance = jnp.mean(concat_outputs(acc_out)[num_warmup // 2 :], axis=0)

    # ---- sampling ------------------------------------------------------------------------
    def sample_one(state, key, pc, eps, imm):
        state, info = kernel(key, state, pc, eps, imm)
        theta = pc.center + pc.factor @ state.position
        out = (
            theta,
            state.logdensity,
            info.is_divergent,
            info.acceptance_rate,
            info.num_integration_steps,
            info.num_trajectory_expansions,
            info.energy,
        )
        return state, out

    def sample_step(states, keys):
        return jax.vmap(sample_one)(states, keys, precond, step_size, inv_mass)

    keys = jax.random.split(sample_key, (num_samples, num_chains))
    t0 = time.perf_counter()
    states, outs, sampling_compile = chunked_scan(
        sample_step, states, keys, length=num_samples, desc="Sampling", progress=progress,
        postfix_fn=lambda c, o: f"divergences {int(jnp.sum(o[2]))} in chunk",
    )
    trace = concat_outputs(outs)  # (draw, chain, ...)
    jax.block_until_ready(trace)
    timing["sampling_s"] = time.perf_counter() - t0 - sampling_compile
    timing["compile_s"] = warmup_compile + sampling_compile
    trace = NUTSTrace(*(jnp.swapaxes(a, 0, 1) for a in trace))
    result = NUTSResult(
        trace=trace,
        step_size=step_size,
        inverse_mass_matrix=inv_mass,
        preconditioner=precond,
        warmup_acceptance=warmup_acceptance,
    )
    return result, timing


class PreparedTarget(NamedTuple):
    """What a MAP-whitened sampler moves on, as ``prepare_target`` sets it up."""

    target: Target | OutputMarginal  # with the implied prior removed when it is
    centers: jnp.ndarray  # (num_chains, dim of target): the chains' MAP centres
    damping: jnp.ndarray  # (dim of target,) added to the preconditioning Hessian
    marginal: OutputMarginal | None  # the output layer integrated out, or None
    output_layer: str  # "marginal" or "sampled", as reported
    removal: implicit_prior.Removal
    indices: np.ndarray | None  # the coefficients' indices in ``target``, for the correction


def prepare_target(rng_key, ctx: MethodContext, sampler: str = "nuts"
                   ) -> tuple[PreparedTarget, jax.Array, jax.Array]:
    """The posterior a MAP-whitened sampler moves on: the output layer integrated out when
    ``[inference] output_layer`` asks for it and the model allows, the implied prior removed
    (``implicit_prior.for_method``, measured with ``sampler``). Returns it, the sampler's key
    and the key for completing the draws."""
    check_key, rng_key, complete_key = jax.random.split(rng_key, 3)
    marginal, output_layer = output_marginal(ctx.model, ctx.target, ctx.settings.output_layer,
                                             check_key)
    target, centers, damping = ctx.target, ctx.chain_centers(), ctx.weight_damping()
    removal = implicit_prior.for_method(rng_key, ctx, marginal=marginal, sampler=sampler)
    implied = removal.implied
    if marginal is not None:
        target, centers, damping = marginal, marginal.reduce(centers), marginal.reduce(damping)
    indices = None if implied is None else (
        implied.indices if marginal is None else marginal.reduced_indices(implied.indices))
    target = removal.applied_to(target, indices)
    return (PreparedTarget(target, centers, damping, marginal, output_layer, removal, indices),
            rng_key, complete_key)


def finish_draws(prepared: PreparedTarget, key, position, stats: dict, info: dict,
                 timing: dict) -> Draws:
    """Record the implied-prior removal and, with the output layer integrated out, complete
    each draw by an exact draw of it; ``lp`` becomes the joint log density of each completed
    draw, as for every other method (the sampler's own Hamiltonian, ``energy``, is the
    marginal's)."""
    implicit_prior.record(prepared.removal, info, timing, position, prepared.indices)
    if prepared.marginal is not None:
        t0 = time.perf_counter()
        reduced = position
        position, stats["lp"] = complete_draws(prepared.marginal, key, reduced)
        if prepared.removal.mode == "corrected":
            stats["lp"] = stats["lp"] + prepared.target.correction(reduced)
        timing["output_layer_s"] = time.perf_counter() - t0
    return Draws(position, stats, info, timing)


def sample(rng_key, ctx: MethodContext) -> Draws:
    """The ``nuts`` method: curvature-preconditioned NUTS from the MAP fits, with the output
    layer integrated out when ``[inference] output_layer`` asks for it and the model allows."""
    inf = ctx.settings
    prepared, rng_key, complete_key = prepare_target(rng_key, ctx)
    result, timing = run_nuts(
        rng_key, prepared.target, prepared.centers, num_warmup=inf.num_warmup,
        num_samples=inf.num_samples, max_tree_depth=inf.max_tree_depth,
        target_acceptance=inf.target_acceptance, damping=prepared.damping,
        curvature_floor=inf.curvature_floor, adapt_mass_matrix=inf.adapt_mass_matrix,
        progress=ctx.progress,
    )
    info = {"step_size": np.asarray(result.step_size).tolist(),
            "max_tree_depth": inf.max_tree_depth, "chain_init": inf.chain_init,
            "output_layer": prepared.output_layer}
    return finish_draws(prepared, complete_key, result.trace.position,
                        result.trace.sample_stats(), info, timing)


def check(model, settings) -> None:
    """Refuse before any work starts: ``output_layer = "marginal"`` where the model does not
    allow it (non-Gaussian readings, a PDE or condition nonlinear in u)."""
    if settings.output_layer == "marginal":
        try:
            output_marginal(model, make_target(jax.random.key(0), model.model), "marginal",
                            jax.random.key(0))
        except ValueError as err:
            raise ValueError(f"[inference] output_layer = 'marginal': {err}") from None


METHOD = Method(
    name="nuts",
    run=sample,
    exact_mcmc=True,
    description="NUTS (blackjax) whitened by the damped Hessian at the MAP; the default.",
    check=check,
    implicit_prior="removed",
)
