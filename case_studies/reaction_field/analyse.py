"""Compare the B-PINN's posterior of the field k(x) with the gold standard (the same priors and
data, the finite-difference solver as forward model), from the two runs' summary.json files.

    bpinn run case_studies/reaction_field/config.toml -o results/reaction_field
    bpinn run case_studies/reaction_field/config.toml --method reference \
        -o results/reaction_field_ref
    .venv/bin/python case_studies/reaction_field/analyse.py \
        results/reaction_field results/reaction_field_ref [FIELD]

prints a table at a few points and the summary figures, and writes ``field_comparison.png``
beside the B-PINN's results. FIELD (default k) names another 1-D field, such as the unknown
initial value u0 of case_studies/backward_heat.
"""

import json
import sys
from pathlib import Path

import numpy as np

POINTS = (0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0)


def load_field(results_dir, name: str = "k") -> dict:
    summary = json.loads((Path(results_dir) / "summary.json").read_text())
    field = summary["fields"][name]
    out = {key: np.asarray(field[key]) for key in ("mean", "sd", "q2.5", "q97.5",
                                                   "contraction")}
    out["x"] = np.asarray(field["axes"]["x"])
    out["truth"] = np.asarray(field["truth"]) if field.get("truth") is not None else None
    out["total_s"] = summary["timing"]["total_s"]
    for key in ("identified_fraction", "max_r_hat", "min_ess_bulk", "truth_in_95_fraction",
                "rmse"):
        out[key] = field.get(key)
    return out


def compare(bpinn: dict, ref: dict) -> dict:
    """Pointwise agreement of the B-PINN with the gold standard over the grid."""
    shift = (bpinn["mean"] - ref["mean"]) / ref["sd"]
    ratio = bpinn["sd"] / ref["sd"]
    informed = ref["contraction"] >= 0.5
    return {"shift_in_ref_sds": shift, "sd_ratio": ratio, "informed": informed,
            "median_sd_ratio_informed": float(np.median(ratio[informed])),
            "max_abs_shift_informed": float(np.max(np.abs(shift[informed])))}


def table(bpinn: dict, ref: dict) -> str:
    c = compare(bpinn, ref)
    lines = ["| x | truth | B-PINN mean [95%] | reference mean [95%] | sd ratio "
             "| shift (ref sds) |", "|---|---|---|---|---|---|"]
    for x in POINTS:
        i = int(np.argmin(np.abs(bpinn["x"] - x)))
        truth = "-" if bpinn["truth"] is None else f"{bpinn['truth'][i]:.3f}"
        lines.append(
            f"| {bpinn['x'][i]:.2f} | {truth} | {bpinn['mean'][i]:.3f} [{bpinn['q2.5'][i]:.3f}, "
            f"{bpinn['q97.5'][i]:.3f}] | {ref['mean'][i]:.3f} [{ref['q2.5'][i]:.3f}, "
            f"{ref['q97.5'][i]:.3f}] | {c['sd_ratio'][i]:.2f} | "
            f"{c['shift_in_ref_sds'][i]:+.2f} |")
    rows = []
    for label, f in (("B-PINN", bpinn), ("reference", ref)):
        rows.append(f"| {label} | {100 * f['identified_fraction']:.0f}% | "
                    f"{100 * f['truth_in_95_fraction']:.0f}% | {f['rmse']:.3f} | "
                    f"{f['max_r_hat']:.3f} | {f['min_ess_bulk']:.0f} | {f['total_s']:.0f} s |")
    return "\n".join([
        *lines, "",
        "| run | grid determined by the data | truth inside the 95% band | RMSE of the mean |"
        " max R-hat | min bulk ESS | wall |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Where the reference finds the field determined (contraction >= 0.5, "
        f"{100 * c['informed'].mean():.0f}% of the grid): median sd ratio B-PINN / reference "
        f"{c['median_sd_ratio_informed']:.2f}, largest |shift| "
        f"{c['max_abs_shift_informed']:.2f} reference sds."])


def figure(bpinn: dict, ref: dict, path: Path, name: str = "k") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
    for f, label, colour in ((ref, "reference (classical solver)", "C0"),
                             (bpinn, "B-PINN", "C1")):
        ax.fill_between(f["x"], f["q2.5"], f["q97.5"], color=colour, alpha=0.25, linewidth=0)
        ax.plot(f["x"], f["mean"], color=colour, label=f"{label}: mean, 95% band")
    if bpinn["truth"] is not None:
        ax.plot(bpinn["x"], bpinn["truth"], "k--", lw=1, label="truth")
    ax.set_xlabel("x")
    ax.set_ylabel(f"{name}(x)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv) -> int:
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    name = argv[2] if len(argv) == 3 else "k"
    bpinn, ref = load_field(argv[0], name), load_field(argv[1], name)
    print(table(bpinn, ref))
    out = Path(argv[0]) / "field_comparison.png"
    figure(bpinn, ref, out, name)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
