"""Identifiability: what the data determined, what was left to the prior, what is unresolved.

Everything here reads a results DataTree (``posterior``, ``prior``, ``log_prior``,
``log_likelihood``, ``posterior_predictive``) and returns plain dicts that go into summary.json
and the report. The comparisons are made on the unconstrained scale (log for positive
quantities), where priors and posteriors are closest to Gaussian.

1. Contraction ``1 - Var_post / Var_prior`` and the posterior/prior overlap of every unknown.
2. Principal directions of the posterior covariance of the (log-)coefficients, measured in
   units of the prior: a direction whose variance the data did not reduce is a null direction,
   reported as a combination of named coefficients (e.g. ``log k + log q``).
3. Chains that settled in different places (R-hat of the coefficients and of the predicted
   readings, per-chain means apart beyond their Monte Carlo errors): several solutions fit.
4. Power-scaling sensitivity (arviz-stats ``psense``): results driven by the prior.
"""

from __future__ import annotations

from typing import Any

import arviz_stats
import numpy as np
import xarray as xr
from scipy import stats

from bpinn.inference.results import decode_attrs, field_draws

# Contraction thresholds for the verdicts: the data removed at least half of the prior variance
# (identified) or less than a tenth of it (left to the prior).
IDENTIFIED = 0.5
NOT_IDENTIFIED = 0.1
PSENSE_THRESHOLD = 0.05  # Kallioinen et al. 2024
MAX_LOCAL_DIM = 4000  # dense GGN: dim^2 doubles (128 MB at 4000)
MIN_PSENSE_DRAWS = 100  # Pareto smoothing fits a tail of ~3 sqrt(S) draws
RHAT_MODES = 1.05  # above this, chains disagree by more than within-chain noise explains
SHIFT_WARNING = 2.0  # prior sds a barely-narrowed direction may move before it is flagged


def _scalar_entries(ds: xr.Dataset, names: list[str],
                    sample_dims: tuple[str, ...] = ("chain", "draw")) -> dict[str, np.ndarray]:
    """label -> array over ``sample_dims``, one per scalar element (``sigma[S1]`` for
    vectors)."""
    out = {}
    for name in names:
        da = ds[name]
        extra = [d for d in da.dims if d not in sample_dims]
        if not extra:
            out[name] = da.values
            continue
        stacked = da.stack(_entry=extra)
        for i, idx in enumerate(stacked["_entry"].values):
            label = idx if not isinstance(idx, tuple) else ",".join(map(str, idx))
            out[f"{name}[{label}]"] = stacked.values[..., i]
    return out


