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
from typing import Any

import numpy as np
from scipy import stats

from bpinn.utils import progress_bar

LEVELS = (0.5, 0.9, 0.95)
BAND_PROB = 0.95
NUM_RANK_DRAWS = 99  # L: ranks take L + 1 values; 100 bins of one value each fit N >= ~500
NUM_RANK_BINS = 10


def central_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` interval of ``draws`` along the last axis."""
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(draws, [tail, 100.0 - tail], axis=-1)
    return lo, hi


def interval_coverage(truth: np.ndarray, draws: np.ndarray,
                      levels: Sequence[float] = LEVELS) -> dict[float, float]:
    """Fraction of datasets whose central ``level`` interval contains the truth.

    truth : (N,) true values; draws : (N, S) posterior draws per dataset.
    """
    truth, draws = _check_pairs(truth, draws)
    out = {}
    for level in levels:
        lo, hi = central_interval(draws, level)
        out[level] = float(np.mean((lo <= truth) & (truth <= hi)))
    return out


def binomial_band(n: int, level: float, prob: float = BAND_PROB) -> tuple[float, float]:
    """Range of the coverage fraction of a calibrated ``level`` interval over ``n`` datasets,
    holding with probability ``prob`` (central binomial quantiles)."""
    tail = 0.5 * (1.0 - prob)
    lo = stats.binom.ppf(tail, n, level) / n
    hi = stats.binom.ppf(1.0 - tail, n, level) / n
    return float(lo), float(hi)


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
                        reference: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Coverage, bands, SBC ranks, bias and sd for every named unknown.

    truths : name -> (N,) truths; draws : name -> (N, S) posterior draws.
    reference : optional name -> (N, S) draws of a gold-standard method on the same datasets;
        adds the mean bias and the sd ratio relative to it.
    """
    out = {}
    for name, truth in truths.items():
        x = np.asarray(draws[name])
        t = np.asarray(truth)
        n = len(t)
        coverage = interval_coverage(t, x, levels)
        entry: dict[str, Any] = {
            "num_datasets": n,
            "coverage": {f"{lvl:g}": c for lvl, c in coverage.items()},
            "band": {f"{lvl:g}": list(binomial_band(n, lvl)) for lvl in levels},
            "in_band": {f"{lvl:g}": bool(binomial_band(n, lvl)[0] <= c
                                         <= binomial_band(n, lvl)[1])
                        for lvl, c in coverage.items()},
            "mean_bias": float(np.mean(x.mean(-1) - t)),
            "mean_sd": float(np.mean(x.std(-1))),
            "rmse": float(np.sqrt(np.mean((x.mean(-1) - t) ** 2))),
        }
        if x.shape[-1] >= NUM_RANK_DRAWS:
            ranks = sbc_ranks(t, x)
            entry["sbc"] = {"num_draws": NUM_RANK_DRAWS, "ranks": ranks.tolist(),
                            **rank_uniformity(ranks)}
        if reference is not None and name in reference:
            ref = np.asarray(reference[name])
            sd_ref = ref.std(-1)
            entry["vs_reference"] = {
                "mean_shift_in_ref_sd": float(np.mean((x.mean(-1) - ref.mean(-1)) / sd_ref)),
                "mean_sd_ratio": float(np.mean(x.std(-1) / sd_ref)),
            }
        out[name] = entry
    return out


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


def _check_pairs(truth, draws):
    truth, draws = np.asarray(truth, dtype=float), np.asarray(draws, dtype=float)
    if truth.ndim != 1 or draws.ndim != 2 or draws.shape[0] != truth.shape[0]:
        raise ValueError(f"expected truth (N,) and draws (N, S); got {truth.shape} and "
                         f"{draws.shape}")
    return truth, draws
