"""NUTS through numpyro, preconditioned exactly like ``nuts``: an independent cross-check.

Why: blackjax's NUTS (method ``nuts``) is the default sampler. Running numpyro's NUTS on the same
numpyro model (``ctx.model.model``), from the same MAP fits and with the same preconditioning,
makes any disagreement between the two a question about implementations, not about tuning.

Same preconditioning. ``nuts`` whitens ``theta = center + F eta`` and samples ``eta`` with an
identity mass matrix. HMC is invariant under a linear change of variables when the mass matrix
changes with it, so that is the same sampler as HMC on ``theta`` with the dense inverse mass
matrix ``F F^T`` (same step size, same trajectories; the centre is only a shift). This module
hands numpyro that matrix, with step-size adaptation only.

Same layout. numpyro keys a dense mass matrix by ``tuple(sorted(site names))`` and ravels the
momentum of those sites in that order (``hmc_util.euclidean_kinetic_energy``); ``Target`` ravels
its dict of sites in sorted key order too (``ravel_pytree``). ``site_order`` checks that the
target's slices are exactly that concatenation, the matrix is passed keyed by that tuple (numpyro
asserts the key matches its own), and draws come back as numpyro's unconstrained ``z`` dicts,
ravelled the same way and checked against the target's structure.

Remaining differences from ``nuts`` (implementation choices, not tuning): numpyro restarts dual
averaging at the ends of Stan's middle warmup windows even when the mass matrix is fixed, while
``nuts`` runs one dual averaging over the whole warmup; with ``chain_init = "per_chain"`` each
chain has its own preconditioner, so each chain is a separate numpyro run (compiled once each).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS

from bpinn.inference.methods import Draws, Method, MethodContext
from bpinn.inference.nuts import curvature_preconditioner
from bpinn.inference.target import Target

# Measured on the heat test context (2 chains x (200 warmup + 200 draws), max_tree_depth 9,
# every tree saturated; 2 CPU cores shared with other jobs, load ~8), warmup + sampling seconds in
# two runs each, alternating order: sequential 87 and 108, vectorized 161 and 152. Likely why:
# under vmap numpyro's tree building turns its ``cond``s into ``select``s that run both
# branches, and on CPU a batched 339 x 339 mass-matrix product is no faster than two single ones.
DEFAULT_CHAIN_METHOD = "sequential"
CHAIN_METHODS = ("sequential", "vectorized")
INITIAL_STEP_SIZE = 0.5  # as ``nuts``: the preconditioned target has roughly unit scales
EXTRA_FIELDS = ("num_steps", "accept_prob", "potential_energy", "energy")
# XLA lowering and compilation, as reported by jax.monitoring; tracing is not counted because
# nested jit traces are reported inside their parents' and would be counted twice.
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class NumpyroNUTSTrace(NamedTuple):
    position: jnp.ndarray  # (num_chains, num_draws, dim), unconstrained, target layout
    diverging: jnp.ndarray
    acceptance_rate: jnp.ndarray
    n_steps: jnp.ndarray
    tree_depth: jnp.ndarray
    lp: jnp.ndarray
    energy: jnp.ndarray


class NumpyroNUTSResult(NamedTuple):
    trace: NumpyroNUTSTrace
    step_size: np.ndarray  # (num_chains,)


class CompileClock:
    """Seconds spent lowering and compiling XLA programs while the context is open.

    numpyro compiles inside its own loops, so its compile time cannot be separated by timing
    calls; jax reports every compilation through ``jax.monitoring`` instead.
    """

    def __enter__(self):
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def _listen(self, event: str, duration: float, **kwargs):
        if event in _COMPILE_EVENTS:
            self.seconds += duration

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)
        return False


def site_order(target: Target) -> tuple[str, ...]:
    """The target's sites in flat-vector order, checked to be numpyro's dense-mass order.

    Raises ``RuntimeError`` when the target's slices are not the sorted sites laid end to end:
    a mass matrix in the wrong order would not fail, it would silently ruin the sampler.
    """
    names = tuple(sorted(target.site_slices))
    start = 0
    for name in names:
        lo, hi = target.site_slices[name]
        if lo != start:
            raise RuntimeError(
                f"target layout is not sorted sites end to end: {name!r} starts at {lo}, "
                f"expected {start}; site_slices = {target.site_slices}"
            )
        start = hi
    if start != target.dim:
        raise RuntimeError(f"target site slices cover {start} of {target.dim} coordinates")
    return names


def _identity(z, *args, **kwargs):
    # numpyro's default post-processing constrains the draws; keep them unconstrained.
    return z


def _ravel_draws(target: Target, z: dict) -> jnp.ndarray:
    """(chain, draw) dicts of unconstrained sites -> (chain, draw, dim) in the target's layout."""
    reference = target.unravel_fn(target.initial_position)
    one = jax.tree.map(lambda a: a[0, 0], z)
    same_shapes = jax.tree.map(lambda a, b: jnp.shape(a) == jnp.shape(b), reference, one)
    if (jax.tree.structure(one) != jax.tree.structure(reference)
            or not all(jax.tree.leaves(same_shapes))):
        raise RuntimeError(
            f"numpyro's latent sites {jax.tree.map(jnp.shape, one)} do not match the target's "
            f"{jax.tree.map(jnp.shape, reference)}"
        )
    return jax.vmap(jax.vmap(lambda d: ravel_pytree(d)[0]))(z)


