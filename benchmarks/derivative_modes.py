"""Per-gradient cost of high derivatives of a PINN: nested forward, Taylor and nested reverse mode.

A PDE residual with an n-th derivative (u_xx for diffusion, u_xxx for KdV, u_xxxx for beams and
Kuramoto-Sivashinsky) is differentiated again, with respect to the weights, at every leapfrog
step. This measures that cost for a tanh MLP (2 inputs, two hidden layers) at 1024 points, as
the fastest of repeated jit-compiled value-and-gradients of ``sum(d^n u / dx^n)^2`` over the
points (the modes timed in turn, round-robin), in float64, for

- ``forward``: the plain network (u itself), the unit of cost;
- ``nested_jvp``: n nested forward-mode passes, what ``bpinn.models.pdes.derivative`` does;
- ``jet``: Taylor mode (``jax.experimental.jet``), one pass carrying n Taylor coefficients;
- ``nested_grad``: n nested reverse-mode passes (``jax.grad`` of ``jax.grad`` ...), what a
  PINN written with autograd-style derivatives does.

Every mode's loss is checked against the others (relative difference below 1e-9) before it is
timed. Usage, from the repository root:

    .venv/bin/python benchmarks/derivative_modes.py
    .venv/bin/python benchmarks/derivative_modes.py --widths 32 --orders 2 4 --repeats 20
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import jet

jax.config.update("jax_enable_x64", True)

from bpinn.models.pdes import derivative  # noqa: E402  (after enabling float64)

NUM_POINTS = 1024  # enough that a gradient takes milliseconds: fixed overheads do not decide


def mlp(params, z):
    h = z
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = params[-1]
    return (h @ w + b)[0]


def init(key, sizes):
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (fan_in, fan_out)) / np.sqrt(fan_in),
                       0.1 * jax.random.normal(key, (fan_out,))))
    return params


def taylor_mode(f, z, order):
    """d^n f / dx^n at z by one jet pass along x (jet's coefficients are derivatives)."""
    e = jnp.zeros_like(z).at[0].set(1.0)
    series = [e] + [jnp.zeros_like(z)] * (order - 1)
    _, coefficients = jet.jet(f, (z,), (series,))
    return coefficients[order - 1]


def nested_reverse(f, z, order):
    g = f
    for _ in range(order):
        g = (lambda h: lambda q: jax.grad(h)(q)[0])(g)
    return g(z)


def losses(points, order):
    def pointwise(deriv):
        return lambda p: jnp.sum(jax.vmap(lambda z: deriv(lambda q: mlp(p, q), z)) (points) ** 2)

    return {
        "forward": lambda p: jnp.sum(jax.vmap(lambda z: mlp(p, z))(points) ** 2),
        "nested_jvp": pointwise(lambda f, z: derivative(f, z, *([0] * order))),
        "jet": pointwise(lambda f, z: taylor_mode(f, z, order)),
        "nested_grad": pointwise(lambda f, z: nested_reverse(f, z, order)),
    }


def fastest_times(fns: dict, params, repeats: int) -> dict:
    """Loss value and fastest time of each function, timed round-robin: on a shared machine
    interference then falls on every mode alike, and the minimum is the least disturbed."""
    values = {}
    for name, fn in fns.items():
        value, grad = fn(params)
        jax.block_until_ready(grad)
        values[name] = float(value)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(params)[1])
            times[name].append(time.perf_counter() - start)
    return {name: (values[name], min(times[name])) for name in fns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--points", type=int, default=NUM_POINTS)
    args = parser.parse_args()
    print(f"# {platform.platform()}, {jax.devices()}, jax {jax.__version__}, "
          f"{args.points} points, float64, fastest of {args.repeats}, round-robin")
    print("| width | order | forward (ms) | nested jvp (x forward) | jet (x forward) | "
          "nested grad (x forward) | jet / nested jvp |")
    print("|---|---|---|---|---|---|---|")
    points = jax.random.uniform(jax.random.key(1), (args.points, 2))
    for width in args.widths:
        params = init(jax.random.key(0), [2, width, width, 1])
        for order in args.orders:
            fns = {name: jax.jit(jax.value_and_grad(loss))
                   for name, loss in losses(points, order).items()}
            results = fastest_times(fns, params, args.repeats)
            reference = results["nested_jvp"][0]
            for name in ("jet", "nested_grad"):
                if abs(results[name][0] - reference) > 1e-9 * abs(reference):
                    raise SystemExit(f"{name} disagrees with nested_jvp at width {width}, order "
                                     f"{order}: {results[name][0]!r} vs {reference!r}")
            t = {name: seconds for name, (_, seconds) in results.items()}
            print(f"| {width} | {order} | {1e3 * t['forward']:.3f} | "
                  f"{t['nested_jvp'] / t['forward']:.1f} | {t['jet'] / t['forward']:.1f} | "
                  f"{t['nested_grad'] / t['forward']:.1f} | {t['jet'] / t['nested_jvp']:.2f} |")


if __name__ == "__main__":
    main()
