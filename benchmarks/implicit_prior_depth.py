"""Cost and value of the implied-prior measurement against the tree depth of its sampler.

On the tests' reduced heat case (tests/conftest.py: the shipped network and collocation, 2
chains, 200 warmup and 200 draws, the MAP of the method tests), ``implicit_prior.measure`` is
repeated for each maximum tree depth and seed; each line prints the slope d log Z / d log D,
its Monte Carlo error and the wall time (the first seed of a depth includes compilation).

    .venv/bin/python benchmarks/implicit_prior_depth.py 6,8,10 0,1,2,3,4,5

The spread of the slope over seeds at one depth is its real Monte Carlo error; a shift of the
mean between depths is what a capped depth would cost.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import jax

from bpinn.utils import configure_jax

configure_jax()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import METHOD_TEST_INFERENCE, HeatCase  # noqa: E402

from bpinn.api import method_context, prepare  # noqa: E402
from bpinn.config import load_config  # noqa: E402
from bpinn.inference import implicit_prior  # noqa: E402
from bpinn.inference.marginal import output_marginal  # noqa: E402


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    depths, seeds = ([int(v) for v in arg.split(",")] for arg in sys.argv[1:])
    case = HeatCase(Path(tempfile.mkdtemp()))
    config = load_config(case(inference=METHOD_TEST_INFERENCE))
    model = prepare(config)
    target_key, init_key = jax.random.split(jax.random.key(config.inference.seed))
    ctx = method_context(model, config.inference, target_key, init_key)
    marginal, _ = output_marginal(ctx.model, ctx.target, "auto", jax.random.key(3))
    for depth in depths:
        settings = dataclasses.replace(ctx.settings, max_tree_depth=depth)
        for seed in seeds:
            t0 = time.perf_counter()
            implied = implicit_prior.measure(
                jax.random.key(seed), ctx.model, ctx.target, ctx.best_map(), settings,
                marginal=marginal, damping=ctx.weight_damping())
            print(f"depth {depth} seed {seed}: slope {implied.slope[0]:.1f} +- "
                  f"{implied.mcse[0]:.1f}, {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
