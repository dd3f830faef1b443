"""Hard vs soft conditions, NTK balancing and gradient-enhanced residuals on the heat case.

Every variant is the shipped heat-diffusion config (case_studies/heat_diffusion) with one
change, run with the same seed and sampler settings; the table compares the posterior of D with
the exact-forward-model posterior (``method = "reference"``, the same priors and data with the
sine-series solution in place of the network) and reports what each change does to the
sampler's geometry: the adapted step size, the mean tree depth, divergences and ESS of D per
second of sampling.

Usage, from the repository root:

    .venv/bin/python case_studies/heat_remedies/analyse.py [--out results/heat_remedies]
        [--variants hard,soft] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from bpinn.api import run

HERE = Path(__file__).resolve().parent
HEAT = HERE.parent / "heat_diffusion"
TRUE_D = 0.07

SOFT = ("hard = true", "hard = false")
# variant -> (text edits of the heat config, [inference] overrides, what it tests)
VARIANTS = {
    "reference": ((), {"method": "reference"}, "exact solver in place of the network"),
    "hard": ((), {}, "shipped: Dirichlet and initial conditions hard"),
    "soft": ((SOFT,), {}, "both conditions soft (condition_noise 0.01)"),
    "soft_ntk": ((SOFT,), {"map_ntk_balance": True}, "soft, NTK-balanced MAP training"),
    "hard_32": ((("num_collocation = 128", "num_collocation = 32"),), {},
                "hard, 32 collocation points"),
    "hard_32_gpinn": ((("num_collocation = 128", "num_collocation = 32"),
                       ("residual_noise = 0.05", "residual_noise = 0.05\n"
                        "residual_gradient_noise = 0.05")), {},
                      "hard, 32 points, gPINN terms (sd 0.05)"),
    # The residual's scaled gradient is about (wavenumber x length) times the residual: 3 pi
    # for the initial condition's mode 3, so sd 0.5 weighs it like the residual itself.
    "hard_32_gpinn_wide": ((("num_collocation = 128", "num_collocation = 32"),
                            ("residual_noise = 0.05", "residual_noise = 0.05\n"
                             "residual_gradient_noise = 0.5")), {},
                           "hard, 32 points, gPINN terms (sd 0.5)"),
}
SAMPLING = {"num_chains": 2, "num_warmup": 300, "num_samples": 500, "max_tree_depth": 8}
QUICK = {"num_chains": 2, "num_warmup": 100, "num_samples": 150, "max_tree_depth": 7,
         "map_adam_steps": 2000, "map_lbfgs_steps": 300}


def write_variant(out: Path, name: str, edits) -> Path:
    """The heat config with ``edits`` (each old text must occur; ``hard`` edits all) in
    ``out/name/``, beside copies of the sensors and the initial condition."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for f in ("sensors.csv", "initial.py"):
        shutil.copy(HEAT / f, folder / f)
    text = (HEAT / "config.toml").read_text()
    for old, new in edits:
        if old not in text:
            raise ValueError(f"variant {name}: {old!r} is not in the heat config")
        text = text.replace(old, new)
    path = folder / "config.toml"
    path.write_text(text)
    return path


def row(name: str, result, seconds: float) -> dict:
    s = result.summary
    d = s["parameters"]["D"]
    stats = result.datatree["sample_stats"].to_dataset() if "sample_stats" in \
        result.datatree.children else None
    depth = float(stats["tree_depth"].mean()) if stats is not None else None
    sampling = s["timing"].get("sampling_s")
    info = s.get("method_info", {})
    return {
        "variant": name, "mean": d["mean"], "sd": d["sd"], "q2.5": d["q2.5"],
        "q97.5": d["q97.5"], "r_hat": d["r_hat"], "ess_bulk": d["ess_bulk"],
        "truth_inside": d["q2.5"] <= TRUE_D <= d["q97.5"],
        "step_size": float(np.mean(info["step_size"])) if "step_size" in info else None,
        "mean_tree_depth": depth,
        "divergences": s["diagnostics"].get("divergences"),
        "ess_per_s": d["ess_bulk"] / sampling if sampling else None,
        "map_training": s.get("map_training"),
        "wall_s": seconds,
    }


def table(rows: list[dict], reference: dict | None) -> str:
    def f(v, spec):
        return "-" if v is None else format(v, spec)

    lines = ["| variant | D mean ± sd | 95% interval | shift vs reference (ref. sds) | "
             "sd / reference sd | truth in 95% | R-hat | step size | mean tree depth | "
             "divergences | ESS/s | wall s |",
             "|" + "---|" * 12]
    for r in rows:
        shift = ratio = None
        if reference is not None and r["variant"] != "reference":
            shift = (r["mean"] - reference["mean"]) / reference["sd"]
            ratio = r["sd"] / reference["sd"]
        lines.append(
            f"| {r['variant']} | {r['mean']:.5f} ± {r['sd']:.5f} | [{r['q2.5']:.4f}, "
            f"{r['q97.5']:.4f}] | {f(shift, '+.2f')} | {f(ratio, '.2f')} | "
            f"{'yes' if r['truth_inside'] else 'no'} | {f(r['r_hat'], '.3f')} | "
            f"{f(r['step_size'], '.3g')} | {f(r['mean_tree_depth'], '.2f')} | "
            f"{f(r['divergences'], 'd')} | {f(r['ess_per_s'], '.2f')} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/heat_remedies"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="reduced sizes (a smoke run)")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)}")
    settings = QUICK if args.quick else SAMPLING
    rows = []
    for name in names:
        edits, overrides, what = VARIANTS[name]
        config = write_variant(args.out, name, edits)
        print(f"== {name}: {what}", flush=True)
        t0 = time.perf_counter()
        result = run(config, outdir=args.out / name / "results",
                     overrides={**settings, **overrides}, progress=True)
        rows.append(row(name, result, time.perf_counter() - t0))
        (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    reference = next((r for r in rows if r["variant"] == "reference"), None)
    print(f"\nSampling: {settings}; machine: {platform.machine()}, {platform.system()}\n")
    print(table(rows, reference))


if __name__ == "__main__":
    main()
