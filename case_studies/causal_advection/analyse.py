"""Numbers of the causal-advection case study: does the B-PINN find c = 30, and do the
MAP-training remedies (causal weighting, time marching) change which basin it lands in?

    python case_studies/causal_advection/analyse.py [--outdir results/causal_advection] [--quick]

Computes the exact posterior of (c, sigma) by quadrature with the exact solution sin(x - c t),
then runs (or, when OUTDIR/<name>/posterior.nc and summary.json exist, reads) the classical
Bayesian inversion (``reference``) and the B-PINN (``nuts``) plain and with each remedy, all on
``config.toml`` with ``[inference]`` overrides only, and prints the table of README.md.
``--quick`` runs every B-PINN variant at reduced size (for a smoke test, not for the README).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.toml"
TRUE_C, TRUE_SIGMA = 30.0, 0.05
PRIOR_LOC, PRIOR_SCALE = np.log(20.0), 0.5  # c ~ LogNormal(log 20, 0.5)
SIGMA_SCALE = 0.1  # sigma ~ HalfNormal(0.1)

# name -> [inference] overrides; every B-PINN variant differs from "plain" in one remedy only
VARIANTS = {
    "reference": {"method": "reference", "num_chains": 4, "num_warmup": 300, "num_samples": 500},
    "B-PINN plain": {},
    "B-PINN causal eps=1": {"map_causal_epsilon": 1.0},
    "B-PINN time marching": {"map_time_marching": True},
    "B-PINN causal eps=10": {"map_causal_epsilon": 10.0},
    "B-PINN causal eps=1 + marching": {"map_causal_epsilon": 1.0, "map_time_marching": True},
}
QUICK = {"num_warmup": 100, "num_samples": 100, "max_tree_depth": 6, "map_adam_steps": 1000,
         "map_lbfgs_steps": 200}


def exact_field(x, t, c=TRUE_C):
    """u(x, t) = sin(x - c t)."""
    return np.sin(np.asarray(x) - c * np.asarray(t))


def readings(path=HERE / "sensors.csv"):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("x", "t", "u"))


def exact_posterior(c_range=(2.0, 100.0), num_c=196001, num_sigma=1500) -> dict:
    """The exact posterior of (c, sigma) on a grid (uniform in c, step 5e-4; uniform in sigma),
    same priors and data as the config; marginal of c, its moments and quantiles, and the mass
    outside the mode around the truth (the other local modes of the likelihood in c)."""
    x, t, y = readings()
    cs = np.linspace(*c_range, num_c)
    sig = np.linspace(1e-3, 1.5, num_sigma)
    log_prior_sig = -0.5 * (sig / SIGMA_SCALE) ** 2
    log_c = np.empty(num_c)
    for i in range(0, num_c, 4000):  # chunks: a (c, reading) array at a time
        c = cs[i:i + 4000]
        ss = np.sum((np.sin(x[None] - c[:, None] * t[None]) - y[None]) ** 2, axis=1)
        lp = (-y.size * np.log(sig)[None] - ss[:, None] / (2 * sig[None] ** 2)
              + log_prior_sig[None])
        m = lp.max(axis=1, keepdims=True)
        log_c[i:i + 4000] = (m[:, 0] + np.log(np.exp(lp - m).sum(axis=1))
                             - np.log(c) - 0.5 * ((np.log(c) - PRIOR_LOC) / PRIOR_SCALE) ** 2)
    w = np.exp(log_c - log_c.max())
    w /= w.sum()
    mean = float(w @ cs)
    sd = float(np.sqrt(w @ (cs - mean) ** 2))
    q = np.interp([0.025, 0.5, 0.975], np.cumsum(w), cs)
    return {"c": cs, "w": w, "mean": mean, "sd": sd, "q": q,
            "mass_off_mode": float(w[np.abs(cs - TRUE_C) > 2.0].sum())}


def run_or_load(name: str, overrides: dict, outdir: Path | None):
    """(datatree, summary, wall seconds or None)."""
    from bpinn.api import run
    from bpinn.inference.results import read_results

    target = None if outdir is None else outdir / name.replace(" ", "_").replace("=", "")
    if target is not None and (target / "posterior.nc").exists():
        with open(target / "summary.json") as fh:
            summary = json.load(fh)
        return read_results(target / "posterior.nc"), summary, summary.get("wall_s")
    overrides = dict(overrides)
    method = overrides.pop("method", None)  # run() ignores "method" inside overrides
    t0 = time.perf_counter()
    result = run(CONFIG, outdir=target, method=method, overrides=overrides)
    wall = time.perf_counter() - t0
    if target is not None:  # keep the wall time beside the results
        summary = dict(result.summary, wall_s=wall)
        (target / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return result.datatree, result.summary, wall


def field_error(dt) -> float:
    """Relative L2 error of the posterior-mean field on the results' grid vs sin(x - 30 t)."""
    pred = dt["predictions"]
    u = pred["u"].values
    mean = u.reshape(-1, *u.shape[-2:]).mean(axis=0)
    xg, tg = np.meshgrid(pred["field_x"].values, pred["field_t"].values, indexing="ij")
    exact = exact_field(xg, tg)
    return float(np.linalg.norm(mean - exact) / np.linalg.norm(exact))


