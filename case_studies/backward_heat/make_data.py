"""Writes sensors.csv: u of the backward heat problem (backward_heat.py, D = 0.02, the initial
value u0_true) read at 15 positions x = 1/16 .. 15/16 at t = 0.05 and t = 0.1, with Gaussian
noise of sd 0.01 (seed 0).

    .venv/bin/python case_studies/backward_heat/make_data.py
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
D_TRUE, NOISE_SD, SEED = 0.02, 0.01, 0
POSITIONS, TIMES = np.arange(1, 16) / 16, (0.05, 0.1)

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(HERE))  # the model module beside this script
import backward_heat  # noqa: E402


def main() -> None:
    x, t = (a.ravel() for a in np.meshgrid(POSITIONS, TIMES, indexing="ij"))
    points = jnp.stack([jnp.asarray(x), jnp.asarray(t)], axis=1)
    truth = {"u0": backward_heat.u0_true, "D": jnp.asarray(D_TRUE)}
    u = np.asarray(backward_heat.forward(points, truth))
    u = u + np.random.default_rng(SEED).normal(0.0, NOISE_SD, u.size)
    lines = ["x,t,u"] + [f"{a:.6f},{b:.6f},{c:.8f}" for a, b, c in zip(x, t, u, strict=True)]
    (HERE / "sensors.csv").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'sensors.csv'}: {u.size} readings at t = {TIMES}, noise sd {NOISE_SD} "
          f"(seed {SEED}); u {u.min():.3f}..{u.max():.3f}")


if __name__ == "__main__":
    main()
