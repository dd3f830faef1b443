"""Strong vs weak residual on a solution whose second derivative jumps (kinked_poisson).

The exact posterior of k is a one-dimensional integral: u = w / k with w known in closed form
(make_data.py), Gaussian noise of known sd and a LogNormal(0, 1) prior, integrated on a fine
grid of k. Beside it: the package's reference method (spectral solver in place of the
network), and the B-PINN with the strong residual and with the weak residual (16 and 32 sine
test functions). For each: the posterior of k, its shift from the exact posterior in exact sds,
whether the truth is inside the 95% interval, R-hat, divergences, the relative L2 error of the
posterior-mean field against the exact u, and the wall time.

Usage, from the repository root:

    .venv/bin/python case_studies/kinked_poisson/analyse.py [--out results/kinked_poisson]
        [--variants strong,weak_16] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import lognorm

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.toml"
_spec = importlib.util.spec_from_file_location("kinked_make_data", HERE / "make_data.py")
make_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_data)

# variant -> ([model] keys to change, method)
VARIANTS = {
    "reference": ({}, "reference"),
    "strong": ({}, "nuts"),
    "weak_16": ({"residual_form": "weak", "num_test_functions": 16}, "nuts"),
    "weak_32": ({"residual_form": "weak", "num_test_functions": 32}, "nuts"),
    # 128 strong residuals of sd s pin a mode's amplitude to s * sqrt(2 / 128) = s / 8: the
    # weak residual with that sd carries the same information about each mode.
    "weak_16_matched": ({"residual_form": "weak", "num_test_functions": 16,
                         "residual_noise": 0.05 / 8}, "nuts"),
    "weak_32_matched": ({"residual_form": "weak", "num_test_functions": 32,
                         "residual_noise": 0.05 / 8}, "nuts"),
}
QUICK = {"num_warmup": 100, "num_samples": 150, "max_tree_depth": 7, "map_adam_steps": 2000,
         "map_lbfgs_steps": 300}


def exact_posterior(csv_path: Path = HERE / "sensors.csv") -> dict:
    """Mean, sd and 95% interval of k from a grid over k (exact up to the grid)."""
    data = np.genfromtxt(csv_path, delimiter=",", names=True)
    w = make_data.exact_u(data["x"], k=1.0)
    k = np.linspace(0.45, 0.55, 20001)
    resid = data["u"][None, :] - w[None, :] / k[:, None]
    log_post = (-0.5 * np.sum(resid**2, axis=1) / make_data.NOISE_SD**2
                + lognorm.logpdf(k, 1.0, scale=1.0))
    p = np.exp(log_post - log_post.max())
    p /= p.sum()
    cdf = np.cumsum(p)
    mean = float(np.sum(p * k))
    if p[0] > 1e-12 or p[-1] > 1e-12:
        raise RuntimeError("the grid of k does not cover the posterior; widen it")
    return {"mean": mean, "sd": float(np.sqrt(np.sum(p * (k - mean) ** 2))),
            "q2.5": float(np.interp(0.025, cdf, k)), "q97.5": float(np.interp(0.975, cdf, k))}


def variant_tables(name: str) -> dict:
    """The config's tables with the variant's [model] changes."""
    import tomllib

    tables = tomllib.loads(CONFIG.read_text())
    tables["model"].update(VARIANTS[name][0])
    return tables


def field_error(dt) -> float:
    """Relative L2 error of the posterior-mean u on the results' grid."""
    pred = dt["predictions"]
    x = pred["field_x"].values
    u = pred["u"].values.mean(axis=(0, 1))
    exact = make_data.exact_u(x)
    return float(np.linalg.norm(u - exact) / np.linalg.norm(exact))


def run_variant(name: str, out: Path, overrides: dict) -> dict:
    from bpinn.api import run

    t0 = time.perf_counter()
    result = run(CONFIG, outdir=out / name, method=VARIANTS[name][1], overrides=overrides,
                 tables=variant_tables(name), progress=True)
    s = result.summary
    k = s["parameters"]["k"]
    return {"variant": name, "mean": k["mean"], "sd": k["sd"], "q2.5": k["q2.5"],
            "q97.5": k["q97.5"], "r_hat": k["r_hat"],
            "divergences": s["diagnostics"].get("divergences"),
            "field_error": field_error(result.datatree), "wall_s": time.perf_counter() - t0}


def table(rows: list[dict], exact: dict) -> str:
    lines = ["| variant | k mean ± sd | 95% interval | shift (exact sds) | sd / exact sd | "
             "truth in 95% | R-hat | divergences | field rel. L2 error | wall s |",
             "|" + "---|" * 10,
             f"| exact (grid) | {exact['mean']:.5f} ± {exact['sd']:.5f} | [{exact['q2.5']:.4f}, "
             f"{exact['q97.5']:.4f}] | 0 | 1 | "
             f"{'yes' if exact['q2.5'] <= make_data.TRUE_K <= exact['q97.5'] else 'no'} | - | - "
             "| 0 | - |"]
    for r in rows:
        inside = r["q2.5"] <= make_data.TRUE_K <= r["q97.5"]
        lines.append(
            f"| {r['variant']} | {r['mean']:.5f} ± {r['sd']:.5f} | [{r['q2.5']:.4f}, "
            f"{r['q97.5']:.4f}] | {(r['mean'] - exact['mean']) / exact['sd']:+.2f} | "
            f"{r['sd'] / exact['sd']:.2f} | {'yes' if inside else 'no'} | "
            f"{'-' if r['r_hat'] is None else format(r['r_hat'], '.3f')} | "
            f"{'-' if r['divergences'] is None else r['divergences']} | "
            f"{r['field_error']:.2e} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/kinked_poisson"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="reduced sizes (a smoke run)")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)}")
    overrides = QUICK if args.quick else {}
    exact = exact_posterior()
    rows = []
    for name in names:
        print(f"== {name}", flush=True)
        rows.append(run_variant(name, args.out, overrides))
        (args.out / "rows.json").write_text(json.dumps({"exact": exact, "rows": rows}, indent=1))
    print(table(rows, exact))


if __name__ == "__main__":
    main()
