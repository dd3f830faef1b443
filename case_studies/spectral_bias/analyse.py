"""Numbers and figure of the spectral-bias case study: does the network kind matter for mode 8?

    python case_studies/spectral_bias/analyse.py [--outdir results/spectral_bias] [--quick]

Runs (or, when OUTDIR/<name>/posterior.nc exists, reads) the gold standard (``reference``: the
exact spectral solver in place of the network) and the B-PINN (``nuts``) with each network of
``VARIANTS``: the tanh MLP of ``config.toml`` as written, random Fourier features with
``fourier_scale`` 1, 2 and 4, and a SIREN. Only the ``[model]`` table changes between them; it is
changed here, on the parsed config (``bpinn.api.run(..., tables=...)``), not in copies of the
config. Also computes the exact posterior of D by quadrature over (log D, sigma) with the
two-mode solution, and (unless ``--no-diagnosis``) a MAP-level diagnosis of every network
(``diagnose``: the forward fit with D known, the inverse MAP warm-started from it and, for
``--warm-nuts`` variants, the sampler centred there). Prints the markdown tables of README.md and
writes ``fields.png``.

``--quick`` runs every B-PINN at reduced size (see ``QUICK``); the table header states the sizes.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.toml"
PI2 = np.pi**2
TRUE_D, TRUE_SIGMA = 0.01, 0.03
PRIOR_LOC, PRIOR_SCALE = np.log(0.02), 1.0  # D ~ LogNormal(log 0.02, 1)
SIGMA_SCALE = 0.1  # sigma ~ HalfNormal(0.1)
HIGH_MODE = 8

# name -> changes to the config's [model] table (network = "mlp" as written)
VARIANTS: dict[str, dict] = {
    "mlp": {},
    "fourier_1": {"network": "fourier", "fourier_scale": 1.0},
    "fourier_2": {"network": "fourier", "fourier_scale": 2.0},
    "fourier_4": {"network": "fourier", "fourier_scale": 4.0},
    "siren": {"network": "siren", "siren_omega0": 30.0},
}
# Variants only diagnosed at the MAP level (no sampling): the Fourier features with the weight
# prior scaled by 1/sqrt(fan_in), so that 32 features do not saturate the first tanh layer.
DIAGNOSIS_ONLY: dict[str, dict] = {
    "fourier_1_fanin": {"network": "fourier", "fourier_scale": 1.0, "fan_in_scaled": True},
    "fourier_2_fanin": {"network": "fourier", "fourier_scale": 2.0, "fan_in_scaled": True},
    # per-coordinate frequencies: mode 8 in x (2 cycles per scaled unit), a smooth decay in t
    "fourier_2_x": {"network": "fourier", "fourier_scale": [2.0, 0.25]},
}
# [inference] overrides of a --quick run (the full size is config.toml's [inference] table)
QUICK = {"num_warmup": 100, "num_samples": 150, "max_tree_depth": 7,
         "map_adam_steps": 2000, "map_lbfgs_steps": 300}
FIGURE_TIMES = (0.075, 0.15, 0.3)


def two_mode(x, t, D):
    """u = exp(-pi^2 D t) sin(pi x) + 0.5 exp(-64 pi^2 D t) sin(8 pi x), the exact field."""
    return (np.exp(-D * PI2 * t) * np.sin(np.pi * x)
            + 0.5 * np.exp(-HIGH_MODE**2 * D * PI2 * t) * np.sin(HIGH_MODE * np.pi * x))


def readings(path=HERE / "sensors.csv"):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return tuple(np.array([float(r[c]) for r in rows]) for c in ("x", "t", "u"))


def fisher_sd(sigma: float = TRUE_SIGMA, D: float = TRUE_D, modes=(1, HIGH_MODE)) -> float:
    """sd of D from the Fisher information of the design at the truth, noise sd known: the
    width the data can support. ``modes`` keeps only those modes' share of du/dD."""
    x, t, _ = readings()
    amp = {1: 1.0, HIGH_MODE: 0.5}
    du = sum(-amp[k] * k**2 * PI2 * t * np.exp(-k**2 * PI2 * D * t) * np.sin(k * np.pi * x)
             for k in modes)
    return float(sigma / np.linalg.norm(du))


