"""Generate ``sensors.csv`` for the Burgers-shock case study.

Truth: viscous Burgers ``u_t + u u_x = nu u_xx`` on ``x in [-1, 1]``, ``t in [0, 1]``,
``u(x, 0) = -sin(pi x)``, ``u(-1, t) = u(1, t) = 0``, ``nu = 0.02`` (not the benchmark's
0.01 / pi: see README, the reference solver's fixed grid does not resolve that front). The field
is the package's method-of-lines solver (``bpinn.reference.mol.burgers_mol``) on a fine grid,
``FINE_CELLS`` cells and ``FINE_STEPS`` steps (32 and 20 times the reference solver's 128 and
400). Sensors: 8 positions (4 of them within 0.15 of the front at x = 0) x 6 times, Gaussian
noise sd 0.03, fixed seed. Deterministic: same seed, same file. Run from the repository root::

    python case_studies/burgers_shock/make_data.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
try:
    from bpinn.data import write_readings_csv
    from bpinn.reference.mol import burgers_mol
except ImportError:  # a source checkout without an installed bpinn
    sys.path.insert(0, str(HERE.parents[1]))
    from bpinn.data import write_readings_csv
    from bpinn.reference.mol import burgers_mol

jax.config.update("jax_enable_x64", True)

TRUE_NU = 0.02
NOISE_SD = 0.03
POSITIONS = (-0.7, -0.4, -0.15, -0.05, 0.05, 0.15, 0.4, 0.7)
TIMES = (0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
SEED = 20261127
FINE_CELLS, FINE_STEPS = 4096, 8000
OUTPUT = HERE / "sensors.csv"


def true_field(points, nu: float = TRUE_NU, num_cells: int = FINE_CELLS,
               num_steps: int = FINE_STEPS) -> np.ndarray:
    """u at ``points`` (n, 2) with columns (x, t), by the method of lines."""
    return np.asarray(burgers_mol(np.asarray(points, dtype=np.float64), nu,
                                  lambda x: -jnp.sin(jnp.pi * x), interval=(-1.0, 1.0),
                                  time=(0.0, 1.0), num_cells=num_cells, num_steps=num_steps))


def sensor_points() -> tuple[list[str], np.ndarray]:
    names, pts = [], []
    for i, x in enumerate(POSITIONS):
        for t in TIMES:
            names.append(f"S{i + 1}")
            pts.append((x, t))
    return names, np.array(pts)


def make_readings(seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy readings ``(sensor, x, t, u)``."""
    names, pts = sensor_points()
    u_true = true_field(pts)
    rng = np.random.default_rng(seed)
    u_obs = u_true + rng.normal(0.0, NOISE_SD, size=u_true.shape)
    return [(s, float(x), float(t), float(u))
            for s, (x, t), u in zip(names, pts, u_obs, strict=True)]


def main() -> None:
    rows = make_readings()
    write_readings_csv(OUTPUT, rows)
    print(f"wrote {len(rows)} readings to {OUTPUT}")


if __name__ == "__main__":
    main()
