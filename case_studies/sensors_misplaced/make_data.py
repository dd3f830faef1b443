"""Generate the sensor files of the misplaced-sensors case study.

The heat case (``u_t = D u_xx`` on ``x in [0, 1]``, ``u(0, t) = u(1, t) = 0``,
``u(x, 0) = sin(pi x) + 0.5 sin(3 pi x)``, true ``D = 0.07``, Gaussian noise sd 0.02), the same
six sensors (``x = 0.15, 0.30, ..., 0.90``) and eight readings each, but read at other times:

- ``sensors.csv``: read at ``t = 9.1, 9.2, ..., 9.8`` (the shipped schedule ``0.1 .. 0.8``
  switched on 9 time units later), when the field amplitude ``exp(-D pi^2 t) <= 0.0019`` is
  below a tenth of the noise sd: the field has decayed. Used by ``config.toml`` (time window
  ``[0, 10]``).
- ``sensors_t09.csv``: read at ``t = 0.93, 0.94, ..., 1.00``, the literal "late" design
  ``t >= 0.9`` inside the shipped window ``[0, 1]``. Used by ``config_t09.toml``; the README
  shows why these readings are *more* informative than the shipped ones, not less.

Deterministic: same seed, same files (noise drawn as in ``heat_diffusion/make_data.py``).
Run from the repository root::

    python case_studies/sensors_misplaced/make_data.py
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
except ImportError:  # a source checkout without an installed bpinn
    sys.path.insert(0, str(HERE.parents[1]))
    from bpinn.data import write_readings_csv
    from bpinn.reference.heat import heat_sine_series

jax.config.update("jax_enable_x64", True)

TRUE_D = 0.07
INITIAL_COEFFICIENTS = (1.0, 0.0, 0.5)  # sin(pi x) + 0.5 sin(3 pi x)
SENSOR_X = (0.15, 0.30, 0.45, 0.60, 0.75, 0.90)
DESIGNS = {
    "sensors.csv": tuple(round(9 + k / 10, 10) for k in range(1, 9)),  # 9.1 .. 9.8
    "sensors_t09.csv": tuple(round(0.92 + k / 100, 10) for k in range(1, 9)),  # 0.93 .. 1.0
}
SHIPPED_TIMES = tuple(k / 10 for k in range(1, 9))  # heat_diffusion: 0.1 .. 0.8
NOISE_SD = 0.02
SEED = 20261127


def make_readings(times, seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy readings ``(sensor, x, t, u)``, sensor-major, at every sensor and time."""
    rows = [(f"S{i + 1}", x, t) for i, x in enumerate(SENSOR_X) for t in times]
    x = np.array([r[1] for r in rows])
    t = np.array([r[2] for r in rows])
    u_true = np.asarray(heat_sine_series(x, t, TRUE_D, INITIAL_COEFFICIENTS), dtype=np.float64)
    rng = np.random.default_rng(seed)
    u_obs = u_true + rng.normal(0.0, NOISE_SD, size=u_true.shape)
    return [(s, xi, ti, float(ui)) for (s, xi, ti), ui in zip(rows, u_obs, strict=True)]


def main() -> None:
    for name, times in DESIGNS.items():
        rows = make_readings(times)
        write_readings_csv(HERE / name, rows)
        print(f"wrote {len(rows)} readings to {HERE / name}")


if __name__ == "__main__":
    main()
