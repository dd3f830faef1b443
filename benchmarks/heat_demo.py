"""Benchmark the main job: `bpinn run case_studies/heat_diffusion/config.toml` with its defaults.

Runs the demo in-process, then prints one markdown table row with the figures that
docs/benchmarks.md reports (wall time, R-hat, ESS, divergences, the 95% interval of D against the
truth and against the exact-forward-model posterior). Usage, from the repository root:

    .venv/bin/python benchmarks/heat_demo.py [--out results/bench_heat] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from bpinn.api import run  # noqa: E402
from bpinn.reference.heat import heat_grid_posterior  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "case_studies" / "heat_diffusion" / "config.toml"


def exact_posterior_of_d(csv_path: Path) -> tuple[float, float]:
    """Posterior mean and sd of D with the exact forward model (grid over D and sigma).

    Same priors as the config: D ~ LogNormal(log 0.05, 1), sigma ~ HalfNormal(0.1).
    """
    import numpy as np
    from scipy.stats import halfnorm, lognorm

    data = np.genfromtxt(csv_path, delimiter=",", names=True, dtype=None, encoding=None)
    x, t, u = (np.asarray(data[k], dtype=float) for k in ("x", "t", "u"))
    post = heat_grid_posterior(
        x, t, u, [1.0, 0.0, 0.5], np.linspace(0.04, 0.10, 1201), np.linspace(0.004, 0.08, 600),
        lambda d: lognorm.logpdf(d, 1.0, scale=0.05), lambda s: halfnorm.logpdf(s, scale=0.1))
    return post["mean"], post["sd"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_heat")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = run(CONFIG, outdir=args.out, seed=args.seed, progress=True)
    wall = time.perf_counter() - t0
    s = result.summary
    d = s["parameters"]["D"]
    diag = s["diagnostics"]
    exact_mean, exact_sd = exact_posterior_of_d(CONFIG.parent / "sensors.csv")
    figures = {
        "wall_s": round(wall, 1),
        "timing": {k: (round(v, 1) if v is not None else None) for k, v in s["timing"].items()},
        "D_mean": d["mean"], "D_sd": d["sd"], "D_q2.5": d["q2.5"], "D_q97.5": d["q97.5"],
        "D_r_hat": d["r_hat"], "D_ess_bulk": d["ess_bulk"], "D_ess_tail": d["ess_tail"],
        "divergence_rate": diag["divergence_rate"],
        "truth_in_95": d.get("truth_in_95"),
        "exact_D_mean": exact_mean, "exact_D_sd": exact_sd,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    print(json.dumps(figures, indent=2))
    print(
        f"| {figures['wall_s']:.0f} s | {d['mean']:.5f} ± {d['sd']:.5f} | "
        f"[{d['q2.5']:.5f}, {d['q97.5']:.5f}] | {d['r_hat']:.3f} | {d['ess_bulk']:.0f} | "
        f"{100 * diag['divergence_rate']:.2f}% | {exact_mean:.5f} ± {exact_sd:.5f} |"
    )


if __name__ == "__main__":
    main()
