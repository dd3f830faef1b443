"""Peak memory and time of the dense Hessian behind NUTS's preconditioner: ``jax.hessian`` (all
tangents at once) against ``bpinn.inference.target.dense_hessian`` (blocks of Hessian-vector
products), on the Burgers case study's network (2-32-32-32-1, 2,241 weights, 256 collocation
points, derivatives up to u_xx).

Each variant runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own.

Usage, from the repository root:

    .venv/bin/python benchmarks/hessian_memory.py [--chains 1] [--blocks 8,32,128]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "case_studies" / "burgers_shock" / "config.toml"

CHILD = """
import json, resource, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
from bpinn.api import prepare
from bpinn.config import load_config
from bpinn.inference.target import dense_hessian, make_target

kind, block, chains = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = prepare(load_config(sys.argv[4]))
target = make_target(jax.random.key(0), model.model)
starts = jnp.stack([target.from_constrained(model.initial_values(k))
                    for k in jax.random.split(jax.random.key(1), chains)])
if kind == "jax":
    hess = jax.jit(jax.vmap(jax.hessian(target.logdensity_fn)))
else:
    hess = jax.jit(jax.vmap(lambda x: dense_hessian(target.logdensity_fn, x, block_size=block)))
t0 = time.perf_counter()
h = jax.block_until_ready(hess(starts))
seconds = time.perf_counter() - t0
print(json.dumps({"kind": kind, "block": block, "chains": chains, "dim": int(target.dim),
                  "seconds_incl_compile": seconds, "finite": bool(jnp.all(jnp.isfinite(h))),
                  "checksum": float(jnp.sum(jnp.abs(h))),
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def measure(kind: str, block: int, chains: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(block), str(chains),
                          str(CONFIG)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"kind": kind, "block": block, "chains": chains,
                "error": out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--blocks", default="8,32,128")
    args = parser.parse_args(argv)
    rows = [measure("jax", 0, args.chains)]
    rows += [measure("blocks", int(b), args.chains) for b in args.blocks.split(",")]
    print(f"machine: {platform.machine()} {platform.system()}, python {platform.python_version()}")
    print("| method | block | chains | weights+ | peak RSS (GB) | seconds (incl. compile) | "
          "sum abs(H) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['kind']} | {r['block']} | {r['chains']} | - | failed: {r['error']} | - |"
                  " - |")
            continue
        print(f"| {r['kind']} | {r['block'] or '-'} | {r['chains']} | {r['dim']} | "
              f"{r['peak_rss_gb']:.2f} | {r['seconds_incl_compile']:.1f} | "
              f"{r['checksum']:.6e} |")


if __name__ == "__main__":
    main()
