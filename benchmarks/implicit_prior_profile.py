"""The implied prior removed to first order (slope at the MAP) or along a profile, side by side.

Runs one config twice in one process, with ``[inference] implicit_prior_points`` = 0 (the
slope at the MAP only, the default) and = N (a profile, 4 unless ``--points``), the same seed
and everything else equal, and prints each coefficient's posterior (mean, sd, 95% interval,
per-chain means), the slopes measured and the whole run's wall time (MAP fit, measurement and
sampling). With ``--exact NAME=MEAN,SD`` it also prints the shift from an exact posterior in
its sds and the sd ratio.

    .venv/bin/python benchmarks/implicit_prior_profile.py case_studies/heat_diffusion/config.toml \\
        --exact D=0.06911,0.00118

Writes ``results/implicit_prior_profile.json`` (or ``--out``).
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

from bpinn.api import posterior_samples_and_info, prepare  # noqa: E402
from bpinn.config import load_config  # noqa: E402


def _exact(values: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for item in values:
        name, _, numbers = item.partition("=")
        mean, sd = (float(v) for v in numbers.split(","))
        out[name] = (mean, sd)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--points", type=int, default=4,
                        help="profile points of the second run (default 4)")
    parser.add_argument("--exact", action="append", default=[], metavar="NAME=MEAN,SD")
    parser.add_argument("--override", default="{}",
                        help="JSON object of further [inference] settings for both runs")
    parser.add_argument("--out", type=Path, default=Path("results/implicit_prior_profile.json"))
    args = parser.parse_args()
    exact = _exact(args.exact)

    rows = []
    for points in (0, args.points):
        overrides = {**json.loads(args.override), "implicit_prior": "corrected",
                     "implicit_prior_points": points}
        config = load_config(args.config, overrides=overrides)
        t0 = time.perf_counter()
        draws, info = posterior_samples_and_info(prepare(config), config.inference)
        wall = time.perf_counter() - t0
        row = {"implicit_prior_points": points, "wall_s": wall, "coefficients": {}}
        implied = info["implicit_prior"]["coefficients"]
        for name, measured in implied.items():
            values = np.asarray(draws[name]).reshape(draws[name].shape[0], -1)
            mean, sd = float(values.mean()), float(values.std())
            entry = {"mean": mean, "sd": sd,
                     "q2.5_q97.5": np.quantile(values, [0.025, 0.975]).tolist(),
                     "chain_means": values.mean(axis=1).tolist(),
                     "slope_at_map": measured["slope"],
                     "shift_in_sds": measured["shift_in_sds"],
                     "profile": measured.get("profile")}
            if name in exact:
                entry["shift_from_exact_sds"] = (mean - exact[name][0]) / exact[name][1]
                entry["sd_ratio"] = sd / exact[name][1]
            row["coefficients"][name] = entry
            print(f"points {points}: {name} = {mean:.5g} +- {sd:.3g} "
                  f"[{entry['q2.5_q97.5'][0]:.4g}, {entry['q2.5_q97.5'][1]:.4g}], chains "
                  + ", ".join(f"{m:.4g}" for m in entry["chain_means"])
                  + ("" if name not in exact else
                     f"; {entry['shift_from_exact_sds']:+.2f} exact sds, "
                     f"sd ratio {entry['sd_ratio']:.2f}")
                  + f"; wall {wall:.0f} s", flush=True)
        rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "config": str(args.config), "override": json.loads(args.override),
        "machine": f"{platform.machine()}, {platform.node()}", "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
