"""The long fuzz campaign over hostile config and sensor files (issue "Reliability", item 5).

Runs every property of ``tests/fuzz_strategies.py`` -- the ones ``tests/test_fuzz_inputs.py``
runs a few dozen times in CI -- with many more inputs, keeps going past a failure, and prints per
property the inputs tried, how many were accepted (exit 0) and refused (exit 2), the failures and
the wall time. Exit status 1 when any input broke the contract (the first failures are printed).

    python benchmarks/fuzz_campaign.py --examples 2000
    python benchmarks/fuzz_campaign.py --examples 200 --only sensor_rows code_in_config
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzz_strategies as fz  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis.errors import UnsatisfiedAssumption  # noqa: E402

# Properties whose inputs are megabytes each get fewer of them.
SCALE = {"huge_valid_files": 0.02, "bad_runs": 0.25}


def campaign(name: str, examples: int, rng_seed: int) -> dict:
    strategy, check = fz.PROPERTIES[name]
    tally = Counter()
    failures: list[tuple[str, str]] = []

    @seed(rng_seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(example):
        try:
            outcome = check(example)
        except UnsatisfiedAssumption:  # an input the property skips: not tried
            raise
        except (Exception, SystemExit) as err:  # record and go on: a campaign counts them all
            tally["inputs"] += 1
            failures.append((repr(example)[:400], "".join(
                traceback.format_exception_only(type(err), err)).strip()[:1500]))
            return
        tally["inputs"] += 1
        tally[f"exit {outcome.rc}"] += 1

    start = time.perf_counter()
    run()
    return {"name": name, "inputs": tally["inputs"], "exit 0": tally["exit 0"],
            "exit 2": tally["exit 2"], "failures": failures,
            "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000,
                        help="inputs per property (fewer for the megabyte-sized ones)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=sorted(fz.PROPERTIES), default=None)
    args = parser.parse_args(argv)

    rows = []
    for name in args.only or fz.PROPERTIES:
        n = max(1, round(args.examples * SCALE.get(name, 1.0)))
        rows.append(campaign(name, n, args.seed))
        r = rows[-1]
        print(f"  {name}: {r['inputs']} inputs, {len(r['failures'])} failures "
              f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)

    print(f"\n{'property':<18} {'inputs':>7} {'exit 0':>7} {'exit 2':>7} {'failures':>9} "
          f"{'wall s':>7}")
    for r in rows:
        print(f"{r['name']:<18} {r['inputs']:>7} {r['exit 0']:>7} {r['exit 2']:>7} "
              f"{len(r['failures']):>9} {r['seconds']:>7.1f}")
    total = {k: sum(r[k] for r in rows) for k in ("inputs", "exit 0", "exit 2", "seconds")}
    n_fail = sum(len(r["failures"]) for r in rows)
    print(f"{'total':<18} {total['inputs']:>7} {total['exit 0']:>7} {total['exit 2']:>7} "
          f"{n_fail:>9} {total['seconds']:>7.1f}")
    for r in rows:
        for example, error in r["failures"][:3]:
            print(f"\nFAILED {r['name']}: {example}\n{error}")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
