"""Where in the prior a calibration fails: coverage within groups of datasets.

Reads a ``calibration.json`` written by ``bpinn calibrate`` and, for every unknown, splits
the datasets into equal-count groups ordered by each unknown's true value and by the
posterior's relative width (sd / |mean|, how weakly the readings determine it) and, where the
runs measured it, by the shift the physics terms' implied prior caused (and apart for the
datasets whose run warned of that shift and those whose run did not), printing the
coverage of one interval level in each group with the binomial band for the group's size.
Markdown tables, ready for docs/benchmarks.md.

    .venv/bin/python benchmarks/calibration_breakdown.py \\
        results/calibration_bpinn_n100/calibration.json [--level 0.9] [--bins 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bpinn.calibration import IMPLIED_SHIFT, coverage_by


def breakdown(result: dict, level: float, bins: int) -> str:
    params = result["parameters"]
    missing = [n for n, e in params.items() if "inside" not in e.get("per_dataset", {})]
    if missing:
        raise ValueError(f"{missing}: no per-dataset interval membership; rerun the "
                         "calibration (or summarise its checkpoint with --resume) with this "
                         "version of bpinn")
    key = f"{level:g}"
    lines = []
    for name, entry in params.items():
        per = entry["per_dataset"]
        orderings = {f"true {other}": params[other]["per_dataset"]["truth"] for other in params}
        orderings[f"relative sd of {name}"] = (np.asarray(per["sd"])
                                               / np.abs(np.asarray(per["mean"])))
        if IMPLIED_SHIFT in per:  # datasets whose run measured it
            orderings[f"implied-prior shift of {name} (sds)"] = per[IMPLIED_SHIFT]
        lines += [f"{name}, {level:.0%} interval ({entry['num_datasets']} datasets, overall "
                  f"{entry['coverage'][key]:.2f})", "",
                  "| datasets ordered by | group | datasets | coverage | band |",
                  "|---|---|---|---|---|"]
        for label, values in orderings.items():
            for row in coverage_by(per["inside"][key], values, level, bins):
                lines.append(_row(label, f"{row['from']:.3g} to {row['to']:.3g}",
                                  row["num_datasets"], row["coverage"], row["band"],
                                  row["in_band"]))
        for label, row in entry.get("coverage_within", {}).items():
            if not row["num_datasets"]:
                lines.append(f"| the run's warning | {label} | 0 | | |")
                continue
            lines.append(_row("the run's warning", label, row["num_datasets"],
                              row["coverage"][key], row["band"][key], row["in_band"][key]))
        against = {label: row["vs_reference"] for label, row
                   in entry.get("coverage_within", {}).items() if "vs_reference" in row}
        if against:
            lines += ["", "| the run's warning | reference's coverage | median shift from "
                      "the reference (its sds) | median sd ratio |", "|---|---|---|---|"]
            lines += [f"| {label} | {v['reference_coverage'][key]:.2f} | "
                      f"{v['median_shift_in_ref_sd']:+.2f} | {v['median_sd_ratio']:.2f} |"
                      for label, v in against.items()]
        lines.append("")
    return "\n".join(lines)


def _row(ordering: str, group: str, num: int, coverage: float, band, in_band: bool) -> str:
    flag = "" if in_band else " **outside**"
    return (f"| {ordering} | {group} | {num} | {coverage:.2f}{flag} | "
            f"{band[0]:.2f}-{band[1]:.2f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calibration", type=Path, help="calibration.json")
    parser.add_argument("--level", type=float, default=0.9)
    parser.add_argument("--bins", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        result = json.loads(args.calibration.read_text())
        computed = list(next(iter(result["parameters"].values()))["coverage"])
        if f"{args.level:g}" not in computed:
            raise ValueError(f"level {args.level:g} was not computed; the calibration has "
                             f"{computed}")
        print(breakdown(result, args.level, args.bins))
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {args.calibration}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
