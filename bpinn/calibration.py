"""Do the credible intervals mean what they say? Coverage and simulation-based calibration.

Given N datasets simulated from known truths and, for each, posterior draws of the unknowns, this
module measures

- the empirical coverage of the central 50%, 90% and 95% intervals, with the band inside which
  the coverage of a calibrated method falls with 95% probability (binomial in N);
- simulation-based-calibration ranks (Talts et al. 2018): the rank of the truth among L
  near-independent posterior draws is uniform on {0, ..., L} when truths are drawn from the
  prior and the posterior is right; a chi-square test on binned ranks flags departures;
- bias and posterior sd, to compare with a gold-standard method on the same datasets.

The statistics are plain functions of arrays; ``run_calibration`` strings the
truth -> data -> posterior loop together for any simulator and any inference function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from bpinn.utils import atomic_write_bytes, atomic_write_via, progress_bar

LEVELS = (0.5, 0.9, 0.95)
BAND_PROB = 0.95
NUM_RANK_DRAWS = 99  # L: ranks take L + 1 values; 100 bins of one value each fit N >= ~500
NUM_RANK_BINS = 10


def central_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` interval of ``draws`` along the last axis."""
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(draws, [tail, 100.0 - tail], axis=-1)
    return lo, hi


def interval_membership(truth: np.ndarray, draws: np.ndarray,
                        levels: Sequence[float] = LEVELS) -> dict[float, np.ndarray]:
    """level -> (N,) whether each dataset's central ``level`` interval contains its truth.

    truth : (N,) true values; draws : (N, S) posterior draws per dataset.
    """
    truth, draws = _check_pairs(truth, draws)
    out = {}
    for level in levels:
        lo, hi = central_interval(draws, level)
        out[level] = (lo <= truth) & (truth <= hi)
    return out


def interval_coverage(truth: np.ndarray, draws: np.ndarray,
                      levels: Sequence[float] = LEVELS) -> dict[float, float]:
    """Fraction of datasets whose central ``level`` interval contains the truth."""
    return _fractions(interval_membership(truth, draws, levels))


def _fractions(membership: Mapping[float, np.ndarray]) -> dict[float, float]:
    return {lvl: float(np.mean(inside)) for lvl, inside in membership.items()}


def coverage_by(inside: Sequence[bool], values: Sequence[float], level: float,
                bins: int = 3) -> list[dict[str, Any]]:
    """Coverage of one interval level within ``bins`` equal-count groups of datasets ordered by
    ``values`` (a truth, the noise drawn, the posterior's relative width...), each with the
    binomial band for its size: where in the prior a miscalibration happens. Datasets whose
    value is missing (None or NaN) are left out."""
    inside = np.asarray(inside, dtype=bool)
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if inside.shape != values.shape or inside.ndim != 1:
        raise ValueError(f"expected two (N,) arrays; got {inside.shape} and {values.shape}")
    order = np.argsort(values, kind="stable")
    order = order[np.isfinite(values[order])]
    rows = []
    for group in np.array_split(order, bins):
        if group.size == 0:
            continue
        lo, hi = binomial_band(group.size, level)
        coverage = float(inside[group].mean())
        rows.append({"from": float(values[group].min()), "to": float(values[group].max()),
                     "num_datasets": int(group.size), "coverage": coverage,
                     "band": [lo, hi], "in_band": bool(lo <= coverage <= hi)})
    return rows


def binomial_band(n: int, level: float, prob: float = BAND_PROB) -> tuple[float, float]:
    """Range of the coverage fraction of a calibrated ``level`` interval over ``n`` datasets,
    holding with probability ``prob`` (central binomial quantiles)."""
    tail = 0.5 * (1.0 - prob)
    lo = stats.binom.ppf(tail, n, level) / n
    hi = stats.binom.ppf(1.0 - tail, n, level) / n
    return float(lo), float(hi)


