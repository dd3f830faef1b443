"""Samples -> an ArviZ ``xarray.DataTree`` and ``summary.json``: the one place for the layout.

Every inference method (MAP, NUTS, SVI, ...) hands its draws to :func:`build_datatree`, and every
consumer (CLI, report, diagnostics) reads the tree and the summary that :func:`summarize` makes.
No other module decides group names, variable names, dimension names or the summary's keys.

Layout of the DataTree
----------------------
Groups follow ArviZ (present only when given):

``posterior``
    PDE coefficients (e.g. ``D``) and noise scales (``sigma``, one per sensor group along dim
    ``group``). Leading dims ``(chain, draw)``.
``sample_stats``
    Sampler statistics under ArviZ names: ``diverging`` (bool), ``acceptance_rate``, ``n_steps``,
    ``tree_depth``, ``lp``, ``energy``. Leading dims ``(chain, draw)``.
``prior``
    Prior draws, leading dims ``(chain=1, draw)``.
``posterior_predictive``, ``log_likelihood``
    ``u_obs`` with dims ``(chain, draw, obs)``.
``log_prior``
    Log prior density of each coefficient and noise scale at each posterior draw (what
    power-scaling prior sensitivity needs), leading dims ``(chain, draw)``.
``observed_data``
    ``u_obs`` with dim ``obs``.
``constant_data``
    Sensor coordinates ``x``, ``t`` and the sensor-group index ``group``, all along ``obs``.

Run metadata (``attrs``) lives on the root node. NetCDF attributes must be flat, so values that
are not ``str``/``int``/``float`` (dicts, lists, bools, None) are stored as JSON strings and their
keys listed in the root attribute ``bpinn_json_attrs``; :func:`decode_attrs` undoes this.

On disk
-------
``posterior.nc`` (NetCDF-4 via h5netcdf; needs ``h5py``, which h5netcdf >= 1.8 no longer
installs by itself: depend on ``h5netcdf[h5py]``) and ``summary.json``. Boolean variables such as
``sample_stats.diverging`` are written by xarray as ``int8`` with a ``dtype: bool`` encoding
attribute, so the file is valid NetCDF-4 (no ``invalid_netcdf=True`` needed) and xarray/ArviZ
read them back as ``bool``; plain netCDF tools see 0/1.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from arviz_base import from_dict, xarray_sel_iter
from arviz_base.labels import BaseLabeller

from bpinn.utils import atomic_write_bytes, atomic_write_via

try:
    from arviz_stats import summary as _az_summary
except ImportError as err:  # pragma: no cover - depends on the environment
    # arviz_stats swallows a missing xarray-einstats and then simply lacks `summary`.
    raise ImportError(
        "bpinn.inference.results needs arviz_stats.summary, which is only available when "
        "xarray-einstats is installed: install 'arviz-stats[xarray]'."
    ) from err

__all__ = [
    "BFMI_MIN",
    "DIM_GROUP",
    "DIM_OBS",
    "FILENAME_POSTERIOR",
    "FILENAME_SUMMARY",
    "GROUPS",
    "OBS_VAR",
    "PARAMETER_KEYS",
    "SAMPLE_DIMS",
    "SAMPLE_STATS_VARS",
    "SCHEMA_VERSION",
    "bfmi_per_chain",
    "bfmi_warning",
    "build_datatree",
    "decode_attrs",
    "format_summary",
    "read_results",
    "summarize",
    "write_results",
]

# ---------------------------------------------------------------------------------------------
# Names. Everything downstream imports these rather than spelling the strings.
# ---------------------------------------------------------------------------------------------
SCHEMA_VERSION = 1
FILENAME_POSTERIOR = "posterior.nc"
FILENAME_SUMMARY = "summary.json"

GROUPS = (
    "posterior",
    "sample_stats",
    "prior",
    "posterior_predictive",
    "predictions",
    "observed_data",
    "constant_data",
    "log_likelihood",
    "log_prior",
)
_SAMPLE_GROUPS = ("posterior", "sample_stats", "prior", "posterior_predictive", "predictions",
                  "log_likelihood", "log_prior")
_DATA_GROUPS = ("observed_data", "constant_data")
SAMPLE_DIMS = ("chain", "draw")
SAMPLE_STATS_VARS = ("diverging", "acceptance_rate", "n_steps", "tree_depth", "lp", "energy")

DIM_OBS = "obs"
DIM_GROUP = "group"
OBS_VAR = "u_obs"
# Dims given to conventional variables when the caller names none and the shape fits.
_DEFAULT_DIMS: dict[str, list[str]] = {
    "sigma": [DIM_GROUP],
    OBS_VAR: [DIM_OBS],
    "x": [DIM_OBS],
    "y": [DIM_OBS],
    "t": [DIM_OBS],
    "group": [DIM_OBS],
}

_JSON_ATTRS_KEY = "bpinn_json_attrs"
_MAX_TREE_DEPTH_ATTR = "max_tree_depth"

# Thresholds of the plain-language warnings (Vehtari et al. 2021 recommendations).
RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3  # Betancourt 2016: below this the momentum resampling explores energy poorly
# Where the divergences sit: with no association, the ranks of the divergent draws among all
# draws of a parameter are uniform, and the median of n of them has sd 0.5 / sqrt(n). A median in
# the outer quarter and DIVERGENCE_NUM_SE of those sds from 0.5 says the sampler fails at one end
# of that parameter (a funnel when it is a scale near 0). n counts separate runs of divergent
# draws, since consecutive ones along a chain are not independent. Parameters with more
# elements per draw than DIVERGENCE_MAX_ELEMENTS (network weights, stored fields) are skipped.
DIVERGENCE_TAIL = 0.25
DIVERGENCE_NUM_SE = 4.0
DIVERGENCE_MAX_ELEMENTS = 16
HDI_PROB = 0.94
ETI_PROB = 0.95
# Share of the readings' variance the posterior mean field must explain (R^2) before the run
# warns that the readings were put down to noise. A correct fit explains 1 - (noise sd /
# readings' sd)^2; below 0.8 the noise would be over 45% of the readings' spread. Measured on
# literature-style problems: good fits 0.996-1.000, a 2-D diffusion-reaction run whose physics
# terms overwhelmed the readings -0.02, an oscillator run whose network never fitted them 0.62.
READINGS_R2_MIN = 0.8

_TIMING_KEYS = ("compile_s", "map_s", "warmup_s", "sampling_s", "total_s")
PARAMETER_KEYS = (
    "mean",
    "sd",
    "median",
    "q2.5",
    "q97.5",
    "hdi94_low",
    "hdi94_high",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "mcse_mean",
)
_RESERVED_KEYS = (
    "schema_version",
    "method",
    "seed",
    "parameters",
    "diagnostics",
    "timing",
    "truth",
)


# ---------------------------------------------------------------------------------------------
# Building the tree
# ---------------------------------------------------------------------------------------------
def build_datatree(
    *,
    posterior: Mapping[str, Any],
    sample_stats: Mapping[str, Any] | None = None,
    prior: Mapping[str, Any] | None = None,
    posterior_predictive: Mapping[str, Any] | None = None,
    observed_data: Mapping[str, Any] | None = None,
    constant_data: Mapping[str, Any] | None = None,
    log_likelihood: Mapping[str, Any] | None = None,
    log_prior: Mapping[str, Any] | None = None,
    predictions: Mapping[str, Any] | None = None,
    predictions_draws: Any = None,
    dims: Mapping[str, list[str]] | None = None,
    coords: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataTree:
    """Assemble draws and data into an ArviZ DataTree with bpinn's fixed layout.

    Parameters
    ----------
    posterior : dict of str to array
        Posterior draws, each of shape ``(chain, draw, *event_shape)``. Required.
    sample_stats : dict of str to array, optional
        Sampler statistics, shape ``(chain, draw)``; use ArviZ names (``diverging``,
        ``acceptance_rate``, ``n_steps``, ``tree_depth``, ``lp``, ``energy``).
    prior : dict of str to array, optional
        Prior draws, shape ``(1, draw, *event_shape)``.
    posterior_predictive, log_likelihood : dict of str to array, optional
        Shape ``(chain, draw, *event_shape)``, e.g. ``u_obs`` with dim ``obs``.
    log_prior : dict of str to array, optional
        Log prior density of each named unknown at each draw, shape ``(chain, draw)``.
    predictions : dict of str to array, optional
        The field at new points (e.g. a grid over the domain) for a thinned subset of the draws,
        shape ``(chain, thinned draw, *event_shape)``; ``predictions_draws`` gives the indices
        of those draws in the posterior (default: all draws).
    observed_data, constant_data : dict of str to array, optional
        No chain/draw dims, e.g. ``u_obs``, ``x``, ``t``, ``group`` along ``obs``.
    dims : dict of str to list of str, optional
        Names of the event dims of each variable (the same for every group). Variables with
        conventional names get default dims when not listed here and their shape fits:
        ``sigma -> [group]``, ``u_obs, x, y, t, group -> [obs]``.
    coords : dict of str to array, optional
        Coordinate labels per dim, e.g. ``{"group": ["S1", "S2"]}``.
    attrs : dict, optional
        Run metadata for the root node. ``str``/``int``/``float`` are stored as they are; other
        JSON-serialisable values are stored as JSON strings (see :func:`decode_attrs`).

    Returns
    -------
    xarray.DataTree
        With one child node per group given.

    Raises
    ------
    ValueError
        If a sampled array lacks the leading ``(chain, draw)`` dims, chain/draw sizes disagree
        between groups, a name contains ``/`` or ``posterior`` is empty.
    TypeError
        If a group is not a mapping or an attribute is not JSON-serialisable.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> dt = build_datatree(
    ...     posterior={"D": rng.normal(0.07, 0.001, (2, 100)),
    ...                "sigma": rng.uniform(0.01, 0.02, (2, 100, 2))},
    ...     coords={"group": ["S1", "S2"]},
    ...     attrs={"problem": "heat", "config": {"num_chains": 2}},
    ... )
    >>> dict(dt["posterior"]["sigma"].sizes)
    {'chain': 2, 'draw': 100, 'group': 2}
    >>> decode_attrs(dt)["config"]
    {'num_chains': 2}
    """
    given = {
        "posterior": posterior,
        "sample_stats": sample_stats,
        "prior": prior,
        "posterior_predictive": posterior_predictive,
        "observed_data": observed_data,
        "constant_data": constant_data,
        "log_likelihood": log_likelihood,
        "log_prior": log_prior,
        "predictions": predictions,
    }
    data: dict[str, dict[str, np.ndarray]] = {}
    for group, values in given.items():
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise TypeError(
                f"build_datatree: {group} must be a dict of name -> array, "
                f"got {type(values).__name__}"
            )
        data[group] = {}
        for name, value in values.items():
            _check_name(group, name)
            data[group][name] = np.asarray(value)
    if not data["posterior"]:
        raise ValueError("build_datatree: posterior is empty; pass at least one variable")

    _check_sample_shapes(data)
    all_dims = _resolve_dims(data, dict(dims or {}))
    coords = {k: np.asarray(v) for k, v in (coords or {}).items()}
    flat_attrs = _encode_attrs(attrs or {})

    # from_dict gives the "*data" groups no sample dims and log_likelihood skip_event_dims,
    # which is exactly bpinn's layout; it also stamps each group with creation metadata.
    dt = from_dict(
        data,
        dims=all_dims,
        coords=coords,
        pred_dims=all_dims,  # from_dict gives the predictions group its own dims and coords
        pred_coords=coords,
        sample_dims=list(SAMPLE_DIMS),
        index_origin=0,
        attrs={"/": flat_attrs},
    )
    if "predictions" in data and predictions_draws is not None:
        # Label the thinned draws with their posterior draw numbers, so they can be matched.
        dt["predictions"] = dt["predictions"].to_dataset().assign_coords(
            draw=np.asarray(predictions_draws))
    return dt


def _check_name(group: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"build_datatree: variable names in {group} must be non-empty str, got {name!r}"
        )
    if "/" in name:
        raise ValueError(
            f"build_datatree: variable {name!r} in {group} contains '/', which xarray.DataTree "
            "rejects as a path separator; rename it (for numpyro modules pass "
            "scope_divider='.') or keep it out of the DataTree"
        )


def _check_sample_shapes(data: dict[str, dict[str, np.ndarray]]) -> None:
    reference: tuple[str, str, tuple[int, int]] | None = None
    for group in _SAMPLE_GROUPS:
        for name, arr in data.get(group, {}).items():
            if arr.ndim < 2:
                raise ValueError(
                    f"build_datatree: {group}[{name!r}] must have leading dims (chain, draw), "
                    f"got shape {arr.shape}; add the missing axes, e.g. value[None, None] "
                    "for a single point estimate"
                )
            if group == "prior":
                # Prior draws come from a separate run with their own (1, draw) layout.
                continue
            if group == "predictions":
                continue  # a thinned subset of the draws: checked against posterior below
            if reference is None:
                reference = (group, name, arr.shape[:2])
            elif arr.shape[:2] != reference[2]:
                raise ValueError(
                    f"build_datatree: {group}[{name!r}] has (chain, draw) = {arr.shape[:2]} but "
                    f"{reference[0]}[{reference[1]!r}] has {reference[2]}; all sampled groups "
                    "except prior must share chain and draw sizes"
                )
    for name, arr in data.get("predictions", {}).items():
        if reference is not None and (arr.ndim < 2 or arr.shape[0] != reference[2][0]
                                      or arr.shape[1] > reference[2][1]):
            raise ValueError(
                f"build_datatree: predictions[{name!r}] has shape {arr.shape}; it needs the "
                f"posterior's {reference[2][0]} chains and at most its {reference[2][1]} draws"
            )


def _resolve_dims(
    data: dict[str, dict[str, np.ndarray]], dims: dict[str, list[str]]
) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in dims.items()}
    for name, default in _DEFAULT_DIMS.items():
        if name in out:
            continue
        event_ndims = {
            arr.ndim - (len(SAMPLE_DIMS) if group in _SAMPLE_GROUPS else 0)
            for group, group_data in data.items()
            for var, arr in group_data.items()
            if var == name
        }
        if event_ndims == {len(default)}:
            out[name] = list(default)
    return out


def _encode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    json_keys: list[str] = []
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise TypeError(f"build_datatree: attrs keys must be str, got {key!r}")
        if key == _JSON_ATTRS_KEY:
            raise ValueError(f"build_datatree: attrs key {key!r} is reserved by bpinn")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            flat[key] = value
            continue
        try:
            flat[key] = json.dumps(_jsonable(value), allow_nan=False)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"build_datatree: attrs[{key!r}] = {value!r} cannot be stored: use str, int, "
                "float or a JSON-serialisable dict/list of them"
            ) from err
        json_keys.append(key)
    if json_keys:
        flat[_JSON_ATTRS_KEY] = json.dumps(json_keys)
    return flat


def decode_attrs(dt: xr.DataTree) -> dict[str, Any]:
    """Return the root attributes given to :func:`build_datatree`, JSON values decoded.

    Works on a tree just built or one read back by :func:`read_results` (NetCDF turns ints into
    numpy scalars; they come back as plain Python numbers).

    Examples
    --------
    >>> import numpy as np
    >>> dt = build_datatree(posterior={"D": np.zeros((1, 3))}, attrs={"a": 1, "b": [1, 2]})
    >>> decode_attrs(dt)
    {'a': 1, 'b': [1, 2]}
    """
    raw = dict(dt.attrs)
    json_keys = json.loads(raw.pop(_JSON_ATTRS_KEY, "[]"))
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in json_keys:
            out[key] = json.loads(value)
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------
def summarize(
    dt: xr.DataTree,
    *,
    var_names: list[str],
    method: str,
    seed: int,
    timing: Mapping[str, float],
    truth: Mapping[str, float | list] | None = None,
    extra: Mapping[str, Any] | None = None,
    max_tree_depth: int | None = None,
) -> dict[str, Any]:
    """Make the ``summary.json`` dict: per-parameter statistics, diagnostics and warnings.

    Statistics come from :func:`arviz_stats.summary` over the ``posterior`` group: mean, sd,
    median, the 2.5%/97.5% quantiles (equal-tailed 95% interval), the 94% HDI, rank-normalised
    split R-hat, bulk and tail ESS and the MCSE of the mean. A variable with event dims gives one
    entry per element, labelled like ArviZ does (``sigma[S1]``).

    Parameters
    ----------
    dt : xarray.DataTree
        As made by :func:`build_datatree`.
    var_names : list of str
        Posterior variables to summarise: PDE coefficients and noise scales, not network weights.
    method : str
        Name of the inference method (``"nuts"``, ``"map"``, ...).
    seed : int
        The seed of the run.
    timing : dict of str to float
        Seconds per phase; ``compile_s, map_s, warmup_s, sampling_s, total_s`` are always present
        in the output (None when not given) and other keys pass through.
    truth : dict, optional
        Known values, keyed by variable (a float, or a list with one value per element in the
        variable's C order) or by entry label (``"sigma[S1]"``). Adds ``truth`` and
        ``truth_in_95`` (inside the equal-tailed 95% interval) to those parameters.
    extra : dict, optional
        More top-level keys (JSON-serialisable); may not reuse the keys above.
    max_tree_depth : int, optional
        The sampler's tree-depth limit; defaults to the ``max_tree_depth`` attribute of
        ``sample_stats`` or of the root. ``sample_stats.tree_depth`` must count on the same scale
        (trajectory doublings, as blackjax's ``num_trajectory_expansions``).

    Returns
    -------
    dict
        JSON-ready: plain ``int``/``float``/``str``/``bool``/``None``; NaN becomes None.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> dt = build_datatree(posterior={"D": rng.normal(0.07, 0.001, (4, 500))},
    ...                     sample_stats={"diverging": np.zeros((4, 500), bool)})
    >>> s = summarize(dt, var_names=["D"], method="nuts", seed=0, timing={"total_s": 1.0},
    ...               truth={"D": 0.07})
    >>> s["parameters"]["D"]["truth_in_95"], s["diagnostics"]["warnings"]
    (True, [])
    """
    if "posterior" not in dt.children:
        raise ValueError(
            f"summarize: dt has no posterior group (groups: {sorted(dt.children)}); "
            "build it with build_datatree"
        )
    # Empty: a problem whose only unknowns are coefficient fields (summarised apart) and
    # whose noise is known has no scalar rows.
    if isinstance(var_names, str) or not all(isinstance(v, str) for v in var_names):
        raise ValueError(f"summarize: var_names must be a list of str, got {var_names!r}")
    posterior = dt["posterior"].to_dataset()
    missing = [v for v in var_names if v not in posterior.data_vars]
    if missing:
        raise ValueError(
            f"summarize: var_names {missing} are not in the posterior; "
            f"available: {sorted(posterior.data_vars)}"
        )
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED_KEYS))
    if clash:
        raise ValueError(f"summarize: extra may not set the reserved keys {clash}")

    parameters, entries_by_var = _parameter_table(dt, list(var_names))
    if truth is not None:
        _attach_truth(parameters, entries_by_var, truth)

    num_chains = int(posterior.sizes["chain"])
    num_draws = int(posterior.sizes["draw"])
    diagnostics = _diagnostics(dt, parameters, num_chains, num_draws, max_tree_depth)

    timing_out: dict[str, Any] = {key: None for key in _TIMING_KEYS}
    timing_out.update(dict(timing))

    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "method": str(method),
        "seed": int(seed),
        "parameters": parameters,
        "diagnostics": diagnostics,
        "timing": timing_out,
    }
    if truth is not None:
        out["truth"] = dict(truth)
    out.update(extra)
    return _jsonable(out)


def _parameter_table(
    dt: xr.DataTree, var_names: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    if not var_names:
        return {}, {}
    # round_to="none": arviz_stats rounds to 2 significant digits by default.
    common = {"var_names": var_names, "fmt": "xarray", "round_to": "none"}
    hdi_label = f"hdi{round(HDI_PROB * 100)}"
    eti_label = f"eti{round(ETI_PROB * 100)}"
    main = _az_summary(dt, kind="all", ci_prob=HDI_PROB, ci_kind="hdi", **common)
    med = _az_summary(dt, kind="stats_median", ci_prob=ETI_PROB, **common)
    columns = {
        "mean": (main, "mean"),
        "sd": (main, "sd"),
        "median": (med, "median"),
        "q2.5": (med, f"{eti_label}_lb"),
        "q97.5": (med, f"{eti_label}_ub"),
        "hdi94_low": (main, f"{hdi_label}_lb"),
        "hdi94_high": (main, f"{hdi_label}_ub"),
        "r_hat": (main, "r_hat"),
        "ess_bulk": (main, "ess_bulk"),
        "ess_tail": (main, "ess_tail"),
        "mcse_mean": (main, "mcse_mean"),
    }
    assert tuple(columns) == PARAMETER_KEYS  # one list of keys for writers and readers
    labeller = BaseLabeller()
    parameters: dict[str, dict[str, Any]] = {}
    entries_by_var: dict[str, list[str]] = {v: [] for v in var_names}
    for var_name, sel, isel in xarray_sel_iter(main, var_names=var_names, skip_dims={"summary"}):
        label = labeller.make_label_flat(var_name, sel, isel)
        row = {}
        for key, (table, stat) in columns.items():
            row[key] = _float(table[var_name].isel(isel).sel(summary=stat))
        parameters[label] = row
        entries_by_var[var_name].append(label)
    return parameters, entries_by_var


def _attach_truth(
    parameters: dict[str, dict[str, Any]],
    entries_by_var: dict[str, list[str]],
    truth: Mapping[str, Any],
) -> None:
    for key, value in truth.items():
        if key in parameters:
            labels, values = [key], [value]
        elif key in entries_by_var:
            labels = entries_by_var[key]
            values = np.asarray(value, dtype=float).reshape(-1).tolist()
            if len(values) != len(labels):
                raise ValueError(
                    f"summarize: truth[{key!r}] has {len(values)} value(s) but {key} has "
                    f"{len(labels)} element(s) ({', '.join(labels)})"
                )
        else:
            raise ValueError(
                f"summarize: truth key {key!r} is neither a summarised variable nor an entry; "
                f"valid: {sorted(set(entries_by_var) | set(parameters))}"
            )
        for label, v in zip(labels, values, strict=True):
            row = parameters[label]
            row["truth"] = float(v)
            lo, hi = row["q2.5"], row["q97.5"]
            row["truth_in_95"] = None if lo is None or hi is None else bool(lo <= float(v) <= hi)


def _diagnostics(
    dt: xr.DataTree,
    parameters: dict[str, dict[str, Any]],
    num_chains: int,
    num_draws: int,
    max_tree_depth: int | None,
) -> dict[str, Any]:
    warnings: list[str] = []
    total = num_chains * num_draws
    stats = dt["sample_stats"].to_dataset() if "sample_stats" in dt.children else None

    divergences = divergence_rate = None
    if stats is not None and "diverging" in stats:
        divergences = int(np.count_nonzero(stats["diverging"].values))
        divergence_rate = divergences / total
        if divergences:
            warnings.append(
                f"{divergences} divergent transition(s) ({100 * divergence_rate:.3g}% of "
                f"{total} draws): the sampler could not follow the posterior's geometry, so "
                "intervals may be biased; raise the target acceptance rate or reparameterise"
            )

    located = divergence_locations(dt) if divergences else []
    for where in located:
        warnings.append(divergence_location_warning(where))

    if max_tree_depth is None:
        for source in (stats.attrs if stats is not None else {}, dt.attrs):
            if _MAX_TREE_DEPTH_ATTR in source:
                max_tree_depth = int(source[_MAX_TREE_DEPTH_ATTR])
                break
    tree_depth_fraction = None
    if stats is not None and "tree_depth" in stats and max_tree_depth is not None:
        tree_depth_fraction = float(np.mean(stats["tree_depth"].values >= max_tree_depth))
        if tree_depth_fraction > 0:
            warnings.append(
                f"{100 * tree_depth_fraction:.3g}% of draws hit the maximum tree depth "
                f"{max_tree_depth}: the sampler is inefficient and may explore poorly; raise "
                "max_tree_depth or reparameterise"
            )

    bfmi = bfmi_per_chain(dt)
    if bfmi is not None and any(v < BFMI_MIN for v in bfmi):
        warnings.append(bfmi_warning(bfmi))

    if num_chains == 1 and num_draws > 1:
        warnings.append(
            "only one chain was run: R-hat is unavailable, so convergence cannot be checked; "
            "run at least 4 chains from dispersed starting points"
        )
    for label, row in parameters.items():
        r_hat = row["r_hat"]
        if r_hat is not None and r_hat > RHAT_MAX:
            warnings.append(
                f"R-hat of {label} is {_fmt_rhat(r_hat)} > {RHAT_MAX}: chains disagree; "
                "run longer or check for multiple modes"
            )
    for label, row in parameters.items():
        for kind, what in (("bulk", "mean and median"), ("tail", "2.5%/97.5% quantiles")):
            ess = row[f"ess_{kind}"]
            if ess is not None and ess < ESS_MIN:
                warnings.append(
                    f"{kind} ESS of {label} is {ess:.0f} < {ESS_MIN:.0f}: too few effective "
                    f"draws to trust its {what}; run longer chains or reparameterise"
                )

    fit = readings_fit(dt)
    if fit is not None and fit["r2"] < READINGS_R2_MIN:
        warnings.append(readings_fit_warning(fit))

    r_hats = [row["r_hat"] for row in parameters.values() if row["r_hat"] is not None]
    ess_bulks = [row["ess_bulk"] for row in parameters.values() if row["ess_bulk"] is not None]
    return {
        "divergences": divergences,
        "divergence_rate": divergence_rate,
        "divergence_locations": located,
        "num_draws": num_draws,
        "num_chains": num_chains,
        "max_r_hat": max(r_hats) if r_hats else None,
        "min_ess_bulk": min(ess_bulks) if ess_bulks else None,
        "max_tree_depth": max_tree_depth,
        "max_tree_depth_fraction": tree_depth_fraction,
        "bfmi": bfmi,
        "readings_fit": fit,
        "warnings": warnings,
    }


def readings_fit(dt: xr.DataTree) -> dict[str, Any] | None:
    """How much of the readings the posterior's field explains, or None without the groups.

    ``r2 = 1 - sum (y - m)^2 / sum (y - mean y)^2`` with ``m`` the posterior mean of the
    noise-free prediction at each reading (``posterior_predictive.u_pred``) and ``y`` the
    readings (``observed_data.u_obs``); also the RMS misfit and the readings' sd. An inferred
    noise scale absorbs whatever the field does not fit, so the sampler's own diagnostics can
    look clean while the field explains little: this is the check that sees it.

    Examples
    --------
    >>> y = np.array([0.0, 1.0, 2.0, 3.0])
    >>> dt = build_datatree(posterior={"D": np.zeros((1, 2))},
    ...                     posterior_predictive={"u_pred": np.broadcast_to(y, (1, 2, 4))},
    ...                     observed_data={"u_obs": y}, dims={"u_pred": ["obs"], "u_obs": ["obs"]})
    >>> readings_fit(dt)["r2"]
    1.0
    """
    if ("posterior_predictive" not in dt.children or "observed_data" not in dt.children
            or "u_pred" not in dt["posterior_predictive"].data_vars
            or OBS_VAR not in dt["observed_data"].data_vars):
        return None
    y = np.asarray(dt["observed_data"][OBS_VAR].values, float).reshape(-1)
    predicted = np.asarray(dt["posterior_predictive"]["u_pred"].values, float)
    if predicted.ndim != 3 or predicted.shape[-1] != y.size or y.size < 2:
        return None
    misfit = y - predicted.mean(axis=(0, 1))
    spread = float(np.sum((y - y.mean()) ** 2))
    if not spread > 0 or not np.all(np.isfinite(misfit)):
        return None
    return {"r2": 1.0 - float(np.sum(misfit**2)) / spread, "n": int(y.size),
            "rms_misfit": float(np.sqrt(np.mean(misfit**2))), "readings_sd": float(np.std(y))}


def readings_fit_warning(fit: Mapping[str, Any]) -> str:
    return (
        f"the posterior's field explains {100 * fit['r2']:.0f}% of the variance of the "
        f"{fit['n']} readings (RMS misfit {fit['rms_misfit']:.3g} against their sd "
        f"{fit['readings_sd']:.3g}); the rest is put down to noise. Unless the readings are "
        "that noisy, the network did not fit them: the usual causes are physics terms that "
        "overwhelm the readings ([model] residual_noise small against the size of the PDE's "
        "terms), a MAP fit stopped early (map_adam_steps) or a network too small for the field"
    )


def divergence_locations(dt: xr.DataTree, *, tail: float = DIVERGENCE_TAIL,
                         num_se: float = DIVERGENCE_NUM_SE) -> list[dict[str, Any]]:
    """Parameters at one end of whose range the divergent transitions concentrate.

    For every posterior variable with at most ``DIVERGENCE_MAX_ELEMENTS`` values per draw, and
    each of its elements: the percentile ranks (0 to 1) of the divergent draws among all draws.
    An element is reported when their median rank is below ``tail`` (or above ``1 - tail``) and
    more than ``num_se`` times ``0.5 / sqrt(n)`` from 0.5, where n is the number of separate runs
    of divergent draws (consecutive divergent draws of a chain count once). Each entry is a
    JSON-ready dict: ``parameter``, ``side`` ("small" or "large"), ``median_rank``,
    ``divergences``, ``divergent_runs``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sigma = rng.lognormal(-4.0, 1.0, (2, 500))
    >>> diverging = sigma < np.quantile(sigma, 0.1)  # 100 draws, the smallest tenth
    >>> dt = build_datatree(posterior={"sigma": sigma}, sample_stats={"diverging": diverging})
    >>> divergence_locations(dt)[0]["side"]
    'small'
    """
    if "sample_stats" not in dt.children or "diverging" not in dt["sample_stats"].data_vars:
        return []
    diverging = np.asarray(dt["sample_stats"]["diverging"].values, bool)
    if diverging.ndim != 2 or not diverging.any():
        return []
    count = int(diverging.sum())
    runs = int(np.sum(diverging[:, 1:] & ~diverging[:, :-1]) + np.sum(diverging[:, 0]))
    min_offset = max(0.5 - tail, num_se * 0.5 / np.sqrt(runs))
    found = []
    for name, var in dt["posterior"].data_vars.items():
        values = np.asarray(var.values, float)
        if values.shape[:2] != diverging.shape or values[0, 0].size > DIVERGENCE_MAX_ELEMENTS:
            continue
        flat = values.reshape(values.shape[0] * values.shape[1], -1)
        for index in range(flat.shape[1]):
            column = flat[:, index]
            if not np.all(np.isfinite(column)):
                continue
            ranks = (np.argsort(np.argsort(column)) + 0.5) / column.size
            median = float(np.median(ranks[diverging.reshape(-1)]))
            if abs(median - 0.5) <= min_offset:
                continue
            label = name if flat.shape[1] == 1 else f"{name}[{index}]"
            found.append({"parameter": label, "side": "small" if median < 0.5 else "large",
                          "median_rank": median, "divergences": count,
                          "divergent_runs": runs})
    return found


def divergence_location_warning(where: dict[str, Any]) -> str:
    """The warning for one entry of :func:`divergence_locations`."""
    text = (f"the divergent transitions concentrate at {where['side']} values of "
            f"{where['parameter']} (their median lies at the {100 * where['median_rank']:.0f}th "
            "percentile of its draws): the posterior's geometry is hardest there")
    name = where["parameter"].split("[")[0]
    if where["side"] == "small" and name == "sigma":
        text += (". A sensor noise sd near 0 is a funnel: there the network interpolates the "
                 "readings. If the noise sd is known, give it as a number ([data] noise = ...); "
                 "otherwise give its prior less mass near 0, or add readings")
    elif where["side"] == "small" and name.startswith("sigma"):
        text += ". A scale near 0 is a funnel: give its prior less mass near 0"
    return text


def bfmi_per_chain(dt: xr.DataTree) -> list[float] | None:
    """E-BFMI of each chain (arviz-stats), when the sampler recorded the Hamiltonian energy."""
    if "sample_stats" not in dt.children or "energy" not in dt["sample_stats"].data_vars:
        return None
    energy = dt["sample_stats"]["energy"]
    if energy.sizes.get("draw", 0) < 2:
        return None
    from arviz_stats import bfmi

    values = bfmi(energy)  # DataArray in, one value per chain out
    return [float(v) for v in np.atleast_1d(values.values)]


def bfmi_warning(bfmi: list[float]) -> str:
    low = ", ".join(f"{v:.2f}" for v in bfmi)
    return (f"E-BFMI per chain is {low}; below {BFMI_MIN} the sampler explores the energy "
            "distribution poorly (heavy tails or a badly scaled metric)")


def field_draws(dt: xr.DataTree, name: str) -> tuple[xr.DataArray, list[str], np.ndarray]:
    """A field stored on a grid: (the variable, its grid dims, draws (chain, draw, points)
    with the grid points in C order)."""
    da = dt["posterior"][name]
    axes = [d for d in da.dims if d not in ("chain", "draw")]
    values = da.transpose("chain", "draw", *axes).values
    return da, axes, values.reshape(values.shape[0], values.shape[1], -1)


def field_summary(dt: xr.DataTree, name: str, *,
                  truth: np.ndarray | None = None) -> dict[str, Any]:
    """Pointwise posterior of a coefficient field stored on a grid (``posterior[name]``, dims
    chain, draw, then one per axis): mean, sd and the equal-tailed 95% band at every grid point
    (C order) and the worst R-hat and bulk ESS over the points. With ``truth`` (values on the
    grid) also the fraction of points whose 95% band holds the truth and the root-mean-square
    error of the mean. Where the data determine the field is
    ``bpinn.diagnostics.field_identifiability``'s."""
    from arviz_stats.base import array_stats

    da, axes, flat = field_draws(dt, name)
    per_point = np.moveaxis(flat, -1, 0)
    r_hat = np.asarray([array_stats.rhat(v, chain_axis=0, draw_axis=1) for v in per_point])
    ess = np.asarray([array_stats.ess(v, chain_axis=0, draw_axis=1) for v in per_point])
    pooled = flat.reshape(-1, flat.shape[-1])
    lo, hi = np.quantile(pooled, [0.025, 0.975], axis=0)
    out: dict[str, Any] = {
        "axes": {d.removeprefix(f"{name}_"): da[d].values.tolist() for d in axes},
        "mean": pooled.mean(axis=0).tolist(),
        "sd": pooled.std(axis=0).tolist(),
        "q2.5": lo.tolist(),
        "q97.5": hi.tolist(),
        "max_r_hat": float(np.max(r_hat)) if r_hat.size else None,
        "min_ess_bulk": float(np.min(ess)) if ess.size else None,
    }
    if truth is not None:
        truth = np.asarray(truth, float).reshape(-1)
        out["truth"] = truth.tolist()
        out["truth_in_95_fraction"] = float(np.mean((lo <= truth) & (truth <= hi)))
        out["rmse"] = float(np.sqrt(np.mean((pooled.mean(axis=0) - truth) ** 2)))
    return out


def field_warnings(name: str, f: Mapping[str, Any]) -> list[str]:
    """The field's convergence, judged like a scalar's but at its worst grid point."""
    out = []
    if f.get("max_r_hat") is not None and f["max_r_hat"] > RHAT_MAX:
        out.append(f"R-hat of the field {name} reaches {f['max_r_hat']:.3f} > {RHAT_MAX} at "
                   "some grid points: chains disagree on it; run longer or check for multiple "
                   "modes")
    if f.get("min_ess_bulk") is not None and f["min_ess_bulk"] < ESS_MIN:
        out.append(f"bulk ESS of the field {name} falls to {f['min_ess_bulk']:.0f} < "
                   f"{ESS_MIN:.0f} at some grid points: too few effective draws to trust its "
                   "band there; run longer chains")
    return out


def field_lines(name: str, f: Mapping[str, Any], rows: int = 9) -> list[str]:
    """A coefficient field in a few rows of its grid: where it is, what it is, how sure."""
    axes = list(f["axes"])
    mesh = np.meshgrid(*(np.asarray(f["axes"][a]) for a in axes), indexing="ij")
    coords = np.stack([m.ravel() for m in mesh], axis=1)
    pick = np.unique(np.linspace(0, len(coords) - 1, rows).round().astype(int))
    has_truth = f.get("truth") is not None
    head = "".join(f"{a:>9}" for a in axes) + f"{'mean':>11}{'2.5%':>11}{'97.5%':>11}" + (
        f"{'truth':>11}" if has_truth else "") + f"{'contraction':>13}"
    lines = [f"field {name} (pointwise posterior at {len(pick)} of {len(coords)} grid points):",
             head]
    for i in pick:
        cells = "".join(f"{v:>9.3g}" for v in coords[i])
        cells += "".join(f"{f[key][i]:>11.4g}" for key in ("mean", "q2.5", "q97.5"))
        if has_truth:
            cells += f"{f['truth'][i]:>11.4g}"
        lines.append(cells + f"{f['contraction'][i]:>13.2f}")
    tail = (f"determined by the data (contraction >= {f['identified_threshold']}) over "
            f"{100 * f['identified_fraction']:.0f}% of the grid; max R-hat "
            f"{_num(f['max_r_hat'])}, min bulk ESS {_num(f['min_ess_bulk'])}")
    if has_truth:
        tail += (f"; truth inside the 95% band at {100 * f['truth_in_95_fraction']:.0f}% of the "
                 f"points, RMSE of the mean {f['rmse']:.3g}")
    lines.append(tail)
    if f.get("implied_prior"):
        lines.append(f"implied prior of the physics on {name}: {f['implied_prior']}")
    return lines


def _fmt_rhat(value: float) -> str:
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _float(value: Any) -> float | None:
    out = float(np.asarray(value))
    return out if math.isfinite(out) else None


def _jsonable(obj: Any) -> Any:
    """Plain-Python copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} {obj!r} in summary.json")


# ---------------------------------------------------------------------------------------------
# Text table
# ---------------------------------------------------------------------------------------------
def format_summary(summary: Mapping[str, Any]) -> str:
    """Render a summary dict as a fixed-width table, a diagnostics line and its warnings.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> dt = build_datatree(posterior={"D": rng.normal(0.07, 0.001, (4, 500))})
    >>> text = format_summary(summarize(dt, var_names=["D"], method="nuts", seed=0, timing={}))
    >>> text.splitlines()[0].split()[:3]
    ['name', 'mean', 'sd']
    """
    header = (
        "name",
        "mean",
        "sd",
        "2.5%",
        "97.5%",
        "hdi 94%",
        "r_hat",
        "ess_bulk",
        "ess_tail",
        "truth",
    )
    rows = []
    any_outside = False
    for name, p in summary["parameters"].items():
        truth = "-"
        if p.get("truth") is not None:
            truth = _num(p["truth"])
            if p.get("truth_in_95") is False:
                truth += " *"
                any_outside = True
        rows.append(
            (
                name,
                _num(p["mean"]),
                _num(p["sd"]),
                _num(p["q2.5"]),
                _num(p["q97.5"]),
                f"[{_num(p['hdi94_low'])}, {_num(p['hdi94_high'])}]",
                "-" if p["r_hat"] is None else f"{p['r_hat']:.3f}",
                "-" if p["ess_bulk"] is None else f"{p['ess_bulk']:.0f}",
                "-" if p["ess_tail"] is None else f"{p['ess_tail']:.0f}",
                truth,
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        first = f"{cells[0]:<{widths[0]}}"
        rest = [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    lines = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    if any_outside:
        lines.append("* truth outside the equal-tailed 95% interval")

    d = summary["diagnostics"]
    parts = [
        f"method={summary.get('method')}",
        f"chains={d['num_chains']}",
        f"draws/chain={d['num_draws']}",
    ]
    if d["divergences"] is None:
        parts.append("divergences=n/a")
    else:
        parts.append(f"divergences={d['divergences']} ({100 * d['divergence_rate']:.3g}%)")
    parts.append("max_r_hat=" + ("n/a" if d["max_r_hat"] is None else f"{d['max_r_hat']:.3f}"))
    parts.append(
        "min_ess_bulk=" + ("n/a" if d["min_ess_bulk"] is None else f"{d['min_ess_bulk']:.0f}")
    )
    if d.get("max_tree_depth_fraction") is not None:
        parts.append(f"at_max_tree_depth={100 * d['max_tree_depth_fraction']:.3g}%")
    if d.get("readings_fit") is not None:
        parts.append(f"readings_r2={d['readings_fit']['r2']:.3f}")
    total = summary.get("timing", {}).get("total_s")
    if total is not None:
        parts.append(f"total={total:.1f}s")
    lines.append("")
    lines.append("diagnostics: " + "  ".join(parts))
    lines.extend(f"WARNING: {w}" for w in d["warnings"])
    lines.extend(_implicit_prior_lines(summary.get("method_info", {}).get("implicit_prior")))
    for name, f in (summary.get("fields") or {}).items():
        lines.append("")
        lines.extend(field_lines(name, f))
    return "\n".join(lines)


def _implicit_prior_lines(info: Mapping[str, Any] | None) -> list[str]:
    """What the physics terms' implied prior did (``bpinn.inference.implicit_prior``)."""
    if not info or not info.get("coefficients"):
        return []
    done = "removed" if info["mode"] == "corrected" else "NOT removed (implicit_prior = 'measured')"
    lines = ["implied prior of the physics terms (slope at the MAP; " + done + "):"]
    for name, row in info["coefficients"].items():
        shift = row.get("shift_in_sds")
        lines.append(f"  - {name}: slope {row['slope']:.3g} +- {row['mcse']:.2g} per "
                     "unconstrained unit" + ("" if shift is None else
                                              f", moves the posterior by {shift:+.2f} sds"))
        if "profile" in row:
            profile = row["profile"]
            lines.append(f"    profile over {min(profile['at_unconstrained']):.3g} .. "
                         f"{max(profile['at_unconstrained']):.3g} (unconstrained): slope "
                         + ", ".join(f"{v:.3g}" for v in profile["slope"]))
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def _atomic_write_netcdf(path: Path, dt: xr.DataTree) -> None:
    atomic_write_via(path, lambda tmp: dt.to_netcdf(tmp, engine="h5netcdf"))



def write_results(
    outdir: str | os.PathLike, dt: xr.DataTree, summary: Mapping[str, Any]
) -> dict[str, Path]:
    """Write ``outdir/posterior.nc`` and ``outdir/summary.json``, each atomically.

    Parameters
    ----------
    outdir : path
        Created if missing.
    dt : xarray.DataTree
        As made by :func:`build_datatree`.
    summary : dict
        As made by :func:`summarize`.

    Returns
    -------
    dict
        ``{"posterior": Path, "summary": Path}``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> dt = build_datatree(posterior={"D": np.zeros((1, 3))})
    >>> s = summarize(dt, var_names=["D"], method="map", seed=0, timing={})
    >>> paths = write_results(tempfile.mkdtemp(), dt, s)
    >>> sorted(p.name for p in paths.values())
    ['posterior.nc', 'summary.json']
    """
    if not isinstance(dt, xr.DataTree):
        raise TypeError(f"write_results: dt must be an xarray.DataTree, got {type(dt).__name__}")
    text = json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n"
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"posterior": outdir / FILENAME_POSTERIOR, "summary": outdir / FILENAME_SUMMARY}
    _atomic_write_netcdf(paths["posterior"], dt)
    atomic_write_bytes(paths["summary"], text.encode("utf-8"))
    return paths


def read_results(path: str | os.PathLike) -> xr.DataTree:
    """Load ``posterior.nc`` fully into memory and close the file.

    Parameters
    ----------
    path : path
        The ``.nc`` file, or the directory :func:`write_results` wrote into.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> dt = build_datatree(posterior={"D": np.zeros((1, 3))})
    >>> s = summarize(dt, var_names=["D"], method="map", seed=0, timing={})
    >>> outdir = tempfile.mkdtemp()
    >>> _ = write_results(outdir, dt, s)
    >>> read_results(outdir)["posterior"]["D"].shape
    (1, 3)
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME_POSTERIOR
    if not path.is_file():
        raise FileNotFoundError(
            f"read_results: no results file at {path}; pass a posterior.nc or the output "
            "directory of a run"
        )
    return xr.load_datatree(path, engine="h5netcdf")
