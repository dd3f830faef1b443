"""Chains in one program: vmapped on one device against sharded over forced host devices.

bpinn runs its chains as one vmapped, compiled program. On a multi-core CPU, XLA can instead be
told to expose several host "devices" (``--xla_force_host_platform_device_count``) and the
chain axis can be sharded over them, so each core runs its own chains. This measures both on the
heat case: the time of a scan of 1000 gradient evaluations of the log density for 4 chains (the
work of one 1000-step NUTS trajectory per chain), and of the same through the NUTS method's
preconditioned leapfrog (one whitening product per step).

XLA reads the flag once, when jax starts, so each variant runs in a subprocess of its own.
Usage (repository root)::

    .venv/bin/python benchmarks/chain_devices.py [--chains 4] [--devices 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "case_studies/heat_diffusion/config.toml"
STEPS = 1000


def inner(num_chains: int, num_devices: int, repeats: int) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from bpinn.api import prepare
    from bpinn.config import load_config
    from bpinn.inference.target import make_target

    model = prepare(load_config(CONFIG))
    target = make_target(jax.random.key(0), model.model)
    keys = jax.random.split(jax.random.key(1), num_chains)
    positions = jnp.stack([target.from_constrained(model.initial_values(k)) for k in keys])
    factor = jnp.eye(target.dim) * 0.01  # stands in for the whitening matrix
    grad = jax.vmap(jax.grad(target.logdensity_fn))

    def trajectory(p):
        def step(q, _):  # a leapfrog-like update: gradient, then a whitened move
            return q + 1e-9 * (grad(q) @ factor.T) @ factor, None

        return jax.lax.scan(step, p, None, length=STEPS)[0]

    run = jax.jit(trajectory)
    if num_devices > 1:
        mesh = Mesh(np.array(jax.devices()[:num_devices]), ("chain",))
        positions = jax.device_put(positions, NamedSharding(mesh, PartitionSpec("chain")))
    t0 = time.perf_counter()
    run(positions).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(positions).block_until_ready()
        times.append(time.perf_counter() - t0)
    return {"devices": num_devices, "chains": num_chains, "first_call_s": compile_s,
            "median_s": float(np.median(times)), "min_s": float(np.min(times)),
            "jax_devices": [str(d) for d in jax.devices()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inner", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        print(json.dumps(inner(args.chains, args.inner, args.repeats)))
        return
    if args.chains % args.devices:
        parser.error(f"--chains {args.chains} must be a multiple of --devices {args.devices}")
    print(f"| layout | {STEPS} steps x {args.chains} chains, median | min | first call "
          "(compile + run) |")
    print("|---|---|---|---|")
    results = {}
    for devices in (1, args.devices):
        env = dict(os.environ)
        if devices > 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                f" --xla_force_host_platform_device_count={devices}").strip()
        out = subprocess.run([sys.executable, __file__, "--chains", str(args.chains),
                              "--repeats", str(args.repeats), "--inner", str(devices)],
                             env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(f"the {devices}-device run failed:\n{out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results[devices] = r
        layout = "vmap, one device" if devices == 1 else f"vmap sharded over {devices} devices"
        print(f"| {layout} | {r['median_s']:.3f} s | {r['min_s']:.3f} s | "
              f"{r['first_call_s']:.1f} s |", flush=True)
    ratio = results[args.devices]["median_s"] / results[1]["median_s"]
    print(f"\nsharded / one device (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
