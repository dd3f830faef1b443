"""The posterior as a flat log density, the one thing every inference method consumes.

``inference/`` knows the model only through this: a numpyro model function turned into
``logdensity_fn(flat_position)`` on the unconstrained space, with a map back to named,
constrained sites.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.util import initialize_model, potential_energy, unconstrain_fn

from bpinn import checkpoint
from bpinn.utils import check_interrupt, progress_bar


@dataclass(frozen=True, eq=False)
class Target:
    """A posterior on a flat unconstrained vector.

    Attributes
    ----------
    logdensity_fn : flat position -> log density (up to a constant), unconstrained space.
    training_logdensity_fn : (flat position, model_kwargs) -> log density with the model's
        training keywords set (``physics_weight``, ``term_weights``, ``causal_epsilon``,
        ``time_marching``; see ``BPINN.model``); for MAP continuation and reweighting.
    unravel_fn : flat position -> dict of unconstrained site values.
    constrain_fn : dict of unconstrained values -> dict of constrained site values.
    initial_position : a reference flat position (prior medians; weights zero).
    site_slices : site name -> (start, stop) in the flat vector.
    """

    logdensity_fn: Callable
    training_logdensity_fn: Callable
    unravel_fn: Callable
    constrain_fn: Callable
    unconstrain_fn: Callable
    initial_position: jnp.ndarray
    site_slices: dict

    @property
    def dim(self) -> int:
        return int(self.initial_position.size)

    def from_constrained(self, values: dict):
        """Flat unconstrained position from named constrained values; missing sites keep the
        reference position's value."""
        z = dict(self.unravel_fn(self.initial_position))
        z.update(self.unconstrain_fn(values))
        return ravel_pytree(z)[0]

    def constrained(self, flat):
        """Named constrained values of one flat position."""
        return self.constrain_fn(self.unravel_fn(flat))


def make_target(rng_key, model_fn: Callable) -> Target:
    """Build a ``Target`` from a numpyro model whose keywords all default to the posterior."""
    # A batch of one key: numpyro then finds the start inside one compiled loop instead of
    # running the model op by op (hundreds of small compilations, seconds per run).
    info = initialize_model(rng_key[None], model_fn, init_strategy=init_to_median(num_samples=15))
    z0 = {name: value[0] for name, value in info.param_info.z.items()}
    flat0, unravel = ravel_pytree(z0)
    slices, start = {}, 0
    for name in sorted(z0):  # ravel_pytree flattens dicts in sorted key order
        size = int(jnp.size(z0[name]))
        slices[name] = (start, start + size)
        start += size

    def training_logdensity_fn(flat, model_kwargs):
        return -potential_energy(model_fn, (), model_kwargs, unravel(flat))

    def logdensity_fn(flat):
        return training_logdensity_fn(flat, {})

    def constrain_fn(z):
        return info.postprocess_fn(z)

    seeded = numpyro.handlers.seed(model_fn, rng_seed=0)  # sites not given are drawn, then dropped

    def to_unconstrained(values):
        z = unconstrain_fn(seeded, (), {}, values)
        return {k: v for k, v in z.items() if k in values}

    return Target(
        logdensity_fn, training_logdensity_fn, unravel, constrain_fn, to_unconstrained, flat0,
        slices,
    )


HESSIAN_BLOCK = 32  # Hessian-vector products computed together by ``dense_hessian``


def dense_hessian(fn: Callable, x, *, block_size: int = HESSIAN_BLOCK):
    """The Hessian of scalar ``fn`` at flat ``x``, ``block_size`` columns at a time.

    ``jax.hessian`` pushes all ``x.size`` tangents through the function at once, so its memory
    grows with the number of weights times every intermediate of the PDE residual's derivatives
    (17 GB for a 2,241-weight Burgers network). Here ``lax.map`` runs blocks of forward-over-
    reverse Hessian-vector products one after another: the same arithmetic, with memory bounded
    by one block.
    """
    dim = x.size
    num_blocks = -(-dim // block_size)
    basis = jnp.eye(num_blocks * block_size, dim, dtype=x.dtype)  # zero rows pad the last block
    grad_fn = jax.grad(fn)

    def hvp(v):
        return jax.jvp(grad_fn, (x,), (v,))[1]

    rows = jax.lax.map(jax.vmap(hvp), basis.reshape(num_blocks, block_size, dim))
    return rows.reshape(-1, dim)[:dim]


def chunked_scan(
    step_fn: Callable,
    carry,
    xs,
    *,
    length: int,
    desc: str,
    progress: bool,
    chunk_size: int | None = None,
    postfix_fn: Callable | None = None,
) -> tuple[object, list, float]:
    """``lax.scan(step_fn, carry, xs)`` run as compiled chunks with a progress bar between them.

    The chunk is compiled ahead of time once (and once more for a shorter last chunk), so the
    user sees progress and the compile time is measured on its own. ``xs`` is a pytree whose
    leaves have leading axis ``length``. Returns the final carry, the list of per-chunk stacked
    outputs (concatenate along axis 0 for the full trace) and the compile time in seconds.
    While a :class:`bpinn.checkpoint.CheckpointStore` is active, the state is saved after every
    chunk and a resumed run continues from the last saved one.
    """
    chunk = chunk_size or max(1, length // 20)

    def run_chunk(carry, xs_chunk):
        return jax.lax.scan(step_fn, carry, xs_chunk)

    def chunk_xs(start):
        return jax.tree.map(lambda a: a[start:min(start + chunk, length)], xs)

    # Under an active checkpoint store the loop is a stage of the run: saved chunks are read
    # back (bit-identical to recomputing them) and each new chunk is saved before the next.
    store = checkpoint.active_store()
    stage = store.stage(desc, length, chunk) if store is not None else None
    done, outputs = 0, []
    if stage is not None:
        # The outputs' structure is only traced when there are saved chunks to read back.
        done, carry, outputs = stage.restore(
            carry, lambda: jax.eval_shape(run_chunk, carry, chunk_xs(0))[1])

    compiled: dict[int, Callable] = {}
    compile_seconds = 0.0
    with progress_bar(total=length, desc=desc, enabled=progress) as bar:
        bar.update(done)
        for start in range(done, length, chunk):
            stop = min(start + chunk, length)
            xs_chunk = chunk_xs(start)
            if stop - start not in compiled:
                t0 = time.perf_counter()
                compiled[stop - start] = jax.jit(run_chunk).lower(carry, xs_chunk).compile()
                compile_seconds += time.perf_counter() - t0
            carry, out = compiled[stop - start](carry, xs_chunk)
            outputs.append(out)
            if stage is not None:
                stage.save(stop, carry, out)
            if postfix_fn is not None:
                bar.set_postfix_str(postfix_fn(carry, out))
            bar.update(stop - start)
            check_interrupt()  # after the save: a resumed run continues from this chunk
    return carry, outputs, compile_seconds


def concat_outputs(outputs: Iterable, axis: int = 0):
    return jax.tree.map(lambda *a: jnp.concatenate(a, axis=axis), *outputs)
