"""Sensor readings for the kinked-Poisson case: -k u'' = f on [0, 1], u(0) = u(1) = 0, with the
source f = 1 on [0.3, 0.7] and 0 elsewhere, true k = 0.5.

u is piecewise quadratic and linear: continuous with a continuous slope, but u'' jumps at 0.3
and 0.7. From the Green's function of -w'' = f with w(0) = w(1) = 0,
w(x) = (1 - x) * int_0^x s f(s) ds + x * int_x^1 (1 - s) f(s) ds, and u = w / k.

Usage: python case_studies/kinked_poisson/make_data.py   (writes sensors.csv beside this file)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TRUE_K, NOISE_SD, SEED = 0.5, 0.002, 0
A, B = 0.3, 0.7  # as in source.py
SENSORS_X = np.linspace(0.05, 0.95, 15)


def exact_u(x, k=TRUE_K):
    """The exact solution for conductivity ``k`` at positions ``x``."""
    x = np.asarray(x, dtype=float)
    m = np.clip(x, A, B)
    below = (m**2 - A**2) / 2  # int_0^x s f(s) ds
    above = ((1 - m) ** 2 - (1 - B) ** 2) / 2  # int_x^1 (1 - s) f(s) ds
    return ((1 - x) * below + x * above) / k


def readings() -> np.ndarray:
    noise = np.random.default_rng(SEED).normal(0.0, NOISE_SD, SENSORS_X.size)
    return exact_u(SENSORS_X) + noise


def main() -> None:
    lines = ["x,u"] + [f"{x:.4f},{u:.8f}" for x, u in zip(SENSORS_X, readings(), strict=True)]
    (HERE / "sensors.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
