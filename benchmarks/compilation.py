"""What compilation costs a small run, and what the on-disk compilation cache gives back.

A small B-PINN run spends most of its time compiling: the MAP fit, the implied-prior
measurement and the sampler are each a compiled program, and every array operation run outside
one is compiled on its own. ``bpinn.utils.configure_jax`` keeps compiled programs on disk
(``BPINN_COMPILATION_CACHE``), so the second run of a problem (a rerun, a resumed run, the next
dataset of a calibration, the next test) loads them instead.

This runs ``bpinn run`` on the heat case at the tests' reduced size three times, each in a
fresh process, side by side: with the cache switched off, into an empty cache, and again from
that cache. It reports the wall time of each process and the ``total_s`` the run itself timed.

Usage (repository root)::

    .venv/bin/python benchmarks/compilation.py [--repeats 2] [--full]

``--full`` runs the case as shipped (4 chains, 800 draws) instead of the reduced size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASE = Path(__file__).resolve().parent.parent / "case_studies" / "heat_diffusion"
REDUCED = {  # the size of tests/test_api.py's run
    "width": 8, "num_collocation": 32, "num_chains": 2, "num_warmup": 30, "num_samples": 20,
    "max_tree_depth": 4,
}
EXTRA_INFERENCE = "map_adam_steps = 300\nmap_lbfgs_steps = 20\n"


def reduced_config(text: str) -> str:
    for key, value in REDUCED.items():
        text, count = re.subn(rf"^{key} = \S+", f"{key} = {value}", text, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"{CASE / 'config.toml'}: expected one '{key} = ...' line")
    return text.replace("[inference]\n", "[inference]\n" + EXTRA_INFERENCE, 1)


def timed_run(config: Path, outdir: Path, cache: str) -> dict:
    env = {**os.environ, "BPINN_COMPILATION_CACHE": cache}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bpinn.cli", "run", str(config), "-o", str(outdir), "--overwrite",
         "--quiet", "--no-report"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 3):
        raise SystemExit(f"bpinn run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    summary = json.loads((outdir / "summary.json").read_text())
    return {"wall_s": round(wall, 1),
            "total_s": round(summary["timing"]["total_s"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2,
                        help="rounds of (off, empty cache, warm cache); default 2")
    parser.add_argument("--full", action="store_true", help="the case as shipped")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bpinn-compilation-") as tmp:
        root = Path(tmp)
        for name in ("sensors.csv", "initial.py"):
            shutil.copy(CASE / name, root / name)
        text = (CASE / "config.toml").read_text()
        config = root / "config.toml"
        config.write_text(text if args.full else reduced_config(text))
        rows = []
        for r in range(args.repeats):
            cache = root / f"cache{r}"
            row = {"off": timed_run(config, root / "out", "off"),
                   "empty cache": timed_run(config, root / "out", str(cache)),
                   "warm cache": timed_run(config, root / "out", str(cache))}
            size = sum(f.stat().st_size for f in cache.iterdir())
            row["cache"] = {"files": len(list(cache.iterdir())), "MB": round(size / 1e6, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nheat case, {'as shipped' if args.full else 'reduced'}; "
          f"{os.cpu_count()} CPUs; wall s (the run's own total_s)")
    print("| round | cache off | empty cache | warm cache | warm / off |")
    print("|---|---|---|---|---|")
    for r, row in enumerate(rows):
        cells = [f"{row[k]['wall_s']} ({row[k]['total_s']})"
                 for k in ("off", "empty cache", "warm cache")]
        ratio = row["warm cache"]["wall_s"] / row["off"]["wall_s"]
        print(f"| {r + 1} | {' | '.join(cells)} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
