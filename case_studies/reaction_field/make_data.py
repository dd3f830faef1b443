"""Writes sensors.csv: 25 readings of u = sin(pi x) (the solution for the true k(x), see
reaction.py) at x = 0.02 .. 0.98, with Gaussian noise of sd 0.01 (seed 0)."""

from pathlib import Path

import numpy as np

NOISE_SD, SEED, NUM = 0.01, 0, 25


def main() -> None:
    x = np.linspace(0.02, 0.98, NUM)
    u = np.sin(np.pi * x) + np.random.default_rng(SEED).normal(0.0, NOISE_SD, x.size)
    lines = ["x,u"] + [f"{a:.6f},{b:.8f}" for a, b in zip(x, u, strict=True)]
    (Path(__file__).parent / "sensors.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
