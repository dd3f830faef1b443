"""B-PINN against classical estimates of D on the heat problem, as the number of readings grows.

    python case_studies/pinn_vs_classical/study.py [--n 3 5 10 20 50] [--realisations 20]
        [--bpinn-realisations K] [--stop-at HH:MM] [--outdir results/pinn_vs_classical]
    python case_studies/pinn_vs_classical/study.py --report [--outdir ...]

The heat problem of ``case_studies/heat_diffusion`` (``u_t = D u_xx`` on [0, 1] x [0, 1],
``u = 0`` at x = 0, 1, ``u(x, 0) = sin(pi x) + 0.5 sin(3 pi x)``, true D = 0.07, noise sd
0.02, priors D ~ LogNormal(log 0.05, 1), sigma ~ HalfNormal(0.1)). For each number of readings
n and realisation r: the readings are the exact solution at the first n points of a fixed
Halton design (:func:`design`) plus noise drawn from a generator seeded by (SEED, n, r); then

* ``fd``: the classical finite-difference grid-search estimate: the D minimising the sum of
  squared misfits with the Crank-Nicolson solver ``bpinn.reference.mol.heat_mol`` as forward
  model (a log-spaced grid, then a finer one around its best point); a point estimate;
* ``exact``: the classical Bayesian posterior of D, by grid integration over (D, sigma) with the
  exact sine-series solution and the case's priors (``bpinn.reference.heat.heat_grid_posterior``);
* ``bpinn``: the B-PINN posterior (``bpinn.api.run`` on the heat config with these readings, at
  the reduced sampler settings of ``BPINN_OVERRIDES``), only for the first K realisations.

Every result is appended to ``OUTDIR/results.jsonl`` as it completes; a restart skips what is
there. ``--report`` (also run at the end) aggregates the file into the markdown table of
README.md and writes ``estimate_spread.png`` next to this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import halfnorm, lognorm, qmc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HEAT = ROOT / "case_studies" / "heat_diffusion"
try:
    from bpinn.data import write_readings_csv
except ImportError:  # a source checkout without an installed bpinn
    sys.path.insert(0, str(ROOT))
    from bpinn.data import write_readings_csv

TRUE_D, NOISE_SD = 0.07, 0.02  # case_studies/heat_diffusion/make_data.py
INITIAL_MODES = (1.0, 0.0, 0.5)  # sin(pi x) + 0.5 sin(3 pi x)
PRIOR_D_MEDIAN, PRIOR_D_SCALE = 0.05, 1.0  # D ~ LogNormal(log 0.05, 1)
SIGMA_SCALE = 0.1  # sigma ~ HalfNormal(0.1)
X_RANGE, T_RANGE = (0.05, 0.95), (0.05, 1.0)
SEED = 20261127
NS = (3, 5, 10, 20, 50)
# B-PINN settings: the heat config's network, residual and priors; a reduced sampler
# (the heat config itself: 4 chains, 300 warm-up, 800 draws, depth 8, 5000 Adam + 1000 L-BFGS).
BPINN_OVERRIDES = {"num_chains": 2, "num_warmup": 150, "num_samples": 150, "max_tree_depth": 8,
                   "map_adam_steps": 3000, "map_lbfgs_steps": 300, "output_layer": "marginal"}
# FD forward model: 128 cells, 400 Crank-Nicolson steps (heat_mol's defaults; error O(1e-5)
# against the exact solution here, see the test), first a log grid, then a refinement.
FD_CELLS, FD_STEPS = 128, 400
FD_COARSE = np.geomspace(1e-3, 1.0, 301)  # ratio 1.023 between neighbours
FD_FINE_POINTS = 201
# exact posterior: log-spaced D grid (the log-prior gets the Jacobian d), uniform sigma grid
EXACT_D = np.geomspace(1e-3, 1.0, 2001)  # ratio 1.0035 between neighbours
EXACT_SIGMA = np.linspace(5e-4, 0.6, 1200)


def design(n: int) -> np.ndarray:
    """The first n points (x, t) of the unscrambled 2-D Halton sequence (bases 2, 3), its
    first point (0, 0) skipped, mapped to x in (0.05, 0.95), t in (0.05, 1.0). Nested: the
    design for n contains the design for every smaller n."""
    unit = qmc.Halton(d=2, scramble=False).random(n + 1)[1:]
    lo = np.array([X_RANGE[0], T_RANGE[0]])
    hi = np.array([X_RANGE[1], T_RANGE[1]])
    return lo + unit * (hi - lo)


def exact_field(x, t, D=TRUE_D) -> np.ndarray:
    from bpinn.reference.heat import heat_sine_series

    return np.asarray(heat_sine_series(np.asarray(x), np.asarray(t), D, INITIAL_MODES))


def readings(n: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t, u) of realisation r with n readings: the exact field plus N(0, 0.02^2) noise."""
    pts = design(n)
    rng = np.random.default_rng([SEED, n, r])
    u = exact_field(pts[:, 0], pts[:, 1]) + rng.normal(0.0, NOISE_SD, size=n)
    return pts[:, 0], pts[:, 1], u


