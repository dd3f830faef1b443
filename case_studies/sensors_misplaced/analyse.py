"""Numbers and figure of the misplaced-sensors case study.

    python case_studies/sensors_misplaced/analyse.py [--outdir results/sensors_misplaced]

Runs (or, when OUTDIR/<name>/posterior.nc exists, reads) three inversions:

- ``nuts``: the B-PINN on ``config.toml`` (readings at t = 9.1 .. 9.8, window [0, 10]);
- ``reference``: the classical inversion (exact sine-series forward model) on the same config;
- ``t09_reference``: the classical inversion on ``config_t09.toml`` (readings at t >= 0.93).

and prints the tables of README.md: the analytic sensitivity and Fisher information of each
design, the exact posterior by quadrature, the package's verdicts, and the sensor-design
ranking over the 41 x 41 ``predictions`` grid. Writes ``design.png``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PI2 = np.pi**2
TRUE_D = 0.07
NOISE_SD = 0.02
PRIOR_LOC, PRIOR_SCALE = np.log(0.05), 1.0  # D ~ LogNormal(log 0.05, 1), as heat_diffusion
SIGMA_SCALE = 0.1  # sigma ~ HalfNormal(0.1)
SENSOR_X = np.array([0.15, 0.30, 0.45, 0.60, 0.75, 0.90])
DESIGNS = {  # name -> read times (six sensors each)
    "shipped heat_diffusion (t = 0.1 .. 0.8)": np.arange(1, 9) / 10,
    "late in [0, 1] (t = 0.93 .. 1.0)": 0.92 + np.arange(1, 9) / 100,
    "decayed (t = 9.1 .. 9.8)": 9 + np.arange(1, 9) / 10,
}
RUNS = {"nuts": ("config.toml", "nuts"), "reference": ("config.toml", "reference"),
        "t09_reference": ("config_t09.toml", "reference")}


def two_mode(x, t, D):
    """u = exp(-D pi^2 t) sin(pi x) + 0.5 exp(-9 D pi^2 t) sin(3 pi x)."""
    return (np.exp(-D * PI2 * t) * np.sin(np.pi * x)
            + 0.5 * np.exp(-9 * D * PI2 * t) * np.sin(3 * np.pi * x))


def du_dD(x, t, D):
    """d u / d D = -pi^2 t exp(-D pi^2 t) sin(pi x) - 4.5 pi^2 t exp(-9 D pi^2 t) sin(3 pi x)."""
    return (-PI2 * t * np.exp(-D * PI2 * t) * np.sin(np.pi * x)
            - 4.5 * PI2 * t * np.exp(-9 * D * PI2 * t) * np.sin(3 * np.pi * x))


def design_points(times):
    x, t = np.meshgrid(SENSOR_X, times, indexing="ij")
    return x.ravel(), t.ravel()


def fisher(times, D=TRUE_D, noise_sd=NOISE_SD) -> dict:
    """Fisher information of D (and of log D) from the readings at ``times``, noise sd known."""
    x, t = design_points(times)
    s = du_dD(x, t, D)
    info = float(np.sum(s**2) / noise_sd**2)
    return {"max_abs_u": float(np.abs(two_mode(x, t, D)).max()),
            "max_abs_dudD": float(np.abs(s).max()), "fisher_D": info,
            "sd_D": info**-0.5, "fisher_logD": info * D**2,
            "linear_contraction": info * D**2 / (1 + info * D**2)}


def read_csv(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return tuple(np.array([float(r[c]) for r in rows]) for c in ("x", "t", "u"))


def exact_posterior(x, t, y, prior_loc=PRIOR_LOC, prior_scale=PRIOR_SCALE, num=4001) -> dict:
    """p(log D | readings) on a grid, sigma marginalised under HalfNormal(0.1) (quadrature)."""
    log_d = np.linspace(prior_loc - 7 * prior_scale, prior_loc + 7 * prior_scale, num)
    ss = np.array([np.sum((two_mode(x, t, d) - y) ** 2) for d in np.exp(log_d)])
    sig = np.linspace(1e-3, 0.5, 3000)
    ll = (-y.size * np.log(sig)[None] - ss[:, None] / (2 * sig[None] ** 2)
          - 0.5 * (sig[None] / SIGMA_SCALE) ** 2)
    m = ll.max(axis=1, keepdims=True)
    lp = (m + np.log(np.exp(ll - m).sum(axis=1, keepdims=True)))[:, 0]
    lp -= 0.5 * ((log_d - prior_loc) / prior_scale) ** 2
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = w @ log_d
    var = w @ (log_d - mean) ** 2
    cdf = np.cumsum(w)
    q = np.exp(np.interp([0.025, 0.5, 0.975], cdf, log_d))
    return {"log_D": log_d, "weights": w, "contraction": 1 - var / prior_scale**2,
            "median": q[1], "q2.5": q[0], "q97.5": q[2], "kurtosis":
            float(w @ (log_d - mean) ** 4 / var**2)}


def verdict(c: float) -> str:
    from bpinn.diagnostics import IDENTIFIED, NOT_IDENTIFIED

    return ("identified" if c >= IDENTIFIED else "weakly identified" if c >= NOT_IDENTIFIED
            else "not identified (prior-driven)")


def field_grid(domain_t=(0.0, 10.0), n=41):
    """The predictions grid of a run: 41 x 41 over x in [0, 1] and t in ``domain_t``."""
    xs, ts = np.linspace(0, 1, n), np.linspace(*domain_t, n)
    X, T = np.meshgrid(xs, ts, indexing="ij")
    return xs, ts, X, T


def ranking_from_draws(D, noise_sd, domain_t=(0.0, 10.0)):
    """Expected information gain of one more reading at every grid point, from D draws and the
    exact field; returns (gain on the grid (41, 41), ranked list)."""
    from bpinn.diagnostics import rank_sensor_candidates

    xs, ts, X, T = field_grid(domain_t)
    U = np.stack([two_mode(X, T, d).ravel() for d in D])
    ranked = rank_sensor_candidates({"D": np.asarray(D)}, U, noise_sd)
    gain = np.empty(X.size)
    for e in ranked:
        gain[e["index"]] = e["information_gain"]
    return gain.reshape(X.shape), ranked


def ranking_from_predictions(dt):
    """The same from a B-PINN run's ``predictions`` group (the network's own field)."""
    from bpinn.diagnostics import rank_sensor_candidates

    field = dt["predictions"]["u"].transpose("chain", "draw", "field_x", "field_t")
    D = dt["posterior"]["D"].sel(draw=field["draw"]).values.reshape(-1)
    noise_sd = float(dt["posterior"]["sigma"].mean())
    U = field.values.reshape(D.size, -1)
    ranked = rank_sensor_candidates({"D": D}, U, noise_sd)
    gain = np.empty(U.shape[1])
    for e in ranked:
        gain[e["index"]] = e["information_gain"]
    return gain.reshape(field.shape[2:]), ranked, noise_sd


def run_or_load(name: str, outdir: Path | None, overrides: dict | None = None):
    """(datatree, summary or None, wall seconds or None) of one of RUNS."""
    from bpinn.api import run
    from bpinn.inference.results import read_results

    config, method = RUNS[name]
    target = None if outdir is None else outdir / name
    if target is not None and (target / "posterior.nc").exists():
        return read_results(target / "posterior.nc"), None, None
    t0 = time.perf_counter()
    result = run(HERE / config, outdir=target, method=method, overrides=overrides)
    return result.datatree, result.summary, time.perf_counter() - t0


def top_points(ranked, X, T, k=3):
    return ", ".join(f"({X.ravel()[e['index']]:.3g}, {T.ravel()[e['index']]:.3g}): "
                     f"{e['information_gain']:.3g}" for e in ranked[:k])


def plot(gains: dict, path: Path, sensors) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ts, _, _ = field_grid()
    fig, axes = plt.subplots(1, len(gains), figsize=(4.1 * len(gains), 3.5), dpi=80)
    for ax, (title, g) in zip(np.atleast_1d(axes), gains.items(), strict=True):
        im = ax.pcolormesh(ts, xs, g, shading="nearest", cmap="viridis")
        ax.plot(sensors[1], sensors[0], "w.", ms=3, label="readings")
        j = np.unravel_index(np.argmax(g), g.shape)
        ax.plot(ts[j[1]], xs[j[0]], "r*", ms=12, label="ranked first")
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, label="information gain (nats)")
        ax.legend(fontsize=7, loc="lower center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=None,
                        help="read/write the runs under OUTDIR/{nuts,reference,t09_reference}")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)

    print("## Analytic sensitivity and Fisher information (noise sd 0.02 known, D = 0.07)\n")
    print("| design (six sensors x eight times) | max u | max abs du/dD | Fisher info of D | "
          "sd(D) >= | info of log D | linearised contraction |\n|---|---|---|---|---|---|---|")
    for name, times in DESIGNS.items():
        f = fisher(times)
        print(f"| {name} | {f['max_abs_u']:.3g} | {f['max_abs_dudD']:.3g} | "
              f"{f['fisher_D']:.3g} | {f['sd_D']:.2g} | {f['fisher_logD']:.3g} | "
              f"{f['linear_contraction']:.3f} |")
    print(f"\nmode-1 sensitivity -pi^2 t exp(-D pi^2 t) peaks at t = 1/(D pi^2) = "
          f"{1 / (TRUE_D * PI2):.3f}; mode 3 at t = 1/(9 D pi^2) = {1 / (9 * TRUE_D * PI2):.3f}")

    print("\n## Exact posterior (quadrature over log D and sigma; prior D ~ LogNormal(log 0.05, 1))"
          "\n\n| data | contraction of log D | verdict | median D | 95% interval |"
          "\n|---|---|---|---|---|")
    files = {"sensors.csv (t = 9.1 .. 9.8)": HERE / "sensors.csv",
             "sensors_t09.csv (t = 0.93 .. 1.0)": HERE / "sensors_t09.csv"}
    exact = {}
    for name, path in files.items():
        e = exact[name] = exact_posterior(*read_csv(path))
        print(f"| {name} | {e['contraction']:.3f} | {verdict(e['contraction'])} | "
              f"{e['median']:.4f} | [{e['q2.5']:.4f}, {e['q97.5']:.4f}] |")
    print("\nthe decayed design with other prior medians (scale 1): the verdict follows the prior")
    print("\n| prior median of D | contraction | verdict | 95% interval |\n|---|---|---|---|")
    for med in (0.02, 0.05, 0.1, 0.2):
        e = exact_posterior(*read_csv(HERE / "sensors.csv"), prior_loc=np.log(med))
        print(f"| {med} | {e['contraction']:.3f} | {verdict(e['contraction'])} | "
              f"[{e['q2.5']:.4f}, {e['q97.5']:.4f}] |")

    print("\n## bpinn runs\n\n| run | D median [95%] | contraction (verdict) | prior sensitivity "
          "(psense prior / likelihood) | R-hat(D) | wall |\n|---|---|---|---|---|---|")
    runs = {}
    for name in RUNS:
        dt, summary, wall = runs[name] = run_or_load(name, args.outdir)
        from bpinn.diagnostics import identify

        ident = summary["identifiability"] if summary else identify(dt)
        c = ident["contraction"]["D"]
        ps = ident["prior_sensitivity"]["parameters"]["D"]
        D = dt["posterior"]["D"].values
        rhat = ident["chain_agreement"]["parameters"]["D"]["r_hat"]
        print(f"| {name} | {np.median(D):.4f} [{np.quantile(D, 0.025):.4f}, "
              f"{np.quantile(D, 0.975):.4f}] | {c['contraction']:.3f} ({c['verdict']}) | "
              f"{ps['prior']:.3f} / {ps['likelihood']:.3f}: {ps['verdict']} | {rhat:.3f} | "
              + (f"{wall:.0f} s |" if wall else "(read) |"))
        for line in ident["verdicts"]:
            print(f"    - {line}")

    print("\n## Sensor design over the 41 x 41 predictions grid (x in [0, 1], t in [0, 10])\n")
    _, _, X, T = field_grid()
    gains = {}
    e = exact["sensors.csv (t = 9.1 .. 9.8)"]
    rng = np.random.default_rng(0)
    exact_draws = np.exp(rng.choice(e["log_D"], 2000, p=e["weights"]))
    sources = {
        "exact posterior": (exact_draws, NOISE_SD),
        "reference run": (runs["reference"][0]["posterior"]["D"].values.ravel(),
                          float(runs["reference"][0]["posterior"]["sigma"].mean())),
    }
    print("| posterior | noise sd | first three (x, t): gain in nats | best gain at t >= 9 |"
          "\n|---|---|---|---|")
    for name, (D, sd) in sources.items():
        g, ranked = ranking_from_draws(D, sd)
        gains[f"{name} (exact field)"] = g
        print(f"| {name} | {sd:.4f} | {top_points(ranked, X, T)} | {g[T >= 9].max():.3g} |")
    g, ranked, sd = ranking_from_predictions(runs["nuts"][0])
    gains["B-PINN (network field)"] = g
    print(f"| B-PINN (its predictions group) | {sd:.4f} | {top_points(ranked, X, T)} | "
          f"{g[T >= 9].max():.3g} |")
    if not args.no_plot:
        sensors = design_points(DESIGNS["decayed (t = 9.1 .. 9.8)"])
        plot({k: gains[k] for k in ("reference run (exact field)", "B-PINN (network field)")},
             HERE / "design.png", sensors)
        print(f"\nwrote {HERE / 'design.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
