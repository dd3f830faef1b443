"""Sensor readings for the steady nonlinear diffusion-reaction case (problem.py): u at 8
equispaced interior points with Gaussian noise of sd 0.01, seed 0.

Usage: python case_studies/diffusion_reaction_tanh/make_data.py   (writes sensors.csv here)
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # problem.py computes with jax.numpy

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from problem import exact_u  # noqa: E402

NOISE_SD, SEED = 0.01, 0
SENSORS_X = np.linspace(-0.7, 0.7, 10)[1:-1]


def main() -> None:
    noise = np.random.default_rng(SEED).normal(0.0, NOISE_SD, SENSORS_X.size)
    u = np.asarray(exact_u(SENSORS_X)) + noise
    lines = ["x,u"] + [f"{x:.6f},{v:.8f}" for x, v in zip(SENSORS_X, u, strict=True)]
    (HERE / "sensors.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
