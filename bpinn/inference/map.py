"""Maximum a posteriori fits with optax: Adam, then optionally L-BFGS, vmapped over starts.

The MAP is the warm start of every sampler and the point where the sampler's preconditioner is
computed. It is the mode of the unconstrained-space density (priors and Jacobians included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bpinn.inference.target import Target, chunked_scan, concat_outputs


class MAPResult(NamedTuple):
    position: jnp.ndarray  # (num_starts, dim)
    logdensity: jnp.ndarray  # (num_starts,)
    trace: jnp.ndarray  # (num_steps, num_starts): log density along Adam and L-BFGS
    compile_seconds: float
    term_weights: dict | None = None  # site -> (num_starts,) last balanced weights, if any

    def best(self) -> jnp.ndarray:
        """The position of the fit with the highest finite log density."""
        finite = jnp.where(jnp.isfinite(self.logdensity), self.logdensity, -jnp.inf)
        return self.position[int(jnp.argmax(finite))]


def fit_map(
    target: Target,
    initial_positions: jnp.ndarray,
    *,
    num_adam_steps: int = 3000,
    learning_rate: float = 1e-2,
    num_lbfgs_steps: int = 500,
    physics_ramp: float = 0.5,
    training: dict | None = None,
    term_weights_fn: Callable | None = None,
    rebalance_every: int = 100,
    progress: bool = False,
) -> MAPResult:
    """Maximise ``target.logdensity_fn`` from each row of ``initial_positions``.

    Adam with a cosine-decayed learning rate finds the basin; L-BFGS (with a zoom line search)
    then polishes the mode, which matters because the preconditioner is built from the Hessian
    there. During the first ``physics_ramp`` fraction of the Adam steps the physics terms are
    tempered by a weight rising linearly from 0 to 1 (continuation): fitting the data first keeps
    the fit out of trivial solutions that satisfy the PDE but ignore the readings.

    Only the Adam phase is reweighted: ``training`` holds further keywords of the model for it
    (``causal_epsilon``, ``time_marching``; see ``BPINN.model``), and ``term_weights_fn(x) ->
    {site: weight}`` (e.g. NTK balancing, ``bpinn.ntk``) is re-evaluated at each start every
    ``rebalance_every`` steps. L-BFGS then polishes the mode of the posterior itself, so the
    result is the same kind of point whatever remedies helped Adam reach its basin.

    Examples
    --------
    >>> # result = fit_map(target, starts, num_adam_steps=2000)   # doctest: +SKIP
    """
    if initial_positions.ndim != 2 or initial_positions.shape[1] != target.dim:
        raise ValueError(
            f"initial_positions must have shape (num_starts, {target.dim}), "
            f"got {initial_positions.shape}"
        )

    def loss_fn(x):
        return -target.logdensity_fn(x)

    ramp_steps = int(physics_ramp * num_adam_steps)

    traces = []
    compile_seconds = 0.0
    position = initial_positions
    if num_adam_steps > 0:
        schedule = optax.cosine_decay_schedule(learning_rate, num_adam_steps, alpha=0.01)
        adam = optax.chain(optax.clip_by_global_norm(1e3), optax.adam(schedule))
        static = dict(training or {})

        def training_loss(x, w, term_weights):
            kwargs = {"physics_weight": w, **static}
            if term_weights_fn is not None:
                kwargs["term_weights"] = term_weights
            return -target.training_logdensity_fn(x, kwargs)

        grad_fn = jax.value_and_grad(training_loss)
        balance = (jax.vmap(term_weights_fn) if term_weights_fn is not None
                   else lambda x: jnp.zeros(x.shape[0]))

        def adam_step(carry, step):
            x, opt_state, term_weights = carry
            weight = jnp.clip(step / ramp_steps, 0.0, 1.0) if ramp_steps else 1.0
            if term_weights_fn is not None:
                term_weights = jax.lax.cond(
                    step % rebalance_every == 0, balance, lambda _: term_weights, x)
            loss, g = jax.vmap(grad_fn, in_axes=(0, None, 0))(x, weight, term_weights)
            updates, opt_state = jax.vmap(adam.update)(g, opt_state, x)
            return (optax.apply_updates(x, updates), opt_state, term_weights), -loss

        carry = (position, jax.vmap(adam.init)(position), balance(position))
        (position, _, last_weights), outs, compile_s = chunked_scan(
            adam_step, carry, jnp.arange(num_adam_steps, dtype=float), length=num_adam_steps,
            desc="MAP (Adam)", progress=progress,
            postfix_fn=lambda c, o: f"log density {float(jnp.max(o[-1])):.4g}",
        )
        traces.append(concat_outputs(outs))
        compile_seconds += compile_s

    if num_lbfgs_steps > 0:
        lbfgs = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(loss_fn)

        def lbfgs_one(x, state):
            value, grad = value_and_grad(x, state=state)
            updates, state = lbfgs.update(
                grad, state, x, value=value, grad=grad, value_fn=loss_fn
            )
            return optax.apply_updates(x, updates), state, -value

        def lbfgs_step(carry, _):
            x, state = carry
            x_new, state_new, value = jax.vmap(lbfgs_one)(x, state)
            # A failed line search can return non-finite values: keep the last good point.
            ok = jnp.all(jnp.isfinite(x_new), axis=-1)
            x_new = jnp.where(ok[:, None], x_new, x)
            return (x_new, state_new), value

        carry = (position, jax.vmap(lbfgs.init)(position))
        (position, _), outs, compile_s = chunked_scan(
            lbfgs_step, carry, jnp.zeros(num_lbfgs_steps), length=num_lbfgs_steps,
            desc="MAP (L-BFGS)", progress=progress,
            postfix_fn=lambda c, o: f"log density {float(jnp.max(o[-1])):.6g}",
        )
        traces.append(concat_outputs(outs))
        compile_seconds += compile_s

    final = jax.jit(jax.vmap(target.logdensity_fn))(position)
    trace = jnp.concatenate(traces, axis=0) if traces else final[None]
    balanced = last_weights if num_adam_steps > 0 and term_weights_fn is not None else None
    return MAPResult(position=position, logdensity=final, trace=trace,
                     compile_seconds=compile_seconds, term_weights=balanced)
