"""Writes sensors.csv: prey and predators of the Lotka-Volterra system (alpha = 1, beta = 0.6,
gamma = 0.8, delta = 0.5, u(0) = v(0) = 1) both read at t = 0.4, 0.8, .., 8.0 (20 times),
with Gaussian noise of sd 0.05 (seed 0). The truth is lotka_volterra.forward.

    .venv/bin/python case_studies/lotka_volterra/make_data.py
"""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
TRUTH = {"alpha": 1.0, "beta": 0.6, "gamma": 0.8, "delta": 0.5}
NUM_TIMES, NOISE_SD, SEED = 20, 0.05, 0

jax.config.update("jax_enable_x64", True)


def _load_model():
    """lotka_volterra.py by its path: the case-study folders are not packages."""
    spec = importlib.util.spec_from_file_location("lotka_volterra_model",
                                                  HERE / "lotka_volterra.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lv = _load_model()


def readings():
    """(t, prey, predator): the truth at NUM_TIMES equally spaced times in (0, T_END], noise
    drawn per reading, prey and predator of one time side by side."""
    t = np.linspace(lv.T_END / NUM_TIMES, lv.T_END, NUM_TIMES)
    coeffs = {k: jnp.asarray(v) for k, v in TRUTH.items()}
    y = np.asarray(lv.forward(jnp.asarray(t)[:, None], coeffs))
    y = y + np.random.default_rng(SEED).normal(0.0, NOISE_SD, y.shape)
    return t, y[:, 0], y[:, 1]


def main() -> None:
    t, prey, predator = readings()
    lines = ["t,prey,predator"] + [f"{a:.6f},{b:.8f},{c:.8f}"
                                   for a, b, c in zip(t, prey, predator, strict=True)]
    (HERE / "sensors.csv").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'sensors.csv'}: {t.size} times in [{t[0]:g}, {t[-1]:g}], prey and "
          f"predator each, noise sd {NOISE_SD} (seed {SEED}); prey {prey.min():.2f}.."
          f"{prey.max():.2f}, predator {predator.min():.2f}..{predator.max():.2f}")


if __name__ == "__main__":
    main()