def exact_posterior(num_d: int = 4001, num_sigma: int = 2000) -> dict:
    """The exact posterior of D (sigma marginalised) by quadrature over (log D, sigma)."""
    x, t, y = readings()
    log_d = np.linspace(np.log(TRUE_D) - 0.5, np.log(TRUE_D) + 0.5, num_d)  # > 30 post. sds
    ss = np.array([np.sum((two_mode(x, t, d) - y) ** 2) for d in np.exp(log_d)])
    sig = np.linspace(1e-3, 0.3, num_sigma)
    lp = (-y.size * np.log(sig)[None] - ss[:, None] / (2 * sig[None] ** 2)
          - 0.5 * (sig[None] / SIGMA_SCALE) ** 2
          - 0.5 * ((log_d[:, None] - PRIOR_LOC) / PRIOR_SCALE) ** 2)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    wd = w.sum(axis=1)
    d = np.exp(log_d)
    mean = float(wd @ d)
    return {"D": d, "w_D": wd, "mean": mean, "sd": float(np.sqrt(wd @ (d - mean) ** 2)),
            "q": np.interp([0.025, 0.5, 0.975], np.cumsum(wd), d)}


def model_tables(variant: str) -> dict:
    """The parsed config with the variant's [model] changes."""
    tables = tomllib.loads(CONFIG.read_text())
    tables = copy.deepcopy(tables)
    tables["model"].update({**VARIANTS, **DIAGNOSIS_ONLY}.get(variant, {}))
    return tables


def run_or_load(name: str, outdir: Path | None, overrides: dict | None):
    """(datatree, summary) of the run ``name`` ("reference" or a key of ``VARIANTS``)."""
    from bpinn.api import run
    from bpinn.inference.results import read_results

    target = None if outdir is None else outdir / name
    if target is not None and (target / "posterior.nc").exists():
        return (read_results(target / "posterior.nc"),
                json.loads((target / "summary.json").read_text()))
    method = "reference" if name == "reference" else "nuts"
    variant = "mlp" if name == "reference" else name
    result = run(CONFIG, outdir=target, method=method, overrides=overrides,
                 tables=model_tables(variant))
    return result.datatree, result.summary


def grid_errors(u, x, t) -> dict:
    """Relative L2 errors of a field ``u`` on the grid ``x`` (uniform, both ends) x ``t``: of the
    whole field, of its mode-1 and mode-8 sine coefficients over time, and of the rest; plus
    those coefficients."""
    X, T = np.meshgrid(x, t, indexing="ij")
    exact = two_mode(X, T, TRUE_D)
    # Discrete sine transform on the uniform grid with both ends: exact for modes < len(x) - 1.
    n = x.size - 1
    inner = slice(1, n)

    def coefficient(field, k):
        return (2.0 / n) * np.sin(k * np.pi * x[inner]) @ field[inner]

    out = {"t": t, "rel_l2": float(np.linalg.norm(u - exact) / np.linalg.norm(exact))}
    for k in (1, HIGH_MODE):
        a, a_true = coefficient(u, k), coefficient(exact, k)
        out[f"a{k}"], out[f"a{k}_true"] = a, a_true
        out[f"rel_l2_mode{k}"] = float(np.linalg.norm(a - a_true) / np.linalg.norm(a_true))
    rest = u - sum(np.outer(np.sin(k * np.pi * x), out[f"a{k}"]) for k in (1, HIGH_MODE))
    out["rel_l2_other"] = float(np.linalg.norm(rest) / np.linalg.norm(exact))
    return out


def field_errors(dt) -> dict:
    """``grid_errors`` of the posterior-mean field of a run (its ``predictions`` group)."""
    pred = dt["predictions"]
    return grid_errors(pred["u"].values.mean(axis=(0, 1)), pred["field_x"].values,
                       pred["field_t"].values)


