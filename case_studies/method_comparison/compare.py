"""Every inference method on one case study, side by side, against the gold-standard posterior.

For each method and each unknown coefficient: the posterior mean and sd and the 95% interval,
the shift of the mean and the ratio of the sd against the gold standard, then the coverage of
the true field u(x, t) by the method's 90% band on a 21 x 21 grid, the wall time including
compilation, and ESS per second for the MCMC methods. The gold standard is the exact-forward-model
posterior: integrated on a grid over (D, sigma) for the heat case (sine-series solution), and a
long run of the reference inversion (same priors and data, the package's classical solver in
place of the network) for any other case. Writes ``OUT/comparison.json`` and the markdown table
into this folder's README between the case's markers.

Usage, from the repository root:

    .venv/bin/python case_studies/method_comparison/compare.py [--case heat_diffusion]
        [--methods nuts,svi_meanfield] [--out results/method_comparison/CASE] [--no-readme]
        [--append] [--table-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import halfnorm, lognorm  # noqa: E402

from bpinn.api import prepare, run  # noqa: E402
from bpinn.config import ConfigError, load_config  # noqa: E402
from bpinn.inference.methods import get_method, method_names  # noqa: E402
from bpinn.reference.heat import heat_grid_posterior  # noqa: E402
from bpinn.reference.registry import problem_forward  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
HEAT_INITIAL_MODES = [1.0, 0.0, 0.5]  # from case_studies/heat_diffusion/make_data.py
GRID = 21
MAX_FIELD_DRAWS = 400
# The gold standard where no grid posterior is written out: the reference inversion, run long.
GOLD_RUN = {"num_chains": 4, "num_warmup": 500, "num_samples": 2000}


def config_of(case: str) -> Path:
    return ROOT / "case_studies" / case / "config.toml"


def markers(case: str) -> tuple[str, str]:
    return f"<!-- table:{case}:start -->", f"<!-- table:{case}:end -->"


def _summary_entry(draws: np.ndarray) -> dict:
    draws = np.asarray(draws).reshape(-1)
    q = np.percentile(draws, [2.5, 97.5])
    return {"mean": float(draws.mean()), "sd": float(draws.std()), "q2.5": float(q[0]),
            "q97.5": float(q[1])}


def gold_standard(case: str, out: Path) -> dict:
    """name -> {mean, sd, q2.5, q97.5} of the exact-forward-model posterior, plus a label."""
    config = config_of(case)
    if case == "heat_diffusion":
        data = np.genfromtxt(config.parent / "sensors.csv", delimiter=",", names=True,
                             dtype=None, encoding=None)
        x, t, u = (np.asarray(data[k], dtype=float) for k in ("x", "t", "u"))
        grid = heat_grid_posterior(
            x, t, u, HEAT_INITIAL_MODES, np.linspace(0.04, 0.10, 1201),
            np.linspace(0.004, 0.08, 600), lambda d: lognorm.logpdf(d, 1.0, scale=0.05),
            lambda s: halfnorm.logpdf(s, scale=0.1))
        return {"label": "exact forward model (grid)",
                "coefficients": {"D": {k: grid[k] for k in ("mean", "sd", "q2.5", "q97.5")}}}
    saved = out / "gold.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    print("== gold standard: reference inversion, "
          + ", ".join(f"{k} {v}" for k, v in GOLD_RUN.items()), flush=True)
    result = run(config, method="reference", overrides=GOLD_RUN, progress=False)
    posterior = result.datatree["posterior"]
    model = prepare(load_config(config))
    gold = {"label": "reference inversion ({num_chains} x {num_samples} draws)".format(**GOLD_RUN),
            "coefficients": {n: _summary_entry(posterior[n].values)
                             for n in model.unknown_coefficients},
            "max_r_hat": max(result.summary["parameters"][n]["r_hat"]
                             for n in model.unknown_coefficients)}
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(gold, indent=2))
    return gold


def field_coverage(model, truth: dict, posterior, level: float = 0.9) -> float:
    """Fraction of grid points where the true u lies inside the central ``level`` band.

    The true field is the reference solver's at the config's [truth]; the band comes from the
    network weights' draws, or, for the reference inversion (no network), from the reference
    solver at the draws of the coefficients.
    """
    (x0, x1), (t0, t1) = model.problem.domain.space[0], model.problem.domain.time
    xs, ts = np.meshgrid(np.linspace(x0, x1, GRID), np.linspace(t0, t1, GRID))
    points = np.column_stack([xs.ravel(), ts.ravel()])
    forward = problem_forward(model.problem, points=points)
    names = list(model.unknown_coefficients)
    exact = np.asarray(forward({n: jnp.asarray(truth[n]) for n in names}))
    if "weights" in posterior:
        draws = posterior["weights"].values
        draws = draws.reshape(-1, draws.shape[-1])

        def field(w):
            return model.predict(w, jnp.asarray(points))
    else:
        draws = np.stack([posterior[n].values.reshape(-1) for n in names], axis=-1)

        def field(c):
            return forward({n: c[i] for i, n in enumerate(names)})
    idx = np.linspace(0, len(draws) - 1, min(MAX_FIELD_DRAWS, len(draws))).round().astype(int)
    u = np.asarray(jax.jit(jax.vmap(field))(jnp.asarray(draws[idx])))
    lo, hi = np.percentile(u, [50 * (1 - level), 100 - 50 * (1 - level)], axis=0)
    return float(np.mean((lo <= exact) & (exact <= hi)))


def compare(case: str, methods: list[str], out: Path, gold: dict) -> list[dict]:
    config = config_of(case)
    settings = load_config(config)
    model, truth = prepare(settings), dict(settings.truth)
    rows = []
    for name in methods:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            result = run(config, outdir=out / name, method=name,
                         overrides={"save_weights": True}, progress=False)
        except ConfigError as err:  # a method that refuses this configuration says why
            rows.append({"method": name, "exact_mcmc": get_method(name).exact_mcmc,
                         "refused": str(err)})
            print(f"refused: {err}", flush=True)
            continue
        wall = time.perf_counter() - t0
        s = result.summary
        exact_mcmc = get_method(name).exact_mcmc
        coefficients = {}
        for n, g in gold["coefficients"].items():
            p = s["parameters"][n]
            coefficients[n] = {
                "mean": p["mean"], "sd": p["sd"], "q2.5": p["q2.5"], "q97.5": p["q97.5"],
                "shift_in_gold_sd": (p["mean"] - g["mean"]) / g["sd"],
                "sd_ratio": p["sd"] / g["sd"], "r_hat": p["r_hat"], "ess_bulk": p["ess_bulk"],
            }
        min_ess = min(c["ess_bulk"] for c in coefficients.values())
        rhats = [c["r_hat"] for c in coefficients.values() if c["r_hat"] is not None]
        rows.append({
            "method": name,
            "exact_mcmc": exact_mcmc,
            "coefficients": coefficients,
            "implicit_prior": s.get("method_info", {}).get("implicit_prior", {}).get("mode"),
            "field_coverage_90": field_coverage(model, truth, result.datatree["posterior"]),
            "wall_s": wall,
            "max_r_hat": max(rhats) if rhats else None,
            "ess_per_s": min_ess / wall if exact_mcmc else None,
            "divergence_rate": s["diagnostics"].get("divergence_rate"),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict], gold: dict) -> str:
    names = list(gold["coefficients"])
    head = ("| method | kind | "
            + " | ".join(f"{n}: mean ± sd [95%] | shift (gold sd) | sd / gold sd" for n in names)
            + " | field coverage of 90% band | wall | R-hat | ESS/s |\n"
            + "|---" * (2 + 3 * len(names) + 4) + "|\n")

    def cells(entry, shift, ratio):
        return (f"{entry['mean']:.4g} ± {entry['sd']:.3g} [{entry['q2.5']:.4g}, "
                f"{entry['q97.5']:.4g}] | {shift} | {ratio}")

    lines = [f"| {gold['label']} | gold standard | "
             + " | ".join(cells(gold["coefficients"][n], "0", "1") for n in names)
             + " | | | | |"]
    for r in rows:
        kind = "MCMC" if r["exact_mcmc"] else "approximation"
        if "refused" in r:
            lines.append(f"| {r['method']} | {kind} | refused: {r['refused']} |"
                         + " |" * (3 * len(names) + 3))
            continue
        ess = f"{r['ess_per_s']:.3g}" if r["ess_per_s"] is not None else "n/a"
        rhat = f"{r['max_r_hat']:.3f}" if r["max_r_hat"] is not None else "n/a"
        coefficient_cells = " | ".join(
            cells(c, f"{c['shift_in_gold_sd']:+.2f}", f"{c['sd_ratio']:.2f}")
            for c in (r["coefficients"][n] for n in names))
        label = r["method"] + (" (implied prior corrected)"
                               if r.get("implicit_prior") == "corrected" else "")
        lines.append(f"| {label} | {kind} | {coefficient_cells} "
                     f"| {100 * r['field_coverage_90']:.0f}% | {r['wall_s']:.0f} s "
                     f"| {rhat} | {ess} |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="heat_diffusion",
                        help="a case_studies/ folder with config.toml and [truth]")
    parser.add_argument("--methods", default=",".join(method_names()))
    parser.add_argument("--out", type=Path, default=None,
                        help="default: results/method_comparison/CASE")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    parser.add_argument("--table-only", action="store_true",
                        help="rewrite the table from OUT/comparison.json without running")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows of other methods already in OUT/comparison.json")
    args = parser.parse_args()
    if not config_of(args.case).is_file():
        parser.error(f"no config at {config_of(args.case)}")
    out = args.out or ROOT / "results" / "method_comparison" / args.case
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        get_method(m)  # an unknown name fails here, before any run
    saved = out / "comparison.json"
    gold = gold_standard(args.case, out)
    rows = [] if args.table_only else compare(args.case, methods, out, gold)
    if (args.append or args.table_only) and saved.is_file():
        ran = {r["method"] for r in rows}
        rows = [r for r in json.loads(saved.read_text())["rows"] if r["method"] not in ran] + rows
    order = list(method_names())
    rows.sort(key=lambda r: order.index(r["method"]) if r["method"] in order else len(order))
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, jax {jax.__version__}; {date.today()}")
    text = table(rows, gold) + f"\nMachine of the last rows run: {machine}.\n"
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"rows": rows, "gold": gold, "machine": machine}, indent=2))
    print(text)
    readme = HERE / "README.md"
    start_marker, end_marker = markers(args.case)
    if not args.no_readme and readme.is_file():
        body = readme.read_text()
        if start_marker not in body:
            print(f"README.md has no {start_marker} marker: table not written there")
            return
        start, end = body.index(start_marker), body.index(end_marker)
        readme.write_text(body[: start + len(start_marker)] + "\n" + text + body[end:])


if __name__ == "__main__":
    main()