def _run_numpyro(rng_key, model_fn, target, inverse_mass, initial, *, num_warmup,
                 num_samples, max_tree_depth, target_acceptance, chain_method, progress):
    """One numpyro MCMC run with a shared inverse mass matrix; ``initial`` is (chains, dim)."""
    num_chains = initial.shape[0]
    warmup_key, sample_key = jax.random.split(rng_key)
    kernel = NUTS(
        model_fn,
        step_size=INITIAL_STEP_SIZE,
        inverse_mass_matrix={site_order(target): inverse_mass},
        adapt_step_size=True,
        adapt_mass_matrix=False,
        dense_mass=True,
        target_accept_prob=target_acceptance,
        max_tree_depth=max_tree_depth,
    )
    mcmc = MCMC(
        kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
        chain_method=chain_method, progress_bar=progress, postprocess_fn=_identity,
    )
    init = jax.vmap(target.unravel_fn)(initial) if num_chains > 1 else target.unravel_fn(
        initial[0])
    timing = {}
    with CompileClock() as clock:
        t0 = time.perf_counter()
        mcmc.warmup(warmup_key, init_params=init, physics_weight=1.0)
        jax.block_until_ready(mcmc.post_warmup_state)
        timing["warmup_s"] = time.perf_counter() - t0 - clock.seconds
        warmup_compile = clock.seconds
        t0 = time.perf_counter()
        mcmc.run(sample_key, extra_fields=EXTRA_FIELDS, physics_weight=1.0)
        z = mcmc.get_samples(group_by_chain=True)
        fields = mcmc.get_extra_fields(group_by_chain=True)
        jax.block_until_ready((z, fields))
        timing["sampling_s"] = time.perf_counter() - t0 - (clock.seconds - warmup_compile)
        timing["compile_s"] = clock.seconds
    step_size = np.broadcast_to(np.asarray(mcmc.post_warmup_state.adapt_state.step_size),
                                (num_chains,))
    n_steps = fields["num_steps"]
    trace = NumpyroNUTSTrace(
        position=_ravel_draws(target, z),
        diverging=fields["diverging"],
        acceptance_rate=fields["accept_prob"],
        n_steps=n_steps,
        tree_depth=tree_depth_from_steps(n_steps),
        lp=-fields["potential_energy"],
        energy=fields["energy"],
    )
    return trace, step_size, timing


def tree_depth_from_steps(n_steps) -> jnp.ndarray:
    """Number of trajectory doublings (blackjax's ``num_trajectory_expansions``) from the number
    of leapfrog steps of a NUTS transition.

    After ``k`` complete doublings a tree holds ``2**k - 1`` steps; a doubling stopped early (a
    U-turn inside it, or a divergence) still took at least one step and counts as a doubling in
    blackjax. So ``n_steps`` in ``[2**(k-1), 2**k - 1]`` means ``k`` doublings:
    ``k = floor(log2(n_steps)) + 1``, the bit length of ``n_steps``.
    """
    n = jnp.asarray(n_steps).astype(jnp.int32)
    return jnp.where(n > 0, 32 - jax.lax.clz(n), 0)


