"""Writes sensors.csv: the velocity (u, v) of Kovasznay's flow (kovasznay.py, nu = 0.025) read
at 60 points drawn uniformly over the domain, each component with Gaussian noise of sd 0.01
(seed 0). The pressure is not read.

    .venv/bin/python case_studies/kovasznay_flow/make_data.py
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
LOWER, UPPER = (-0.5, -0.5), (1.0, 1.5)
NUM, NOISE_SD, SEED = 60, 0.01, 0

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(HERE))  # the model module beside this script
import kovasznay  # noqa: E402


def readings():
    """(points (NUM, 2), velocity readings (NUM, 2)): points first, then the noise, from one
    generator."""
    rng = np.random.default_rng(SEED)
    points = rng.uniform(LOWER, UPPER, (NUM, 2))
    flow = np.asarray(jax.vmap(kovasznay.exact)(jnp.asarray(points)))
    return points, flow[:, :2] + rng.normal(0.0, NOISE_SD, (NUM, 2))


def main() -> None:
    points, uv = readings()
    lines = ["x,y,u,v"] + [f"{a:.6f},{b:.6f},{c:.8f},{d:.8f}"
                           for (a, b), (c, d) in zip(points, uv, strict=True)]
    (HERE / "sensors.csv").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'sensors.csv'}: {NUM} points, u and v each with noise sd {NOISE_SD} "
          f"(seed {SEED}); the pressure is not read")


if __name__ == "__main__":
    main()
