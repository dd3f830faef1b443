"""Generate ``sensors.csv`` for the Fisher-KPP case study.

Truth: ``u_t = D u_xx + k u (1 - u)`` on ``x in [0, 1]``, ``t in [0, 1]``,
``u(0, t) = u(1, t) = 0``, ``u(x, 0) = 0.2 sin(pi x) + 0.3 sin(2 pi x)^2``, with ``D = 0.05`` and
``k = 2``, solved by bpinn's method-of-lines reference solver on a grid four times finer than
the one its inversions use. The heat case's six sensors (x = 0.15, ..., 0.90) are read at
t = 0.1, ..., 0.8 (48 readings) with Gaussian noise of standard deviation 0.02. Deterministic.

Run from the repository root::

    python case_studies/fisher_kpp/make_data.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
try:
    from bpinn.data import write_readings_csv
    from bpinn.reference.mol import reaction_diffusion_mol
except ImportError:
    # Running as a script from a source checkout without an installed bpinn.
    sys.path.insert(0, str(HERE.parents[1]))
    from bpinn.data import write_readings_csv
    from bpinn.reference.mol import reaction_diffusion_mol


def _load_initial():
    """``initial.u0``, loaded from its file without touching ``sys.path`` or ``sys.modules``
    (a module named ``initial`` there would shadow other cases' initial conditions)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fisher_kpp_initial", HERE / "initial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.u0


u0 = _load_initial()
jax.config.update("jax_enable_x64", True)

TRUE_D, TRUE_K = 0.05, 2.0
SENSOR_X = (0.15, 0.30, 0.45, 0.60, 0.75, 0.90)
READ_TIMES = tuple(k / 10 for k in range(1, 9))
NOISE_SD = 0.02
SEED = 20261128
OUTPUT = HERE / "sensors.csv"


def true_field(x, t) -> np.ndarray:
    """The truth at points (x, t), on a fine grid (512 cells, 1600 steps)."""
    points = np.column_stack([x, t])
    return np.asarray(reaction_diffusion_mol(
        points, TRUE_D, TRUE_K, lambda s: u0(np.stack([s, np.zeros_like(s)])),
        reaction="logistic", interval=(0.0, 1.0), time=(0.0, 1.0), num_cells=512,
        num_steps=1600))


def make_readings(seed: int = SEED) -> list[tuple[str, float, float, float]]:
    """Noisy sensor readings as rows ``(sensor, x, t, u)``, sensor-major."""
    rows = [(f"S{i + 1}", x, t) for i, x in enumerate(SENSOR_X) for t in READ_TIMES]
    x = np.array([r[1] for r in rows])
    t = np.array([r[2] for r in rows])
    u_obs = true_field(x, t) + np.random.default_rng(seed).normal(0.0, NOISE_SD, len(rows))
    return [(s, xi, ti, float(ui)) for (s, xi, ti), ui in zip(rows, u_obs, strict=True)]


def main() -> None:
    rows = make_readings()
    write_readings_csv(OUTPUT, rows)
    print(f"wrote {len(rows)} readings to {OUTPUT}")


if __name__ == "__main__":
    main()
