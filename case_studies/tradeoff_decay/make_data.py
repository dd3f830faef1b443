"""Generate ``sensors.csv`` for the trade-off case study.

Truth: ``u_t = D u_xx - k u`` on ``x in [0, 1]``, ``t in [0, 1]``, ``u(0, t) = u(1, t) = 0``,
``u(x, 0) = sin(pi x)``, with ``D = 0.07`` and ``k = 0.3``. The exact solution is
``u = exp(-(D pi^2 + k) t) sin(pi x)``: it depends on D and k only through the decay rate
``r = D pi^2 + k = 0.9909``. Six sensors at ``x = 0.15, 0.30, ..., 0.90`` are read at
``t = 0.1, ..., 0.8`` (48 readings, the heat case's design) with Gaussian noise of sd 0.02.
Deterministic: same seed, same file. Run from the repository root::

    python case_studies/tradeoff_decay/make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpinn.data import write_readings_csv

HERE = Path(__file__).resolve().parent
TRUE_D = 0.07
TRUE_K = 0.3
SENSOR_X = (0.15, 0.30, 0.45, 0.60, 0.75, 0.90)
READ_TIMES = tuple(k / 10 for k in range(1, 9))  # 0.1 .. 0.8
NOISE_SD = 0.02
SEED = 20261127
OUTPUT = HERE / "sensors.csv"


def exact(x, t, D=TRUE_D, k=TRUE_K):
    """u(x, t) = exp(-(D pi^2 + k) t) sin(pi x)."""
    return np.exp(-(D * np.pi**2 + k) * np.asarray(t)) * np.sin(np.pi * np.asarray(x))


def make_readings(seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy readings ``(sensor, x, t, u)``, sensor-major."""
    rows = [(f"S{i + 1}", x, t) for i, x in enumerate(SENSOR_X) for t in READ_TIMES]
    x = np.array([r[1] for r in rows])
    t = np.array([r[2] for r in rows])
    rng = np.random.default_rng(seed)
    u_obs = exact(x, t) + rng.normal(0.0, NOISE_SD, size=x.shape)
    return [(s, xi, ti, float(ui)) for (s, xi, ti), ui in zip(rows, u_obs, strict=True)]


def main() -> None:
    rows = make_readings()
    write_readings_csv(OUTPUT, rows)
    print(f"wrote {len(rows)} readings to {OUTPUT}")


if __name__ == "__main__":
    main()