def _u0(x):
    import jax.numpy as jnp

    return jnp.sin(jnp.pi * x) + 0.5 * jnp.sin(3 * jnp.pi * x)


_FD_CACHE: dict = {}


def fd_predictions(points: np.ndarray, d_values: np.ndarray) -> np.ndarray:
    """heat_mol at ``points`` for every D in ``d_values``: shape (len(d_values), len(points))."""
    import jax

    from bpinn.reference.mol import heat_mol

    jax.config.update("jax_enable_x64", True)
    key = points.shape
    if key not in _FD_CACHE:
        def one(d, pts):
            return heat_mol(pts, d, _u0, interval=(0.0, 1.0), time=(0.0, 1.0),
                            num_cells=FD_CELLS, num_steps=FD_STEPS)
        _FD_CACHE[key] = jax.jit(jax.vmap(one, in_axes=(0, None)))
    return np.asarray(_FD_CACHE[key](np.asarray(d_values, dtype=float), np.asarray(points)))


def fd_grid_search(x, t, u) -> dict:
    """The classical FD estimate: argmin over D of sum (heat_mol(x, t; D) - u)^2."""
    points = np.column_stack([x, t])
    sse = ((fd_predictions(points, FD_COARSE) - u) ** 2).sum(axis=1)
    i = int(np.argmin(sse))
    fine = np.geomspace(FD_COARSE[max(i - 1, 0)], FD_COARSE[min(i + 1, FD_COARSE.size - 1)],
                        FD_FINE_POINTS)
    sse_fine = ((fd_predictions(points, fine) - u) ** 2).sum(axis=1)
    j = int(np.argmin(sse_fine))
    return {"estimate": float(fine[j]), "sse": float(sse_fine[j]),
            "at_grid_edge": bool(i in (0, FD_COARSE.size - 1))}


def exact_posterior(x, t, u) -> dict:
    """The classical Bayesian posterior of D: grid integration over (D, sigma), exact forward
    model, the case's priors. The D grid is log-spaced, so each point carries mass density * D:
    the log Jacobian log D is added to the log prior."""
    from bpinn.reference.heat import heat_grid_posterior

    post = heat_grid_posterior(
        x, t, u, INITIAL_MODES, EXACT_D, EXACT_SIGMA,
        lambda d: lognorm.logpdf(d, PRIOR_D_SCALE, scale=PRIOR_D_MEDIAN) + np.log(d),
        lambda s: halfnorm.logpdf(s, scale=SIGMA_SCALE))
    return {"estimate": post["mean"], **post}


def bpinn_posterior(x, t, u, n: int, r: int, workdir: Path, overrides: dict,
                    residual_noise: float | None = None) -> dict:
    """The B-PINN posterior of D from the heat config, these readings, the given settings
    (and ``[model] residual_noise`` replaced when given)."""
    from bpinn.api import run

    rundir = workdir / f"n{n:02d}_r{r:02d}"
    rundir.mkdir(parents=True, exist_ok=True)
    for name in ("config.toml", "initial.py"):
        shutil.copy(HEAT / name, rundir / name)
    if residual_noise is not None:
        config = rundir / "config.toml"
        text, count = re.subn(r"(?m)^residual_noise = [0-9.eE+-]+",
                              f"residual_noise = {residual_noise!r}", config.read_text())
        if count != 1:
            raise RuntimeError(f"{config}: expected one residual_noise line, found {count}")
        config.write_text(text)
    rows = [(f"P{i + 1}", xi, ti, ui) for i, (xi, ti, ui) in enumerate(zip(x, t, u, strict=True))]
    write_readings_csv(rundir / "sensors.csv", rows)
    t0 = time.perf_counter()
    result = run(rundir / "config.toml", seed=1000 * n + r, overrides=overrides)
    wall = time.perf_counter() - t0
    par = result.summary["parameters"]
    d = par["D"]
    out = {"estimate": d["mean"], "mean": d["mean"], "sd": d["sd"], "q2.5": d["q2.5"],
           "q97.5": d["q97.5"], "r_hat": d.get("r_hat"), "ess_bulk": d.get("ess_bulk"),
           "wall_s": wall, "overrides": overrides}
    if "sigma" in par:
        out["sigma_mean"] = par["sigma"]["mean"]
    return out


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by an interruption
                pass
    return rows


