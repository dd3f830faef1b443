"""End to end on the shipped heat case: the default ``nuts`` against ``chees``, side by side.

Each run is ``bpinn.api.run`` on case_studies/heat_diffusion/config.toml in this one process
(implied prior corrected, output layer integrated out, float64), timed from the call to its
return: compilation, MAP fits, the implied-prior measurement, warmup, sampling, summaries and
diagnostics included. Rows:

- ``nuts``: the config as shipped (4 chains, 300 warmup + 800 draws, tree depth 8);
- ``chees``: ``--method chees`` with 16 chains, 400 warmup + 300 draws (ChEES adapts across
  chains, so it runs many short ones), everything else as shipped.

Reported per run: the wall, the phases, D (mean, sd, R-hat, bulk and tail ESS, bulk ESS per
second of the whole run) and u at three fixed points (largest R-hat, smallest bulk ESS, from
every draw's weights), the issue's convergence targets. Usage (about 6 minutes here):

    .venv/bin/python benchmarks/heat_chees.py [--runs nuts chees] [--chees-chains 16]
        [--chees-warmup 400] [--chees-draws 300]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import jax
import numpy as np

from bpinn.api import prepare, run
from bpinn.config import load_config

CONFIG = Path(__file__).resolve().parent.parent / "case_studies/heat_diffusion/config.toml"
U_POINTS = np.array([[0.25, 0.25], [0.5, 0.5], [0.75, 0.75]])  # (x, t), as heat_samplers.py
PHASES = ("compile_s", "map_s", "implicit_prior_s", "precondition_s", "warmup_s",
          "sampling_s", "output_layer_s")


def u_convergence(result, model) -> tuple[float, float]:
    """Largest R-hat and smallest bulk ESS of u at ``U_POINTS`` over every draw."""
    from arviz_stats.base import array_stats

    weights = np.asarray(result.datatree["posterior"]["weights"].values)  # (chain, draw, n)
    u = np.asarray(jax.jit(jax.vmap(jax.vmap(lambda w: model.predict(w, U_POINTS))))(weights))
    rhat = [array_stats.rhat(u[..., j], chain_axis=0, draw_axis=1) for j in range(3)]
    ess = [array_stats.ess(u[..., j], chain_axis=0, draw_axis=1) for j in range(3)]
    return float(np.max(rhat)), float(np.min(ess))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["nuts", "chees"], choices=["nuts", "chees"])
    parser.add_argument("--chees-chains", type=int, default=16)
    parser.add_argument("--chees-warmup", type=int, default=400)
    parser.add_argument("--chees-draws", type=int, default=300)
    args = parser.parse_args()
    print(f"# {platform.platform()}, {jax.devices()}, jax {jax.__version__}")
    overrides = {
        "nuts": {"save_weights": True},
        "chees": {"method": "chees", "num_chains": args.chees_chains,
                  "num_warmup": args.chees_warmup, "num_samples": args.chees_draws,
                  "save_weights": True},
    }
    rows = []
    for name in args.runs:
        settings = dict(overrides[name])
        method = settings.pop("method", None)
        t0 = time.perf_counter()
        result = run(CONFIG, method=method, overrides=settings)
        wall = time.perf_counter() - t0
        model = prepare(load_config(CONFIG, overrides=settings))
        d = result.summary["parameters"]["D"]
        u_rhat, u_ess = u_convergence(result, model)
        timing = result.summary["timing"]
        phases = ", ".join(f"{k.removesuffix('_s')} {timing[k]:.1f}" for k in PHASES
                           if timing.get(k) is not None)
        chains = result.datatree["posterior"].sizes["chain"]
        draws = result.datatree["posterior"].sizes["draw"]
        rows.append(f"| {name} | {chains} x {draws} | {wall:.0f} s | {d['mean']:.5f} ± "
                    f"{d['sd']:.5f} | {d['r_hat']:.3f} | {d['ess_bulk']:.0f} | "
                    f"{d['ess_tail']:.0f} | {d['ess_bulk'] / wall:.1f} | {u_rhat:.3f} | "
                    f"{u_ess:.0f} | {result.summary['diagnostics']['divergences']} |")
        print(f"{name}: {phases}", flush=True)
    print("| method | chains x draws | wall | D | R-hat(D) | bulk ESS(D) | tail ESS(D) | "
          "ESS(D)/s of the run | max R-hat(u) | min ESS(u) | divergences |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
