"""Side-by-side: bpinn's preconditioned NUTS against plain NUTS on the heat case study.

Both start from the same MAP fits of the shipped config and sample the same posterior with
blackjax NUTS (4 chains, same warmup and draw counts, at most 10 doublings):

- naive: blackjax.window_adaptation with a diagonal mass matrix (Stan's default), one chain per
  MAP fit;
- bpinn: the default (weights-damped Hessian whitening at the best MAP, step size adapted);
- bpinn marginal: the same with the output layer integrated out analytically
  (``[inference] output_layer = "marginal"``); its draws are completed by exact conditional
  draws of the output layer;
- chees: ChEES-HMC (``--method chees``) on the marginal's target and whitening, with
  ``--chees-chains`` chains (16) of the same warmup and draw counts; its "tree depth" column is
  log2(leapfrog steps + 1), the depth of a NUTS tree of that many steps.

Reports ESS of D per second of sampling (warmup + draws, compilation included), R-hat, tree
depth, and R-hat and ESS of u at three fixed points of the domain (a high ESS of D alone does
not show that the network weights mixed). Usage:

    .venv/bin/python benchmarks/heat_samplers.py [--warmup 200] [--draws 200]
        [--samplers naive default marginal]
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
from bpinn.inference.chees import run_chees  # noqa: E402
from bpinn.inference.map import fit_map  # noqa: E402
from bpinn.inference.marginal import OutputMarginal, complete_draws  # noqa: E402
from bpinn.inference.nuts import run_nuts  # noqa: E402
from bpinn.inference.target import make_target  # noqa: E402

import arviz_base  # noqa: E402
import arviz_stats  # noqa: E402
import blackjax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

SAMPLERS = {
    "naive": "naive (diagonal window adaptation)",
    "default": "bpinn default (damped Hessian whitening)",
    "marginal": "bpinn, output layer integrated out",
    "chees": "ChEES-HMC, output layer integrated out",
}
CONFIG = Path(__file__).resolve().parent.parent / "case_studies/heat_diffusion/config.toml"


def naive_nuts(rng_key, target, starts, num_warmup, num_samples, max_tree_depth):
    warmup = blackjax.window_adaptation(blackjax.nuts, target.logdensity_fn,
                                        is_mass_matrix_diagonal=True,
                                        max_num_doublings=max_tree_depth)

    def one_chain(key, position):
        wkey, skey = jax.random.split(key)
        (state, params), _ = warmup.run(wkey, position, num_steps=num_warmup)
        kernel = blackjax.nuts(target.logdensity_fn, **params)  # params carry the depth

        def step(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.num_trajectory_expansions, info.is_divergent)

        _, out = jax.lax.scan(step, state, jax.random.split(skey, num_samples))
        return out

    keys = jax.random.split(rng_key, starts.shape[0])
    return jax.jit(jax.vmap(one_chain))(keys, starts)


# Fixed points (x, t) where u's convergence is reported, away from the hard constraints.
U_POINTS = np.array([[0.25, 0.25], [0.5, 0.5], [0.75, 0.75]])


def describe(name, d_draws, u_draws, depth, divergent, seconds):
    """One table row; ``u_draws`` is (chain, draw, 3): u at ``U_POINTS``."""
    dt = arviz_base.from_dict({"posterior": {"D": np.asarray(d_draws),
                                             "u": np.asarray(u_draws)}})
    ess, rhat = arviz_stats.ess(dt), arviz_stats.rhat(dt)
    ess_d, rhat_d = float(ess["D"]), float(rhat["D"])
    u_rhat = float(np.max(np.asarray(rhat["u"])))
    u_ess = float(np.min(np.asarray(ess["u"])))
    print(f"| {name} | {seconds:.0f} s | {np.mean(d_draws):.5f} ± {np.std(d_draws):.5f} | "
          f"{rhat_d:.3f} | {ess_d:.0f} | {ess_d / seconds:.2f} | {u_rhat:.3f} | {u_ess:.0f} | "
          f"{np.mean(depth):.1f} | {int(np.sum(divergent))} |", flush=True)
    return ess_d / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--max-tree-depth", type=int, default=10)
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    parser.add_argument("--chees-chains", type=int, default=16)
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
    weights = slice(*target.site_slices["weights"])
    u_at = jax.jit(jax.vmap(jax.vmap(lambda p: model.predict(p[weights], U_POINTS))))
    print(f"devices: {jax.devices()}")
    print("| sampler | warmup + draws wall | D | R-hat(D) | ESS(D) | ESS/s | max R-hat(u) | "
          "min ESS(u) | mean tree depth | divergences |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    best = int(jnp.argmax(fit.logdensity))
    centers = jnp.broadcast_to(fit.position[best], fit.position.shape)
    damping = jnp.zeros(target.dim).at[weights].set(inf.weight_damping)
    rates = {}
    for name in args.samplers:
        t0 = time.perf_counter()
        if name == "naive":
            pos, depth, div = naive_nuts(jax.random.key(2), target, fit.position, args.warmup,
                                         args.draws, args.max_tree_depth)
        elif name == "chees":
            sampled = OutputMarginal.build(model, target)
            result, _ = run_chees(
                jax.random.key(2), sampled, sampled.reduce(centers[0]),
                num_chains=args.chees_chains, num_warmup=args.warmup, num_samples=args.draws,
                target_acceptance=inf.target_acceptance,
                max_leapfrog_steps=2**args.max_tree_depth - 1, damping=sampled.reduce(damping))
            tr = result.trace
            pos, _ = complete_draws(sampled, jax.random.key(3), tr.position)
            depth, div = jnp.log2(tr.n_steps + 1.0), tr.diverging
        else:
            sampled, c, d = target, centers, damping
            if name == "marginal":
                sampled = OutputMarginal.build(model, target)
                c, d = sampled.reduce(centers), sampled.reduce(damping)
            result, _ = run_nuts(jax.random.key(2), sampled, c, num_warmup=args.warmup,
                                 num_samples=args.draws, max_tree_depth=args.max_tree_depth,
                                 target_acceptance=inf.target_acceptance, damping=d)
            tr = result.trace
            pos, depth, div = tr.position, tr.tree_depth, tr.diverging
            if name == "marginal":
                pos, _ = complete_draws(sampled, jax.random.key(3), pos)
        jax.block_until_ready(pos)
        rates[name] = describe(SAMPLERS[name], jnp.exp(pos[..., d_index]), u_at(pos), depth,
                               div, time.perf_counter() - t0)
    for name in rates:
        if name != "naive" and "naive" in rates:
            print(f"ESS/s ratio ({name} / naive): {rates[name] / rates['naive']:.1f}")


if __name__ == "__main__":
    main()
