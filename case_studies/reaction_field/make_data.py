"""Writes sensors.csv: 25 readings of u = sin(pi x) (the solution for the true k(x), see
reaction.py) at x = 0.02 .. 0.98, with Gaussian noise of sd 0.01 (seed 0); and wells.csv: two
direct readings of log k at x = 0.05 and 0.95, where u is too small to inform k, with Gaussian
noise of sd 0.1 on log k (seed 1), for config_wells.toml."""

from pathlib import Path

import numpy as np

NOISE_SD, SEED, NUM = 0.01, 0, 25
WELLS_X, WELLS_NOISE_SD, WELLS_SEED = (0.05, 0.95), 0.1, 1


def k_true(x):
    """reaction.py's true k, in NumPy (this script runs without jax)."""
    return 0.1 + np.exp(-0.5 * ((x - 0.5) / 0.15) ** 2)


def main() -> None:
    x = np.linspace(0.02, 0.98, NUM)
    u = np.sin(np.pi * x) + np.random.default_rng(SEED).normal(0.0, NOISE_SD, x.size)
    lines = ["x,u"] + [f"{a:.6f},{b:.8f}" for a, b in zip(x, u, strict=True)]
    (Path(__file__).parent / "sensors.csv").write_text("\n".join(lines) + "\n")
    wells = np.asarray(WELLS_X)
    log_k = np.log(k_true(wells)) + np.random.default_rng(WELLS_SEED).normal(
        0.0, WELLS_NOISE_SD, wells.size)
    lines = ["x,log_k"] + [f"{a:.6f},{b:.8f}" for a, b in zip(wells, log_k, strict=True)]
    (Path(__file__).parent / "wells.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
