"""Write sensors.csv: u = (q / k) sin(pi x) at 10 points with noise sd 0.01 (k = 2, q = 1)."""

from pathlib import Path

import numpy as np

K, Q, NOISE, SEED = 2.0, 1.0, 0.01, 0


def main():
    rng = np.random.default_rng(SEED)
    x = np.linspace(0.05, 0.95, 10)
    u = Q / K * np.sin(np.pi * x) + rng.normal(0, NOISE, x.size)
    out = Path(__file__).with_name("sensors.csv")
    np.savetxt(out, np.column_stack([x, u]), delimiter=",", header="x,u", comments="",
               fmt="%.6f")


if __name__ == "__main__":
    main()