def run_numpyro_nuts(
    rng_key,
    model_fn,
    target: Target,
    map_positions: jnp.ndarray,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    max_tree_depth: int = 10,
    target_acceptance: float = 0.8,
    damping=0.0,
    curvature_floor: float = 1.0,
    shared_center: bool = True,
    chain_method: str = DEFAULT_CHAIN_METHOD,
    progress: bool = False,
) -> tuple[NumpyroNUTSResult, dict]:
    """Sample ``model_fn`` with numpyro's NUTS, one chain per row of ``map_positions``.

    Parameters
    ----------
    rng_key : JAX PRNG key.
    model_fn : the numpyro model ``target`` was built from (keyword ``physics_weight``).
    target : its flat posterior (``bpinn.inference.target.make_target``): layout and Hessian.
    map_positions : (num_chains, dim) MAP fits, one per chain.
    num_warmup, num_samples : adaptation steps and kept draws per chain.
    max_tree_depth : maximum number of trajectory doublings.
    target_acceptance : dual-averaging target for the step size.
    damping : added to the diagonal of the preconditioning Hessian (scalar or per coordinate).
    curvature_floor : lower bound on the eigenvalues of the preconditioning Hessian.
    shared_center : all rows are the same MAP: one preconditioner and one numpyro run with
        ``num_chains`` chains. Otherwise one preconditioner and one single-chain run per row.
    chain_method : numpyro's ``"sequential"`` or ``"vectorized"`` (shared centre only).
    progress : numpyro's progress bar.

    Returns
    -------
    (NumpyroNUTSResult, timing) with ``precondition_s``, ``warmup_s``, ``sampling_s`` and
    ``compile_s`` (XLA lowering and compilation, excluded from the others; tracing stays in
    them). Each chain starts at a draw of the damped Laplace approximation at its MAP, as in
    ``nuts``.

    Examples
    --------
    >>> # result, timing = run_numpyro_nuts(key, model.model, target, maps)  # doctest: +SKIP
    """
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {chain_method!r}")
    if num_warmup < 20:
        raise ValueError(f"num_warmup must be >= 20 for step-size adaptation, got {num_warmup}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_chains, dim = map_positions.shape
    init_key, run_key = jax.random.split(rng_key)
    centers = map_positions[:1] if shared_center else map_positions

    t0 = time.perf_counter()
    precond = jax.jit(jax.vmap(lambda c: curvature_preconditioner(
        target, c, damping=damping, floor=curvature_floor)))(centers)
    jax.block_until_ready(precond)
    timing = {"precondition_s": time.perf_counter() - t0}
    inverse_mass = jnp.einsum("cij,ckj->cik", precond.factor, precond.factor)

    # A draw from the damped Laplace approximation at each chain's MAP (as ``nuts``): chains that
    # share a MAP still start dispersed, which R-hat needs to mean anything.
    eta = jax.random.normal(init_key, (num_chains, dim))
    factor = jnp.broadcast_to(precond.factor, (num_chains, dim, dim))
    initial = map_positions + jnp.einsum("cij,cj->ci", factor, eta)

    options = dict(num_warmup=num_warmup, num_samples=num_samples, max_tree_depth=max_tree_depth,
                   target_acceptance=target_acceptance, progress=progress)
    if shared_center:
        groups = [(run_key, inverse_mass[0], initial, chain_method)]
    else:
        keys = jax.random.split(run_key, num_chains)
        groups = [(keys[c], inverse_mass[c], initial[c:c + 1], "sequential")
                  for c in range(num_chains)]
    traces, step_sizes = [], []
    for key, imm, init, method in groups:
        trace, step_size, group_timing = _run_numpyro(
            key, model_fn, target, imm, init, chain_method=method, **options)
        traces.append(trace)
        step_sizes.append(step_size)
        for name, seconds in group_timing.items():
            timing[name] = timing.get(name, 0.0) + seconds
    trace = NumpyroNUTSTrace(*(jnp.concatenate(a, axis=0) for a in zip(*traces, strict=True)))
    return NumpyroNUTSResult(trace, np.concatenate(step_sizes)), timing


def sample(rng_key, ctx: MethodContext) -> Draws:
    """The ``numpyro_nuts`` method: numpyro NUTS with ``nuts``'s preconditioning and starts."""
    inf, target = ctx.settings, ctx.target
    centers = ctx.chain_centers()
    result, timing = run_numpyro_nuts(
        rng_key, ctx.model.model, target, centers, num_warmup=inf.num_warmup,
        num_samples=inf.num_samples, max_tree_depth=inf.max_tree_depth,
        target_acceptance=inf.target_acceptance,
        damping=ctx.weight_damping(),
        curvature_floor=inf.curvature_floor, shared_center=inf.chain_init == "best_map",
        chain_method=DEFAULT_CHAIN_METHOD, progress=ctx.progress,
    )
    trace = result.trace
    stats = {
        "diverging": trace.diverging, "acceptance_rate": trace.acceptance_rate,
        "n_steps": trace.n_steps, "tree_depth": trace.tree_depth, "lp": trace.lp,
        "energy": trace.energy,
    }
    chain_method = DEFAULT_CHAIN_METHOD if inf.chain_init == "best_map" else "one run per chain"
    info = {
        "step_size": result.step_size.tolist(),
        "max_tree_depth": inf.max_tree_depth,
        "chain_init": inf.chain_init,
        "chain_method": chain_method,
        "tree_depth": "doublings, floor(log2(n_steps)) + 1 (blackjax's scale)",
        "compile_s": "XLA lowering and compilation only; tracing is inside warmup_s/sampling_s",
    }
    return Draws(trace.position, stats, info, timing)


def check(model, settings) -> None:
    """Raise ``ValueError`` for settings this method cannot run."""
    del model
    if settings.num_warmup < 20:
        raise ValueError(
            f"num_warmup = {settings.num_warmup}: step-size adaptation needs num_warmup >= 20"
        )


METHOD = Method(
    name="numpyro_nuts",
    run=sample,
    exact_mcmc=True,
    description="NUTS (numpyro) with the same MAP curvature preconditioning as 'nuts'; "
                "a cross-check of the default sampler.",
    check=check,
)
