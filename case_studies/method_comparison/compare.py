"""Every inference method on the heat-diffusion case study, side by side, against the exact
posterior.

For each method: the posterior mean and sd of D and its 95% interval, the shift of the mean and
the ratio of the sd against the exact-forward-model posterior (same priors and data, sine-series
solution in place of the network, integrated on a grid: the gold standard for this problem),
the coverage of the true field u(x, t) by the method's 90% band on a 21 x 21 grid, the wall time
including compilation, and ESS of D per second for the MCMC methods. Writes
``OUT/comparison.json`` and the markdown table into this folder's README between the markers.

Usage, from the repository root:

    .venv/bin/python case_studies/method_comparison/compare.py [--methods nuts,svi_meanfield]
        [--out results/method_comparison] [--no-readme] [--append]
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
from bpinn.config import load_config  # noqa: E402
from bpinn.inference.methods import get_method, method_names  # noqa: E402
from bpinn.reference.heat import heat_grid_posterior, heat_sine_series  # noqa: E402
from bpinn.reference.registry import problem_forward  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CONFIG = ROOT / "case_studies" / "heat_diffusion" / "config.toml"
TRUE_D, INITIAL_MODES = 0.07, [1.0, 0.0, 0.5]  # from case_studies/heat_diffusion/make_data.py
GRID = 21
MAX_FIELD_DRAWS = 400
MARKERS = ("<!-- table:start -->", "<!-- table:end -->")


def exact_posterior_of_d(csv_path: Path) -> dict:
    """Exact-forward-model posterior of D: grid over (D, sigma), the config's priors."""
    data = np.genfromtxt(csv_path, delimiter=",", names=True, dtype=None, encoding=None)
    x, t, u = (np.asarray(data[k], dtype=float) for k in ("x", "t", "u"))
    return heat_grid_posterior(
        x, t, u, INITIAL_MODES, np.linspace(0.04, 0.10, 1201), np.linspace(0.004, 0.08, 600),
        lambda d: lognorm.logpdf(d, 1.0, scale=0.05), lambda s: halfnorm.logpdf(s, scale=0.1))


def field_coverage(model, posterior, level: float = 0.9) -> float:
    """Fraction of grid points where the true u lies inside the central ``level`` band.

    The band comes from the network weights' draws, or, for the reference inversion (no
    network), from the reference solver at the draws of D.
    """
    xs, ts = np.meshgrid(np.linspace(0, 1, GRID), np.linspace(0, 1, GRID))
    points = np.column_stack([xs.ravel(), ts.ravel()])
    truth = np.asarray(heat_sine_series(points[:, 0], points[:, 1], TRUE_D, INITIAL_MODES))
    if "weights" in posterior:
        draws = posterior["weights"].values
        draws = draws.reshape(-1, draws.shape[-1])

        def field(w):
            return model.predict(w, jnp.asarray(points))
    else:
        draws = posterior["D"].values.reshape(-1)
        forward = problem_forward(model.problem, points=points)

        def field(d):
            return forward({"D": d})
    idx = np.linspace(0, len(draws) - 1, min(MAX_FIELD_DRAWS, len(draws))).round().astype(int)
    u = np.asarray(jax.jit(jax.vmap(field))(jnp.asarray(draws[idx])))
    lo, hi = np.percentile(u, [50 * (1 - level), 100 - 50 * (1 - level)], axis=0)
    return float(np.mean((lo <= truth) & (truth <= hi)))


def compare(methods: list[str], out: Path) -> list[dict]:
    model = prepare(load_config(CONFIG))
    exact = exact_posterior_of_d(CONFIG.parent / "sensors.csv")
    rows = []
    for name in methods:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        result = run(CONFIG, outdir=out / name, method=name, overrides={"save_weights": True},
                     progress=False)
        wall = time.perf_counter() - t0
        s = result.summary
        d = s["parameters"]["D"]
        exact_mcmc = get_method(name).exact_mcmc
        rows.append({
            "method": name,
            "exact_mcmc": exact_mcmc,
            "D_mean": d["mean"], "D_sd": d["sd"], "D_q2.5": d["q2.5"], "D_q97.5": d["q97.5"],
            "shift_in_exact_sd": (d["mean"] - exact["mean"]) / exact["sd"],
            "sd_ratio": d["sd"] / exact["sd"],
            "truth_in_95": d.get("truth_in_95"),
            "field_coverage_90": field_coverage(model, result.datatree["posterior"]),
            "wall_s": wall,
            "r_hat": d["r_hat"], "ess_bulk": d["ess_bulk"],
            "ess_per_s": d["ess_bulk"] / wall if exact_mcmc else None,
            "divergence_rate": s["diagnostics"].get("divergence_rate"),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows, exact


def table(rows: list[dict], exact: dict) -> str:
    head = ("| method | kind | D mean ± sd | 95% interval | shift (exact sd) | sd / exact sd "
            "| field coverage of 90% band | wall | R-hat | ESS/s |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| exact forward model (grid) | gold standard | {exact['mean']:.5f} ± "
             f"{exact['sd']:.5f} | [{exact['q2.5']:.5f}, {exact['q97.5']:.5f}] | 0 | 1 | | | | |"]
    for r in rows:
        ess = f"{r['ess_per_s']:.3g}" if r["ess_per_s"] is not None else "n/a"
        rhat = f"{r['r_hat']:.3f}" if r["r_hat"] is not None else "n/a"
        lines.append(
            f"| {r['method']} | {'MCMC' if r['exact_mcmc'] else 'approximation'} "
            f"| {r['D_mean']:.5f} ± {r['D_sd']:.5f} | [{r['D_q2.5']:.5f}, {r['D_q97.5']:.5f}] "
            f"| {r['shift_in_exact_sd']:+.2f} | {r['sd_ratio']:.2f} "
            f"| {100 * r['field_coverage_90']:.0f}% | {r['wall_s']:.0f} s "
            f"| {rhat} | {ess} |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(method_names()))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "method_comparison")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    parser.add_argument("--table-only", action="store_true",
                        help="rewrite the table from OUT/comparison.json without running")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows of other methods already in OUT/comparison.json")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        get_method(m)  # an unknown name fails here, before any run
    saved = args.out / "comparison.json"
    if args.table_only:
        rows, exact = json.loads(saved.read_text())["rows"], exact_posterior_of_d(
            CONFIG.parent / "sensors.csv")
        methods = []
    else:
        rows, exact = compare(methods, args.out)
    if args.append and saved.is_file():
        ran = {r["method"] for r in rows}
        rows = [r for r in json.loads(saved.read_text())["rows"] if r["method"] not in ran] + rows
    order = list(method_names())
    rows.sort(key=lambda r: order.index(r["method"]) if r["method"] in order else len(order))
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, jax {jax.__version__}; {date.today()}")
    text = table(rows, exact) + f"\nMachine: {machine}.\n"
    args.out.mkdir(parents=True, exist_ok=True)
    saved.write_text(
        json.dumps({"rows": rows, "exact": exact, "machine": machine}, indent=2))
    print(text)
    readme = HERE / "README.md"
    if not args.no_readme and readme.is_file():
        body = readme.read_text()
        start, end = body.index(MARKERS[0]), body.index(MARKERS[1])
        readme.write_text(body[: start + len(MARKERS[0])] + "\n" + text + body[end:])


if __name__ == "__main__":
    main()
