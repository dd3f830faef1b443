"""Generate ``sensors.csv`` for the spectral-bias case study: a heat field with a mode-8 component.

Truth: ``u_t = D u_xx`` on ``x in [0, 1]``, ``t in [0, 0.3]``, ``u(0, t) = u(1, t) = 0``,
``u(x, 0) = sin(pi x) + 0.5 sin(8 pi x)``, ``D = 0.01``, so that

    u(x, t) = exp(-pi^2 D t) sin(pi x) + 0.5 exp(-64 pi^2 D t) sin(8 pi x).

Mode 8 decays at the rate 64 pi^2 D = 6.32 per unit time: its amplitude falls from 0.5 to 0.075
over the window, and its sensitivity to log D, 0.5 (64 pi^2 D t) exp(-64 pi^2 D t), peaks at
t = 1 / (64 pi^2 D) = 0.158, mid-window. Mode 1 decays by only 3% over the window.

Sensors: 12 positions ``x = i / 13`` (i = 1..12; spacing 0.077, below the half wavelength 0.125
of mode 8, and no position on a node of sin(8 pi x) because 13 and 8 are coprime) read at 6 times
``t = 0.05, 0.10, ..., 0.30``: 72 readings, Gaussian noise sd 0.03 (3% of the mode-1 amplitude).
Deterministic: same seed, same file. Run from the repository root::

    python case_studies/spectral_bias/make_data.py
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

TRUE_D = 0.01
T_END = 0.3
INITIAL_COEFFICIENTS = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5)  # sin(pi x) + 0.5 sin(8 pi x)
POSITIONS = tuple(i / 13 for i in range(1, 13))
TIMES = tuple(round(0.05 * k, 2) for k in range(1, 7))
NOISE_SD = 0.03
SEED = 20261204
OUTPUT = HERE / "sensors.csv"


def exact_solution(x, t, D=TRUE_D):
    """The exact field (NumPy array of the broadcast shape of ``x`` and ``t``)."""
    return np.asarray(heat_sine_series(np.asarray(x, dtype=np.float64),
                                       np.asarray(t, dtype=np.float64), D,
                                       INITIAL_COEFFICIENTS), dtype=np.float64)


def make_readings(seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy readings ``(sensor, x, t, u)``, sensor ``S<i>`` at position ``x = i / 13``."""
    rows = [(f"S{i + 1}", x, t) for i, x in enumerate(POSITIONS) for t in TIMES]
    x = np.array([r[1] for r in rows])
    t = np.array([r[2] for r in rows])
    rng = np.random.default_rng(seed)
    u_obs = exact_solution(x, t) + rng.normal(0.0, NOISE_SD, size=x.shape)
    return [(s, xi, ti, float(ui)) for (s, xi, ti), ui in zip(rows, u_obs, strict=True)]


def main() -> None:
    rows = make_readings()
    write_readings_csv(OUTPUT, rows)
    print(f"wrote {len(rows)} readings to {OUTPUT}")


if __name__ == "__main__":
    main()
