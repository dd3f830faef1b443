"""The B-PINN posterior of the Lotka-Volterra rates beside the gold standard (NUTS over the rates
with the RK4 solver in place of the network), as the Markdown table of the README.

    bpinn run case_studies/lotka_volterra/config.toml -o results/lotka_volterra
    bpinn run case_studies/lotka_volterra/config.toml -o results/lotka_volterra_reference \
        --method reference
    .venv/bin/python case_studies/lotka_volterra/analyse.py \
        results/lotka_volterra results/lotka_volterra_reference
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).parent
RATES = ("alpha", "beta", "gamma", "delta")


def load(outdir) -> dict:
    return json.loads((Path(outdir) / "summary.json").read_text())


def table(bpinn: dict, reference: dict, truth: dict) -> str:
    """One row per rate: truth, both posteriors (mean +- sd [95%]), the B-PINN's mean offset in
    gold-standard sds and its sd relative to the gold standard's."""
    def cell(p):
        return f"{p['mean']:.4f} ± {p['sd']:.4f} [{p['q2.5']:.4f}, {p['q97.5']:.4f}]"

    rows = ["| rate | truth | B-PINN (nuts) | gold standard (reference) | offset (gold sds) "
            "| sd ratio |", "|---|---|---|---|---|---|"]
    for name in RATES:
        b, r = bpinn["parameters"][name], reference["parameters"][name]
        rows.append(f"| {name} | {truth[name]:g} | {cell(b)} | {cell(r)} | "
                    f"{(b['mean'] - r['mean']) / r['sd']:+.2f} | {b['sd'] / r['sd']:.2f} |")
    wall = (f"wall time: B-PINN {bpinn['timing']['total_s']:.0f} s, reference "
            f"{reference['timing']['total_s']:.0f} s")
    return "\n".join(rows) + "\n\n" + wall


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    truth = tomllib.loads((HERE / "config.toml").read_text())["truth"]
    print(table(load(sys.argv[1]), load(sys.argv[2]), truth))
