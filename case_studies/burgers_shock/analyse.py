"""Numbers and figure of the Burgers-shock case study: fixed vs residual-resampled collocation.

    python case_studies/burgers_shock/analyse.py [--outdir results/burgers_shock] [--quick]

Runs (or, when OUTDIR/<name>/posterior.nc exists, reads) four inferences on ``config.toml``:
the classical Bayesian inversion with the method-of-lines solver (``reference``), and the
B-PINN (``nuts``) with the fixed Halton collocation points and with ``map_resample_rounds`` = 1
and 2. Prints the markdown table of README.md and writes ``residual.png``: |PDE residual| of the
B-PINN posterior (mean over 20 draws of |r|, each draw with its own nu) on a grid, with the
collocation points of each run overlaid.

The collocation points a resampled run ends on are read from its results
(``constant_data.collocation_points``); a fixed run used the config's Halton set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.toml"
TRUE_NU = 0.02
BAND = (0.1, 0.3)  # the front: |x| <= 0.1 and t >= 0.3

# B-PINN sizes: the config's (2 chains, 200 warmup, 300 draws, depth 7) or --quick.
QUICK = {"num_warmup": 100, "num_samples": 150, "max_tree_depth": 6, "map_adam_steps": 2000,
         "map_lbfgs_steps": 300}
VARIANTS = {  # name -> (method, [inference] overrides)
    "reference": ("reference", {}),
    "fixed": ("nuts", {}),
    "resample1": ("nuts", {"map_resample_rounds": 1}),
    "resample2": ("nuts", {"map_resample_rounds": 2}),
}
LABELS = {"reference": "reference (MOL, 128 cells)", "fixed": "B-PINN, fixed collocation",
          "resample1": "B-PINN, map_resample_rounds = 1",
          "resample2": "B-PINN, map_resample_rounds = 2"}


def _import_make_data():
    import importlib.util

    spec = importlib.util.spec_from_file_location("burgers_make_data", HERE / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model():
    """The B-PINN model of the config (its initial, fixed collocation points)."""
    from bpinn.api import prepare
    from bpinn.config import load_config

    return prepare(load_config(CONFIG))


def run_or_load(name: str, outdir: Path | None, quick: bool):
    """(datatree, summary, collocation points or None, wall seconds or None)."""
    import bpinn.api as api
    from bpinn.inference.results import read_results

    method, overrides = VARIANTS[name]
    if method == "nuts" and quick:
        overrides = {**QUICK, **overrides}
    target = None if outdir is None else outdir / name
    wall = None
    if target is not None and (target / "posterior.nc").exists():
        dt = read_results(target / "posterior.nc")
        summary = json.loads((target / "summary.json").read_text())
    else:
        t0 = time.perf_counter()
        result = api.run(CONFIG, outdir=target, method=method, overrides=overrides)
        wall = time.perf_counter() - t0
        dt, summary = result.datatree, result.summary
        if target is not None:
            (target / "wall.txt").write_text(f"{wall:.1f}\n")
    colloc = None
    if method == "nuts":
        constant = dt["constant_data"]
        if "collocation_points" in constant:
            colloc = constant["collocation_points"].values
        elif summary.get("map_training", {}).get("collocation_resampling"):
            raise RuntimeError(f"{target}: results from before bpinn recorded resampled "
                               "collocation points; remove the folder to rerun it")
        else:
            colloc = np.asarray(model().collocation)
    return dt, summary, colloc, wall


def field_errors(dt, truth_grid):
    """Relative L2 errors of the posterior-mean field on the predictions grid: all, front band."""
    u = dt["predictions"]["u"]
    mean = u.mean(dim=("chain", "draw")).values
    x = u["field_x"].values[:, None] * np.ones((1, u["field_t"].size))
    t = np.ones((u["field_x"].size, 1)) * u["field_t"].values[None, :]
    band = (np.abs(x) <= BAND[0] + 1e-12) & (t >= BAND[1] - 1e-12)

    def rel(mask):
        return float(np.linalg.norm((mean - truth_grid)[mask]) / np.linalg.norm(truth_grid[mask]))

    return rel(np.ones_like(band)), rel(band)


def truth_on_predictions_grid(dt):
    md = _import_make_data()
    u = dt["predictions"]["u"]
    X, T = np.meshgrid(u["field_x"].values, u["field_t"].values, indexing="ij")
    return md.true_field(np.stack([X.ravel(), T.ravel()], 1)).reshape(X.shape)


def residual_map(dt, m, nx: int = 161, nt: int = 81, num_draws: int = 20):
    """Mean over ``num_draws`` posterior draws of |PDE residual| on an nx x nt grid."""
    import jax

    x, t = np.linspace(-1, 1, nx), np.linspace(0, 1, nt)
    X, T = np.meshgrid(x, t, indexing="ij")
    pts = np.stack([X.ravel(), T.ravel()], 1)
    w = dt["posterior"]["weights"].values
    nu = dt["posterior"]["nu"].values
    w, nu = w.reshape(-1, w.shape[-1]), nu.ravel()
    pick = np.linspace(0, nu.size - 1, num_draws).round().astype(int)
    res = jax.jit(lambda wi, ni: m.residuals(wi, {"nu": ni}, pts))
    r = np.mean([np.abs(np.asarray(res(w[i], nu[i]))) for i in pick], axis=0)
    return x, t, r.reshape(X.shape)


def plot(maps: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    names = list(maps)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), dpi=90,
                             squeeze=False)
    vmax = max(float(r.max()) for _, _, r, _ in maps.values())
    for ax, name in zip(axes[0], names, strict=True):
        x, t, r, colloc = maps[name]
        im = ax.pcolormesh(x, t, r.T, norm=LogNorm(vmin=vmax * 1e-4, vmax=vmax), shading="auto",
                           cmap="magma")
        if colloc is not None:
            ax.plot(colloc[:, 0], colloc[:, 1], ".", ms=2.5, color="cyan")
        inband = None if colloc is None else np.mean((np.abs(colloc[:, 0]) <= BAND[0])
                                                     & (colloc[:, 1] >= BAND[1]))
        ax.set_title(f"{LABELS[name]}\n{100 * inband:.0f}% of points in the front band",
                     fontsize=8)
        ax.set_xlabel("x")
    axes[0][0].set_ylabel("t")
    fig.colorbar(im, ax=axes[0].tolist(), label="|PDE residual| (mean over 20 draws)")
    fig.savefig(path)
    plt.close(fig)


def solver_check() -> None:
    """Is the reference trustworthy here? Least-squares nu on a scan, with the reference grid
    (128 cells, 400 steps) and a finer one (512, 1000), on the noise-free truth and the data."""
    import jax

    from bpinn.config import build_problem, load_config
    from bpinn.reference.registry import problem_forward

    jax.config.update("jax_enable_x64", True)
    md = _import_make_data()
    _, pts = md.sensor_points()
    u_true = md.true_field(pts)
    problem = build_problem(load_config(CONFIG))
    y = np.asarray(problem.observations.values)
    grid = np.linspace(0.0175, 0.0215, 41)
    for cells, steps in ((128, 400), (512, 1000)):
        f = jax.jit(problem_forward(problem, num_cells=cells, num_steps=steps))
        u = [np.asarray(f({"nu": g})) for g in grid]
        err = np.abs(np.asarray(f({"nu": TRUE_NU})) - u_true).max()
        best_true = grid[np.argmin([np.sum((v - u_true) ** 2) for v in u])]
        best_obs = grid[np.argmin([np.sum((v - y) ** 2) for v in u])]
        print(f"MOL {cells} cells x {steps} steps: max error at the sensors at nu = 0.02 "
              f"{err:.1e}; least-squares nu (scan step 1e-4): noise-free truth {best_true:.4f}, "
              f"data {best_obs:.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=None,
                        help="read/write the runs under OUTDIR/<name>")
    parser.add_argument("--quick", action="store_true",
                        help="reduced B-PINN sizes: 100 warmup, 150 draws, tree depth 6")
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--solver-check", action="store_true",
                        help="only the least-squares check of the reference solver's grid")
    args = parser.parse_args(argv)
    if args.solver_check:
        solver_check()
        return 0

    from bpinn.config import load_config

    load_config(CONFIG)  # validates the config before the long runs
    runs = {name: run_or_load(name, args.outdir, args.quick) for name in args.only}
    truth_grid = truth_on_predictions_grid(next(iter(runs.values()))[0])
    ref_sd = None
    if "reference" in runs:
        ref_sd = float(runs["reference"][0]["posterior"]["nu"].values.std())

    print("| run | nu: mean +- sd | nu: 95% interval | truth 0.02 inside? | |mean - truth| / sd "
          "| sd / reference sd | max R-hat | divergences | rel. L2 field error | rel. L2 error, "
          "front band | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (dt, summary, _, wall) in runs.items():
        nu = dt["posterior"]["nu"].values.ravel()
        lo, hi = np.quantile(nu, [0.025, 0.975])
        d = summary["diagnostics"]
        e_all, e_band = field_errors(dt, truth_grid)
        if wall is None and args.outdir is not None and (args.outdir / name / "wall.txt").exists():
            wall = float((args.outdir / name / "wall.txt").read_text())
        ratio = f"{nu.std() / ref_sd:.2f}" if ref_sd else ""
        print(f"| {LABELS[name]} | {nu.mean():.5f} +- {nu.std():.5f} | [{lo:.5f}, {hi:.5f}] | "
              f"{'yes' if lo <= TRUE_NU <= hi else '**no**'} | "
              f"{abs(nu.mean() - TRUE_NU) / nu.std():.1f} | {ratio} | "
              f"{d.get('max_r_hat', float('nan')):.3f} | {d.get('divergences', '-')} | "
              f"{e_all:.3f} | {e_band:.3f} | " + (f"{wall:.0f} s |" if wall else "|"))
    for name, (_, summary, _, _) in runs.items():
        rounds = summary.get("map_training", {}).get("collocation_resampling")
        if rounds:
            print(f"\n{name}: collocation resampling")
            for r in rounds:
                print(f"  - round {r['round']}: pool mean |r| {r['pool_mean_abs_residual']:.3g}, "
                      f"max |r| {r['pool_max_abs_residual']:.3g}, "
                      f"{100 * r['share_in_top_decile']:.0f}% of points in the top decile, "
                      f"MAP log density {r['map_logdensity']:.1f}")
        for w in summary["diagnostics"]["warnings"]:
            print(f"  {name} warning: {w}")
    if not args.no_plot:
        m = model()
        maps = {name: (*residual_map(dt, m), colloc) for name, (dt, _, colloc, _) in runs.items()
                if "weights" in dt["posterior"]}
        if maps:
            plot(maps, HERE / "residual.png")
            print(f"\nwrote {HERE / 'residual.png'}")
            for name, (x, t, r, _) in maps.items():
                X, T = np.meshgrid(x, t, indexing="ij")
                band = (np.abs(X) <= BAND[0]) & (T >= BAND[1])
                print(f"{name}: mean |r| in the band {r[band].mean():.3g}, outside "
                      f"{r[~band].mean():.3g}; {r[band].sum() / r.sum():.0%} of the total |r| "
                      f"on {band.mean():.0%} of the area")
    return 0


if __name__ == "__main__":
    sys.exit(main())