def predictive_coverage(replicates: np.ndarray, readings: np.ndarray,
                        levels: Sequence[float] = LEVELS) -> dict[str, Any]:
    """How often central posterior-predictive intervals cover readings the fit never saw.

    replicates : (..., n) predictive draws of the n held-out readings (noise included).
    Returns ``{"n", "coverage": {level: fraction}, "band": {level: (lo, hi)}}``, the band being
    the range a calibrated interval's coverage falls in with 95% probability for n independent
    readings (readings of one sensor are correlated, so read it as a rough guide).
    """
    readings = np.asarray(readings, dtype=float)
    flat = np.asarray(replicates, dtype=float).reshape(-1, readings.size).T  # (n, draws)
    coverage, band = {}, {}
    for level in levels:
        lo, hi = central_interval(flat, level)
        coverage[str(level)] = float(np.mean((readings >= lo) & (readings <= hi)))
        band[str(level)] = binomial_band(readings.size, level)
    return {"n": int(readings.size), "coverage": coverage, "band": band}


def thin(draws: np.ndarray, num: int = NUM_RANK_DRAWS) -> np.ndarray:
    """``num`` evenly spaced draws along the last axis (MCMC draws are autocorrelated; SBC
    ranks need near-independent ones, so keep at most about one per effective sample)."""
    size = draws.shape[-1]
    if size < num:
        raise ValueError(f"need at least {num} posterior draws per dataset for SBC ranks, "
                         f"got {size}")
    index = np.linspace(0, size - 1, num).round().astype(int)
    return draws[..., index]


def sbc_ranks(truth: np.ndarray, draws: np.ndarray, num: int = NUM_RANK_DRAWS) -> np.ndarray:
    """Rank of each truth among ``num`` thinned draws: integers in ``0..num``."""
    truth, draws = _check_pairs(truth, draws)
    return np.sum(thin(draws, num) < truth[:, None], axis=-1)


