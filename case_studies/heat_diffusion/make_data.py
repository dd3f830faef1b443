"""Generate ``sensors.csv`` for the heat-diffusion case study.

Truth: ``u_t = D u_xx`` on ``x in [0, 1]``, ``t in [0, 1]``, ``u(0, t) = u(1, t) = 0``,
``u(x, 0) = sin(pi x) + 0.5 sin(3 pi x)``, with ``D = 0.07``. Six sensors at
``x = 0.15, 0.30, ..., 0.90`` are read at ``t = 0.1, 0.2, ..., 0.8`` (48 readings) with
Gaussian noise of standard deviation 0.02. Deterministic: same seed, same file.

Run from the repository root::

    python case_studies/heat_diffusion/make_data.py

The CSV (columns ``sensor,x,t,u``, one row per reading, sensor-major) is written next to
this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
try:
    from bpinn.data import write_readings_csv
    from bpinn.reference.heat import heat_sine_series
except ImportError:
    # Running as a script from a source checkout without an installed bpinn.
    sys.path.insert(0, str(HERE.parents[1]))
    from bpinn.data import write_readings_csv
    from bpinn.reference.heat import heat_sine_series

jax.config.update("jax_enable_x64", True)

TRUE_D = 0.07
INITIAL_COEFFICIENTS = (1.0, 0.0, 0.5)  # sin(pi x) + 0.5 sin(3 pi x)
SENSOR_X = (0.15, 0.30, 0.45, 0.60, 0.75, 0.90)
READ_TIMES = tuple(k / 10 for k in range(1, 9))  # 0.1 .. 0.8, exact decimal reprs
NOISE_SD = 0.02
SEED = 20261127
OUTPUT = HERE / "sensors.csv"


def make_readings(seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy sensor readings as rows ``(sensor, x, t, u)``, sensor-major."""
    rows = [(f"S{i + 1}", x, t) for i, x in enumerate(SENSOR_X) for t in READ_TIMES]
    x = np.array([r[1] for r in rows])
    t = np.array([r[2] for r in rows])
    u_true = np.asarray(heat_sine_series(x, t, TRUE_D, INITIAL_COEFFICIENTS), dtype=np.float64)
    rng = np.random.default_rng(seed)
    u_obs = u_true + rng.normal(0.0, NOISE_SD, size=u_true.shape)
    return [(s, xi, ti, float(ui)) for (s, xi, ti), ui in zip(rows, u_obs, strict=True)]


def main() -> None:
    rows = make_readings()
    write_readings_csv(OUTPUT, rows)
    print(f"wrote {len(rows)} readings to {OUTPUT}")


if __name__ == "__main__":
    main()
