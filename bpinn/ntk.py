"""The empirical neural tangent kernel of each loss term: which terms gradient descent fits first.

A B-PINN's negative log posterior sums several likelihood terms: sensor readings (``u_obs``), the
PDE residual at collocation points (``pde_residual``), soft boundary and initial conditions
(``condition.<name>``), measured source values (``source_obs``), and whatever other observed sites
the model declares. Under gradient flow on the network weights ``w``, the whitened residuals
``e_k = (obs_k - loc_k) / scale_k`` of term ``k`` evolve as ``de_k/dt = -sum_j K_kj e_j`` with
``K_kj = J_k J_j^T``, ``J_k = d e_k / d w`` (Wang, Teng & Perdikaris 2020, arXiv:2007.14527 and
2001.04536). The eigenvalues of the diagonal block ``K_k = K_kk`` are the rates at which the
term's residuals decay; when the terms' mean eigenvalues ``trace(K_k) / n_k`` differ by orders of
magnitude, optimisation fits the fast term and barely moves the slow one.

Everything is computed with respect to the ``"weights"`` block of a flat ``Target`` position
(coefficients and scales held fixed), at a deterministic subsample of at most ``max_points``
evenly spaced points per term. ``observed_terms``, ``term_jacobians``, ``ntk_traces`` and
``balanced_weights`` are jittable (the MAP optimiser can rebalance inside ``lax.scan``);
``ntk_report`` turns them into spectra, balanced weights and the equivalent likelihood scales a
user would set in the config, with ``format_ntk_report`` and ``plot_ntk`` to show them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bpinn.inference.laplace import location_scale_terms
from bpinn.models.priors import Fixed, Prior
from bpinn.utils import atomic_write_via

DATA_TERM = "u_obs"
DEFAULT_MAX_POINTS = 64
_WEIGHTS_SITE = "weights"


# --------------------------------------------------------------------------------------------
# Jittable pieces


def _whitened_sites(model, target, flat) -> dict[str, tuple[jnp.ndarray, jnp.ndarray]]:
    """Observed site -> (whitened residual, scale), both flattened to the observation's size.

    The sites come from the same trace the GGN and RTO use (``location_scale_terms``), so
    every location-scale likelihood term the model declares is covered, and only those.
    """
    terms = location_scale_terms(model.model, target, jnp.asarray(flat))
    return {name: (((site.value - site.loc) / site.scale).ravel(), site.scale.ravel())
            for name, site in terms.observed.items()}


def observed_terms(model, target, flat) -> dict[str, jnp.ndarray]:
    """The whitened residuals ``(obs - loc) / scale`` of every observed site, flattened.

    Why whitened: the negative log likelihood of a Normal term is ``sum(e**2) / 2`` in these
    units, so they are the residuals gradient descent actually reduces, and their NTK is
    comparable between terms with different physical units. StudentT terms are whitened the
    same way (their loss is not quadratic in ``e``, but ``e`` is still what the loss sees).

    Parameters
    ----------
    model : a ``bpinn.models.likelihood.BPINN``; its ``model`` is run with default arguments.
    target : the ``bpinn.inference.target.Target`` of that model (maps ``flat`` to sites).
    flat : a flat unconstrained position, shape ``(target.dim,)``.

    Returns
    -------
    Observed site name -> 1-D whitened residuals, in the model's order (through ``jax.jit``
    the dict comes back sorted by name, as JAX returns every dict). Whatever observed sites the
    model declares are returned; none is assumed. Jittable and differentiable in ``flat``.
    """
    return {name: e for name, (e, _) in _whitened_sites(model, target, flat).items()}


def subsample_indices(n: int, max_points: int = DEFAULT_MAX_POINTS) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices into ``range(n)``, fixed by ``n``.

    Deterministic, so the same points are used at every position and every rebalancing step.
    """
    _check_max_points(max_points)
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def _check_max_points(max_points) -> None:
    if isinstance(max_points, bool) or not isinstance(max_points, int | np.integer) \
            or max_points < 1:
        raise ValueError(f"max_points must be a positive integer, got {max_points!r}")


