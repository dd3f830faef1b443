"""Side-by-side: bpinn's preconditioned NUTS against plain NUTS on the heat case study.

Both start from the same MAP fits of the shipped config and sample the same posterior with
blackjax NUTS (4 chains, same warmup and draw counts, at most 10 doublings):

- naive: blackjax.window_adaptation with a diagonal mass matrix (Stan's default), one chain per
  MAP fit;
- bpinn: the default (weights-damped Hessian whitening at the best MAP, step size adapted).

Reports ESS of D per second of sampling (warmup + draws), R-hat and tree depth. Usage:

    .venv/bin/python benchmarks/heat_samplers.py [--warmup 200] [--draws 200]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

# bpinn first: in the other order one run failed inside numpyro.factor (not reproduced since).
from bpinn.api import prepare  # noqa: E402, I001
from bpinn.config import load_config  # noqa: E402
from bpinn.inference.map import fit_map  # noqa: E402
from bpinn.inference.nuts import run_nuts  # noqa: E402
from bpinn.inference.target import make_target  # noqa: E402

import arviz_base  # noqa: E402
import arviz_stats  # noqa: E402
import blackjax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "case_studies/heat_diffusion/config.toml"


def naive_nuts(rng_key, target, starts, num_warmup, num_samples):
    warmup = blackjax.window_adaptation(blackjax.nuts, target.logdensity_fn,
                                        is_mass_matrix_diagonal=True)

    def one_chain(key, position):
        wkey, skey = jax.random.split(key)
        (state, params), _ = warmup.run(wkey, position, num_steps=num_warmup)
        kernel = blackjax.nuts(target.logdensity_fn, **params)

        def step(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.num_trajectory_expansions, info.is_divergent)

        _, out = jax.lax.scan(step, state, jax.random.split(skey, num_samples))
        return out

    keys = jax.random.split(rng_key, starts.shape[0])
    return jax.jit(jax.vmap(one_chain))(keys, starts)


def describe(name, d_draws, depth, divergent, seconds):
    dt = arviz_base.from_dict({"posterior": {"D": np.asarray(d_draws)}})
    ess = float(arviz_stats.ess(dt, var_names=["D"])["D"])
    rhat = float(arviz_stats.rhat(dt, var_names=["D"])["D"])
    print(f"| {name} | {seconds:.0f} s | {np.mean(d_draws):.5f} ± {np.std(d_draws):.5f} | "
          f"{rhat:.3f} | {ess:.0f} | {ess / seconds:.2f} | {np.mean(depth):.1f} | "
          f"{int(np.sum(divergent))} |")
    return ess / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    config = load_config(CONFIG)
    model = prepare(config)
    target = make_target(jax.random.key(0), model.model)
    starts = jnp.stack([target.from_constrained(model.initial_values(k))
                        for k in jax.random.split(jax.random.key(1), 4)])
    inf = config.inference
    fit = fit_map(target, starts, num_adam_steps=inf.map_adam_steps,
                  num_lbfgs_steps=inf.map_lbfgs_steps, physics_ramp=inf.map_physics_ramp)
    d_index = target.site_slices["D"][0]
    print("| sampler | warmup + draws wall | D | R-hat(D) | ESS(D) | ESS/s | mean tree depth |"
          " divergences |")
    print("|---|---|---|---|---|---|---|---|")

    t0 = time.perf_counter()
    pos, depth, div = naive_nuts(jax.random.key(2), target, fit.position, args.warmup, args.draws)
    jax.block_until_ready(pos)
    naive = describe("naive (diagonal window adaptation)", jnp.exp(pos[..., d_index]), depth,
                     div, time.perf_counter() - t0)

    best = int(jnp.argmax(fit.logdensity))
    centers = jnp.broadcast_to(fit.position[best], fit.position.shape)
    damping = jnp.zeros(target.dim).at[slice(*target.site_slices["weights"])].set(
        inf.weight_damping)
    t0 = time.perf_counter()
    result, _ = run_nuts(jax.random.key(2), target, centers, num_warmup=args.warmup,
                         num_samples=args.draws, max_tree_depth=10,
                         target_acceptance=inf.target_acceptance, damping=damping)
    jax.block_until_ready(result.trace.position)
    tr = result.trace
    fast = describe("bpinn default (damped Hessian whitening)",
                    jnp.exp(tr.position[..., d_index]), tr.tree_depth, tr.diverging,
                    time.perf_counter() - t0)
    print(f"\nESS/s ratio (bpinn / naive): {fast / naive:.1f}")


if __name__ == "__main__":
    main()
