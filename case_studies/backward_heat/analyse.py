"""What the readings determine of the unknown initial value u0(x): the B-PINN against the gold
standard (the sine series as forward model), point by point and mode by mode.

    bpinn run case_studies/backward_heat/config.toml -o results/backward_heat
    bpinn run case_studies/backward_heat/config.toml --method reference \\
        -o results/backward_heat_ref
    .venv/bin/python case_studies/backward_heat/analyse.py \\
        results/backward_heat results/backward_heat_ref

The pointwise table and figure are case_studies/reaction_field/analyse.py's. The mode table
projects every posterior draw of u0 on sin(k pi x): mode k has decayed by
exp(-D k^2 pi^2 t1) when the first readings are taken at t1, and 15 positions cannot tell mode
k from mode 32 - k, so the data can determine the low modes only; the table shows how much of
each mode's prior sd is left.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
MODES = (1, 2, 3, 4, 6, 8, 10, 12, 14, 16)


def _script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def projection(x: np.ndarray, modes) -> np.ndarray:
    """(modes, grid): the sine coefficient b_k = 2 int u0 sin(k pi x) dx by the trapezoid rule
    on the grid ``x`` of [0, 1]."""
    w = np.full(x.size, x[1] - x[0])
    w[[0, -1]] /= 2
    return 2.0 * np.sin(np.pi * np.asarray(modes)[:, None] * x[None, :]) * w


def prior_mode_sd(config_path: Path, x: np.ndarray, modes) -> np.ndarray:
    """The prior sd of each mode's coefficient under the config's Gaussian process."""
    from bpinn.api import prepare
    from bpinn.config import load_config

    spec = prepare(load_config(config_path)).problem.coefficients["u0"]
    basis = np.asarray(spec.basis_on(x[:, None]))  # u0 = loc + basis @ white weights
    p = projection(x, modes)
    return np.sqrt(np.diag(p @ basis @ basis.T @ p.T))


def mode_draws(results_dir: Path, modes) -> tuple[np.ndarray, np.ndarray]:
    """(grid x, draws (n, modes)) of the posterior's sine coefficients."""
    dt = xr.open_datatree(Path(results_dir) / "posterior.nc")
    u0 = dt["posterior"]["u0"]
    x = np.asarray(u0["u0_x"])
    draws = np.asarray(u0).reshape(-1, x.size)
    return x, draws @ projection(x, modes).T


def mode_table(bpinn_dir: Path, ref_dir: Path, modes=MODES) -> str:
    bh = _script(HERE / "backward_heat.py", "backward_heat_model")
    make_data = _script(HERE / "make_data.py", "backward_heat_make_data")
    x, bpinn = mode_draws(bpinn_dir, modes)
    _, ref = mode_draws(ref_dir, modes)
    prior = prior_mode_sd(HERE / "config.toml", x, modes)
    truth = projection(x, modes) @ np.array([float(bh.u0_true(np.array([v, 0.0]))) for v in x])
    t1 = min(make_data.TIMES)
    lines = ["| mode k | decay by t1 | prior sd | truth b_k | reference b_k (sd / prior sd) "
             "| B-PINN b_k (sd / prior sd) |", "|---|---|---|---|---|---|"]
    for i, k in enumerate(modes):
        decay = np.exp(-make_data.D_TRUE * (k * np.pi) ** 2 * t1)
        cells = [f"{d[:, i].mean():+.3f} ({d[:, i].std() / prior[i]:.2f})" for d in (ref, bpinn)]
        lines.append(f"| {k} | {decay:.2g} | {prior[i]:.3f} | {truth[i]:+.3f} | {cells[0]} "
                     f"| {cells[1]} |")
    return "\n".join(lines)


def main(argv) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    fields = _script(HERE.parent / "reaction_field" / "analyse.py", "field_analysis")
    bpinn, ref = fields.load_field(argv[0], "u0"), fields.load_field(argv[1], "u0")
    print(fields.table(bpinn, ref))
    print()
    print(mode_table(Path(argv[0]), Path(argv[1])))
    out = Path(argv[0]) / "field_comparison.png"
    fields.figure(bpinn, ref, out, "u0")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
