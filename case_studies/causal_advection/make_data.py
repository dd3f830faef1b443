"""Generate ``sensors.csv`` for the causal-advection case study.

Truth: ``u_t + c u_x = 0`` on the periodic ``x in [0, 2 pi)``, ``t in [0, 1]``, ``u(x, 0) =
sin(x)``, so ``u(x, t) = sin(x - c t)`` with ``c = 30`` (Krishnapriyan et al. 2021's beta = 30,
where their plain PINN fails on the forward problem). Five sensors at fixed positions, each read
at six times, Gaussian noise sd 0.05. The earliest reading (t = 0.05, phase c t = 1.5 rad) pins c
coarsely without aliasing (it repeats only every 2 pi / 0.05 = 126 in c); the later ones pin it
finely. Deterministic: same seed, same file. Run from the repository root::

    python case_studies/causal_advection/make_data.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
try:
    from bpinn.data import write_readings_csv
except ImportError:  # a source checkout without an installed bpinn
    sys.path.insert(0, str(HERE.parents[1]))
    from bpinn.data import write_readings_csv

TRUE_C = 30.0
POSITIONS = (0.5, 1.7, 3.0, 4.2, 5.5)  # x of sensors S1..S5 in [0, 2 pi)
TIMES = (0.05, 0.15, 0.3, 0.5, 0.75, 1.0)
NOISE_SD = 0.05
SEED = 20261127
OUTPUT = HERE / "sensors.csv"


def exact(x, t, c: float = TRUE_C):
    """u(x, t) = sin(x - c t)."""
    return np.sin(np.asarray(x) - c * np.asarray(t))


def make_readings(seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy readings ``(sensor, x, t, u)``, sensor by sensor, time by time."""
    design = [(f"S{i + 1}", x, t) for i, x in enumerate(POSITIONS) for t in TIMES]
    x = np.array([d[1] for d in design])
    t = np.array([d[2] for d in design])
    rng = np.random.default_rng(seed)
    u_obs = exact(x, t) + rng.normal(0.0, NOISE_SD, size=x.shape)
    return [(s, xi, ti, float(ui)) for (s, xi, ti), ui in zip(design, u_obs, strict=True)]


def main() -> None:
    rows = make_readings()
    write_readings_csv(OUTPUT, rows)
    print(f"wrote {len(rows)} readings to {OUTPUT}")


if __name__ == "__main__":
    main()