def diagnose(variant: str, overrides: dict | None, *, sample: bool = False,
             random_starts: bool = False) -> dict:
    """Where the B-PINN goes wrong, at the level of MAP fits.

    1. Forward problem: D fixed at the truth, MAP fits of the network from the run's random
       starts. Can this network, trained as bpinn trains it, represent the mode-8 field?
    2. Inverse problem warm-started: the posterior with D unknown, maximised by L-BFGS from the
       best forward fit with D = truth. Is there a mode near the truth, and is its log density
       higher than that of the MAP fits from random starts (``summary["map_fits"]``)?
    3. With ``sample``: the run's sampler (``nuts``, same settings) with every chain centred on
       that warm-started mode instead of the best random-start MAP. Does the posterior stay
       there? (Only possible when the truth is known: a check, not a remedy.)
    With ``random_starts`` also the inverse MAP fits from the random starts (a sampled run has
    them in its ``summary["map_fits"]``).
    """
    import dataclasses

    import arviz_stats
    import jax
    import jax.numpy as jnp

    from bpinn.api import method_context, prepare, run_keys
    from bpinn.config import load_config
    from bpinn.inference.map import MAPResult, fit_map
    from bpinn.inference.methods import get_method

    def context(fix_d: bool, needs_map: bool):
        tables = model_tables(variant)
        if fix_d:
            tables["coefficients"]["D"] = TRUE_D
        cfg = load_config(CONFIG, tables=tables, overrides=overrides)
        model = prepare(cfg)
        keys = run_keys(cfg.inference.seed)
        return model, cfg.inference, keys, method_context(
            model, cfg.inference, keys.target, keys.init, needs_map=needs_map)

    x = np.linspace(0.0, 1.0, 41)
    t = np.linspace(0.0, 0.3, 41)
    X, T = np.meshgrid(x, t, indexing="ij")
    points = np.stack([X.ravel(), T.ravel()], axis=-1)

    def errors(model, weights):
        return grid_errors(np.asarray(model.predict(weights, points)).reshape(X.shape), x, t)

    t0 = time.perf_counter()
    model_f, _, _, ctx_f = context(True, True)
    ld_f = np.asarray(ctx_f.map_fit.logdensity)
    best = int(np.argmax(ld_f))
    fwd = ctx_f.target.constrained(ctx_f.map_fit.position[best])
    model_i, inf, keys, ctx_i = context(False, random_starts)
    start = ctx_i.target.from_constrained(
        {"weights": fwd["weights"], "D": jnp.asarray(TRUE_D), "sigma": fwd["sigma"]})
    warm = fit_map(ctx_i.target, start[None], num_adam_steps=0,
                   num_lbfgs_steps=inf.map_lbfgs_steps, physics_ramp=0.0)
    w = ctx_i.target.constrained(warm.position[0])
    out = {"forward": errors(model_f, fwd["weights"]), "forward_sigma": float(fwd["sigma"]),
           "warm_D": float(w["D"]), "warm_sigma": float(w["sigma"]),
           "warm_start_logdensity": float(ctx_i.target.logdensity_fn(start)),
           "warm_logdensity": float(warm.logdensity[0]),
           "warm": errors(model_i, w["weights"]), "map_seconds": time.perf_counter() - t0}
    if random_starts:
        order = np.argsort(-np.asarray(ctx_i.map_fit.logdensity))
        out["map_fits"] = [
            {"logdensity": float(ctx_i.map_fit.logdensity[i]),
             **{k: float(ctx_i.target.constrained(ctx_i.map_fit.position[i])[k])
                for k in ("D", "sigma")}} for i in order]
    if sample:
        t1 = time.perf_counter()
        n = inf.num_chains
        centred = MAPResult(position=jnp.broadcast_to(warm.position[0],
                                                      (n, warm.position.shape[1])),
                            logdensity=jnp.full((n,), warm.logdensity[0]), trace=warm.trace,
                            compile_seconds=0.0)
        draws = get_method(inf.method).run(keys.sample, dataclasses.replace(ctx_i, map_fit=centred))
        chains, num_draws, dim = draws.position.shape
        values = jax.vmap(ctx_i.target.constrained)(draws.position.reshape(-1, dim))
        D = np.asarray(values["D"]).reshape(chains, num_draws)
        keep = np.linspace(0, D.size - 1, min(D.size, 100)).round().astype(int)
        u = np.mean([np.asarray(model_i.predict(values["weights"][i], points)) for i in keep],
                    axis=0).reshape(X.shape)
        stats = draws.sample_stats
        out["nuts"] = {
            "D": D, "sigma": np.asarray(values["sigma"]).reshape(chains, num_draws),
            "r_hat": float(arviz_stats.rhat(D, chain_axis=0, draw_axis=1)),
            "divergences": int(np.sum(stats.get("diverging", 0))),
            "errors": grid_errors(u, x, t), "seconds": time.perf_counter() - t1}
    return out


