"""The prior the physics terms imply on a coefficient, measured along a grid of its values.

For a config with one unknown scalar coefficient: fits the MAP as a run would, then for each
value on the grid holds the coefficient there and measures ``d log Z / d log theta`` (the
Fisher identity over the weights given the physics alone, ``bpinn.inference.implicit_prior``).
Integrating the slopes along the grid gives ``log Z`` up to a constant: how strongly the
network and the physics terms favour each value before any reading is seen.

    .venv/bin/python benchmarks/implicit_prior.py case_studies/heat_diffusion/config.toml \\
        --values 0.0001,0.001,0.01,0.03,0.05,0.066,0.069,0.072,0.1,0.2

Writes ``results/implicit_prior.json`` (or ``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from bpinn.api import method_context, prepare, run_keys  # noqa: E402
from bpinn.config import load_config  # noqa: E402
from bpinn.inference import implicit_prior  # noqa: E402
from bpinn.inference.marginal import output_marginal  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--values", required=True,
                        help="comma-separated coefficient values to hold it at")
    parser.add_argument("--num-chains", type=int, default=2)
    # the measurement caps these at implicit_prior.MEASURE_WARMUP / MEASURE_SAMPLES
    parser.add_argument("--num-warmup", type=int, default=implicit_prior.MEASURE_WARMUP)
    parser.add_argument("--num-samples", type=int, default=implicit_prior.MEASURE_SAMPLES)
    parser.add_argument("--out", type=Path, default=Path("results/implicit_prior.json"))
    args = parser.parse_args()

    config = load_config(args.config, overrides={
        "num_chains": args.num_chains, "num_warmup": args.num_warmup,
        "num_samples": args.num_samples})
    model = prepare(config)
    keys = run_keys(config.inference.seed)
    ctx = method_context(model, config.inference, keys.target, keys.init)
    indices, names = implicit_prior.coefficient_coordinates(model, ctx.target)
    if len(names) != 1:
        raise SystemExit(f"{args.config}: this script scans one scalar coefficient; the config "
                         f"has {names}")
    marginal, mode = output_marginal(model, ctx.target, config.inference.output_layer,
                                     keys.sample)
    center = ctx.best_map()
    map_value = float(ctx.target.constrained(center)[names[0]])
    rows = []
    for value in (float(v) for v in args.values.split(",")):
        at = center.at[indices].set(np.log(value))
        t0 = time.perf_counter()
        measured = implicit_prior.measure(jax.random.key(1), model, ctx.target, at,
                                          config.inference,
                                          marginal=marginal, damping=ctx.weight_damping())
        rows.append({"value": value, "slope_per_log_unit": float(measured.slope[0]),
                     "mcse": float(measured.mcse[0]), "seconds": time.perf_counter() - t0})
        print(f"{names[0]} = {value:<8g} d log Z / d log {names[0]} = "
              f"{rows[-1]['slope_per_log_unit']:8.2f} +- {rows[-1]['mcse']:.2f}  "
              f"({rows[-1]['seconds']:.0f} s)", flush=True)
    # log Z relative to the first value: trapezoid rule in log theta
    logs = np.log([r["value"] for r in rows])
    slopes = np.asarray([r["slope_per_log_unit"] for r in rows])
    log_z = np.concatenate([[0.0], np.cumsum(np.diff(logs) * (slopes[1:] + slopes[:-1]) / 2)])
    for row, value in zip(rows, log_z, strict=True):
        row["log_z_relative"] = float(value)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "config": str(args.config), "coefficient": names[0], "map_value": map_value,
        "output_layer": mode, "chains": args.num_chains, "warmup": args.num_warmup,
        "draws": args.num_samples, "machine": f"{platform.machine()}, {platform.node()}",
        "rows": rows}, indent=2))
    print(f"MAP {names[0]} = {map_value:.5g}; wrote {args.out}")


if __name__ == "__main__":
    main()