def _weights_slice(target) -> tuple[int, int]:
    if _WEIGHTS_SITE not in target.site_slices:
        raise ValueError(
            f"the target has no {_WEIGHTS_SITE!r} site (sites: {sorted(target.site_slices)}); "
            "the NTK is taken with respect to the network weights"
        )
    start, stop = target.site_slices[_WEIGHTS_SITE]
    return int(start), int(stop)


def term_jacobians(model, target, flat, *, max_points: int = DEFAULT_MAX_POINTS
                   ) -> dict[str, jnp.ndarray]:
    """Jacobian of each term's (subsampled) whitened residuals with respect to the weights.

    Only the ``"weights"`` block of ``flat`` moves: PDE coefficients and likelihood scales are
    held fixed, as in the NTK analysis of a network trained with everything else given.

    Parameters
    ----------
    max_points : at most this many points per term, evenly spaced in the term's order
        (:func:`subsample_indices`); the kernel of a subsample has the same mean eigenvalue in
        expectation, and its cost does not grow with the number of collocation points.

    Returns
    -------
    Term -> array of shape ``(n_k, num_weights)``, ``n_k = min(size, max_points)``. Jittable.
    The whole term is still evaluated (the model is opaque), so each row costs one backward
    pass through every point of its term.
    """
    _check_max_points(max_points)
    start, stop = _weights_slice(target)
    flat = jnp.asarray(flat)

    def subsampled(w):
        position = jnp.concatenate([flat[:start], w, flat[stop:]])
        return {name: e[subsample_indices(e.size, max_points)]
                for name, e in observed_terms(model, target, position).items()}

    return jax.jacrev(subsampled)(flat[start:stop])


def _mean_eigenvalue(jac) -> jnp.ndarray:
    """trace(J J^T) / n without forming J J^T; 0 for a term without points."""
    return jnp.sum(jnp.square(jac)) / max(jac.shape[0], 1)


def ntk_traces(model, target, flat, *, max_points: int = DEFAULT_MAX_POINTS
               ) -> dict[str, jnp.ndarray]:
    """Per term, the mean eigenvalue ``trace(K_k) / n_k`` of its NTK block ``K_k = J_k J_k^T``.

    Why the mean eigenvalue: it is the average rate at which the term's whitened residuals decay
    under gradient flow on the weights, and it is independent of how many points the term has,
    so terms of different sizes compare directly. Jittable (e.g. inside ``lax.scan``).
    """
    return {name: _mean_eigenvalue(j) for name, j in
            term_jacobians(model, target, flat, max_points=max_points).items()}


def balanced_weights(traces: Mapping[str, Any]) -> dict[str, jnp.ndarray]:
    """Loss weights ``lambda_k = mean_j(t_j) / t_k`` that equalise the terms' mean eigenvalues.

    With these weights every ``lambda_k t_k`` equals the mean of the ``t_j``, so all terms decay
    at the same average rate and that rate (the average) is what it was unweighted
    (Wang, Teng & Perdikaris 2020, Algorithm 1).

    A trace that is zero or not finite (a term the weights cannot move, or a numerical
    failure) gets weight 1 and is left out of the mean: no weight can balance it, and a weight
    of ``inf`` or ``nan`` would poison the loss. Jittable; an empty mapping gives ``{}``.
    """
    names = list(traces)
    if not names:
        return {}
    t = jnp.stack([jnp.asarray(traces[n], dtype=jnp.result_type(float)) for n in names])
    ok = jnp.isfinite(t) & (t > 0)
    mean = jnp.sum(jnp.where(ok, t, 0.0)) / jnp.maximum(jnp.sum(ok), 1)
    weights = jnp.where(ok, mean / jnp.where(ok, t, 1.0), 1.0)
    return {n: weights[i] for i, n in enumerate(names)}


