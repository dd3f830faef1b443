"""Generate ``sensors.csv`` for the few-observations case study: the heat case, three readings.

Truth: ``u_t = D u_xx`` on ``x in [0, 1]``, ``t in [0, 1]``, ``u(0, t) = u(1, t) = 0``,
``u(x, 0) = sin(pi x) + 0.5 sin(3 pi x)``, ``D = 0.07``, Gaussian noise sd 0.02 (as
``heat_diffusion``). Three readings, one per sensor, at points of the shipped design:
``(x, t) = (0.30, 0.2), (0.45, 0.5), (0.75, 0.8)``. Deterministic: same seed, same file.
Run from the repository root::

    python case_studies/few_observations/make_data.py
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
READINGS = (("S1", 0.30, 0.2), ("S2", 0.45, 0.5), ("S3", 0.75, 0.8))
NOISE_SD = 0.02
SEED = 20261127
OUTPUT = HERE / "sensors.csv"


def make_readings(seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy readings ``(sensor, x, t, u)``."""
    x = np.array([r[1] for r in READINGS])
    t = np.array([r[2] for r in READINGS])
    u_true = np.asarray(heat_sine_series(x, t, TRUE_D, INITIAL_COEFFICIENTS), dtype=np.float64)
    rng = np.random.default_rng(seed)
    u_obs = u_true + rng.normal(0.0, NOISE_SD, size=u_true.shape)
    return [(s, xi, ti, float(ui)) for (s, xi, ti), ui in zip(READINGS, u_obs, strict=True)]


def main() -> None:
    rows = make_readings()
    write_readings_csv(OUTPUT, rows)
    print(f"wrote {len(rows)} readings to {OUTPUT}")


if __name__ == "__main__":
    main()