def row(name: str, dt, summary: dict, ref: dict) -> dict:
    D = dt["posterior"]["D"].values.ravel()
    lo, hi = np.quantile(D, [0.025, 0.975])
    diag = summary["diagnostics"]
    err = field_errors(dt)
    return {"name": name, "mean": float(D.mean()), "sd": float(D.std()), "lo": lo, "hi": hi,
            "z_truth": abs(D.mean() - TRUE_D) / D.std(), "inside": lo <= TRUE_D <= hi,
            "vs_ref": (D.mean() - ref["mean"]) / ref["sd"],
            "r_hat": diag["max_r_hat"], "divergences": diag["divergences"],
            "wall": summary["timing"]["total_s"], "errors": err,
            "warnings": diag["warnings"], "map_fits": summary.get("map_fits", []),
            "network": ("exact solver" if name == "reference" else dt.attrs.get("network", ""))}


def table(rows: list[dict], exact: dict, sizes: str) -> str:
    lines = [f"Run sizes: {sizes}. Truth D = {TRUE_D}.", "",
             "| run | network | D mean | D sd | 95% interval | \\|mean - truth\\| / sd | "
             "truth in 95%? | (mean - ref) / ref sd | max R-hat | div. | rel. L2 field | "
             "rel. L2 mode 1 | rel. L2 mode 8 | wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r["errors"]
        lines.append(
            f"| {r['name']} | {r['network']} | {r['mean']:.5f} | {r['sd']:.5f} | "
            f"[{r['lo']:.5f}, {r['hi']:.5f}] | {r['z_truth']:.1f} | "
            f"{'yes' if r['inside'] else '**no**'} | {r['vs_ref']:+.1f} | {r['r_hat']:.3f} | "
            f"{r['divergences']} | {e['rel_l2']:.4f} | {e['rel_l2_mode1']:.4f} | "
            f"{e['rel_l2_mode8']:.4f} | {r['wall']:.0f} s |")
    lo, hi = exact["q"][[0, 2]]
    inside = "yes" if lo <= TRUE_D <= hi else "**no**"
    lines.append(f"| exact (quadrature) | two-mode solution | {exact['mean']:.5f} | "
                 f"{exact['sd']:.5f} | [{lo:.5f}, {hi:.5f}] | "
                 f"{abs(exact['mean'] - TRUE_D) / exact['sd']:.1f} | {inside} | | | | | | | |")
    return "\n".join(lines)


def diagnosis_table(rows: list[dict], diagnoses: dict) -> str:
    lines = ["| network | forward fit, D = truth: rel. L2 field | rel. L2 mode 8 | sigma | "
             "inverse MAP from random starts: D, sigma [log density] | inverse, at the forward "
             "fit [log density] | inverse MAP from there: D | sigma | log density | "
             "rel. L2 mode 8 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    fits = {r["name"]: r["map_fits"] for r in rows}
    for name, d in diagnoses.items():
        random = "; ".join(f"{f['D']:.2g}, {f['sigma']:.3f} [{f['logdensity']:.0f}]"
                           for f in d.get("map_fits", fits.get(name, [])))
        if name in DIAGNOSIS_ONLY:
            name = f"{name} (not sampled)"
        lines.append(
            f"| {name} | {d['forward']['rel_l2']:.4f} | {d['forward']['rel_l2_mode8']:.4f} | "
            f"{d['forward_sigma']:.3f} | {random} | [{d['warm_start_logdensity']:.0f}] | "
            f"{d['warm_D']:.5f} | {d['warm_sigma']:.3f} | "
            f"{d['warm_logdensity']:.0f} | {d['warm']['rel_l2_mode8']:.4f} |")
    return "\n".join(lines)


def warm_nuts_rows(diagnoses: dict, ref: dict) -> list[str]:
    """Rows of the main table for samplers centred on the warm-started mode."""
    lines = []
    for name, d in diagnoses.items():
        if "nuts" not in d:
            continue
        n = d["nuts"]
        D = n["D"].ravel()
        lo, hi = np.quantile(D, [0.025, 0.975])
        e = n["errors"]
        lines.append(
            f"| {name}, chains centred on the mode found from the truth | (check, not a remedy) | "
            f"{D.mean():.5f} | {D.std():.5f} | [{lo:.5f}, {hi:.5f}] | "
            f"{abs(D.mean() - TRUE_D) / D.std():.1f} | "
            f"{'yes' if lo <= TRUE_D <= hi else '**no**'} | "
            f"{(D.mean() - ref['mean']) / ref['sd']:+.1f} | {n['r_hat']:.3f} | "
            f"{n['divergences']} | {e['rel_l2']:.4f} | {e['rel_l2_mode1']:.4f} | "
            f"{e['rel_l2_mode8']:.4f} | {n['seconds']:.0f} s |")
    return lines


def plot(runs: dict, path: Path) -> None:
    """Exact field vs each run's posterior mean (and 95% band of the field draws) at a few
    times, with the readings taken at that time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_fine = np.linspace(0, 1, 801)
    xs, ts, ys = readings()
    names = list(runs)
    fig, axes = plt.subplots(len(names), len(FIGURE_TIMES), figsize=(10, 1.7 * len(names) + 0.6),
                             dpi=90, sharex=True, sharey=True, squeeze=False)
    for i, name in enumerate(names):
        pred = runs[name][0]["predictions"]
        x = pred["field_x"].values
        t = pred["field_t"].values
        u = pred["u"].values.reshape(-1, x.size, t.size)
        for j, tj in enumerate(FIGURE_TIMES):
            ax = axes[i, j]
            k = int(np.argmin(np.abs(t - tj)))
            ax.plot(x_fine, two_mode(x_fine, t[k], TRUE_D), "k-", lw=1.0, label="exact")
            lo, hi = np.quantile(u[:, :, k], [0.025, 0.975], axis=0)
            ax.fill_between(x, lo, hi, color="tab:blue", alpha=0.25, lw=0)
            ax.plot(x, u[:, :, k].mean(axis=0), "-", color="tab:blue", lw=1.2,
                    label="posterior mean (95% band)")
            at = np.isclose(ts, t[k])
            if at.any():
                ax.plot(xs[at], ys[at], "o", ms=3, color="tab:red", label="readings")
            if i == 0:
                ax.set_title(f"t = {t[k]:.3g}", fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
    axes[0, -1].legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("x")
    fig.suptitle("u(x, t): exact (black) vs posterior mean; mode 8 is the fast ripple",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=None,
                        help="read/write the runs under OUTDIR/<run name>")
    parser.add_argument("--quick", action="store_true",
                        help=f"reduced B-PINN runs: {QUICK}")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--no-diagnosis", action="store_true",
                        help="skip the MAP-level diagnosis (forward fit, warm-started inverse)")
    parser.add_argument("--warm-nuts", nargs="*", choices=list(VARIANTS), default=["mlp"],
                        help="variants whose sampler is also run centred on the warm-started "
                             "mode (default: mlp)")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)

    inf = tomllib.loads(CONFIG.read_text())["inference"]
    overrides = dict(QUICK) if args.quick else None
    size = {**inf, **(overrides or {})}
    sizes = (f"B-PINN: {size['num_chains']} chains x {size['num_warmup']} warmup + "
             f"{size['num_samples']} draws, max_tree_depth {size['max_tree_depth']}, "
             f"MAP {size.get('map_adam_steps', 5000)} Adam + {size.get('map_lbfgs_steps', 1000)}"
             f" L-BFGS steps{' (--quick)' if args.quick else ''}; reference: "
             f"{inf['num_chains']} chains x {inf['num_warmup']} + {inf['num_samples']}")

    t0 = time.perf_counter()
    exact = exact_posterior()
    runs = {"reference": run_or_load("reference", args.outdir, None)}
    ref_D = runs["reference"][0]["posterior"]["D"].values.ravel()
    ref = {"mean": float(ref_D.mean()), "sd": float(ref_D.std())}
    for name in args.variants:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        runs[name] = run_or_load(name, args.outdir, overrides)
    rows = [row(name, dt, summary, ref) for name, (dt, summary) in runs.items()]

    print(table(rows, exact, sizes))
    diagnoses = {}
    if not args.no_diagnosis:
        for name in [*args.variants, *DIAGNOSIS_ONLY]:
            print(f"diagnosing {name} ...", file=sys.stderr, flush=True)
            diagnoses[name] = diagnose(name, overrides, sample=name in args.warm_nuts,
                                       random_starts=name in DIAGNOSIS_ONLY)
        warm_rows = warm_nuts_rows(diagnoses, ref)
        if warm_rows:
            print("\nThe sampler centred on the inverse MAP found from the forward fit "
                  "(table columns as above):\n")
            print("\n".join(table(rows[:0], exact, sizes).splitlines()[2:4] + warm_rows))
            for name, d in diagnoses.items():
                if "nuts" in d:
                    D = d["nuts"]["D"]
                    k = max(D.shape[1] // 5, 1)
                    print(f"\n{name}: mean D of the first / last {k} draws of each chain: "
                          + "; ".join(f"{c[:k].mean():.5f} / {c[-k:].mean():.5f}" for c in D)
                          + f" (from {d['warm_D']:.5f} at the mode)")
        print("\nMAP-level diagnosis (no sampling; log densities of the posterior with D "
              "unknown):\n")
        print(diagnosis_table(rows, diagnoses))
    print(f"\nFisher sd of D at the truth (noise sd known): {fisher_sd():.6f}; from mode 1 alone "
          f"{fisher_sd(modes=(1,)):.6f}, from mode 8 alone {fisher_sd(modes=(HIGH_MODE,)):.6f}")
    print("\nmode-8 sine coefficient of the posterior-mean field at t = "
          + ", ".join(f"{t:.3g}" for t in FIGURE_TIMES) + ":")
    for r in rows:
        e = r["errors"]
        idx = [int(np.argmin(np.abs(e["t"] - t))) for t in FIGURE_TIMES]
        print(f"  {r['name']:<10} " + ", ".join(f"{e['a8'][i]:+.4f}" for i in idx)
              + f"   (exact {', '.join(f'{e['a8_true'][i]:+.4f}' for i in idx)}); other "
              f"modes: rel. L2 {e['rel_l2_other']:.4f}")
    for r in rows:
        if r["warnings"]:
            print(f"\nwarnings ({r['name']}):")
            for w in r["warnings"]:
                print("  -", w)
    if not args.no_plot:
        plot(runs, HERE / "fields.png")
        print(f"\nwrote {HERE / 'fields.png'}")
    print(f"\ntotal wall time of this script: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