def row(name: str, dt, summary: dict, wall, exact: dict) -> dict:
    c = dt["posterior"]["c"].values.ravel()
    lo, hi = np.quantile(c, [0.025, 0.975])
    diag = summary["diagnostics"]
    fits = summary.get("map_fits") or []
    return {
        "name": name, "mean": c.mean(), "sd": c.std(), "lo": lo, "hi": hi,
        "inside": lo <= TRUE_C <= hi,
        "err_sds": abs(c.mean() - TRUE_C) / c.std() if c.std() > 0 else np.inf,
        "vs_exact": abs(c.mean() - exact["mean"]) / exact["sd"],
        "overlap": hi >= exact["q"][0] and lo <= exact["q"][2],
        "rhat": diag["max_r_hat"], "div": diag["divergences"],
        "map_lp": max((f["logdensity"] for f in fits), default=None),
        "map_c": [f["c"] for f in fits],
        "l2": field_error(dt), "wall": wall,
        "sigma": float(np.median(dt["posterior"]["sigma"].values)),
    }


def print_table(rows: list[dict], exact: dict) -> None:
    print("| run | c: mean +- sd | c: 95% interval | truth 30 inside? | |mean - 30| / sd | "
          "|mean - exact| / exact sd | 95% overlaps exact? | median sigma | max R-hat | "
          "divergences | MAP log density (c at each MAP fit) | rel. L2 field error | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lo, hi = exact["q"][[0, 2]]
    print(f"| exact posterior (quadrature) | {exact['mean']:.3f} +- {exact['sd']:.3f} | "
          f"[{lo:.3f}, {hi:.3f}] | {'yes' if lo <= TRUE_C <= hi else '**no**'} | "
          f"{abs(exact['mean'] - TRUE_C) / exact['sd']:.1f} | 0 | yes | | | | | 0 (exact) | |")
    for r in rows:
        map_txt = ("" if r["map_lp"] is None else
                   f"{r['map_lp']:.1f} (" + ", ".join(f"{c:.2f}" for c in r["map_c"]) + ")")
        wall = "" if r["wall"] is None else f"{r['wall']:.0f} s"
        print(f"| {r['name']} | {r['mean']:.3f} +- {r['sd']:.3f} | [{r['lo']:.3f}, {r['hi']:.3f}]"
              f" | {'yes' if r['inside'] else '**no**'} | {r['err_sds']:.1f} | "
              f"{r['vs_exact']:.1f} | {'yes' if r['overlap'] else '**no**'} | {r['sigma']:.3f} | "
              f"{r['rhat']:.3f} | {r['div']} | {map_txt} | {r['l2']:.3f} | {wall} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=None,
                        help="read/write each run under OUTDIR/<variant>")
    parser.add_argument("--quick", action="store_true", help="reduced B-PINN runs (smoke test)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these variants")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    exact = exact_posterior()
    print(f"exact posterior: c = {exact['mean']:.4f} +- {exact['sd']:.4f}, 95% "
          f"[{exact['q'][0]:.4f}, {exact['q'][2]:.4f}], mass outside |c - 30| < 2: "
          f"{exact['mass_off_mode']:.1e}", flush=True)
    rows = []
    for name, overrides in VARIANTS.items():
        if args.only is not None and name not in args.only:
            continue
        if args.quick and name != "reference":
            overrides = {**overrides, **QUICK}
        dt, summary, wall = run_or_load(name, overrides, args.outdir)
        rows.append(row(name, dt, summary, wall, exact))
        print(f"done: {name} ({'' if wall is None else f'{wall:.0f} s'})", file=sys.stderr,
              flush=True)
    print_table(rows, exact)
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