# --------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class TermSpectrum:
    """The NTK block of one term at one position.

    Attributes
    ----------
    eigenvalues : eigenvalues of ``K_k`` on the subsample, descending, length ``num_points``
        (zeros where ``num_points`` exceeds the number of weights).
    trace, mean_eigenvalue : ``trace(K_k)`` and ``trace(K_k) / num_points``.
    condition_number : largest / smallest eigenvalue (``inf`` when ``K_k`` is singular).
    num_points, total_points : points used, and points in the term.
    sd : the term's likelihood sd at this position when it is one value for all its points
        (``None`` when it varies, e.g. one noise sd per sensor group).
    """

    eigenvalues: np.ndarray
    trace: float
    mean_eigenvalue: float
    condition_number: float
    num_points: int
    total_points: int
    sd: float | None


@dataclass(frozen=True)
class ScaleChange:
    """The likelihood sd that would balance one term with the data term.

    A weight ``lambda`` on a Gaussian term with sd ``s`` is the same likelihood as sd
    ``s / sqrt(lambda)``. With weights normalised so the data term keeps weight 1 (``weight``
    here), the term's sd would be multiplied by ``factor = 1 / sqrt(weight)``.

    Attributes
    ----------
    term : the observed site.
    setting : the config key that sets its sd (``None`` for a site this module does not know).
    current : its sd now: the fixed value, or the value at this position when it is inferred or
        the setting is unknown (``None`` when the sd varies between points).
    fixed : whether the sd is a fixed value in the config (rather than inferred).
    weight : balanced weight relative to the data term (data term = 1).
    factor : ``1 / sqrt(weight)``; ``balanced = current * factor``.
    """

    term: str
    setting: str | None
    current: float | None
    fixed: bool
    weight: float
    factor: float

    @property
    def balanced(self) -> float | None:
        return None if self.current is None else self.current * self.factor