def rank_uniformity(ranks: np.ndarray, num: int = NUM_RANK_DRAWS,
                    bins: int = NUM_RANK_BINS) -> dict[str, Any]:
    """Histogram of ranks in ``bins`` equal bins and the chi-square p-value of uniformity."""
    if (num + 1) % bins:
        raise ValueError(f"{num + 1} rank values do not split into {bins} equal bins")
    counts = np.bincount(np.asarray(ranks) * bins // (num + 1), minlength=bins)
    expected = len(ranks) / bins
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return {"counts": counts.tolist(), "chi2": chi2,
            "p_value": float(stats.chi2.sf(chi2, bins - 1))}


def calibration_summary(truths: Mapping[str, np.ndarray], draws: Mapping[str, np.ndarray],
                        levels: Sequence[float] = LEVELS,
                        reference: Mapping[str, np.ndarray] | None = None,
                        per_dataset: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                        groups: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                        ) -> dict[str, Any]:
    """Coverage, bands, SBC ranks, bias and sd for every named unknown.

    truths : name -> (N,) truths; draws : name -> (N, S) posterior draws.
    reference : optional name -> (N, S) draws of a gold-standard method on the same datasets;
        adds the mean bias and the sd ratio relative to it.
    per_dataset : optional name -> {key: (N,) values} recorded beside each dataset's result
        (NaN written as null), e.g. the implied prior's measured shift.
    groups : optional name -> {label: (N,) boolean mask} of subsets of the datasets; adds
        ``coverage_within[label]``, the coverage and band over each subset alone (e.g. the
        datasets whose run warned, and those whose run did not).
    """
    out = {}
    for name, truth in truths.items():
        x = np.asarray(draws[name])
        t = np.asarray(truth)
        n = len(t)
        membership = interval_membership(t, x, levels)
        entry: dict[str, Any] = {
            **_coverage_with_bands(membership),
            "mean_bias": float(np.mean(x.mean(-1) - t)),
            "mean_sd": float(np.mean(x.std(-1))),
            "rmse": float(np.sqrt(np.mean((x.mean(-1) - t) ** 2))),
            # Per dataset, so a failure can be traced to the truths it happens at.
            "per_dataset": {"truth": t.tolist(), "mean": x.mean(-1).tolist(),
                            "sd": x.std(-1).tolist(),
                            "inside": {f"{lvl:g}": inside.tolist()
                                       for lvl, inside in membership.items()}},
        }
        if x.shape[-1] >= NUM_RANK_DRAWS:
            ranks = sbc_ranks(t, x)
            entry["sbc"] = {"num_draws": NUM_RANK_DRAWS, "ranks": ranks.tolist(),
                            **rank_uniformity(ranks)}
        if reference is not None and name in reference:
            ref = np.asarray(reference[name])
            sd_ref = ref.std(-1)
            ref_inside = interval_membership(t, ref, levels)
            entry["vs_reference"] = _vs_reference(x, ref, ref_inside)
            entry["per_dataset"].update(
                reference_mean=ref.mean(-1).tolist(), reference_sd=sd_ref.tolist(),
                reference_inside={f"{lvl:g}": v.tolist() for lvl, v in ref_inside.items()})
        for key, values in (per_dataset or {}).get(name, {}).items():
            entry["per_dataset"][key] = [None if not np.isfinite(v) else float(v)
                                         for v in np.asarray(values, dtype=float)]
        subsets = (groups or {}).get(name)
        if subsets:
            entry["coverage_within"] = {}
            for label, mask in subsets.items():
                mask = np.asarray(mask, dtype=bool)
                if mask.shape != t.shape:
                    raise ValueError(f"group {label!r} of {name!r}: expected a ({n},) mask, "
                                     f"got shape {mask.shape}")
                within = _coverage_with_bands(
                    {lvl: inside[mask] for lvl, inside in membership.items()})
                if "vs_reference" in entry and mask.any():
                    within["vs_reference"] = _vs_reference(
                        x[mask], ref[mask], {lvl: v[mask] for lvl, v in ref_inside.items()})
                entry["coverage_within"][label] = within
        out[name] = entry
    return out


def _vs_reference(draws: np.ndarray, ref: np.ndarray,
                  ref_inside: Mapping[float, np.ndarray]) -> dict[str, Any]:
    """Each dataset's posterior against the gold standard's: the shift of the mean in reference
    sds and the sd ratio, averaged (and their medians, which one bad dataset does not move),
    and the reference's own coverage of the truths on the same datasets, for scale."""
    sd_ref = ref.std(-1)
    shift = (draws.mean(-1) - ref.mean(-1)) / sd_ref
    ratio = draws.std(-1) / sd_ref
    return {"mean_shift_in_ref_sd": float(np.mean(shift)),
            "mean_sd_ratio": float(np.mean(ratio)),
            "median_shift_in_ref_sd": float(np.median(shift)),
            "median_sd_ratio": float(np.median(ratio)),
            "reference_coverage": {f"{lvl:g}": c for lvl, c in _fractions(ref_inside).items()}}


def _coverage_with_bands(membership: Mapping[float, np.ndarray]) -> dict[str, Any]:
    """Coverage per level over the datasets in ``membership``, with the binomial band for their
    number and whether the coverage lies in it (no coverage for an empty set)."""
    n = len(next(iter(membership.values())))
    if n == 0:
        return {"num_datasets": 0}
    coverage = _fractions(membership)
    bands = {lvl: binomial_band(n, lvl) for lvl in membership}
    return {"num_datasets": n,
            "coverage": {f"{lvl:g}": c for lvl, c in coverage.items()},
            "band": {f"{lvl:g}": list(bands[lvl]) for lvl in membership},
            "in_band": {f"{lvl:g}": bool(bands[lvl][0] <= c <= bands[lvl][1])
                        for lvl, c in coverage.items()}}


def run_calibration(
    rng: np.random.Generator,
    num_datasets: int,
    draw_truth: Callable[[np.random.Generator], dict],
    simulate: Callable[[np.random.Generator, dict], Any],
    infer: Callable[[Any, int], dict],
    *,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The truth -> data -> posterior loop.

    draw_truth(rng) -> {name: value}; simulate(rng, truth) -> a dataset; infer(dataset, i) ->
    {name: (S,) posterior draws} for dataset ``i``. Returns (truths, draws) as name -> (N,) and
    name -> (N, S) arrays, ready for :func:`calibration_summary`.
    """
    truths: dict[str, list] = {}
    draws: dict[str, list] = {}
    with progress_bar(total=num_datasets, desc="Calibration", enabled=progress) as bar:
        for i in range(num_datasets):
            truth = draw_truth(rng)
            posterior = infer(simulate(rng, truth), i)
            for name in posterior:
                truths.setdefault(name, []).append(truth[name])
                draws.setdefault(name, []).append(np.asarray(posterior[name]).reshape(-1))
            bar.update(1)
    return ({k: np.asarray(v) for k, v in truths.items()},
            {k: np.stack(v) for k, v in draws.items()})


def check_shard(shard: tuple[int, int]) -> None:
    """Raise ``ValueError`` unless ``shard = (K, M)`` names one of M >= 2 shards, K from 0."""
    k, m = shard
    if not (m >= 2 and 0 <= k < m):
        raise ValueError(f"--shard K/M needs M >= 2 and 0 <= K < M, got {k}/{m}")


def _check_pairs(truth, draws):
    truth, draws = np.asarray(truth, dtype=float), np.asarray(draws, dtype=float)
    if truth.ndim != 1 or draws.ndim != 2 or draws.shape[0] != truth.shape[0]:
        raise ValueError(f"expected truth (N,) and draws (N, S); got {truth.shape} and "
                         f"{draws.shape}")
    return truth, draws


# ---------------------------------------------------------------------------------------------
# The harness on a config: simulate with the reference solver, infer with any method
# ---------------------------------------------------------------------------------------------
TRUTH_MODES = ("prior", "fixed")


def unknowns(model) -> list[str]:
    """The quantities a calibration checks: unknown coefficients and, if inferred, the noise."""
    from bpinn.models.priors import Prior

    names = list(model.unknown_coefficients)
    if isinstance(model.problem.noise, Prior):
        names.append("sigma")
    return names


def _load(config_path, overrides: dict):
    from bpinn.api import prepare
    from bpinn.config import load_config

    config = load_config(config_path, overrides=overrides)
    return config, prepare(config)


def _with_readings(model, values: np.ndarray):
    """The same model with other readings at the same sensors."""
    from dataclasses import replace

    from bpinn.models.likelihood import build_model

    problem = model.problem
    problem = replace(problem, observations=replace(problem.observations, values=values))
    return build_model(problem, model.settings)


# Key of each dataset's record holding the implied prior's measured shift (posterior sds) of
# every unknown coefficient, in ``model.unknown_coefficients`` order (NaN where not measured).
IMPLIED_SHIFT = "implied_prior_shift_in_sds"


def _infer_one(config_path, overrides: dict, values: np.ndarray, names: list[str]) -> dict:
    """Posterior draws of ``names`` for one simulated dataset (runs in a worker process too),
    and the shift the implied prior was measured to cause (``IMPLIED_SHIFT``)."""
    from bpinn.utils import configure_jax

    configure_jax()
    from bpinn.api import posterior_samples_and_info

    config, model = _load(config_path, overrides)
    draws, info = posterior_samples_and_info(_with_readings(model, values), config.inference)
    measured = (info.get("implicit_prior") or {}).get("coefficients") or {}
    shift = [measured.get(n, {}).get("shift_in_sds", np.nan) for n in model.unknown_coefficients]
    return {**{n: draws[n].reshape(-1) for n in names},
            IMPLIED_SHIFT: np.asarray(shift, dtype=float)}


def warned_groups_doc() -> dict[str, str]:
    """What each of ``warned_groups``'s masks holds (written beside them)."""
    from bpinn.inference.implicit_prior import STRONG_SHIFT_SDS

    rule = f"|{IMPLIED_SHIFT}| > {STRONG_SHIFT_SDS:g}"
    return {"warned": f"datasets whose run warned of a strong implied prior ({rule})",
            "not_warned": f"datasets whose run measured the shift and did not warn (not {rule})"}


def warned_groups(shift_in_sds: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of the datasets whose run warned of a strong implied prior, and of those whose run
    measured it and did not, from each dataset's measured implied-prior shift (NaN,
    not measured, falls in neither)."""
    from bpinn.inference.implicit_prior import is_strong

    shift = np.asarray(shift_in_sds, dtype=float)
    strong = is_strong(shift)
    return {"warned": strong, "not_warned": np.isfinite(shift) & ~strong}


def calibrate(config_path, *, num_datasets: int, method: str | None = None,
              truth: str = "prior", seed: int = 0, jobs: int = 1,
              with_reference: bool = False, overrides: dict | None = None,
              progress: bool = False, checkpoint_dir=None,
              shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """Simulate ``num_datasets`` datasets from the config's priors (or its [truth]) with the
    reference solver and the configured noise, infer each with ``method``, and summarise
    coverage, SBC ranks and bias (see :func:`calibration_summary`).

    Raises ``bpinn.config.ConfigError`` before any work when the config cannot be simulated
    (no reference solver for its PDE or conditions) or ``truth='fixed'`` lacks values.

    With ``checkpoint_dir``, each dataset's draws are saved there as soon as they exist, under
    a hash of everything that determines them; a rerun (after an interruption) reads those
    back instead of sampling them again, with identical results.

    With ``shard=(k, m)`` only the datasets ``i`` with ``i % m == k`` are inferred (and their
    reference inversions, with ``with_reference``), into ``checkpoint_dir``, and no summary is
    made: one calibration split over machines or core groups, each running one shard into a
    copy of the same checkpoint directory; a last call without ``shard`` on the merged
    directory summarises, running whatever no shard finished. Returns ``{"shard", "datasets",
    "wall_s"}`` then.
    """
    import time

    import jax

    from bpinn.config import ConfigError
    from bpinn.models.priors import Prior
    from bpinn.reference.registry import problem_forward
    from bpinn.utils import configure_jax

    configure_jax()
    t0 = time.perf_counter()
    overrides = {**(overrides or {}), "method": method}
    config, model = _load(config_path, overrides)
    if truth not in TRUTH_MODES:
        raise ConfigError(f"truth must be one of {TRUTH_MODES}, got {truth!r}")
    if model.field_coefficients:
        raise ConfigError(f"{config.path}: calibration draws scalar coefficients from their "
                          f"priors; coefficient fields ({', '.join(model.field_coefficients)}) "
                          "are not supported by it yet")
    if num_datasets < 2:
        raise ConfigError(f"--datasets must be at least 2, got {num_datasets}")
    try:
        forward = jax.jit(problem_forward(model.problem))
    except ValueError as err:
        raise ConfigError(f"{config.path}: cannot simulate calibration data: {err}") from err
    names = unknowns(model)
    p = model.problem
    if truth == "fixed":
        missing = [n for n in names if n not in config.truth]
        if missing:
            raise ConfigError(f"{config.path} [truth]: truth = 'fixed' needs a value for "
                              f"{missing}")
    if shard is not None:
        try:
            check_shard(shard)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if checkpoint_dir is None:
            raise ConfigError("a shard's datasets are kept only in a checkpoint directory; "
                              "give checkpoint_dir")
    priors = {n: (p.noise if n == "sigma" else p.coefficients[n]) for n in names}

    def draw_truth(key):
        keys = jax.random.split(key, len(names))
        if truth == "fixed":
            return {n: np.asarray(config.truth[n], dtype=float) for n in names}
        out = {}
        for k, n in zip(keys, names, strict=True):
            shape = model.noise_shape if n == "sigma" else ()
            q = priors[n]
            out[n] = np.asarray(q.distribution().sample(k, shape) if isinstance(q, Prior)
                                else q.value)
        return out

    def simulate(noise_key, values):
        coeffs = model.coefficient_values({n: values[n] for n in model.unknown_coefficients})
        sigma = values.get("sigma", getattr(p.noise, "value", None))
        u = model.at_readings(forward(coeffs))  # a system: each reading's own output
        return np.asarray(model.data_distribution(u, sigma).sample(noise_key))

    keys = jax.random.split(jax.random.key(seed), num_datasets)
    truths, datasets = [], []
    for key in keys:
        truth_key, data_key = jax.random.split(key)
        values = draw_truth(truth_key)
        truths.append(values)
        datasets.append(simulate(data_key, values))

    selected = [i for i in range(num_datasets) if shard is None or i % shard[1] == shard[0]]

    def run_all(method_overrides: dict, desc: str) -> list[dict]:
        tasks = [(config.path, {**overrides, **method_overrides, "seed": seed + i},
                  datasets[i], names) for i in selected]
        return _map_tasks(tasks, jobs=jobs, desc=desc, progress=progress,
                          cache=_TaskCache(checkpoint_dir) if checkpoint_dir else None)

    draws = run_all({}, f"Calibration ({config.inference.method})")
    reference = None
    if with_reference and config.inference.method != "reference":
        reference = run_all({"method": "reference"}, "Calibration (reference)")
    if shard is not None:
        return {"shard": list(shard), "datasets": selected,
                "wall_s": time.perf_counter() - t0}

    def stack(results, name):
        return np.stack([r[name] for r in results])

    truth_arrays = {n: np.asarray([t[n] for t in truths]) for n in names}
    scalar_truths, scalar_draws, scalar_ref = {}, {}, {}
    for n in names:
        t = truth_arrays[n].reshape(num_datasets, -1)
        d = stack(draws, n).reshape(num_datasets, -1, t.shape[1]) if t.shape[1] > 1 else \
            stack(draws, n)[..., None]
        for j in range(t.shape[1]):
            label = n if t.shape[1] == 1 else f"{n}[{p.observations.group_names[j]}]"
            scalar_truths[label] = t[:, j]
            scalar_draws[label] = d[..., j]
            if reference is not None:
                r = stack(reference, n)
                scalar_ref[label] = (r.reshape(num_datasets, -1, t.shape[1])[..., j]
                                     if t.shape[1] > 1 else r)
    # Per scalar coefficient, the shift its run measured (runs saved before it was recorded,
    # and methods that do not measure it, give NaN).
    unmeasured = np.full(len(model.unknown_coefficients), np.nan)
    shifts = np.stack([r.get(IMPLIED_SHIFT, unmeasured) for r in draws])
    extra = {n: {IMPLIED_SHIFT: shifts[:, k]} for k, n in enumerate(model.unknown_coefficients)
             if n in scalar_truths and np.isfinite(shifts[:, k]).any()}
    # Does the run's own warning mark the datasets it gets wrong? Coverage apart over the
    # datasets whose run warned of a strong implied prior and those whose run did not.
    groups = {n: warned_groups(v[IMPLIED_SHIFT]) for n, v in extra.items()}
    return {
        "config": str(config.path),
        "method": config.inference.method,
        "truth": truth,
        "num_datasets": num_datasets,
        "seed": seed,
        "parameters": calibration_summary(scalar_truths, scalar_draws,
                                          reference=scalar_ref or None, per_dataset=extra,
                                          groups=groups),
        **({"coverage_within": warned_groups_doc()} if groups else {}),
        "wall_s": time.perf_counter() - t0,
        "jobs": jobs,
    }


def _map_tasks(tasks: list, *, jobs: int, desc: str, progress: bool,
               cache: _TaskCache | None = None) -> list[dict]:
    """Run ``_infer_one`` over tasks, in ``jobs`` worker processes (spawned: JAX is not
    fork-safe), with a progress bar; results in task order. Tasks found in ``cache`` are read
    back, and each new result is saved there as soon as it arrives."""
    results: list[dict | None] = [cache.load(t) if cache else None for t in tasks]
    todo = [i for i, r in enumerate(results) if r is None]

    def done(i, result):
        results[i] = result
        if cache is not None:
            cache.save(tasks[i], result)

    with progress_bar(total=len(tasks), desc=desc, enabled=progress) as bar:
        bar.update(len(tasks) - len(todo))
        if jobs <= 1:
            for i in todo:
                done(i, _infer_one(*tasks[i]))
                bar.update(1)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                futures = {pool.submit(_infer_one, *tasks[i]): i for i in todo}
                for future in as_completed(futures):
                    done(futures[future], future.result())
                    bar.update(1)
    return results


class _TaskCache:
    """Finished calibration datasets, one ``.npz`` per task named by a hash of its inputs (the
    config file's bytes, the settings, the simulated readings, the package version), so a
    changed input can never be served a stale result."""

    def __init__(self, directory):
        self.directory = Path(directory)

    def _path(self, task) -> Path:
        import hashlib
        import json

        from bpinn import __version__

        config_path, overrides, values, names = task
        digest = hashlib.sha256()
        digest.update(Path(config_path).read_bytes())
        digest.update(json.dumps([overrides, names, __version__], sort_keys=True,
                                 default=str).encode())
        # Readings at single precision: a rerun on another machine or JAX version, whose
        # simulator differs in the last bits, still finds the datasets it finished.
        digest.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())
        return self.directory / f"dataset-{digest.hexdigest()[:32]}.npz"

    def load(self, task) -> dict | None:
        path = self._path(task)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            keys = [*task[3], *([IMPLIED_SHIFT] if IMPLIED_SHIFT in data.files else [])]
            return {name: data[name] for name in keys}

    def save(self, task, result: dict) -> None:
        import io

        self.directory.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **result)
        atomic_write_bytes(self._path(task), buffer.getvalue())


def plot_calibration(result: dict[str, Any], path) -> None:
    """Rank histograms, coverage against the binomial band, and each dataset's standardised
    error (posterior mean - truth) / posterior sd against its truth (where a failure happens),
    one column per unknown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = result["parameters"]
    fig, axes = plt.subplots(3, len(params), figsize=(3.2 * len(params), 8.2), squeeze=False)
    for col, (name, entry) in enumerate(params.items()):
        ax = axes[0, col]
        if "sbc" in entry:
            counts = entry["sbc"]["counts"]
            n = entry["num_datasets"]
            ax.bar(range(len(counts)), counts, width=1.0, color="0.6", edgecolor="k")
            lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / len(counts))
            ax.axhspan(lo, hi, color="C0", alpha=0.2, label="99% band if uniform")
            ax.set_title(f"{name}: SBC ranks (p = {entry['sbc']['p_value']:.2g})")
            ax.set_xlabel("rank bin")
        ax = axes[1, col]
        levels = [float(k) for k in entry["coverage"]]
        cov = list(entry["coverage"].values())
        bands = np.array(list(entry["band"].values()))
        ax.errorbar(levels, levels, yerr=[np.array(levels) - bands[:, 0],
                                          bands[:, 1] - np.array(levels)],
                    fmt="none", ecolor="C0", capsize=4, label="95% binomial band")
        ax.plot(levels, cov, "ko", label="observed")
        ax.plot([0.4, 1], [0.4, 1], "k:", lw=0.8)
        ax.set_xlabel("nominal coverage")
        ax.set_ylabel("empirical coverage")
        ax.set_title(name)
        ax.legend(fontsize=7)
        _plot_standardised_errors(axes[2, col], name, entry["per_dataset"])
    fig.suptitle(f"{result['method']}: {result['num_datasets']} datasets")
    fig.tight_layout()
    # Through the atomic path like every file the package writes.
    atomic_write_via(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _plot_standardised_errors(ax, name: str, per_dataset: dict) -> None:
    truth = np.asarray(per_dataset["truth"])
    rows = [("posterior", "k", per_dataset["mean"], per_dataset["sd"])]
    if "reference_mean" in per_dataset:
        rows.append(("reference", "C1", per_dataset["reference_mean"],
                     per_dataset["reference_sd"]))
    for label, color, mean, sd in rows:
        ax.plot(truth, (np.asarray(mean) - truth) / np.asarray(sd), "o", ms=3, color=color,
                alpha=0.7, label=label)
    # Inside these lines 90% of datasets fall when the posterior is normal and calibrated.
    for z in (-1.645, 1.645):
        ax.axhline(z, color="C0", lw=0.8, ls="--")
    ax.axhline(0, color="k", lw=0.6, ls=":")
    if np.all(truth > 0) and truth.max() / truth.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(f"true {name}")
    ax.set_ylabel("(mean - truth) / sd")
    ax.legend(fontsize=7)
