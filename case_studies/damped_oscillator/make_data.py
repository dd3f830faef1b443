"""Writes sensors.csv: 20 readings of the damped oscillator (mu = 1, k = 20, u(0) = 1,
u'(0) = 0) at t = 0.05 .. 1.0, with Gaussian noise of sd 0.02 (seed 0)."""

from pathlib import Path

import numpy as np

MU, K, NOISE_SD, SEED = 1.0, 20.0, 0.02, 0


def exact(t, mu=MU, k=K):
    d = mu / 2
    w = np.sqrt(k - d**2)
    return np.exp(-d * t) * (np.cos(w * t) + d / w * np.sin(w * t))


def main() -> None:
    t = np.linspace(0.05, 1.0, 20)
    u = exact(t) + np.random.default_rng(SEED).normal(0.0, NOISE_SD, t.size)
    lines = ["x,u"] + [f"{a:.6f},{b:.8f}" for a, b in zip(t, u, strict=True)]
    (Path(__file__).parent / "sensors.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
