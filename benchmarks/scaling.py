"""Per-gradient cost of the heat case's posterior against collocation points and network width.

For each network width and number of collocation points (the heat-diffusion case study, depth
as in its config, float64) this measures, with jit-compiled functions, after a warm-up call, as
the median of several repetitions (``jax.block_until_ready``):

- ``t_forward``: the plain network forward pass, u at all collocation points
  (``model.predict(weights, model.collocation)``: the network with its hard-constraint lift);
- ``t_logdensity``: the posterior log density at one position;
- ``t_grad``: its gradient at one position, the cost NUTS pays per leapfrog step;
- ``t_grad / t_forward``: what the PDE residual (forward-mode derivatives) and the reverse pass
  cost on top of the forward pass;
- ``t_grad4``: the gradient of 4 positions in one program (``vmap``), and per chain
  ``t_grad4 / 4``.

Then it fits the log-log slope of ``t_grad`` against the number of collocation points for each
width, by least squares on the points with at least 1000 collocation points (where fixed
overheads no longer dominate) and on all points: a slope <= 1 means the cost grows no worse
than linearly. Device-agnostic: it runs unchanged on a CPU or a GPU (``jax.devices()`` is
printed).

Usage, from the repository root:

    .venv/bin/python benchmarks/scaling.py                       # the full sweep
    .venv/bin/python benchmarks/scaling.py --widths 16 --points 100 1000 --repeats 5
    .venv/bin/python benchmarks/scaling.py --out results/scaling.json

Repetitions are capped by a time budget per measurement (``--budget``, seconds), never below 3,
so the largest cases (width 128, 10,000 points) take fewer repetitions rather than being
dropped.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from bpinn.api import prepare  # noqa: E402
from bpinn.config import load_config  # noqa: E402
from bpinn.inference.target import make_target  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "case_studies" / "heat_diffusion" / "config.toml"
WIDTHS = (16, 32, 64, 128)
POINTS = (100, 300, 1000, 3000, 10000)
NUM_CHAINS = 4
MIN_REPEATS = 3
FIT_FROM = 1000  # collocation points from which the "large n" slope is fitted


def build(width: int, num_collocation: int):
    """The heat case's B-PINN with ``[model] width`` and ``num_collocation`` replaced."""
    base = load_config(CONFIG)
    tables = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.raw.items()}
    tables["model"] = {**tables["model"], "width": width, "num_collocation": num_collocation}
    return prepare(load_config(CONFIG, tables=tables))


def timed(fn, *args, repeats: int, budget: float) -> tuple[float, float, float, int]:
    """(first call incl. compile, median and minimum of the repetitions, repetitions run), in
    seconds. On a shared machine the minimum is the least disturbed estimate.

    Repetitions stop early once ``budget`` seconds are spent, but never below ``MIN_REPEATS``.
    """
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times, spent = [], 0.0
    while len(times) < repeats and (len(times) < MIN_REPEATS or spent < budget):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
    return first, statistics.median(times), min(times), len(times)


def measure(width: int, num_collocation: int, *, repeats: int, budget: float) -> dict:
    model = build(width, num_collocation)
    target = make_target(jax.random.key(0), model.model)
    keys = jax.random.split(jax.random.key(1), NUM_CHAINS)
    starts = jnp.stack([target.from_constrained(model.initial_values(k)) for k in keys])
    position = starts[0]
    weights = target.constrained(position)["weights"]
    points = jnp.asarray(model.collocation)

    forward = jax.jit(model.predict)
    logdensity = jax.jit(target.logdensity_fn)
    grad = jax.jit(jax.grad(target.logdensity_fn))
    grad4 = jax.jit(jax.vmap(jax.grad(target.logdensity_fn)))

    checks = {
        "logdensity_finite": bool(jnp.isfinite(logdensity(position))),
        "grad_finite": bool(jnp.all(jnp.isfinite(grad(position)))),
    }
    out = {"width": width, "num_collocation": int(points.shape[0]), "dim": target.dim,
           "num_weights": model.num_weights, **checks}
    for name, fn, args in (("forward", forward, (weights, points)),
                           ("logdensity", logdensity, (position,)),
                           ("grad", grad, (position,)),
                           ("grad4", grad4, (starts,))):
        first, median, fastest, n = timed(fn, *args, repeats=repeats, budget=budget)
        out[f"t_{name}"] = median
        out[f"min_{name}"] = fastest
        out[f"first_{name}"] = first
        out[f"repeats_{name}"] = n
    out["grad_over_forward"] = out["t_grad"] / out["t_forward"]
    out["grad_over_logdensity"] = out["t_grad"] / out["t_logdensity"]
    out["t_grad4_per_chain"] = out["t_grad4"] / NUM_CHAINS
    return out