def append_row(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()


def past(stop_at: str | None) -> bool:
    if not stop_at:
        return False
    now = dt.datetime.now(dt.UTC)
    hh, mm = (int(v) for v in stop_at.split(":"))
    return (now.hour, now.minute) >= (hh, mm)


def compute(args) -> None:
    args.outdir.mkdir(parents=True, exist_ok=True)
    path = args.outdir / "results.jsonl"
    done = {(row["n"], row["r"], row["method"]) for row in load_rows(path)}
    overrides = {**BPINN_OVERRIDES, **(args.bpinn_overrides or {})}
    k = args.realisations if args.bpinn_realisations is None else args.bpinn_realisations
    stopped = False
    # realisation-major, so an interrupted study has (almost) as many runs for every n
    for r in range(args.realisations):
        for n in args.n:
            x, t, u = readings(n, r)
            for method, fn in (("fd", fd_grid_search), ("exact", exact_posterior)):
                if (n, r, method) not in done:
                    append_row(path, {"n": n, "r": r, "method": method, **fn(x, t, u)})
            if r >= k or (n, r, "bpinn") in done or stopped:
                continue
            if past(args.stop_at):
                print(f"stop time {args.stop_at} UTC reached: no further B-PINN runs", flush=True)
                stopped = True
                continue
            try:
                row = bpinn_posterior(x, t, u, n, r, args.outdir / "runs", overrides,
                                      args.residual_noise)
            except Exception as err:  # record and go on: one failed run must not stop the study
                row = {"error": f"{type(err).__name__}: {err}", "overrides": overrides}
            append_row(path, {"n": n, "r": r, "method": "bpinn", **row})
            print(f"bpinn n = {n} r = {r}: " + (f"D = {row['mean']:.4f} +- {row['sd']:.4f}, "
                  f"{row['wall_s']:.0f} s" if "error" not in row else row["error"]), flush=True)
        print(f"realisation {r} done", flush=True)


LABELS = {"fd": "FD grid search (point estimate)", "exact": "classical Bayesian (exact posterior)",
          "bpinn": "B-PINN", "exact_paired": "classical Bayesian, B-PINN's realisations"}


def aggregate(rows: list[dict]) -> dict:
    """(n, method) -> statistics over realisations; 'exact_paired' restricts the exact
    posterior to the realisations with a B-PINN result."""
    by = {}
    for row in rows:
        if "error" not in row:
            by.setdefault((row["n"], row["method"]), {})[row["r"]] = row
    out = {}
    for n in sorted({k[0] for k in by}):
        exact = by.get((n, "exact"), {})
        bp = by.get((n, "bpinn"), {})
        groups = {"fd": by.get((n, "fd"), {}), "exact": exact, "bpinn": bp,
                  "exact_paired": {r: exact[r] for r in bp if r in exact}}
        for method, group in groups.items():
            if not group:
                continue
            est = np.array([g["estimate"] for g in group.values()])
            stats = {"count": len(group), "mean": float(est.mean()),
                     "spread": float(est.std(ddof=1)) if est.size > 1 else float("nan"),
                     "rmse": float(np.sqrt(np.mean((est - TRUE_D) ** 2)))}
            if method != "fd":
                stats["post_sd"] = float(np.mean([g["sd"] for g in group.values()]))
                stats["covered"] = int(sum(g["q2.5"] <= TRUE_D <= g["q97.5"]
                                           for g in group.values()))
            if method == "bpinn":
                z = [abs(g["mean"] - exact[r]["mean"]) / exact[r]["sd"]
                     for r, g in group.items() if r in exact]
                stats["z_vs_exact"] = float(np.mean(z))
                stats["z_max"] = float(np.max(z))
                stats["r_hat_max"] = float(max(g["r_hat"] or np.nan for g in group.values()))
                stats["wall_mean"] = float(np.mean([g["wall_s"] for g in group.values()]))
                sig = [g.get("sigma_mean", np.nan) for g in group.values()]
                stats["sigma_mean"] = float(np.mean(sig))
                stats["sigma_range"] = (float(np.min(sig)), float(np.max(sig)))
            out[(n, method)] = stats
    errors = [(row["n"], row["r"], row["error"]) for row in rows if "error" in row]
    return {"stats": out, "errors": errors}


def _num(v: float) -> str:
    return f"{v:.4f}" if v >= 5e-4 or v == 0 or not np.isfinite(v) else f"{v:.1e}"


def table(agg: dict) -> str:
    lines = ["| n | method | runs | mean of estimates | spread (sd) | RMSE to 0.07 | "
             "mean posterior sd | 95% coverage of 0.07 | B-PINN: \\|mean - exact mean\\| / exact "
             "sd, mean over runs (max) |", "|---|---|---|---|---|---|---|---|---|"]
    for (n, method), s in agg["stats"].items():
        cov = (f"{s['covered']}/{s['count']} ({s['covered'] / s['count']:.0%})"
               if "covered" in s else "")
        z = f"{s['z_vs_exact']:.2f} ({s['z_max']:.2f})" if "z_vs_exact" in s else ""
        post_sd = _num(s["post_sd"]) if "post_sd" in s else ""
        lines.append(f"| {n} | {LABELS[method]} | {s['count']} | {_num(s['mean'])} | "
                     f"{_num(s['spread'])} | {_num(s['rmse'])} | {post_sd} | {cov} | {z} |")
    lines.append("")
    lines.append("| n | B-PINN runs | posterior mean of sigma (range) | max R-hat of D | "
                 "wall per run (mean) |")
    lines.append("|---|---|---|---|---|")
    for (n, method), s in agg["stats"].items():
        if method == "bpinn":
            lo, hi = s["sigma_range"]
            lines.append(f"| {n} | {s['count']} | {s['sigma_mean']:.3f} ({lo:.3f} to {hi:.3f}) "
                         f"| {s['r_hat_max']:.3f} | {s['wall_mean']:.0f} s |")
    return "\n".join(lines)


def plot(agg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.6), dpi=90)
    styles = {"fd": ("tab:green", "s--"), "exact": ("k", "o-"), "bpinn": ("tab:blue", "^-"),
              "exact_paired": ("gray", "o:")}
    for method, (color, style) in styles.items():
        items = sorted((n, s) for (n, m), s in agg["stats"].items() if m == method)
        if not items:
            continue
        ns = [n for n, _ in items]
        label = LABELS[method]
        axes[0].plot(ns, [s["spread"] for _, s in items], style, color=color, label=label)
        axes[1].plot(ns, [s["rmse"] for _, s in items], style, color=color, label=label)
        if method != "fd":
            axes[2].plot(ns, [s["covered"] / s["count"] for _, s in items], style, color=color,
                         label=label)
    axes[0].set_ylabel("sd of the estimates of D across realisations")
    axes[1].set_ylabel("RMSE of the estimates of D (truth 0.07)")
    axes[2].set_ylabel("share of 95% intervals containing 0.07")
    axes[2].axhline(0.95, color="r", lw=0.8)
    axes[2].set_ylim(-0.05, 1.05)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("number of readings n")
        ax.set_xticks([3, 5, 10, 20, 50], labels=["3", "5", "10", "20", "50"])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("estimates of D over noise realisations (point estimate: posterior mean)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report(outdir: Path, plot_path: Path | None) -> dict:
    rows = load_rows(outdir / "results.jsonl")
    agg = aggregate(rows)
    print(table(agg))
    for n, r, err in agg["errors"]:
        print(f"B-PINN run failed: n = {n}, r = {r}: {err}")
    walls = [row["wall_s"] for row in rows if row["method"] == "bpinn" and "wall_s" in row]
    if walls:
        print(f"\nB-PINN runs: {len(walls)}, wall {np.mean(walls):.0f} s mean, "
              f"{np.min(walls):.0f}-{np.max(walls):.0f} s")
    if plot_path is not None:
        plot(agg, plot_path)
        print(f"wrote {plot_path}")
    return agg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=list(NS))
    parser.add_argument("--realisations", type=int, default=20)
    parser.add_argument("--bpinn-realisations", type=int, default=None,
                        help="B-PINN only on the first K realisations of each n (default: all)")
    parser.add_argument("--bpinn-overrides", type=json.loads, default=None,
                        help="JSON object of [inference] keys on top of BPINN_OVERRIDES")
    parser.add_argument("--residual-noise", type=float, default=None,
                        help="replace the heat config's [model] residual_noise (0.05)")
    parser.add_argument("--stop-at", default=None,
                        help="HH:MM (UTC): launch no B-PINN run after this time")
    parser.add_argument("--outdir", type=Path, default=Path("results/pinn_vs_classical"))
    parser.add_argument("--report", action="store_true", help="only aggregate what is there")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if not args.report:
        compute(args)
    report(args.outdir, None if args.no_plot else HERE / "estimate_spread.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
