"""Peer run: the heat-diffusion inverse problem solved with jNO's documented Bayesian recipe.

jNO (PyPI ``jax-numerical-operators``) pins ``jax<0.11``, so it cannot share bpinn's environment.
This script keeps it in its own virtual environment: run with any Python >= 3.11, it creates
``.bench_venvs/jno/`` if missing, pip-installs jNO and arviz there, and re-invokes itself inside
that environment with ``--inner`` to do the work.

The recipe is the one in jNO's Bayesian-PINN chapter ("Bayesian inverse PINN: recover a PDE
coefficient", the two-stage recipe):

1. fit a neural surrogate ``u_net`` to the noisy sensor data with optax (deterministic);
2. ``u_net.freeze()``, then sample the scalar coefficient alone with blackjax NUTS through
   ``Model.bayesian`` (window adaptation, ``num_chains=4``, ``init_jitter=0.5``), with the
   physics residual ``(u_t - D u_xx) / sigma_phys`` at collocation points as the likelihood.

Two surrogates are run (``--surrogate``):

- ``data``: the recipe as documented, the surrogate fitted to the sensor readings only;
- ``pinn``: the surrogate fitted to the readings plus the physics residual (D trained by optax
  as in jNO's deterministic inverse tutorials), then frozen, then the same NUTS stage.

Same data (``case_studies/heat_diffusion/sensors.csv``), same prior on D (LogNormal(log 0.05, 1),
sampled as log D with a Normal prior), 4 chains x 800 draws after 300 warmup steps. Reports the
posterior of D, bulk ESS and R-hat (arviz), wall time including compilation and the surrogate
fit, and ESS/s; prints markdown table rows and writes JSON to ``--out``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/peer_jno.py [--surrogate data pinn] [--out results/peer_jno.json]

If jNO cannot be installed or run, the exact error is printed, written to the JSON file, and the
script exits non-zero.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".bench_venvs" / "jno"
SENSORS = REPO / "case_studies" / "heat_diffusion" / "sensors.csv"
JNO_SPEC = "jax-numerical-operators==0.4.2"
EXTRA_PACKAGES = ["arviz"]

# Problem (case_studies/heat_diffusion/config.toml).
PRIOR_LOC = -2.995732273553991  # log 0.05
PRIOR_SCALE = 1.0
TRUE_D = 0.07

# bpinn's figures on the same problem (docs/benchmarks.md, 4 chains x 800 draws).
BPINN_ROWS = [
    "| bpinn (B-PINN, NUTS on all weights + D + sigma) | 0.06774 ± 0.00143 | - | 1393 | - "
    "| 218 | 6.4 |",
    "| exact forward model (reference) | 0.06911 ± 0.00118 | - | - | - | - | - |",
]


# ---------------------------------------------------------------------------------------------
# Outer part: runs in any Python; manages the venv and the subprocess.
# ---------------------------------------------------------------------------------------------


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _run_logged(cmd: list[str], what: str) -> None:
    """Run ``cmd``; on failure raise RuntimeError carrying the command's own error output."""
    print(f"[peer_jno] {what}: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout[-2000:] + "\n" + proc.stderr[-4000:]).strip()
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def ensure_venv(python: str) -> Path:
    """Create the jNO venv and install jNO + arviz into it, unless already done."""
    vpy = _venv_python()
    if not vpy.exists():
        _run_logged([python, "-m", "venv", str(VENV)], "create venv")
    check = subprocess.run(
        [str(vpy), "-c", "import jno, arviz, blackjax, foundax, optax"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        _run_logged([str(vpy), "-m", "pip", "install", "--upgrade", "pip"], "upgrade pip")
        _run_logged([str(vpy), "-m", "pip", "install", JNO_SPEC, *EXTRA_PACKAGES], "install jNO")
    return vpy


def write_failure(out: Path, stage: str, error: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"status": "error", "stage": stage, "error": error, "jno_spec": JNO_SPEC}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"[peer_jno] FAILED at {stage}:\n{error}", file=sys.stderr)
    print(f"[peer_jno] error recorded in {out}", file=sys.stderr)


def outer(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    if sys.version_info < (3, 11) and args.python == sys.executable:
        write_failure(out, "venv", f"jNO needs Python >= 3.11; got {platform.python_version()}")
        return 2
    try:
        vpy = ensure_venv(args.python)
    except Exception as exc:  # noqa: BLE001 - any install error is the result to report
        write_failure(out, "install", str(exc))
        return 2
    cmd = [
        str(vpy),
        str(Path(__file__).resolve()),
        "--inner",
        "--out",
        str(out),
        "--surrogate",
        *args.surrogate,
        "--fit-epochs",
        str(args.fit_epochs),
        "--warmup",
        str(args.warmup),
        "--draws",
        str(args.draws),
        "--chains",
        str(args.chains),
        "--collocation",
        str(args.collocation),
        "--sigma-phys",
        str(args.sigma_phys),
        "--seed",
        str(args.seed),
    ]
    env = dict(os.environ, JNO_SEED=str(args.seed))
    print(f"[peer_jno] running the jNO part in {VENV}", flush=True)
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        # The inner run records its own traceback in the JSON; make sure something is there.
        if not out.exists() or json.loads(out.read_text()).get("status") != "error":
            write_failure(out, "run", f"inner jNO process exited with code {proc.returncode}")
        return proc.returncode
    return 0


# ---------------------------------------------------------------------------------------------
# Inner part: runs inside the jNO venv.
# ---------------------------------------------------------------------------------------------


def load_sensors():
    import numpy as np

    with SENSORS.open() as fh:
        rows = list(csv.DictReader(fh))
    xt = np.array([[float(r["x"]), float(r["t"])] for r in rows])
    u = np.array([[float(r["u"])] for r in rows])
    return xt, u


def run_variant(surrogate: str, args: argparse.Namespace, xt, u_obs, colloc) -> dict:
    """One two-stage run: surrogate fit (optax), freeze, NUTS on log D. Returns a result dict."""
    import arviz as az
    import blackjax
    import foundax
    import jax
    import jax.numpy as jnp
    import jno
    import numpy as np
    import optax

    pi = float(np.pi)
    t_start = time.perf_counter()

    dom = jno.domain.from_array({"sensors": xt, "interior": colloc})
    xs, ts, *_ = dom.variable("sensors")
    xi, ti, *_ = dom.variable("interior")

    # Surrogate as in the tutorial: foundax MLP (width 32, 3 hidden layers, tanh), optax Adam 2e-3,
    # with the boundary and initial conditions imposed exactly (the tutorial's hard-BC factor).
    key = jax.random.PRNGKey(args.seed)
    net = jno.nn(foundax.mlp(2, output_dim=1, hidden_dims=32, num_layers=3, key=key))
    net.optimizer(optax.adam(2e-3))

    def field(x, t):
        u0 = jno.np.sin(pi * x) + 0.5 * jno.np.sin(3 * pi * x)
        return u0 + t * x * (1 - x) * net(x, t)

    uf = field(xi, ti)
    data_fit = ((field(xs, ts) - jnp.asarray(u_obs)) / 0.02).mse
    constraints = [data_fit]
    fitted_d = None
    if surrogate == "pinn":
        log_d_fit = jno.np.parameter((1,), name="logD_fit")
        log_d_fit.initialize(jax.nn.initializers.constant(PRIOR_LOC))
        log_d_fit.optimizer(optax.adam(2e-3))
        constraints.append(((uf.d(ti) - jno.np.exp(log_d_fit) * uf.dd(xi)) / args.sigma_phys).mse)
    crux_fit = jno.core(constraints)
    crux_fit.solve(args.fit_epochs)
    t_fit = time.perf_counter() - t_start
    if surrogate == "pinn":
        fitted_d = float(np.exp(np.asarray(crux_fit.eval([log_d_fit])).ravel()[0]))
    (u_hat,) = crux_fit.eval([field(xs, ts)])
    fit_rmse = float(np.sqrt(np.mean((np.asarray(u_hat).reshape(-1) - u_obs[:, 0]) ** 2)))

    # Stage 2: frozen surrogate, NUTS on log D alone (Normal prior on log D == LogNormal on D).
    net.freeze()
    log_d = jno.np.parameter((1,), name="logD")
    log_d.initialize(jax.nn.initializers.constant(PRIOR_LOC))

    def log_prior(position):
        leaves = jax.tree_util.tree_leaves(position)
        return sum(-0.5 * jnp.sum(((leaf - PRIOR_LOC) / PRIOR_SCALE) ** 2) for leaf in leaves)

    n_col = colloc.shape[0]
    log_d.bayesian(
        blackjax.nuts,
        step_size=1e-2,
        warmup=args.warmup,
        keep=args.draws,
        num_chains=args.chains,
        init_jitter=0.5,
        prior=log_prior,
        # residual.mse is a mean; N/2 turns it into the Gaussian log-likelihood of the N residuals
        # with sd sigma_phys (the API docs: pass N_obs to "recover the correct posterior").
        likelihood_scale=n_col / 2.0,
    )
    residual = (uf.d(ti) - jno.np.exp(log_d) * uf.dd(xi)) / args.sigma_phys
    crux_nuts = jno.core([residual.mse])
    t_nuts0 = time.perf_counter()
    crux_nuts.solve(args.warmup + args.draws)
    t_end = time.perf_counter()

    chain = np.asarray(log_d.posterior_samples)  # (chains, draws, 1)
    d_draws = np.exp(chain[..., 0]).astype(np.float64)
    diag = log_d.posterior_diagnostics or {}
    divergent = int(np.asarray(diag["is_divergent"]).sum()) if "is_divergent" in diag else None
    accept = np.asarray(diag["acceptance_rate"]).mean() if "acceptance_rate" in diag else None
    accept = None if accept is None else float(accept)
    ess_bulk = float(az.ess(d_draws, method="bulk"))
    ess_tail = float(az.ess(d_draws, method="tail", prob=0.05))
    rhat = float(az.rhat(d_draws))
    wall = t_end - t_start
    lo, hi = (float(v) for v in np.quantile(d_draws, [0.025, 0.975]))
    d_4d = d_draws[..., None]  # jNO's diagnostics take (chains, draws, *param)
    return {
        "surrogate": surrogate,
        "D_mean": float(d_draws.mean()),
        "D_sd": float(d_draws.std(ddof=1)),
        "D_q025": lo,
        "D_q975": hi,
        "covers_true_D": bool(lo <= TRUE_D <= hi),
        "ess_bulk": ess_bulk,
        "ess_tail": ess_tail,
        "rhat": rhat,
        "jno_ess": float(np.asarray(jno.bayesian.ess(jnp.asarray(d_4d))).ravel()[0]),
        "jno_rhat": float(np.asarray(jno.bayesian.rhat(jnp.asarray(d_4d))).ravel()[0]),
        "divergent": divergent,
        "mean_acceptance": accept,
        "surrogate_fit_rmse": fit_rmse,
        "surrogate_fit_D": fitted_d,
        "wall_s": wall,
        "fit_s": t_fit,
        "nuts_s": t_end - t_nuts0,
        "ess_per_s": ess_bulk / wall,
        "num_chains": int(chain.shape[0]),
        "num_draws": int(chain.shape[1]),
    }


def exact_field_check(colloc) -> float:
    """Least-squares D from the exact solution's derivatives through jNO's operators (0.07 if the
    residual is wired right)."""
    import jno
    import numpy as np
    import optax

    pi = float(np.pi)
    dom = jno.domain.from_array({"interior": colloc})
    xi, ti, *_ = dom.variable("interior")
    ue = jno.np.exp(-TRUE_D * pi**2 * ti) * jno.np.sin(pi * xi) + 0.5 * jno.np.exp(
        -9 * TRUE_D * pi**2 * ti
    ) * jno.np.sin(3 * pi * xi)
    dummy = jno.np.parameter((1,), name="dummy")
    dummy.optimizer(optax.adam(1e-3))
    crux = jno.core([(ue.d(ti) - TRUE_D * ue.dd(xi) + 0 * dummy).mse])
    u_t, u_xx = (np.asarray(a).reshape(-1) for a in crux.eval([ue.d(ti), ue.dd(xi)]))
    return float((u_t * u_xx).sum() / (u_xx**2).sum())


def table_row(r: dict) -> str:
    label = {
        "data": "jNO two-stage recipe (surrogate fit to data only, frozen; NUTS on D)",
        "pinn": "jNO two-stage, physics-informed surrogate (frozen; NUTS on D)",
    }[r["surrogate"]]
    return (
        f"| {label} | {r['D_mean']:.5f} ± {r['D_sd']:.5f} | "
        f"[{r['D_q025']:.5f}, {r['D_q975']:.5f}] | {r['ess_bulk']:.0f} | {r['rhat']:.3f} | "
        f"{r['wall_s']:.1f} | {r['ess_per_s']:.1f} |"
    )


def inner(args: argparse.Namespace) -> int:
    out = Path(args.out)
    os.environ.setdefault("JNO_SEED", str(args.seed))
    stage = "import"
    try:
        t0 = time.perf_counter()
        import jax
        import jno  # noqa: F401 - import time is part of the report
        import numpy as np

        t_import = time.perf_counter() - t0
        from importlib.metadata import version

        versions = {
            p: version(p)
            for p in (
                "jax-numerical-operators",
                "jax",
                "jaxlib",
                "blackjax",
                "foundax",
                "optax",
                "arviz",
            )
        }
        xt, u_obs = load_sensors()
        colloc = np.random.default_rng(args.seed).uniform(size=(args.collocation, 2))
        stage = "exact-field check"
        d_check = exact_field_check(colloc)
        results = []
        for s in args.surrogate:
            stage = f"run ({s} surrogate)"
            results.append(run_variant(s, args, xt, u_obs, colloc))
    except Exception:  # noqa: BLE001 - the exact error is the deliverable
        write_failure(out, stage, traceback.format_exc())
        return 3

    header = [
        "| method | D mean ± sd | 95% interval | bulk ESS(D) | R-hat | wall (s) | ESS/s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines = header + [table_row(r) for r in results] + BPINN_ROWS
    print("\n" + "\n".join(lines) + "\n")
    for r in results:
        print(
            f"[{r['surrogate']}] surrogate fit RMSE {r['surrogate_fit_rmse']:.4f}"
            + (f", optax D {r['surrogate_fit_D']:.5f}" if r["surrogate_fit_D"] else "")
            + f"; fit {r['fit_s']:.1f} s, NUTS {r['nuts_s']:.1f} s; divergent {r['divergent']}, "
            f"mean acceptance {r['mean_acceptance']:.3f}; covers D=0.07: {r['covers_true_D']}"
        )
    print(f"exact-field check: least-squares D from the exact solution = {d_check:.5f}")
    payload = {
        "status": "ok",
        "versions": versions,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs visible",
        "devices": [str(d) for d in jax.devices()],
        "import_s": t_import,
        "setup": {
            "network": "foundax.mlp(2 -> 32 x 3 hidden, tanh -> 1), 2,241 weights, float32",
            "fit": f"optax.adam(2e-3), {args.fit_epochs} full-batch epochs",
            "collocation": f"{args.collocation} uniform random points in [0,1]^2, seed {args.seed}",
            "sigma_phys": args.sigma_phys,
            "likelihood_scale": args.collocation / 2.0,
            "prior": "log D ~ Normal(log 0.05, 1)",
            "nuts": f"blackjax.nuts via Model.bayesian, warmup={args.warmup} (window adaptation), "
            f"keep={args.draws}, num_chains={args.chains}, init_jitter=0.5",
        },
        "exact_field_check_D": d_check,
        "results": results,
        "table": lines,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "results" / "peer_jno.json"))
    parser.add_argument(
        "--surrogate", nargs="+", choices=["data", "pinn"], default=["data", "pinn"]
    )
    parser.add_argument("--fit-epochs", type=int, default=5000, help="surrogate Adam steps")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=800)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--collocation", type=int, default=128)
    parser.add_argument("--sigma-phys", type=float, default=0.05, help="residual noise scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter used to create the jNO venv"
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