def slope(rows: list[dict], minimum: int = 0, key: str = "t_grad") -> float | None:
    """Least-squares slope of log ``key`` (t_grad: medians; min_grad: minima) against log
    num_collocation, on the rows with at least ``minimum`` points (None with < 2 of them)."""
    pts = [(r["num_collocation"], r[key]) for r in rows if r["num_collocation"] >= minimum]
    if len({n for n, _ in pts}) < 2:
        return None
    n, t = np.log(np.array(pts, dtype=float)).T
    return float(np.polyfit(n, t, 1)[0])


def _ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| width | points | dim | t_forward ms | t_logdensity ms | t_grad ms | min grad ms "
        "| grad/forward | t_grad4 ms | t_grad4/4 ms | grad µs/point | repeats (grad) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['width']} | {r['num_collocation']} | {r['dim']} | {_ms(r['t_forward'])} "
            f"| {_ms(r['t_logdensity'])} | {_ms(r['t_grad'])} | {_ms(r['min_grad'])} "
            f"| {r['grad_over_forward']:.1f} "
            f"| {_ms(r['t_grad4'])} | {_ms(r['t_grad4_per_chain'])} "
            f"| {1e6 * r['t_grad'] / r['num_collocation']:.2f} | {r['repeats_grad']} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--points", type=int, nargs="+", default=list(POINTS),
                        help="numbers of collocation points")
    parser.add_argument("--repeats", type=int, default=15,
                        help="repetitions per measurement (median reported; at least 3)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds of repetitions per measurement before stopping early")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "scaling.json")
    args = parser.parse_args(argv)
    repeats = max(MIN_REPEATS, args.repeats)

    print(f"jax {jax.__version__}, devices: {jax.devices()}, backend: {jax.default_backend()}",
          flush=True)
    t_start = time.perf_counter()
    rows = []
    for width in args.widths:
        for n in args.points:
            row = measure(width, n, repeats=repeats, budget=args.budget)
            rows.append(row)
            print(f"width {width:4d}, points {row['num_collocation']:6d}: forward "
                  f"{_ms(row['t_forward'])} ms, logdensity {_ms(row['t_logdensity'])} ms, "
                  f"grad {_ms(row['t_grad'])} ms (x{row['grad_over_forward']:.1f}), 4-chain "
                  f"grad {_ms(row['t_grad4'])} ms", flush=True)
    slopes = {}
    for width in args.widths:
        mine = [r for r in rows if r["width"] == width]
        slopes[str(width)] = {f"from_{FIT_FROM}": slope(mine, FIT_FROM), "all": slope(mine),
                              f"min_from_{FIT_FROM}": slope(mine, FIT_FROM, "min_grad"),
                              "min_all": slope(mine, 0, "min_grad")}
    wall = time.perf_counter() - t_start

    print()
    print(table(rows))
    print()
    print("log-log slope of t_grad against collocation points (<= 1: no worse than linear):")
    print(f"| width | median, points >= {FIT_FROM} | median, all points "
          f"| min, points >= {FIT_FROM} | min, all points |")
    print("|---|---|---|---|---|")
    for width, s in slopes.items():
        def show(v):
            return "n/a" if v is None else f"{v:.2f}"
        print(f"| {width} | {show(s[f'from_{FIT_FROM}'])} | {show(s['all'])} "
              f"| {show(s[f'min_from_{FIT_FROM}'])} | {show(s['min_all'])} |")
    print(f"\nwall {wall:.0f} s")

    result = {
        "config": str(CONFIG.relative_to(ROOT)),
        "devices": [str(d) for d in jax.devices()],
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "repeats": repeats,
        "budget_s": args.budget,
        "num_chains_vmapped": NUM_CHAINS,
        "rows": rows,
        "slopes": slopes,
        "wall_s": wall,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")
    return result


if __name__ == "__main__":
    main()
