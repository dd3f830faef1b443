"""Numbers and figure of the trade-off case study: the B-PINN run against the analytic truth.

    python case_studies/tradeoff_decay/analyse.py                      # run config.toml (nuts)
    python case_studies/tradeoff_decay/analyse.py --outdir results/tradeoff_decay   # reuse a run

With ``--outdir`` an existing ``posterior.nc`` there is read, otherwise the config is run and
its results are written there. Prints the tables of README.md and writes ``pairs.png``.

The analytic truth: u = exp(-r t) sin(pi x) with r = D pi^2 + k, so the likelihood depends on
(D, k) only through r. The exact posterior (same priors, same data, sigma marginalised) is
computed here by quadrature on a grid over (log D, log k); it is the gold standard the
package's run is compared with (the ``reference`` method needs a built-in PDE and this one is
user-defined).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.toml"
PI2 = np.pi**2


def load_case(config_path: Path = CONFIG) -> dict:
    """Priors, truth and readings as plain numbers (read from the config and its data)."""
    cfg = tomllib.loads(Path(config_path).read_text())
    priors = {n: (cfg["coefficients"][n]["loc"], cfg["coefficients"][n]["scale"])
              for n in ("D", "k")}
    with open(Path(config_path).parent / cfg["data"]["file"]) as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["x"]) for r in rows])
    t = np.array([float(r["t"]) for r in rows])
    y = np.array([float(r["u"]) for r in rows])
    return {"priors": priors, "sigma_scale": cfg["data"]["noise"]["scale"],
            "truth": cfg["truth"], "x": x, "t": t, "y": y}


def rate_log_likelihood(case: dict, rates: np.ndarray) -> np.ndarray:
    """log p(readings | r), the noise sd marginalised under its HalfNormal prior (quadrature)."""
    x, t, y = case["x"], case["t"], case["y"]
    ss = np.array([np.sum((np.exp(-r * t) * np.sin(np.pi * x) - y) ** 2) for r in rates])
    sig = np.linspace(1e-3, 0.5, 2000)
    ll = (-y.size * np.log(sig)[None] - ss[:, None] / (2 * sig[None] ** 2)
          - 0.5 * (sig[None] / case["sigma_scale"]) ** 2)
    m = ll.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(ll - m).sum(axis=1, keepdims=True)))[:, 0]


def exact_posterior(case: dict, num: int = 601, width: float = 5.0) -> dict:
    """The exact posterior of (log D, log k) on a grid: weights, mean, covariance."""
    (mD, sD), (mk, sk) = case["priors"]["D"], case["priors"]["k"]
    a = np.linspace(mD - width * sD, mD + width * sD, num)
    b = np.linspace(mk - width * sk, mk + width * sk, num)
    A, B = np.meshgrid(a, b, indexing="ij")
    R = np.exp(A) * PI2 + np.exp(B)
    rates = np.linspace(R.min(), R.max(), 40000)
    ll = np.interp(R, rates, rate_log_likelihood(case, rates))
    lp = ll - 0.5 * ((A - mD) / sD) ** 2 - 0.5 * ((B - mk) / sk) ** 2
    w = np.exp(lp - lp.max())
    w /= w.sum()
    pts = np.stack([A.ravel(), B.ravel()])
    mean = pts @ w.ravel()
    dev = pts - mean[:, None]
    cov = (dev * w.ravel()) @ dev.T
    return {"log_D": a, "log_k": b, "weights": w, "mean": mean, "cov": cov,
            "prior_sd": np.array([sD, sk])}


def exact_datatree(case: dict, exact: dict, num_chains: int = 4, num_draws: int = 1000,
                   seed: int = 0):
    """Independent draws of the exact posterior (and of the prior) as a results tree, so that
    ``bpinn.diagnostics.identify`` can be applied to the gold standard itself."""
    from bpinn.inference.results import build_datatree

    rng = np.random.default_rng(seed)
    w = exact["weights"].ravel()
    idx = rng.choice(w.size, num_chains * num_draws, p=w)
    i, j = np.unravel_index(idx, exact["weights"].shape)
    da, db = np.diff(exact["log_D"][:2])[0], np.diff(exact["log_k"][:2])[0]
    log_d = exact["log_D"][i] + rng.uniform(-da / 2, da / 2, idx.size)  # spread within cells
    log_k = exact["log_k"][j] + rng.uniform(-db / 2, db / 2, idx.size)
    (mD, sD), (mk, sk) = case["priors"]["D"], case["priors"]["k"]
    shape = (num_chains, num_draws)
    return build_datatree(
        posterior={"D": np.exp(log_d).reshape(shape), "k": np.exp(log_k).reshape(shape)},
        prior={"D": np.exp(rng.normal(mD, sD, (1, 4000))),
               "k": np.exp(rng.normal(mk, sk, (1, 4000)))},
        attrs={"method": "exact posterior (quadrature)"})


def directions(cov: np.ndarray, prior_sd: np.ndarray) -> list[dict]:
    """Principal directions as bpinn.diagnostics defines them: eigenpairs of the covariance
    whitened by the prior sds, weights a = u / s scaled to largest |weight| 1, least informed
    first."""
    lam, u = np.linalg.eigh(cov / np.outer(prior_sd, prior_sd))
    out = []
    for i in np.argsort(lam)[::-1]:
        a = u[:, i] / prior_sd
        a = a / a[np.argmax(np.abs(a))]
        out.append({"weights": a, "contraction": float(1 - lam[i])})
    return out


def local_direction(truth: dict) -> np.ndarray:
    """Gradient of r = D pi^2 + k in (log D, log k) at the truth: (D pi^2, k)."""
    return np.array([truth["D"] * PI2, truth["k"]])


def angle_deg(a, b) -> float:
    """Angle between two lines (directions up to sign), degrees."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    cos = abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(min(cos, 1.0))))