def _to_unconstrained(post: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    if np.all(prior > 0) and np.all(post > 0):
        return np.log(post), np.log(prior), "log"
    return post, prior, "identity"


def _overlap(post: np.ndarray, prior: np.ndarray, max_points: int = 2000) -> float:
    """Overlap coefficient of the two densities, the integral of min(p_post, p_prior).

    Estimated as the posterior mean of min(1, p_prior / p_post) with Gaussian KDEs of both, so
    a posterior much narrower than its prior is resolved (a shared histogram would put it in
    one bin).
    """
    rng = np.random.default_rng(0)
    x = post if post.size <= max_points else rng.choice(post, max_points, replace=False)
    if np.std(post) == 0 or np.std(prior) == 0:
        return float("nan")
    ratio = stats.gaussian_kde(prior)(x) / stats.gaussian_kde(post)(x)
    return float(np.mean(np.minimum(1.0, ratio)))


def contraction(dt: xr.DataTree, var_names: list[str]) -> dict[str, dict[str, Any]]:
    """Prior-to-posterior contraction and overlap of every scalar unknown with prior draws."""
    post = _scalar_entries(dt["posterior"].to_dataset(), var_names)
    prior_ds = dt["prior"].to_dataset()
    prior = _scalar_entries(prior_ds, [n for n in var_names if n in prior_ds])
    out = {}
    for label, prior_draws in prior.items():
        a, b, scale = _to_unconstrained(post[label].ravel(), prior_draws.ravel())
        c = 1.0 - np.var(a) / np.var(b)
        out[label] = {
            "scale": scale,
            "contraction": float(c),
            "shift_in_prior_sd": float((np.mean(a) - np.mean(b)) / np.std(b)),
            "overlap": _overlap(a, b),
            "verdict": _verdict(c),
        }
    return out


def _verdict(c: float) -> str:
    if c >= IDENTIFIED:
        return "identified"
    if c >= NOT_IDENTIFIED:
        return "weakly identified"
    return "not identified (prior-driven)"


def principal_directions(dt: xr.DataTree, coefficient_names: list[str]) -> dict[str, Any]:
    """Posterior covariance of the (log-)coefficients in units of the prior.

    With prior sds ``s`` (priors are independent in bpinn) and posterior covariance ``C`` of the
    unconstrained coefficients, the eigenpairs ``(lambda, u)`` of ``diag(1/s) C diag(1/s)`` give
    directions ``a = u / s`` whose posterior variance is ``lambda`` times their prior variance:
    ``1 - lambda`` is the contraction along that direction. Directions with contraction below
    ``NOT_IDENTIFIED`` are null directions.
    """
    ds, prior_ds = dt["posterior"].to_dataset(), dt["prior"].to_dataset()
    names = [n for n in coefficient_names if n in prior_ds and ds[n].ndim == 2]
    if not names:
        return {"names": [], "directions": [], "null_directions": []}
    post, prior, labels = [], [], []
    for n in names:
        a, b, scale = _to_unconstrained(ds[n].values.ravel(), prior_ds[n].values.ravel())
        post.append(a)
        prior.append(b)
        labels.append(f"log {n}" if scale == "log" else n)
    post, prior = np.stack(post), np.stack(prior)
    s = prior.std(axis=1)
    cov = np.atleast_2d(np.cov(post))
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    lam, u = np.linalg.eigh(cov / np.outer(s, s))
    mean_shift = (post.mean(axis=1) - prior.mean(axis=1)) / s  # in prior sds, per coefficient
    directions = []
    for i in np.argsort(lam)[::-1]:  # least informed first
        a, sign = _oriented(u[:, i] / s)
        c = float(1.0 - lam[i])
        directions.append({
            "shift_in_prior_sd": float(sign * u[:, i] @ mean_shift),
            "combination": _combination(a, labels),
            "weights": dict(zip(labels, map(float, a), strict=True)),
            "variance_ratio": float(lam[i]),
            "contraction": c,
            "verdict": _verdict(c),
        })
    return {
        "names": labels,
        "posterior_correlation": corr.tolist(),
        "directions": directions,
        "null_directions": [d["combination"] for d in directions
                            if d["contraction"] < NOT_IDENTIFIED],
        "num_informed": sum(d["contraction"] >= IDENTIFIED for d in directions),
    }


def _oriented(direction: np.ndarray, tol: float = 0.05) -> tuple[np.ndarray, float]:
    """A direction scaled to largest weight 1 with its first visible weight positive (so
    ``log k - log q`` and ``-log k + log q`` read the same), and the sign that did it."""
    a = direction / np.max(np.abs(direction))
    sign = float(np.sign(a[np.argmax(np.abs(a) > tol)]))
    return a * sign, sign


def _combination(weights: np.ndarray, labels: list[str], tol: float = 0.05) -> str:
    terms = []
    for w, label in zip(weights, labels, strict=True):
        if abs(w) < tol:
            continue
        coef = "" if abs(abs(w) - 1) < tol else f"{abs(w):.2g} "
        sign = "-" if w < 0 else "+"
        terms.append((sign, f"{coef}{label}"))
    text = " ".join(f"{s} {t}" for s, t in terms)
    return text[2:] if text.startswith("+ ") else text


def chain_agreement(dt: xr.DataTree, var_names: list[str]) -> dict[str, Any]:
    """Do the chains agree? R-hat of each unknown and of the predicted readings, per-chain means.

    Chains that settle in different places with small within-chain spread are evidence that
    several solutions fit the data; averaging them would hide it.
    """
    ds = dt["posterior"].to_dataset()
    num_chains = ds.sizes["chain"]
    entries = _scalar_entries(ds, var_names)
    out: dict[str, Any] = {"num_chains": int(num_chains), "parameters": {}}
    if num_chains < 2:
        out["verdict"] = "one chain: agreement between chains cannot be checked"
        return out
    disagree = []
    for label, x in entries.items():
        rhat = _rhat(x)
        out["parameters"][label] = {"r_hat": rhat, "chain_means": x.mean(axis=1).tolist(),
                                    "chain_sds": x.std(axis=1).tolist()}
        if rhat > RHAT_MODES:
            disagree.append(label)
    if "posterior_predictive" in dt.children and "u_pred" in dt["posterior_predictive"]:
        u = dt["posterior_predictive"]["u_pred"].values  # (chain, draw, obs)
        rhats = np.array([_rhat(u[..., j]) for j in range(u.shape[-1])])
        out["u_pred_max_r_hat"] = float(np.nanmax(rhats))
        if out["u_pred_max_r_hat"] > RHAT_MODES:
            disagree.append("predicted readings")
    out["disagreeing"] = disagree
    out["verdict"] = (
        "chains agree" if not disagree else
        f"chains disagree on {', '.join(disagree)} (R-hat > {RHAT_MODES}): several solutions "
        "may fit the data, or the sampler has not converged; the pooled posterior averages them"
    )
    return out


def _rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of a (chain, draw) array."""
    return float(arviz_stats.rhat(np.asarray(x), chain_axis=0, draw_axis=1))


def prior_sensitivity(dt: xr.DataTree, var_names: list[str]) -> dict[str, Any]:
    """Power-scaling sensitivity to the prior and to the likelihood (Kallioinen et al. 2024).

    Needs the ``log_prior`` and ``log_likelihood`` groups. Prior sensitivity above 0.05 with
    likelihood sensitivity below 0.05 means the prior, not the data, decides the result.
    """
    if "log_prior" not in dt.children or "log_likelihood" not in dt.children:
        return {"available": False, "reason": "results lack the log_prior/log_likelihood groups"}
    names = [n for n in var_names if n in dt["posterior"]]
    if not names:
        return {"available": False, "reason": "no scalar unknowns (coefficient fields have "
                                              "their own pointwise verdict)"}
    ds = dt["posterior"]
    num_draws = ds.sizes["chain"] * ds.sizes["draw"]
    if num_draws < MIN_PSENSE_DRAWS:
        return {"available": False,
                "reason": f"{num_draws} draws; power-scaling needs at least {MIN_PSENSE_DRAWS} "
                          "for its Pareto-smoothed importance weights"}
    prior = arviz_stats.psense(dt, var_names=names, group="prior")
    like = arviz_stats.psense(dt, var_names=names, group="likelihood")
    out: dict[str, Any] = {"available": True, "threshold": PSENSE_THRESHOLD, "parameters": {}}
    like_entries = _scalar_entries(like, names, sample_dims=())
    for label, value in _scalar_entries(prior, names, sample_dims=()).items():
        p, lk = float(value), float(like_entries[label])
        if p >= PSENSE_THRESHOLD and lk < PSENSE_THRESHOLD:
            verdict = "prior-driven: the data are weakly informative"
        elif p >= PSENSE_THRESHOLD:
            verdict = "prior-data conflict: both prior and data pull on it"
        elif lk < PSENSE_THRESHOLD:
            verdict = "weak likelihood"
        else:
            verdict = "data-driven"
        out["parameters"][label] = {"prior": p, "likelihood": lk, "verdict": verdict}
    return out


def _require_groups(dt: xr.DataTree, groups: tuple[str, ...], why: str) -> None:
    missing = [g for g in groups if g not in dt.children]
    if missing:
        raise ValueError(f"the results have no {' or '.join(missing)} group (groups: "
                         f"{sorted(dt.children)}); {why}")


def identify(dt: xr.DataTree, var_names: list[str] | None = None) -> dict[str, Any]:
    """All identifiability diagnostics of a results tree, with plain-language verdicts.

    var_names : unknowns to examine (default: every posterior variable except the network
        weights); those not named ``sigma*`` are treated as PDE coefficients.
    """
    _require_groups(dt, ("posterior", "prior"),
                    "identifiability needs posterior and prior draws: produce the results with "
                    "`bpinn run CONFIG`, which writes both")
    fields = decode_attrs(dt).get("coefficient_fields") or {}
    if var_names is None:  # coefficient fields have their own pointwise verdict
        var_names = [v for v in dt["posterior"].data_vars if v != "weights" and v not in fields]
    coefficients = [v for v in var_names if not v.startswith("sigma")]
    out = {
        "contraction": contraction(dt, var_names),
        "principal_directions": principal_directions(dt, coefficients),
        "chain_agreement": chain_agreement(dt, var_names),
        "prior_sensitivity": prior_sensitivity(dt, var_names),
    }
    attrs = decode_attrs(dt)
    local = attrs.get("local_identifiability")
    if local:
        out["local"] = local
    if fields:
        out["fields"] = {name: field_identifiability(dt, name, **spec)
                         for name, spec in fields.items() if name in dt["posterior"]}
    out["verdicts"] = _verdicts(out)
    caveat = _method_caveat(str(attrs.get("method", "")), attrs.get("exact_mcmc"),
                            attrs.get("method_info") or {})
    if caveat:
        out["method_caveat"] = caveat
        out["verdicts"].insert(0, caveat)
    return out


# What each approximation's draws cannot show, for the diagnostics that read them.
_CAVEATS = {
    "svi_meanfield": "mean-field VI cannot show correlations between unknowns: the principal "
                     "and null directions below are those of a diagonal approximation and are "
                     "unreliable, and it understates variances (contraction is overstated)",
    "laplace_last_layer": "last-layer Laplace ignores the hidden-layer uncertainty: contraction "
                          "is overstated",
    "ensemble": "a deep ensemble's spread measures optimisation scatter, not a posterior: "
                "contraction and directions are indicative only",
}


# svi_meanfield in whitened coordinates (the default) is a full-covariance Gaussian in the
# unknowns: it shows correlations, though only those of the Laplace curvature, rescaled.
_WHITENED_MEANFIELD = ("mean-field VI in coordinates whitened by the Laplace curvature at the "
                       "MAP shows only the correlations of that curvature, rescaled, and it "
                       "understates variances (contraction is overstated)")


def _method_caveat(method: str, exact_mcmc, method_info: dict) -> str | None:
    if method == "svi_meanfield" and method_info.get("coordinates") == "whitened":
        return f"{method}: {_WHITENED_MEANFIELD}"
    if method in _CAVEATS:
        return f"{method}: {_CAVEATS[method]}"
    if exact_mcmc is False:
        return (f"{method} is an approximation: contraction and directions describe the "
                "approximation, which may be narrower or differently shaped than the posterior")
    return None


def field_identifiability(dt: xr.DataTree, name: str, prior_sd: float,
                          log: bool) -> dict[str, Any]:
    """Where the data determine a coefficient field (``posterior[name]`` on a grid): the
    contraction ``1 - Var_post / Var_prior`` of g (log k when ``log``) against the prior sd at
    every grid point (C order), and the share of the grid in each verdict, with the same
    thresholds as a scalar coefficient's."""
    flat = field_draws(dt, name)[2]
    g = np.log(flat) if log else flat
    c = 1.0 - g.reshape(-1, g.shape[-1]).var(axis=0) / prior_sd**2
    return {"scale": "log" if log else "identity", "contraction": c.tolist(),
            "identified_threshold": IDENTIFIED,
            "identified_fraction": float(np.mean(c >= IDENTIFIED)),
            "weak_fraction": float(np.mean((c >= NOT_IDENTIFIED) & (c < IDENTIFIED))),
            "not_identified_fraction": float(np.mean(c < NOT_IDENTIFIED)),
            "min_contraction": float(c.min()), "max_contraction": float(c.max())}


def _verdicts(report: dict[str, Any]) -> list[str]:
    lines = []
    for name, f in (report.get("fields") or {}).items():
        lines.append(
            f"field {name}: identified over {100 * f['identified_fraction']:.0f}% of the grid, "
            f"weakly over {100 * f['weak_fraction']:.0f}%, not identified (prior-driven) over "
            f"{100 * f['not_identified_fraction']:.0f}% (pointwise, the data removed "
            f"{100 * f['min_contraction']:.3g}% to {100 * f['max_contraction']:.3g}% of the prior "
            f"variance on the {f['scale']} scale)")
    sensitivity = report["prior_sensitivity"].get("parameters", {})
    for label, c in report["contraction"].items():
        line = (f"{label}: {c['verdict']} (the data removed {100 * c['contraction']:.4g}% "
                f"of the prior variance on the {c['scale']} scale)")
        # A narrow posterior is not proof the readings decided it: a one-sided bound, or a
        # B-PINN fit that explains the readings as noise, also contracts.
        s = sensitivity.get(label)
        if c["verdict"] != "not identified" and s and s["verdict"] != "data-driven":
            c["caution"] = (f"power-scaling finds it {s['verdict'].split(':')[0]}: the narrow "
                            "posterior may come from the prior or the model, not the readings")
            line += f", but {c['caution']}"
        lines.append(line)
    pd = report["principal_directions"]
    if len(pd.get("names", [])) > 1:
        for d in pd["directions"]:
            if d["verdict"] != "identified":
                lines.append(f"{d['combination']} is {d['verdict']} (contraction "
                             f"{100 * d['contraction']:.3g}%)")
                if abs(d.get("shift_in_prior_sd", 0.0)) > SHIFT_WARNING:
                    lines.append(
                        f"{d['combination']} was not narrowed by the data but moved "
                        f"{d['shift_in_prior_sd']:+.2g} prior sds: something other than the "
                        "readings pulls it (for a B-PINN, typically a residual likelihood whose "
                        "size grows with the coefficients; write the residual so it does not)")
        informed = [d["combination"] for d in pd["directions"] if d["verdict"] == "identified"]
        if informed and len(informed) < len(pd["directions"]):
            lines.append("the data determine " + "; ".join(informed))
    local = report.get("local") or {}
    for key, what in (("bpinn", "B-PINN"), ("exact_forward_model", "exact forward model")):
        spec = local.get(key) or {}
        if spec.get("available", True) and "directions" in spec:
            lines.append(f"at the MAP ({what}): {spec['num_data_informed']} of "
                         f"{len(spec['directions'])} coefficient direction(s) informed more by "
                         "the data than by the prior")
    agreement = report["chain_agreement"]
    if agreement.get("disagreeing"):
        lines.append(agreement["verdict"])
    sens = report["prior_sensitivity"]
    for label, s in sens.get("parameters", {}).items():
        if s["verdict"] != "data-driven":
            lines.append(f"{label}: {s['verdict']} (power-scaling sensitivity: prior "
                         f"{s['prior']:.3g}, likelihood {s['likelihood']:.3g})")
    return lines


def format_identifiability(report: dict[str, Any]) -> str:
    """The verdicts and the direction table as text for the terminal."""
    lines = ["identifiability:"]
    lines += [f"  - {v}" for v in report["verdicts"]] or ["  - nothing to report"]
    pd = report.get("principal_directions") or {}
    if len(pd.get("names", [])) > 1:
        lines.append("  principal directions of the coefficients (least informed first):")
        for d in pd["directions"]:
            lines.append(f"    {d['combination']:<40} posterior/prior variance "
                         f"{d['variance_ratio']:.3g}  ({d['verdict']})")
    return "\n".join(lines)


def local_information(model, target, position, num_prior_draws: int = 4000) -> dict[str, Any]:
    """Fisher / Gauss-Newton analysis at a MAP, in units of the prior (cf. hIPPYlib).

    With the GGN precision ``H`` over all parameters at ``position`` (network weights included,
    so they are marginalised under the local Gaussian rather than held fixed), the covariance of
    the unconstrained coefficients is the coefficient block of ``H^-1``; whitened by the prior
    sds ``s`` its eigenvalues ``lambda`` are variance ratios, and ``mu = 1/lambda - 1`` are the
    eigenvalues of the prior-preconditioned data-misfit Hessian: ``mu > 1`` marks a direction the
    data inform more than the prior does. Where a reference solver exists, the same spectrum is
    computed from the exact forward model's sensor Jacobian (``J^T Sigma^-1 J``), which shows
    what the readings could determine with the PDE solved exactly.
    """
    import jax
    import jax.numpy as jnp
    from numpyro.distributions.transforms import ExpTransform, biject_to

    from bpinn.inference.laplace import ggn_precision

    names = [n for n in model.unknown_coefficients
             if target.site_slices[n][1] - target.site_slices[n][0] == 1]
    if target.dim > MAX_LOCAL_DIM:
        return {"available": False, "reason": f"{target.dim} parameters: the dense Gauss-Newton "
                f"matrix is skipped above {MAX_LOCAL_DIM}"}
    if not names:
        return {"available": False, "reason": "no scalar unknown coefficients"}
    idx = np.array([target.site_slices[n][0] for n in names])
    prior_sd = []
    for i, n in enumerate(names):
        d = model.problem.coefficients[n].distribution()
        draws = d.sample(jax.random.key(i), (num_prior_draws,))
        prior_sd.append(float(jnp.std(biject_to(d.support).inv(draws))))
    s = np.asarray(prior_sd)
    labels = [f"log {n}" if isinstance(biject_to(model.problem.coefficients[n].distribution()
                                                  .support), ExpTransform) else n
              for n in names]
    precision = np.asarray(jax.jit(lambda p: ggn_precision(model.model, target, p))(position))
    cov = np.linalg.inv(precision)[np.ix_(idx, idx)]
    out: dict[str, Any] = {"available": True, "names": labels,
                           "bpinn": _spectrum(cov / np.outer(s, s), s, labels)}
    try:
        from bpinn.reference.registry import problem_forward

        forward = problem_forward(model.problem)
    except ValueError as err:
        out["exact_forward_model"] = {"available": False, "reason": str(err)}
        return out
    values = target.constrained(position)
    sigma = values.get("sigma", getattr(model.problem.noise, "value", None))
    noise = np.asarray(model.noise_per_reading(sigma))

    def readings(sub):
        v = target.constrained(position.at[idx].set(sub))
        return model.at_readings(forward(model.coefficient_values(v)))

    jac = np.asarray(jax.jacfwd(readings)(position[idx]))  # (num_readings, num_coefficients)
    misfit = (jac / noise[:, None] ** 2).T @ jac
    whitened = np.outer(s, s) * misfit  # prior-preconditioned data-misfit Hessian
    mu, vec = np.linalg.eigh(whitened)
    out["exact_forward_model"] = {
        "available": True,
        **_spectrum(np.linalg.inv(np.eye(len(s)) + whitened), s, labels, mu=mu, vec=vec),
    }
    return out


def _spectrum(ratio: np.ndarray, prior_sd: np.ndarray, labels: list[str], mu=None, vec=None):
    """Eigen-decomposition of a prior-whitened covariance (variance ratios) as named directions,
    least informed first; ``mu = 1/ratio - 1`` is the data-to-prior information ratio."""
    if mu is None:
        lam, vec = np.linalg.eigh(ratio)
        mu = 1.0 / lam - 1.0
    order = np.argsort(mu)
    directions = []
    for i in order:
        a, _ = _oriented(vec[:, i] / prior_sd)
        directions.append({"combination": _combination(a, labels),
                           "information_ratio": float(mu[i]),
                           "variance_ratio": float(1.0 / (1.0 + mu[i]))})
    return {"directions": directions, "num_data_informed": int(np.sum(mu > 1.0))}


def rank_sensor_candidates(coefficient_draws: dict[str, np.ndarray], u_draws: np.ndarray,
                           noise_sd: float, *, log_scale: bool = True) -> list[dict[str, Any]]:
    """Where to put the next sensor: candidates ranked by expected information about the
    coefficients, from posterior draws alone (any method).

    For each candidate point c, the coefficients theta (log scale for positive ones) and a new
    reading ``y_c = u(c) + noise`` are approximated as jointly Gaussian with the draws' moments
    (an ensemble-Kalman view). The expected information gain is the mutual information
    ``0.5 log(Var(y_c) / Var(y_c | theta))`` with ``Var(y_c | theta) = Var(u_c) -
    Cov(u_c, theta) Cov(theta)^-1 Cov(theta, u_c) + noise_sd^2``; the expected posterior
    variance reduction of each coefficient is ``Cov(theta_i, u_c)^2 / Var(y_c)``.

    Parameters
    ----------
    coefficient_draws : name -> (S,) posterior draws.
    u_draws : (S, M) the predicted field at the M candidate points, same draws.
    noise_sd : the sensor noise sd of the new reading.

    Returns
    -------
    One dict per candidate (``index``, ``information_gain`` in nats, ``variance_reduction`` per
    coefficient as a fraction of its current variance), most informative first.
    """
    names = list(coefficient_draws)
    theta = np.stack([np.log(coefficient_draws[n]) if log_scale and
                      np.all(coefficient_draws[n] > 0) else coefficient_draws[n]
                      for n in names], axis=1)
    u = np.asarray(u_draws)
    if u.ndim != 2 or u.shape[0] != theta.shape[0]:
        raise ValueError(f"u_draws must be (num_draws={theta.shape[0]}, num_candidates); "
                         f"got {u.shape}")
    theta_c = theta - theta.mean(0)
    u_c = u - u.mean(0)
    n = theta.shape[0] - 1
    cov_tt = np.atleast_2d(theta_c.T @ theta_c / n)
    cov_tu = theta_c.T @ u_c / n  # (p, M)
    var_u = np.sum(u_c**2, axis=0) / n
    # pinv: the points of a coefficient field are correlated, so Cov(theta) can be singular
    explained = np.sum(cov_tu * (np.linalg.pinv(cov_tt, rcond=1e-10, hermitian=True) @ cov_tu),
                       axis=0)
    var_y = var_u + noise_sd**2
    var_y_given_theta = np.maximum(var_u - explained, 0.0) + noise_sd**2
    gain = 0.5 * np.log(var_y / var_y_given_theta)
    reduction = cov_tu**2 / var_y / np.diag(cov_tt)[:, None]
    order = np.argsort(-gain)
    return [{"index": int(j), "information_gain": float(gain[j]),
             "variance_reduction": {n: float(reduction[i, j]) for i, n in enumerate(names)}}
            for j in order]


def sensor_design(dt: xr.DataTree, *, top: int = 10, noise_sd: float | None = None
                  ) -> dict[str, Any]:
    """Where to put the next sensor, from a results tree: every point of the ``predictions``
    grid ranked by :func:`rank_sensor_candidates`.

    noise_sd : sd of the new reading (default: the posterior mean of ``sigma``; for a system
        with one noise sd per output, that output's).

    Returns ``{"noise_sd", "coefficients", "candidates": [{coords..., information_gain,
    variance_reduction}, ...]}`` with the ``top`` most informative points first. For a system
    every output is a candidate at every point, and each candidate names its ``output``.
    """
    _require_groups(dt, ("posterior", "predictions"),
                    "sensor design needs the field over the domain, which `bpinn run CONFIG` "
                    "stores")
    attrs = decode_attrs(dt)
    outputs = attrs.get("outputs") or ["u"]
    field = dt["predictions"][outputs[0]]
    grid_dims = [d for d in field.dims if d not in ("chain", "draw")]
    post = dt["posterior"].to_dataset().sel(draw=field["draw"].values)
    fields = attrs.get("coefficient_fields") or {}
    names = [v for v in post.data_vars if v != "weights" and not v.startswith("sigma")
             and post[v].ndim == 2 and v not in fields]
    draws = {n: post[n].values.reshape(-1) for n in names}
    field_points = {}  # a field is judged at a few of its grid points, its reduction averaged
    for name in fields:
        points = _field_design_points(post[name])
        field_points[name] = list(points)
        draws.update(points)
    if not draws:
        raise ValueError("the posterior holds no PDE coefficient to design for")
    if noise_sd is None and "sigma" not in post:
        raise ValueError("the results hold no sigma draws: give the new sensor's noise sd")
    num_draws = len(next(iter(draws.values())))
    ranked, noise = [], {}
    for name in outputs:
        noise[name] = noise_sd if noise_sd is not None else _output_noise(post["sigma"], name)
        if not (np.isfinite(noise[name]) and noise[name] > 0):
            raise ValueError(f"the noise sd of a new reading must be positive, got "
                             f"{noise[name]}")
        u = dt["predictions"][name].transpose("chain", "draw", *grid_dims).values
        ranked += [{**entry, "output": name} for entry in
                   rank_sensor_candidates(draws, u.reshape(num_draws, -1), noise[name])]
    ranked = sorted(ranked, key=lambda e: -e["information_gain"])[:top]
    for entry in ranked:
        reduction = entry["variance_reduction"]
        for name, labels in field_points.items():
            reduction[f"{name} (field)"] = float(np.mean([reduction.pop(k) for k in labels]))
    names = names + [f"{name} (field)" for name in field_points]
    mesh = np.meshgrid(*(field[d].values for d in grid_dims), indexing="ij")
    candidates = []
    for entry in ranked:
        point = {d.removeprefix("field_"): float(m.ravel()[entry["index"]])
                 for d, m in zip(grid_dims, mesh, strict=True)}
        candidates.append({**point, **({"output": entry["output"]} if len(outputs) > 1
                                       else {}),
                           "information_gain": entry["information_gain"],
                           "variance_reduction": entry["variance_reduction"]})
    return {"noise_sd": noise[outputs[0]] if len(outputs) == 1 else noise,
            "coefficients": names, "candidates": candidates}


def _output_noise(sigma: xr.DataArray, output: str) -> float:
    """The posterior mean noise sd of readings of ``output``: its group's when the noise is
    per group (a system's groups are its outputs), else the one sd."""
    if "group" in sigma.dims and output in sigma["group"].values:
        return float(sigma.sel(group=output).mean())
    return float(sigma.mean())


# A field enters the sensor design at this many points per axis of its grid.
FIELD_DESIGN_POINTS = 5


def _field_design_points(da: xr.DataArray) -> dict[str, np.ndarray]:
    """A coefficient field's draws at a few evenly spaced points of its grid, each a named
    coefficient (``k(x=0.25)``) for :func:`rank_sensor_candidates`."""
    axes = [d for d in da.dims if d not in ("chain", "draw")]
    picks = {d: np.unique(np.linspace(0, da.sizes[d] - 1, FIELD_DESIGN_POINTS).round()
                          .astype(int)) for d in axes}
    sub = da.isel(picks)
    out = {}
    for index in np.ndindex(*(len(p) for p in picks.values())):
        point = sub.isel(dict(zip(axes, index, strict=True)))
        where = ", ".join(f"{d.split('_', 1)[-1]}={float(point[d]):.3g}" for d in axes)
        out[f"{da.name}({where})"] = point.values.reshape(-1)
    return out


def format_sensor_design(design: dict[str, Any]) -> str:
    names = design["coefficients"]
    coords = [k for k in design["candidates"][0] if k not in ("information_gain",
                                                              "variance_reduction")]
    widths = [max(12, len(n) + 7) for n in names]
    head = ("rank " + "".join(f"{c:>9}" for c in coords) + f"{'gain (nats)':>13}"
            + "".join(f"{'Var ' + n + ' -':>{w}}" for n, w in zip(names, widths, strict=True)))
    noise = design["noise_sd"]
    noise = (", ".join(f"{k} {v:.3g}" for k, v in noise.items()) if isinstance(noise, dict)
             else f"{noise:.3g}")
    lines = [f"Next sensor, most informative first (new reading's noise sd {noise}; "
             "'Var - ' is the expected fractional variance reduction):", head]
    for i, c in enumerate(design["candidates"], 1):
        lines.append(f"{i:>4} " + "".join(f"{c[k]:>9}" if isinstance(c[k], str)
                                          else f"{c[k]:>9.3g}" for k in coords)
                     + f"{c['information_gain']:>13.3g}"
                     + "".join(f"{100 * c['variance_reduction'][n]:>{w - 1}.1f}%"
                               for n, w in zip(names, widths, strict=True)))
    return "\n".join(lines)
