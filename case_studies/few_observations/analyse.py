"""Numbers and figure of the few-observations case study: three readings, three answers.

    python case_studies/few_observations/analyse.py [--outdir results/few_observations]

Runs (or, when OUTDIR/<name>/posterior.nc exists, reads) the B-PINN (``nuts``, the config's
method) and the classical Bayesian inversion (``reference``) on ``config.toml``, computes the
classical least-squares estimate (``bpinn.reference.baseline.least_squares_estimate``) and the
exact posterior by quadrature over (D, sigma), and prints the table of README.md. Writes
``posteriors.png``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.toml"
PI2 = np.pi**2
TRUE_D, TRUE_SIGMA = 0.07, 0.02
PRIOR_LOC, PRIOR_SCALE = np.log(0.05), 1.0  # D ~ LogNormal(log 0.05, 1)
SIGMA_SCALE = 0.1  # sigma ~ HalfNormal(0.1)
# prior variance of log sigma under HalfNormal: Var(log|Z|) = pi^2 / 8 for standard normal Z
PRIOR_VAR_LOG_SIGMA = np.pi**2 / 8


def two_mode(x, t, D):
    """u = exp(-D pi^2 t) sin(pi x) + 0.5 exp(-9 D pi^2 t) sin(3 pi x)."""
    return (np.exp(-D * PI2 * t) * np.sin(np.pi * x)
            + 0.5 * np.exp(-9 * D * PI2 * t) * np.sin(3 * np.pi * x))


def readings(path=HERE / "sensors.csv"):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return tuple(np.array([float(r[c]) for r in rows]) for c in ("x", "t", "u"))


def exact_posterior(num_d: int = 4001, num_sigma: int = 4000) -> dict:
    """The exact joint posterior of (log D, sigma) on a grid: marginals, quantiles, contraction."""
    x, t, y = readings()
    log_d = np.linspace(PRIOR_LOC - 7 * PRIOR_SCALE, PRIOR_LOC + 7 * PRIOR_SCALE, num_d)
    ss = np.array([np.sum((two_mode(x, t, d) - y) ** 2) for d in np.exp(log_d)])
    sig = np.linspace(1e-4, 0.6, num_sigma)
    lp = (-y.size * np.log(sig)[None] - ss[:, None] / (2 * sig[None] ** 2)
          - 0.5 * (sig[None] / SIGMA_SCALE) ** 2
          - 0.5 * ((log_d[:, None] - PRIOR_LOC) / PRIOR_SCALE) ** 2)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    wd, ws = w.sum(axis=1), w.sum(axis=0)

    def q(grid, weights):
        return np.interp([0.025, 0.5, 0.975], np.cumsum(weights), grid)

    md = wd @ log_d
    ls = np.log(sig)
    mls = ws @ ls
    return {"log_D": log_d, "w_D": wd, "sigma": sig, "w_sigma": ws,
            "D_q": np.exp(q(log_d, wd)), "D_mean": float(wd @ np.exp(log_d)),
            "D_sd": float(np.sqrt(wd @ (np.exp(log_d) - wd @ np.exp(log_d)) ** 2)),
            "sigma_q": q(sig, ws),
            "contraction_D": float(1 - wd @ (log_d - md) ** 2 / PRIOR_SCALE**2),
            "contraction_sigma": float(1 - ws @ (ls - mls) ** 2 / PRIOR_VAR_LOG_SIGMA)}


def least_squares():
    """The classical point estimate with its asymptotic standard error and 95% intervals."""
    from bpinn.config import build_problem, load_config
    from bpinn.reference.baseline import least_squares_estimate

    fit = least_squares_estimate(build_problem(load_config(CONFIG)))
    d, se = fit["coefficients"]["D"], fit["standard_errors"]["D"]
    dof = 3 - 1
    return {**fit, "D": d, "se": se, "normal_95": (d - 1.96 * se, d + 1.96 * se),
            "t_95": (d - stats.t.ppf(0.975, dof) * se, d + stats.t.ppf(0.975, dof) * se),
            "dof": dof}


def run_or_load(method: str, outdir: Path | None, overrides: dict | None = None):
    """(datatree, identifiability report, wall seconds or None)."""
    from bpinn.api import run
    from bpinn.diagnostics import identify
    from bpinn.inference.results import read_results

    target = None if outdir is None else outdir / method
    if target is not None and (target / "posterior.nc").exists():
        dt = read_results(target / "posterior.nc")
        return dt, identify(dt), None
    t0 = time.perf_counter()
    result = run(CONFIG, outdir=target, method=method, overrides=overrides)
    return result.datatree, result.summary["identifiability"], time.perf_counter() - t0


def inside(lo, hi, value=TRUE_D) -> str:
    return "yes" if lo <= value <= hi else "**no**"


def plot(runs: dict, exact: dict, ls: dict, path: Path) -> None:
    """Densities of log10 D: both runs' draws, the exact posterior, least squares, the prior."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=90)
    bins = np.linspace(-4.0, -0.5, 141)
    labels = {"nuts": "B-PINN (nuts) draws", "reference": "reference draws"}
    for (name, (dt, _, _)), color in zip(runs.items(), ("tab:blue", "tab:orange"), strict=True):
        ax.hist(np.log10(dt["posterior"]["D"].values.ravel()), bins=bins, density=True,
                alpha=0.5, color=color, label=labels.get(name, name))
    ln10 = np.log(10)
    lg = exact["log_D"] / ln10
    keep = (lg > bins[0]) & (lg < bins[-1])
    dens = exact["w_D"] / np.gradient(lg)
    ax.plot(lg[keep], dens[keep], "k-", lw=1.2, label="exact posterior (quadrature)")
    ax.plot(lg[keep], stats.norm.pdf(10 ** lg[keep], ls["D"], ls["se"]) * 10 ** lg[keep] * ln10,
            "g--", lw=1.2, label="least squares: estimate +- se (normal)")
    ax.plot(lg[keep], stats.norm.pdf(lg[keep] * ln10, PRIOR_LOC, PRIOR_SCALE) * ln10, ":",
            color="gray", label="prior")
    ax.axvline(np.log10(TRUE_D), color="r", lw=1, label="truth 0.07")
    ax.set_xlabel("log10 D")
    ax.set_ylabel("density")
    ax.set_title("three readings: posteriors of D", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=None,
                        help="read/write the runs under OUTDIR/{nuts,reference}")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    exact = exact_posterior()
    ls = least_squares()
    runs = {m: run_or_load(m, args.outdir) for m in ("nuts", "reference")}

    print("| | D: mean +- sd | D: 95% interval | truth 0.07 inside? | sigma: 95% interval | "
          "verdict D (contraction) | verdict sigma (contraction) | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (dt, ident, wall) in runs.items():
        D = dt["posterior"]["D"].values.ravel()
        s = dt["posterior"]["sigma"].values.ravel()
        lo, hi = np.quantile(D, [0.025, 0.975])
        c = ident["contraction"]
        print(f"| {name} | {D.mean():.4f} +- {D.std():.4f} | [{lo:.4f}, {hi:.4f}] | "
              f"{inside(lo, hi)} | [{np.quantile(s, 0.025):.4f}, {np.quantile(s, 0.975):.4f}] "
              f"| {c['D']['verdict']} ({c['D']['contraction']:.3f}) | {c['sigma']['verdict']} "
              f"({c['sigma']['contraction']:.3f}) | " + (f"{wall:.0f} s |" if wall else "|"))
    lo, hi = exact["D_q"][[0, 2]]
    print(f"| exact posterior (quadrature) | {exact['D_mean']:.4f} +- {exact['D_sd']:.4f} | "
          f"[{lo:.4f}, {hi:.4f}] | {inside(lo, hi)} | [{exact['sigma_q'][0]:.4f}, "
          f"{exact['sigma_q'][2]:.4f}] | ({exact['contraction_D']:.3f}) | "
          f"({exact['contraction_sigma']:.3f}) | |")
    for label, (lo, hi) in (("least squares, estimate +- 1.96 se", ls["normal_95"]),
                            (f"least squares, Student t ({ls['dof']} dof)", ls["t_95"])):
        print(f"| {label} | {ls['D']:.4f} +- {ls['se']:.4f} | [{lo:.4f}, {hi:.4f}] | "
              f"{inside(lo, hi)} | sigma_hat = {ls['sigma_hat']:.4f} | | | |")
    for name, (_, ident, _) in runs.items():
        print(f"\nbpinn identify ({name}):")
        for line in ident["verdicts"]:
            print("  -", line)
    if not args.no_plot:
        plot(runs, exact, ls, HERE / "posteriors.png")
        print(f"\nwrote {HERE / 'posteriors.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
