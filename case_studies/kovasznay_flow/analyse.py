"""How well a run recovered the flow it never saw whole: the velocity between the sensors, and
the pressure, which no sensor read and whose level the equations leave free.

    bpinn run case_studies/kovasznay_flow/config.toml -o results/kovasznay_flow
    .venv/bin/python case_studies/kovasznay_flow/analyse.py results/kovasznay_flow [MORE ...]

For each results folder: nu (mean, sd, 95% interval), and over the 41 x 41 grid of the stored
field draws the RMS error of the posterior mean of u, v and p against Kovasznay's closed form,
the share of the grid where the 95% band holds it, and for p the same once each draw's mean
over the grid is removed (the level the physics cannot fix), with the posterior sd of that
level.
"""

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(HERE))  # the model module beside this script
import kovasznay  # noqa: E402


def _agreement(draws: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """(RMS error of the mean, share of grid points whose 95% band holds the exact value)."""
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    return (float(np.sqrt(np.mean((draws.mean(axis=0) - exact) ** 2))),
            float(np.mean((lo <= exact) & (exact <= hi))))


def flow_recovery(results_dir: Path) -> dict:
    results_dir = Path(results_dir)
    summary = json.loads((results_dir / "summary.json").read_text())
    pred = xr.open_datatree(results_dir / "posterior.nc")["predictions"]
    x, y = np.asarray(pred["field_x"]), np.asarray(pred["field_y"])
    grid = np.stack([a.ravel() for a in np.meshgrid(x, y, indexing="ij")], axis=1)
    exact = np.asarray(jax.vmap(kovasznay.exact)(jnp.asarray(grid)))
    out = {"method": summary["method"], "nu": summary["parameters"]["nu"],
           "total_s": summary["timing"]["total_s"]}
    for k, name in enumerate(("u", "v", "p")):
        draws = np.asarray(pred[name]).reshape(-1, grid.shape[0])
        out[name] = _agreement(draws, exact[:, k])
    p = np.asarray(pred["p"]).reshape(-1, grid.shape[0])
    level = p.mean(axis=1, keepdims=True)
    out["p_shape"] = _agreement(p - level, exact[:, 2] - exact[:, 2].mean())
    out["p_level"] = (float(level.mean()), float(level.std()), float(exact[:, 2].mean()))
    return out


def table(rows: list[dict]) -> str:
    lines = ["| run | nu mean ± sd [95%] | u: RMSE, band holds | v: RMSE, band holds "
             "| p: RMSE, band holds | p less its level: RMSE, band holds "
             "| p level: mean ± sd (exact) | wall |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nu = r["nu"]
        cells = [f"{e:.3f}, {100 * c:.0f}%" for e, c in (r["u"], r["v"], r["p"], r["p_shape"])]
        m, s, exact = r["p_level"]
        lines.append(f"| {r['method']} | {nu['mean']:.5f} ± {nu['sd']:.5f} [{nu['q2.5']:.5f}, "
                     f"{nu['q97.5']:.5f}] | {' | '.join(cells)} | {m:.3f} ± {s:.3f} "
                     f"({exact:.3f}) | {r['total_s']:.0f} s |")
    return "\n".join(lines)


def main(argv) -> int:
    if not argv:
        print(__doc__)
        return 2
    print(table([flow_recovery(Path(a)) for a in argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