@dataclass(frozen=True)
class NTKReport:
    """NTK spectra of every loss term at one or more labelled positions.

    Attributes
    ----------
    spectra : label -> term -> :class:`TermSpectrum`.
    weights : label -> term -> balanced weight (:func:`balanced_weights`, mean-normalised).
    scales : label -> the :class:`ScaleChange` of every term other than the data term
        (empty without a data term, or when the data term's trace is zero).
    data_term : the site the scales are relative to (``u_obs``), or ``None`` when absent.
    num_weights : network weights the Jacobians are taken against.
    max_points : the subsample cap per term.
    """

    spectra: Mapping[str, Mapping[str, TermSpectrum]]
    weights: Mapping[str, Mapping[str, float]]
    scales: Mapping[str, tuple[ScaleChange, ...]]
    data_term: str | None
    num_weights: int
    max_points: int

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.spectra)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; a non-finite number (a singular kernel's condition number) is
        ``None``, since JSON has no infinity."""
        positions = {}
        for label, terms in self.spectra.items():
            positions[label] = {
                "terms": {name: {
                    "eigenvalues": [_json_float(v) for v in s.eigenvalues],
                    "trace": _json_float(s.trace),
                    "mean_eigenvalue": _json_float(s.mean_eigenvalue),
                    "condition_number": _json_float(s.condition_number),
                    "num_points": s.num_points,
                    "total_points": s.total_points,
                    "sd": _json_float(s.sd),
                } for name, s in terms.items()},
                "balanced_weights": {k: _json_float(v) for k, v in self.weights[label].items()},
                "equivalent_scales": [{
                    "term": c.term, "setting": c.setting, "current": _json_float(c.current),
                    "fixed": c.fixed, "weight_relative_to_data": _json_float(c.weight),
                    "factor": _json_float(c.factor), "balanced": _json_float(c.balanced),
                } for c in self.scales[label]],
            }
        return {"data_term": self.data_term, "num_weights": self.num_weights,
                "max_points": self.max_points, "positions": positions}


def _json_float(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _term_setting(model, term: str) -> tuple[str | None, Fixed | Prior | None]:
    """The config key that sets a known term's sd, and its value (``Fixed`` or ``Prior``)."""
    p, s = model.problem, model.settings
    if term == DATA_TERM:
        return "[data] noise", p.noise
    if term == "pde_residual":
        return "[model] residual_noise", s.residual_noise
    if term == "pde_residual_gradient":
        value = getattr(s, "residual_gradient_noise", None)
        return "[model] residual_gradient_noise", None if value is None else Fixed(float(value))
    if term.startswith("condition."):
        return "[model] condition_noise", s.condition_noise
    if term == "source_obs":
        return "[source_data] noise", p.source_noise
    return None, None


def _spectrum(jac: np.ndarray, total: int, sd: float | None) -> TermSpectrum:
    """Eigenvalues of ``J J^T`` as squared singular values of ``J``: non-negative by
    construction, and accurate where ``J J^T`` would square the condition number."""
    n = jac.shape[0]
    s = np.linalg.svd(jac, compute_uv=False) if jac.size else np.zeros(0)
    eig = np.zeros(n)
    eig[:min(n, s.size)] = np.sort(s**2)[::-1][:n]
    trace = float(np.sum(jac**2))
    smallest = eig[-1] if n else 0.0
    cond = float(eig[0] / smallest) if smallest > 0 else math.inf
    return TermSpectrum(eigenvalues=eig, trace=trace, mean_eigenvalue=trace / max(n, 1),
                        condition_number=cond, num_points=n, total_points=int(total), sd=sd)


def _scale_changes(model, spectra: Mapping[str, TermSpectrum], data_term: str | None
                   ) -> tuple[ScaleChange, ...]:
    if data_term is None:
        return ()
    t_data = spectra[data_term].mean_eigenvalue
    if not (math.isfinite(t_data) and t_data > 0):
        return ()
    out = []
    for name, spec in spectra.items():
        if name == data_term:
            continue
        t = spec.mean_eigenvalue
        weight = t_data / t if math.isfinite(t) and t > 0 else 1.0
        setting, quantity = _term_setting(model, name)
        fixed = isinstance(quantity, Fixed)
        current = float(quantity.value) if fixed else spec.sd
        out.append(ScaleChange(term=name, setting=setting, current=current, fixed=fixed,
                               weight=weight, factor=1.0 / math.sqrt(weight)))
    return tuple(out)


def ntk_report(model, target, positions: Mapping[str, Any], *,
               max_points: int = DEFAULT_MAX_POINTS) -> NTKReport:
    """NTK spectra of every loss term at each labelled position.

    Parameters
    ----------
    model, target : the ``BPINN`` and its ``Target``.
    positions : label (e.g. ``"initialisation"``, ``"MAP"``) -> flat position ``(target.dim,)``.
    max_points : at most this many points per term (see :func:`term_jacobians`).

    Returns
    -------
    :class:`NTKReport` with, per label and term, the eigenvalues, trace, mean eigenvalue,
    condition number and points used; the balanced weights; and the likelihood sds that would
    balance each term with the data term.
    """
    _check_max_points(max_points)
    if not positions:
        raise ValueError("positions is empty: give at least one label -> flat position")
    start, stop = _weights_slice(target)

    def details(flat):
        sites = _whitened_sites(model, target, flat)
        scale_range = {n: (jnp.min(s), jnp.max(s)) if s.size else (jnp.nan, jnp.nan)
                       for n, (_, s) in sites.items()}
        return term_jacobians(model, target, flat, max_points=max_points), scale_range

    compiled = jax.jit(details)
    order = []  # the model's order of its terms (jax returns dicts sorted by key)

    def term_sizes(flat):
        terms = observed_terms(model, target, flat)
        order.extend(terms)
        return terms

    sizes = {n: int(e.shape[0]) for n, e in
             jax.eval_shape(term_sizes, jnp.asarray(target.initial_position)).items()}
    spectra, weights, scales = {}, {}, {}
    data_term = None
    for label, flat in positions.items():
        flat = jnp.asarray(flat)
        if flat.shape != (target.dim,):
            raise ValueError(f"position {label!r} has shape {flat.shape}; expected "
                             f"({target.dim},), a flat position of this target")
        jacs, scale_range = compiled(flat)
        terms = {}
        for name in order:
            jac = jacs[name]
            lo, hi = (float(v) for v in scale_range[name])
            sd = lo if math.isfinite(lo) and math.isclose(lo, hi, rel_tol=1e-9) else None
            terms[name] = _spectrum(np.asarray(jac, dtype=float), sizes[name], sd)
        data_term = DATA_TERM if DATA_TERM in terms else None
        spectra[label] = MappingProxyType(terms)
        w = balanced_weights({n: s.mean_eigenvalue for n, s in terms.items()})
        weights[label] = MappingProxyType({n: float(v) for n, v in w.items()})
        scales[label] = _scale_changes(model, terms, data_term)
    return NTKReport(spectra=MappingProxyType(spectra), weights=MappingProxyType(weights),
                     scales=MappingProxyType(scales), data_term=data_term,
                     num_weights=stop - start, max_points=max_points)


def _fmt_cond(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "inf"


def format_ntk_report(report: NTKReport) -> str:
    """The spectra table, the imbalance and the balancing sds as text for the terminal."""
    lines = [f"NTK of the loss terms with respect to the {report.num_weights} network weights "
             f"(at most {report.max_points} points per term)"]
    for label, terms in report.spectra.items():
        lines.append(f"\nat {label}:")
        lines.append(f"  {'term':<28}{'points':>10}{'mean eig':>11}{'max eig':>11}"
                     f"{'condition':>11}{'sd':>10}{'weight':>10}")
        for name, s in terms.items():
            sd = f"{s.sd:.3g}" if s.sd is not None else "varies"
            lines.append(
                f"  {name:<28}{f'{s.num_points}/{s.total_points}':>10}"
                f"{s.mean_eigenvalue:>11.3g}{(s.eigenvalues[0] if s.num_points else 0):>11.3g}"
                f"{_fmt_cond(s.condition_number):>11}{sd:>10}"
                f"{report.weights[label][name]:>10.3g}")
        means = [s.mean_eigenvalue for s in terms.values() if s.mean_eigenvalue > 0]
        if len(means) > 1:
            fast = max(terms, key=lambda n: terms[n].mean_eigenvalue)
            slow = min((n for n in terms if terms[n].mean_eigenvalue > 0),
                       key=lambda n: terms[n].mean_eigenvalue)
            lines.append(f"  imbalance: mean eigenvalues span a factor "
                         f"{max(means) / min(means):.3g} ({fast} fastest, {slow} slowest)")
        for c in report.scales[label]:
            lines.append("  " + _describe_change(c, report.data_term))
    return "\n".join(lines)


def _describe_change(c: ScaleChange, data_term: str) -> str:
    what = f"{c.setting} ({c.term})" if c.setting else f"the sd of {c.term}"
    if c.current is None:
        return (f"{what}: x{c.factor:.3g} would balance it with {data_term} "
                f"(weight {c.weight:.3g} relative to {data_term})")
    now = f"{c.current:.3g}" if c.fixed else f"{c.current:.3g} (inferred; value here)"
    return (f"{what} = {now} -> {c.current * c.factor:.3g} would balance it with {data_term} "
            f"(x{c.factor:.3g}; weight {c.weight:.3g} relative to {data_term})")


def plot_ntk(report: NTKReport, path) -> Path:
    """Eigenvalue spectra (log y, eigenvalue index on x): one panel per label, one line per term.

    A term whose line lies far below the others is one gradient descent fits slowly; a steep
    line is a term whose residuals are fitted along a few directions first (spectral bias).
    Zero eigenvalues cannot be drawn on a log axis and are left out. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report.labels
    names = list(dict.fromkeys(n for terms in report.spectra.values() for n in terms))
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
    fig, axes = plt.subplots(1, len(labels), figsize=(4.8 * len(labels), 3.8), squeeze=False,
                             sharey=True)
    for ax, label in zip(axes[0], labels, strict=True):
        for name, s in report.spectra[label].items():
            idx = np.arange(1, s.num_points + 1)
            keep = s.eigenvalues > 0
            if keep.any():
                ax.plot(idx[keep], s.eigenvalues[keep], ".-", ms=3, color=colours[name],
                        label=f"{name} (mean {s.mean_eigenvalue:.2g})")
        ax.set_yscale("log")
        ax.set_xlabel("eigenvalue index")
        ax.set_title(label)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("eigenvalue of K = J J^T")
    fig.suptitle(f"NTK spectra of the loss terms ({report.num_weights} weights)")
    fig.tight_layout()
    path = Path(path)
    try:
        atomic_write_via(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path