def package_directions(summary_or_report: dict) -> list[dict]:
    """The package's principal directions as weight vectors over (log D, log k)."""
    ident = summary_or_report.get("identifiability", summary_or_report)
    return [{"weights": np.array([d["weights"]["log D"], d["weights"]["log k"]]),
             "contraction": d["contraction"], "verdict": d["verdict"],
             "combination": d["combination"]}
            for d in ident["principal_directions"]["directions"]]


def run_or_load(outdir: Path | None, overrides: dict | None = None):
    """(datatree, identifiability report, summary or None, wall seconds or None)."""
    from bpinn.api import run
    from bpinn.diagnostics import identify
    from bpinn.inference.results import read_results

    if outdir is not None and (outdir / "posterior.nc").exists():
        dt = read_results(outdir / "posterior.nc")
        return dt, identify(dt), None, None
    t0 = time.perf_counter()
    result = run(CONFIG, outdir=outdir, overrides=overrides)
    return result.datatree, result.summary["identifiability"], result.summary, \
        time.perf_counter() - t0


def plot(dt, exact: dict, truth: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    post = dt["posterior"]
    lD, lk = np.log(post["D"].values.ravel()), np.log(post["k"].values.ravel())
    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=90)
    ax.scatter(lD, lk, s=3, alpha=0.35, color="tab:blue", label="B-PINN draws", rasterized=True)
    w = exact["weights"]
    levels = np.sort(w.ravel())[::-1]
    cum = np.cumsum(levels)
    lev = [levels[np.searchsorted(cum, p)] for p in (0.95, 0.5)]
    ax.contour(exact["log_D"], exact["log_k"], w.T, levels=lev, colors="k", linewidths=1,
               zorder=3)
    from bpinn.inference.results import decode_attrs

    fits = decode_attrs(dt).get("map_fits") or []
    if fits:
        ax.plot(np.log(fits[0]["D"]), np.log(fits[0]["k"]), "gX", ms=9, zorder=4,
                label="best MAP fit of the B-PINN")
    r = truth["D"] * PI2 + truth["k"]
    d = np.linspace(np.log(1e-3), np.log(r / PI2) - 1e-9, 400)
    ax.plot(d, np.log(r - np.exp(d) * PI2), "r--", lw=1, label="D pi^2 + k = true rate")
    g = local_direction(truth)
    g = 0.6 * g / np.linalg.norm(g)
    c = np.log([truth["D"], truth["k"]])
    ax.annotate("", c + g, c, arrowprops={"arrowstyle": "->", "color": "r"})
    ax.plot(*c, "r*", ms=10, zorder=5, label="truth (arrow: local gradient of D pi^2 + k)")
    lo_d, hi_d = min(lD.min(), c[0] - 1.0), max(lD.max(), c[0] + 0.8)
    lo_k, hi_k = min(lk.min(), c[1] - 1.8), max(lk.max(), c[1] + 0.6)
    ax.set_xlim(lo_d - 0.1, hi_d + 0.1)
    ax.set_ylim(lo_k - 0.1, hi_k + 0.1)
    ax.set_xlabel("log D")
    ax.set_ylabel("log k")
    ax.set_title("exact posterior (black: 50%, 95% regions) vs B-PINN draws", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=None)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    case = load_case()
    truth = case["truth"]
    exact = exact_posterior(case)
    g = local_direction(truth)
    print(f"true decay rate r = D pi^2 + k = {truth['D'] * PI2 + truth['k']:.4f}; local "
          f"identified direction in (log D, log k): ({g[0]:.4f}, {g[1]:.4f}), i.e. "
          f"{g[0] / g.max():.3f} log D + {g[1] / g.max():.3f} log k")
    ex_dirs = directions(exact["cov"], exact["prior_sd"])
    from bpinn.diagnostics import identify

    exact_report = identify(exact_datatree(case, exact), ["D", "k"])
    print("\nbpinn identify on 4000 independent draws of the exact posterior:")
    for line in exact_report["verdicts"]:
        print("  -", line)
    dt, ident, summary, wall = run_or_load(args.outdir)
    pk_dirs = package_directions(ident)
    post = dt["posterior"]
    rate = post["D"].values * PI2 + post["k"].values
    print("\n| | least informed direction | most informed direction |\n|---|---|---|")
    for label, dirs in (("exact posterior (quadrature)", ex_dirs), ("bpinn (B-PINN)", pk_dirs)):
        cells = [f"{d['weights'][0]:+.3f} log D {d['weights'][1]:+.3f} log k, contraction "
                 f"{d['contraction']:.3f}" + (f" ({d['verdict']})" if "verdict" in d else "")
                 for d in dirs]
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    print("\n| angle (degrees) between ... | |\n|---|---|")
    print(f"| exact most-informed direction and the local gradient (D pi^2, k) | "
          f"{angle_deg(ex_dirs[1]['weights'], g):.1f} |")
    print(f"| bpinn most-informed direction and the local gradient | "
          f"{angle_deg(pk_dirs[1]['weights'], g):.1f} |")
    print(f"| bpinn most-informed direction and the exact one | "
          f"{angle_deg(pk_dirs[1]['weights'], ex_dirs[1]['weights']):.1f} |")
    print(f"| bpinn least-informed direction and the exact one | "
          f"{angle_deg(pk_dirs[0]['weights'], ex_dirs[0]['weights']):.1f} |")
    med = np.array([np.median(post["D"].values) * PI2, np.median(post["k"].values)])
    print(f"| bpinn most-informed direction and the gradient (D pi^2, k) at the B-PINN's "
          f"posterior medians | {angle_deg(pk_dirs[1]['weights'], med):.1f} |")
    from bpinn.inference.results import decode_attrs

    attrs = decode_attrs(dt)
    fits = attrs.get("map_fits") or []
    local = (attrs.get("local_identifiability") or {}).get("bpinn") or {}
    if fits:
        print("\nMAP fits (D, k): " + ", ".join(f"({f['D']:.4f}, {f['k']:.4f})" for f in fits)
              + f"; best: r = {fits[0]['D'] * PI2 + fits[0]['k']:.4f}, gradient of r there = "
              f"log D + {fits[0]['k'] / (fits[0]['D'] * PI2):.3f} log k")
    for d in local.get("directions", []):
        print(f"Gauss-Newton at the MAP (B-PINN): {d['combination']}: information ratio "
              f"{d['information_ratio']:.3g}")
    ew = exact["weights"]
    A, B = np.meshgrid(exact["log_D"], exact["log_k"], indexing="ij")
    er = np.exp(A) * PI2 + np.exp(B)
    order = np.argsort(er.ravel())
    cdf = np.cumsum(ew.ravel()[order])
    eq = np.interp([0.025, 0.5, 0.975], cdf, er.ravel()[order])
    print("\n| quantity | B-PINN median [95%] | exact median [95%] | truth |\n|---|---|---|---|")
    print(f"| r = D pi^2 + k | {np.median(rate):.4f} [{np.quantile(rate, 0.025):.4f}, "
          f"{np.quantile(rate, 0.975):.4f}] | {eq[1]:.4f} [{eq[0]:.4f}, {eq[2]:.4f}] | "
          f"{truth['D'] * PI2 + truth['k']:.4f} |")
    for i, n in enumerate(("D", "k")):
        wm = ew.sum(axis=1 - i)
        grid = np.exp(exact["log_D"] if i == 0 else exact["log_k"])
        q = np.interp([0.025, 0.5, 0.975], np.cumsum(wm), grid)
        v = post[n].values
        print(f"| {n} | {np.median(v):.4f} [{np.quantile(v, 0.025):.4f}, "
              f"{np.quantile(v, 0.975):.4f}] | {q[1]:.4f} [{q[0]:.4f}, {q[2]:.4f}] | "
              f"{truth[n]} |")
    print("\nbpinn identify:")
    for line in ident["verdicts"]:
        print("  -", line)
    if summary is not None:
        d = summary["parameters"]["D"]
        print(f"\nwall {wall:.0f} s; R-hat(D) {d['r_hat']:.3f}, bulk ESS(D) {d['ess_bulk']:.0f}; "
              f"warnings: {summary['diagnostics']['warnings']}")
    if not args.no_plot:
        plot(dt, exact, truth, HERE / "pairs.png")
        print(f"wrote {HERE / 'pairs.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
