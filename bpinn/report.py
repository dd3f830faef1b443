"""One self-contained HTML page that reports the uncertainty of a bpinn run.

``write_report(results_path)`` reads ``posterior.nc`` (and ``summary.json`` beside it, when
present) and writes ``report.html`` plus ``results.csv`` next to it. The page has no external
references: plots are PNGs embedded as ``data:`` URIs and the CSS is inline, so the file can be
mailed or archived on its own.

Sections (each an ``<h2>`` with a stable id): ``warnings`` (only when there are any, first),
``problem``, ``data``, ``results``, ``convergence``, ``posterior``, ``predictive``,
``identifiability``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bpinn.inference.results import (
    BFMI_MIN,
    ESS_MIN,
    FILENAME_POSTERIOR,
    FILENAME_SUMMARY,
    OBS_VAR,
    PARAMETER_KEYS,
    RHAT_MAX,
    bfmi_per_chain,
    bfmi_warning,
    decode_attrs,
    read_results,
    summarize,
)
from bpinn.utils import atomic_write_bytes

__all__ = ["FILENAME_CSV", "FILENAME_REPORT", "SECTION_IDS", "write_report"]

FILENAME_REPORT = "report.html"
FILENAME_CSV = "results.csv"
SECTION_IDS = ("warnings", "problem", "data", "results", "convergence", "posterior",
               "predictive", "identifiability")
# Sections only some runs have (a coefficient field), in the navigation's order.
_NAV_IDS = (*SECTION_IDS[:6], "fields", *SECTION_IDS[6:])
EXPECTED = "a posterior.nc written by `bpinn run` (or the directory holding it)"
BAND_PROB = 0.90
MAX_SENSOR_PANELS = 16  # beyond this the per-sensor band plots become unreadable thumbnails
CSV_COLUMNS = ("parameter", *PARAMETER_KEYS, "truth", "truth_in_95")
_NOT_UNKNOWNS = ("weights",)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def write_report(results_path: str | os.PathLike, out_html: str | os.PathLike | None = None
                 ) -> Path:
    """Write the HTML report of a run and ``results.csv`` beside it; return the HTML path.

    Parameters
    ----------
    results_path : ``posterior.nc`` or the directory ``bpinn run`` wrote it into.
    out_html : where to write the page; default ``report.html`` beside ``posterior.nc``.

    Raises
    ------
    FileNotFoundError : nothing at ``results_path``.
    ValueError : the file is not a bpinn result (unreadable, or no ``posterior`` group).
    """
    nc_path = _posterior_path(results_path)
    dt = _load_bpinn_results(nc_path)
    attrs = decode_attrs(dt)
    summary = _load_or_compute_summary(dt, attrs, nc_path.parent / FILENAME_SUMMARY)
    identifiability = summary.get("identifiability") or _compute_identifiability(dt)
    unknowns = _unknown_names(dt)

    out_html = Path(out_html) if out_html is not None else nc_path.parent / FILENAME_REPORT
    out_html.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_html.parent / FILENAME_CSV, results_csv(summary).encode("utf-8"))

    diagnostics = summary.get("diagnostics") or {}
    # Summaries written before E-BFMI was part of them: compute it here.
    bfmi = diagnostics["bfmi"] if "bfmi" in diagnostics else bfmi_per_chain(dt)
    body = [
        section_warnings(collect_warnings(summary, identifiability, bfmi)),
        section_problem(attrs, summary, nc_path),
        section_data(dt, attrs),
        section_results(summary),
        section_convergence(dt, summary, unknowns, bfmi),
        section_posterior(dt, unknowns),
        section_fields(summary),
        section_predictive(dt, attrs),
        section_identifiability(identifiability),
    ]
    title = f"bpinn report: {attrs.get('pde', 'run')} ({summary.get('method', '?')})"
    page = _page(title, [part for part in body if part])
    atomic_write_bytes(out_html, page.encode("utf-8"))
    return out_html


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------
def _posterior_path(results_path: str | os.PathLike) -> Path:
    path = Path(results_path)
    if path.is_dir():
        path = path / FILENAME_POSTERIOR
    if not path.is_file():
        raise FileNotFoundError(f"write_report: no file at {path}; expected {EXPECTED}")
    return path


def _load_bpinn_results(path: Path) -> xr.DataTree:
    """The results tree, or ValueError saying what a bpinn result looks like."""
    try:
        dt = read_results(path)
    except Exception as err:  # any reader failure means "this is not a results file"
        raise ValueError(
            f"write_report: {path} cannot be read as NetCDF-4 ({type(err).__name__}: {err}); "
            f"expected {EXPECTED}"
        ) from err
    if "posterior" not in dt.children or not dt["posterior"].data_vars:
        raise ValueError(
            f"write_report: {path} has no posterior group with draws (groups: "
            f"{sorted(dt.children) or 'none'}); expected {EXPECTED}"
        )
    try:
        decode_attrs(dt)
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"write_report: {path} has unreadable bpinn attributes ({err}); "
                         f"expected {EXPECTED}") from err
    return dt


def _unknown_names(dt: xr.DataTree) -> list[str]:
    """Scalar unknowns (and per-group noise); coefficient fields have their own section."""
    fields = decode_attrs(dt).get("coefficient_fields") or {}
    return [str(v) for v in dt["posterior"].data_vars
            if v not in _NOT_UNKNOWNS and v not in fields]


def _load_or_compute_summary(dt: xr.DataTree, attrs: Mapping, summary_path: Path) -> dict:
    """summary.json when the run wrote one (it has timings and MAP checks the .nc lacks)."""
    if summary_path.is_file():
        try:
            return json.loads(summary_path.read_text())
        except json.JSONDecodeError:
            pass  # a damaged summary is no reason to withhold the report: recompute it
    config = attrs.get("config") or {}
    summary = summarize(
        dt, var_names=_unknown_names(dt), method=str(attrs.get("method", "unknown")),
        seed=int(attrs.get("seed", -1)), timing={}, truth=config.get("truth") or None,
        max_tree_depth=(attrs.get("method_info") or {}).get("max_tree_depth")
        or (config.get("inference") or {}).get("max_tree_depth"),
    )
    if attrs.get("exact_mcmc") is False:
        summary["diagnostics"]["warnings"].append(
            f"{attrs.get('method')} is an approximation, not MCMC: R-hat and ESS describe its own "
            "draws, not how close it is to the posterior")
    return summary


def _compute_identifiability(dt: xr.DataTree) -> dict | None:
    from bpinn.diagnostics import identify

    try:
        return identify(dt)
    except ValueError:
        return None  # no prior group: the section says so instead


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------
def collect_warnings(summary: Mapping, identifiability: Mapping | None,
                     bfmi: list[float] | None) -> list[str]:
    """Every warning the run raised, without repeats: sampler, approximation, identifiability."""
    found = list((summary.get("diagnostics") or {}).get("warnings") or [])
    if bfmi is not None and any(v < BFMI_MIN for v in bfmi):
        found.append(bfmi_warning(bfmi))  # repeats of the summary's own are dropped below
    ident = identifiability or {}
    caveat = ident.get("method_caveat")
    if caveat:
        found.append(caveat)
    agreement = ident.get("chain_agreement") or {}
    if agreement.get("disagreeing"):
        found.append(agreement["verdict"])
    return list(dict.fromkeys(found))


def section_warnings(warnings: list[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
    return (_h2("warnings", "Warnings")
            + "<div class='warn'><p>Read these before trusting any number below. Thresholds: "
            f"R-hat &le; {RHAT_MAX}, bulk and tail ESS &ge; {ESS_MIN:.0f}, no divergences, no "
            f"draws at the maximum tree depth, E-BFMI &ge; {BFMI_MIN}.</p>"
            f"<ul>{items}</ul></div>")


def section_problem(attrs: Mapping, summary: Mapping, nc_path: Path) -> str:
    config = attrs.get("config") or {}
    coords = _coordinate_names(attrs)
    lower, upper = attrs.get("domain_lower") or [], attrs.get("domain_upper") or []
    domain = ", ".join(f"{c} in [{lo:g}, {hi:g}]"
                       for c, lo, hi in zip(coords, lower, upper, strict=False))
    data_cfg = config.get("data") or {}
    rows = [
        ("PDE", f"{attrs.get('pde', '?')}: {attrs.get('equation', '?')}"),
        ("Domain", domain or "-"),
        ("Source term", attrs.get("source")),
        ("Conditions", _conditions_html(config.get("conditions") or [])),
        ("Unknowns and priors", _mapping_html(attrs.get("priors") or {})),
        ("Noise model", "Gaussian readings, noise scale prior: "
         + _esc(_inline(data_cfg.get("noise", "-")))),
        ("Truth (for checking)", _esc(_inline(config.get("truth"))) if config.get("truth")
         else None),
        ("Network", f"{attrs.get('network', '?')}, {attrs.get('num_weights', '?')} weights, "
                    f"{attrs.get('num_collocation', '?')} collocation points"),
        ("Model settings", _mapping_html(config.get("model") or {})),
        ("Method", f"{summary.get('method', attrs.get('method', '?'))} "
                   f"({'exact MCMC' if attrs.get('exact_mcmc') else 'approximation'})"),
        ("Draws", f"{summary.get('diagnostics', {}).get('num_chains', '?')} chains x "
                  f"{summary.get('diagnostics', {}).get('num_draws', '?')} draws"),
        # ``inference`` is what ran (overrides applied); older results have only the file's table.
        ("[inference] as run", _mapping_html(attrs.get("inference")
                                             or config.get("inference") or {})),
        ("Method info", _mapping_html(attrs.get("method_info") or {})),
        ("Seed", attrs.get("seed", summary.get("seed"))),
        ("Device", " / ".join(str(x) for x in (attrs.get("device"), attrs.get("platform")) if x)),
        ("Versions", _mapping_html(attrs.get("versions") or {})),
        ("Data file", attrs.get("data_file")),
        ("Data sha256", f"<code>{_esc(attrs.get('data_sha256', '-'))}</code>"),
        ("Config", attrs.get("config_path")),
        ("Results file", str(nc_path)),
        ("Wall times (s)", _timing_html(summary.get("timing") or {})),
    ]
    trusted = {"Conditions", "Unknowns and priors", "Noise model", "Truth (for checking)",
               "Model settings", "[inference] as run", "Method info", "Versions",
               "Data sha256", "Wall times (s)"}
    body = "".join(
        f"<tr><th>{_esc(k)}</th><td>{v if k in trusted else _esc(v)}</td></tr>"
        for k, v in rows if v not in (None, "", {})
    )
    return _h2("problem", "Problem and run") + f"<table class='kv'>{body}</table>"


def section_data(dt: xr.DataTree, attrs: Mapping) -> str:
    out = _h2("data", "Data")
    if "constant_data" not in dt.children or "observed_data" not in dt.children:
        return out + "<p>The results hold no sensor data (observed_data/constant_data).</p>"
    table = _sensor_table(dt, attrs)
    horizontal, vertical = _axes_names(table)
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    if vertical:
        points = ax.scatter(table[horizontal], table[vertical], c=table["reading"],
                            cmap="viridis", s=30, edgecolors="k", linewidths=0.3)
        fig.colorbar(points, ax=ax, label="reading")
        ax.set_ylabel(vertical)
    else:
        ax.scatter(table[horizontal], table["reading"], s=20)
        ax.set_ylabel("reading")
    ax.set_xlabel(horizontal)
    lower, upper = attrs.get("domain_lower"), attrs.get("domain_upper")
    coords = _coordinate_names(attrs)
    if lower and upper and horizontal in coords:
        i = coords.index(horizontal)
        ax.set_xlim(lower[i], upper[i])
        if vertical in coords:
            j = coords.index(vertical)
            ax.set_ylim(lower[j], upper[j])
    ax.set_title(f"{len(table['reading'])} readings at the sensors")
    columns = [c for c in ("group_name", *coords, "reading") if c in table]
    rows = "".join(
        "<tr>" + "".join(f"<td>{_esc(_num(table[c][i]))}</td>" for c in columns) + "</tr>"
        for i in range(len(table["reading"]))
    )
    header = "".join(f"<th>{_esc('sensor' if c == 'group_name' else c)}</th>" for c in columns)
    return (out + _img(fig, "sensor locations coloured by reading")
            + "<details><summary>The readings</summary>"
            + f"<table class='num'><tr>{header}</tr>{rows}</table></details>")


def section_results(summary: Mapping) -> str:
    header = ("parameter", "mean", "sd", "median", "94% HDI", "95% ETI", "R-hat", "ESS bulk",
              "ESS tail", "MCSE mean", "truth")
    rows = []
    for label, p in (summary.get("parameters") or {}).items():
        truth = "-" if p.get("truth") is None else _num(p["truth"])
        if p.get("truth_in_95") is False:
            truth += " (outside 95%)"
        cells = [
            _esc(label), _num(p.get("mean")), _num(p.get("sd")), _num(p.get("median")),
            f"[{_num(p.get('hdi94_low'))}, {_num(p.get('hdi94_high'))}]",
            f"[{_num(p.get('q2.5'))}, {_num(p.get('q97.5'))}]",
            _flag(_fmt(p.get("r_hat"), ".3f"), _bad_rhat(p.get("r_hat"))),
            _flag(_fmt(p.get("ess_bulk"), ".0f"), _bad_ess(p.get("ess_bulk"))),
            _flag(_fmt(p.get("ess_tail"), ".0f"), _bad_ess(p.get("ess_tail"))),
            _num(p.get("mcse_mean")), _esc(truth),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in header)
    return (_h2("results", "Results")
            + "<p>Posterior of each coefficient and noise scale. HDI: highest-density interval; "
            "ETI: equal-tailed interval (2.5% to 97.5% quantiles). Flagged cells fail "
            f"R-hat &le; {RHAT_MAX} or ESS &ge; {ESS_MIN:.0f}. Also in "
            f"<code>{FILENAME_CSV}</code> beside this page.</p>"
            f"<table class='num'><tr>{head}</tr>{''.join(rows)}</table>")


def results_csv(summary: Mapping) -> str:
    """The results table as CSV: one row per parameter, the summary.json keys as columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for label, p in (summary.get("parameters") or {}).items():
        writer.writerow([label, *("" if p.get(k) is None else p[k] for k in CSV_COLUMNS[1:])])
    return buffer.getvalue()


def section_convergence(dt: xr.DataTree, summary: Mapping, unknowns: list[str],
                        bfmi: list[float] | None) -> str:
    d = summary.get("diagnostics") or {}
    facts = [
        ("chains x draws", f"{d.get('num_chains', '?')} x {d.get('num_draws', '?')}"),
        ("divergent transitions", "not recorded by this method" if d.get("divergences") is None
         else f"{d['divergences']} ({100 * d.get('divergence_rate', 0):.3g}%)"),
        ("draws at the maximum tree depth",
         "not recorded" if d.get("max_tree_depth_fraction") is None
         else f"{100 * d['max_tree_depth_fraction']:.3g}% (max depth {d.get('max_tree_depth')})"),
        ("largest R-hat", _fmt(d.get("max_r_hat"), ".3f")),
        ("smallest bulk ESS", _fmt(d.get("min_ess_bulk"), ".0f")),
        ("E-BFMI per chain", "no energy recorded" if bfmi is None
         else ", ".join(f"{v:.2f}" for v in bfmi)),
    ]
    if "sample_stats" in dt.children and "acceptance_rate" in dt["sample_stats"].data_vars:
        rate = dt["sample_stats"]["acceptance_rate"].values
        facts.append(("mean acceptance rate", f"{np.nanmean(rate):.3f}"))
    table = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts)
    verdict = _convergence_verdict(summary, bfmi)
    return (_h2("convergence", "Convergence") + f"<p>{_esc(verdict)}</p>"
            + f"<table class='kv'>{table}</table>"
            + "<h3>Traces</h3>" + _plot_or_note(lambda: _trace_figure(dt, unknowns), "trace plot")
            + "<h3>Rank plots</h3><p>With converged chains every chain's ranks are uniform: "
            "the curves stay inside the envelope.</p>"
            + _plot_or_note(lambda: _rank_figure(dt, unknowns), "rank plot"))


def section_posterior(dt: xr.DataTree, unknowns: list[str]) -> str:
    with_prior = [v for v in unknowns
                  if "prior" in dt.children and v in dt["prior"].data_vars]
    out = _h2("posterior", "Prior and posterior")
    if with_prior:
        out += ("<p>How far the data moved and narrowed each prior.</p>"
                + _plot_or_note(lambda: _prior_posterior_figure(dt, with_prior),
                                "prior vs posterior"))
    else:
        out += "<p>The results hold no prior draws to compare with.</p>"
    if _num_scalar_entries(dt, unknowns) >= 2:
        out += ("<h3>Pairs</h3><p>Joint posterior draws: ridges and curved shapes show unknowns "
                "the data determine only in combination.</p>"
                + _plot_or_note(lambda: _pair_figure(dt, unknowns), "pair plot"))
    return out


def section_fields(summary: Mapping) -> str:
    """Each unknown coefficient field: pointwise mean and 95% band (1-D) or mean and sd maps
    (2-D), and where the data determined it."""
    fields = summary.get("fields") or {}
    if not fields:
        return ""
    out = _h2("fields", "Coefficient fields")
    for name, f in fields.items():
        truth = (f"; truth inside the 95% band at {_pct(f['truth_in_95_fraction'])} of the "
                 f"grid points, RMSE of the mean {_fmt(f['rmse'], '.3g')}"
                 if f.get("truth") is not None else "")
        if f.get("readings"):
            truth += (f"; read directly at {len(f['readings']['values'])} points (readings of "
                      f"{f['readings']['of']}: the crosses)")
        out += (f"<h3>{_esc(name)}</h3><p>Prior: {_esc(f.get('prior'))}. The data determine it "
                f"(posterior variance at most half the prior's) over "
                f"{_pct(f['identified_fraction'])} of the grid; largest pointwise R-hat "
                f"{_fmt(f['max_r_hat'], '.3f')}, smallest bulk ESS "
                f"{_fmt(f['min_ess_bulk'], '.0f')}{_esc(truth)}.</p>"
                + _plot_or_note(lambda f=f, name=name: _coefficient_field_figure(name, f),
                                f"field {name}"))
    return out


def _coefficient_field_figure(name: str, f: Mapping):
    axes = list(f["axes"])
    mean, sd = np.asarray(f["mean"]), np.asarray(f["sd"])
    if len(axes) == 1:
        x = np.asarray(f["axes"][axes[0]])
        fig = Figure(figsize=(6, 3.2), layout="constrained")
        ax = fig.subplots()
        ax.fill_between(x, f["q2.5"], f["q97.5"], alpha=0.3, color="C1", linewidth=0,
                        label="95% band")
        ax.plot(x, mean, color="C1", label="posterior mean")
        if f.get("truth") is not None:
            ax.plot(x, f["truth"], "k--", lw=1, label="truth")
        points, values = _field_readings(name, f)
        if points is not None:
            ax.plot(points[:, 0], values, "kx", ms=6, label="readings")
        ax.set_xlabel(axes[0])
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
        return fig
    h, v = (np.asarray(f["axes"][a]) for a in axes[:2])
    shape = tuple(len(f["axes"][a]) for a in axes)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    for ax, values, label, cmap in zip(fig.subplots(1, 2), (mean, sd), ("mean", "sd"),
                                       ("viridis", "magma"), strict=True):
        grid = values.reshape(shape)
        if len(shape) == 3:  # the first slice along the third axis
            grid = grid[:, :, 0]
        mesh = ax.pcolormesh(h, v, grid.T, shading="auto", cmap=cmap)
        points, _ = _field_readings(name, f)
        if points is not None:
            ax.plot(points[:, 0], points[:, 1], "wx", ms=6)
        fig.colorbar(mesh, ax=ax)
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])
        ax.set_title(f"posterior {label} of {name}", fontsize=9)
    return fig


def _field_readings(name: str, f: Mapping):
    """The field's direct readings (``[[field_data]]``) as (points, values of the field
    itself), or (None, None)."""
    readings = f.get("readings")
    if not readings:
        return None, None
    values = np.asarray(readings["values"], float)
    if readings["of"] != name:  # readings of log k, plotted on the field's own scale
        values = np.exp(values)
    return np.asarray(readings["points"], float), values


def section_predictive(dt: xr.DataTree, attrs: Mapping) -> str:
    out = _h2("predictive", "Predictions at the sensors")
    if "posterior_predictive" not in dt.children or "observed_data" not in dt.children:
        return out + "<p>The results hold no posterior predictive draws.</p>"
    pp = dt["posterior_predictive"]
    table = _sensor_table(dt, attrs)
    outputs = attrs.get("outputs") or ["u"]
    for name in outputs if "predictions" in dt.children else ():
        if name not in dt["predictions"].data_vars:
            continue
        field = dt["predictions"][name]
        # a system's readings are grouped by the output they measure
        sensors = table if len(outputs) == 1 else _rows(table, table["group_name"] == name)
        label = "" if len(outputs) == 1 else f" {_esc(name)}"
        out += (f"<h3>The field{label} over the domain</h3>"
                f"<p>Posterior mean and sd of {_esc(name)} from "
                f"{field.sizes['chain'] * field.sizes['draw']} thinned draws; crosses mark the "
                "sensors. The sd shows where the data and the physics leave the field "
                "uncertain.</p>"
                + _plot_or_note(lambda f=field, t=sensors: _field_figure(f, t), "field map"))
    if "u_pred" in pp.data_vars and "constant_data" in dt.children:
        out += (f"<p>Predicted field (median, {100 * BAND_PROB:.0f}% band) at each sensor; "
                "dots are the readings.</p>"
                + _plot_or_note(lambda: _band_figure(pp["u_pred"].values, table), "band plot"))
    if "u_holdout" in pp.data_vars and "u_holdout" in dt["observed_data"].data_vars:
        out += _held_out_html(dt, attrs)
    if OBS_VAR in pp.data_vars:
        check = _predictive_check(pp[OBS_VAR].values, table["reading"])
        out += ("<h3>Posterior-predictive check</h3>"
                f"<p>{_esc(check['text'])}</p>"
                + _plot_or_note(lambda: _residual_figure(check["z"], table), "residual plot"))
    return out


def section_identifiability(report: Mapping | None) -> str:
    out = _h2("identifiability", "Identifiability")
    if not report:
        return out + ("<p>Not available: identifiability needs the posterior and prior groups "
                      "that <code>bpinn run</code> writes.</p>")
    verdicts = report.get("verdicts") or ["nothing to report"]
    out += "<ul>" + "".join(f"<li>{_esc(v)}</li>" for v in verdicts) + "</ul>"
    contraction = report.get("contraction") or {}
    if contraction:
        rows = "".join(
            f"<tr><td>{_esc(k)}</td><td>{_esc(c.get('scale'))}</td>"
            f"<td>{_pct(c.get('contraction'))}</td><td>{_fmt(c.get('shift_in_prior_sd'), '+.2f')}"
            f"</td><td>{_fmt(c.get('overlap'), '.2f')}</td><td>{_esc(c.get('verdict'))}</td></tr>"
            for k, c in contraction.items())
        out += ("<h3>Per unknown</h3><table class='num'><tr><th>unknown</th><th>scale</th>"
                "<th>contraction</th><th>shift (prior sds)</th><th>prior overlap</th>"
                f"<th>verdict</th></tr>{rows}</table>")
    directions = (report.get("principal_directions") or {}).get("directions") or []
    if directions:
        rows = "".join(
            f"<tr><td>{_esc(d.get('combination'))}</td>"
            f"<td>{_fmt(d.get('variance_ratio'), '.3g')}</td><td>{_pct(d.get('contraction'))}</td>"
            f"<td>{_fmt(d.get('shift_in_prior_sd'), '+.2f')}</td><td>{_esc(d.get('verdict'))}"
            "</td></tr>" for d in directions)
        out += ("<h3>Principal directions of the coefficients</h3><p>Least informed first; "
                "posterior/prior variance near 1 means the data did not narrow that "
                "combination.</p><table class='num'><tr><th>direction</th>"
                "<th>posterior/prior variance</th><th>contraction</th><th>shift (prior sds)</th>"
                f"<th>verdict</th></tr>{rows}</table>")
    return out


# ---------------------------------------------------------------------------------------------
# Section helpers: data
# ---------------------------------------------------------------------------------------------
def _sensor_table(dt: xr.DataTree, attrs: Mapping, *, held_out: bool = False
                  ) -> dict[str, np.ndarray]:
    """Coordinates, sensor group and reading of every observation, as flat arrays; with
    ``held_out``, of the held-out sensors' readings instead (stored under ``holdout_*``)."""
    prefix = "holdout_" if held_out else ""
    value = "u_holdout" if held_out else OBS_VAR
    readings = np.asarray(dt["observed_data"][value].values, dtype=float)
    table: dict[str, np.ndarray] = {"reading": readings}
    constant = dt["constant_data"] if "constant_data" in dt.children else None
    coords = _coordinate_names(attrs) or [
        c for c in ("x", "y", "t") if constant is not None and c in constant.data_vars]
    for name in coords:
        if constant is not None and prefix + name in constant.data_vars:
            table[name] = np.asarray(constant[prefix + name].values, dtype=float)
    if constant is not None and prefix + "group" in constant.data_vars:
        group = np.asarray(constant[prefix + "group"].values).astype(int)
        names = attrs.get("holdout_groups" if held_out else "group_names") or []
        table["group"] = group
        table["group_name"] = np.array(
            [names[g] if 0 <= g < len(names) else str(g) for g in group])
    return table


def _held_out_html(dt: xr.DataTree, attrs: Mapping) -> str:
    """Coverage of the held-out sensors' readings and their predictive bands."""
    from bpinn.calibration import predictive_coverage

    replicates = dt["posterior_predictive"]["u_holdout"].values
    table = _sensor_table(dt, attrs, held_out=True)
    cov = predictive_coverage(replicates, table["reading"])
    rows = "".join(
        f"<tr><td>{100 * float(level):.0f}%</td><td>{_pct(c)}</td>"
        f"<td>{_pct(cov['band'][level][0])} to {_pct(cov['band'][level][1])}</td></tr>"
        for level, c in cov["coverage"].items())
    names = ", ".join(attrs.get("holdout_groups") or [])
    return ("<h3>Held-out sensors</h3>"
            f"<p>The readings of {_esc(names)} ({cov['n']}) were kept out of the fit. How often "
            "the posterior-predictive intervals (sensor noise included) cover them, against the "
            "range a calibrated model's coverage falls in with 95% probability (readings of one "
            "sensor are correlated: a rough guide):</p><table class='num'><tr><th>interval</th>"
            f"<th>coverage</th><th>calibrated range</th></tr>{rows}</table>"
            + _plot_or_note(lambda: _band_figure(replicates, table), "held-out band plot"))


def _coordinate_names(attrs: Mapping) -> list[str]:
    """Names of the domain coordinates in order; older runs lack the attribute, but their
    config's [domain] table lists the same names in the same order."""
    return list(attrs.get("coord_names") or (attrs.get("config") or {}).get("domain") or [])


def _axes_names(table: Mapping[str, np.ndarray]) -> tuple[str, str | None]:
    """(horizontal, vertical) coordinate names: x against t (or y) as the brief's layout."""
    present = [c for c in table if c not in ("reading", "group", "group_name")]
    if not present:
        return "index", None
    horizontal = "x" if "x" in present else present[0]
    others = [c for c in present if c != horizontal]
    vertical = "t" if "t" in others else (others[0] if others else None)
    return horizontal, vertical


def _predictive_check(replicates: np.ndarray, readings: np.ndarray) -> dict[str, Any]:
    """Readings standardised by the predictive mean and sd of ``u_obs``, and interval coverage."""
    flat = replicates.reshape(-1, replicates.shape[-1])
    mean, sd = flat.mean(axis=0), flat.std(axis=0)
    z = (readings - mean) / np.where(sd > 0, sd, np.nan)
    half = (1 - BAND_PROB) / 2
    lo, hi = np.quantile(flat, [half, 1 - half], axis=0)
    inside = float(np.mean((readings >= lo) & (readings <= hi)))
    outside2 = float(np.mean(np.abs(z) > 2))
    text = (f"{100 * inside:.0f}% of the readings lie inside their {100 * BAND_PROB:.0f}% "
            f"posterior-predictive interval (about {100 * BAND_PROB:.0f}% expected); "
            f"{100 * outside2:.0f}% have |standardised residual| > 2 (about 5% expected for a "
            "well-calibrated model). Residuals that trend with time or position point to a "
            "misfit the noise model does not explain.")
    return {"z": z, "coverage": inside, "text": text}


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def _trace_figure(dt: xr.DataTree, names: list[str]):
    from arviz_plots import plot_trace_dist

    return plot_trace_dist(dt, var_names=names, backend="matplotlib").get_viz("figure")


def _rank_figure(dt: xr.DataTree, names: list[str]):
    from arviz_plots import plot_rank

    return plot_rank(dt, var_names=names, backend="matplotlib").get_viz("figure")


def _prior_posterior_figure(dt: xr.DataTree, names: list[str]):
    from arviz_plots import plot_prior_posterior

    return plot_prior_posterior(dt, var_names=names, kind="kde",
                                backend="matplotlib").get_viz("figure")


def _pair_figure(dt: xr.DataTree, names: list[str]):
    from arviz_plots import plot_pair

    return plot_pair(dt, var_names=names, backend="matplotlib").get_viz("figure")


def _band_figure(u_pred: np.ndarray, table: Mapping[str, np.ndarray]):
    """Per sensor group: median and central band of ``u_pred`` against time, readings on top."""
    horizontal, vertical = _axes_names(table)
    along = vertical or horizontal
    flat = u_pred.reshape(-1, u_pred.shape[-1])
    half = (1 - BAND_PROB) / 2
    lo, med, hi = np.quantile(flat, [half, 0.5, 1 - half], axis=0)
    groups = np.unique(table["group"]) if "group" in table else np.array([0])
    shown = groups[:MAX_SENSOR_PANELS]
    ncols = min(4, len(shown))
    nrows = int(np.ceil(len(shown) / ncols))
    fig = Figure(figsize=(3.2 * ncols, 2.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    for ax, g in zip(axes, shown, strict=False):
        idx = np.flatnonzero(table["group"] == g) if "group" in table else np.arange(len(lo))
        idx = idx[np.argsort(table[along][idx])]
        t = table[along][idx]
        ax.fill_between(t, lo[idx], hi[idx], alpha=0.3, color="C0", linewidth=0)
        # Vertical bars keep the band visible for a sensor with a single reading.
        ax.vlines(t, lo[idx], hi[idx], color="C0", alpha=0.6)
        ax.plot(t, med[idx], color="C0")
        ax.plot(t, table["reading"][idx], "o", color="k", ms=3)
        label = table["group_name"][idx[0]] if "group_name" in table else str(g)
        where = (f" ({horizontal} = {_num(table[horizontal][idx[0]])})"
                 if vertical and np.ptp(table[horizontal][idx]) == 0 else "")
        ax.set_title(f"{label}{where}", fontsize=9)
        ax.set_xlabel(along)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    if len(groups) > len(shown):
        fig.suptitle(f"first {len(shown)} of {len(groups)} sensor groups")
    return fig


def _rows(table: Mapping[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """The sensor table's rows where ``keep``."""
    return {key: values[keep] for key, values in table.items()}


def _field_figure(field: xr.DataArray, table: Mapping[str, np.ndarray]):
    """Heat maps of the mean and sd of an output (``field.name``, u unless a system's) over the
    domain (1-D: mean with its band over x)."""
    name = field.name
    axes_dims = [d for d in field.dims if d not in ("chain", "draw")]
    names = [d.removeprefix("field_") for d in axes_dims]
    mean = field.mean(("chain", "draw"))
    sd = field.std(("chain", "draw"))
    if len(axes_dims) == 1:
        half = (1 - BAND_PROB) / 2
        band = field.quantile([half, 1 - half], dim=("chain", "draw")).values
        x = field[axes_dims[0]].values
        fig = Figure(figsize=(6, 3.2), layout="constrained")
        ax = fig.subplots()
        ax.fill_between(x, band[0], band[1], alpha=0.3, color="C0", linewidth=0,
                        label=f"{100 * BAND_PROB:.0f}% band")
        ax.plot(x, mean.values, color="C0", label="mean")
        ax.plot(table[names[0]], table["reading"], "o", color="k", ms=3, label="readings")
        ax.set_xlabel(names[0])
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
        return fig
    # 2-D: the whole map; 3-D (x, y, t): the map at the final time.
    title = "" if len(axes_dims) == 2 else f" at {names[2]} = {_num(field[axes_dims[2]][-1])}"
    if len(axes_dims) == 3:
        mean, sd = mean.isel({axes_dims[2]: -1}), sd.isel({axes_dims[2]: -1})
    h, v = axes_dims[0], axes_dims[1]
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    for ax, values, label, cmap in zip(fig.subplots(1, 2), (mean, sd), ("mean", "sd"),
                                       ("viridis", "magma"), strict=True):
        mesh = ax.pcolormesh(field[h].values, field[v].values, values.transpose(v, h).values,
                             shading="auto", cmap=cmap)
        fig.colorbar(mesh, ax=ax)
        if names[0] in table and names[1] in table:
            ax.plot(table[names[0]], table[names[1]], "x", color="w", ms=4, mew=1.2)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title(f"posterior {label} of {name}{title}", fontsize=9)
    return fig


def _residual_figure(z: np.ndarray, table: Mapping[str, np.ndarray]):
    horizontal, vertical = _axes_names(table)
    along = vertical or horizontal
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    groups = np.unique(table["group"]) if "group" in table else [None]
    for i, g in enumerate(groups):
        idx = np.flatnonzero(table["group"] == g) if g is not None else np.arange(len(z))
        label = table["group_name"][idx[0]] if "group_name" in table else None
        left.scatter(table[along][idx], z[idx], s=18, color=f"C{i % 10}", label=label)
    if len(groups) <= MAX_SENSOR_PANELS and "group_name" in table:
        left.legend(fontsize=7, ncols=2)
    for level in (-2, 2):
        left.axhline(level, color="grey", ls="--", lw=0.8)
    left.axhline(0, color="k", lw=0.8)
    left.set_xlabel(along)
    left.set_ylabel("standardised residual")
    finite = z[np.isfinite(z)]
    right.hist(finite, bins=max(5, int(np.sqrt(finite.size))), density=True, alpha=0.6)
    grid = np.linspace(-4, 4, 200)
    right.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), color="k", label="N(0, 1)")
    right.set_xlabel("standardised residual")
    right.legend()
    return fig


# ---------------------------------------------------------------------------------------------
# Several runs side by side
# ---------------------------------------------------------------------------------------------
COMPARISON_SECTION_IDS = ("warnings", "runs", "results", "posterior")
FILENAME_COMPARISON = "comparison.html"


def write_comparison_report(results_paths: list, out_html: str | os.PathLike | None = None
                            ) -> Path:
    """One page putting several runs (methods, data sets) side by side: a table of the runs, one
    table of every unknown across runs, overlaid posterior densities, each run's warnings.

    Parameters
    ----------
    results_paths : two or more ``posterior.nc`` files or the directories holding them.
    out_html : default ``comparison.html`` in the current directory.
    """
    if len(results_paths) < 2:
        raise ValueError("a comparison needs at least two results; for one, use write_report")
    runs = []
    for path in results_paths:
        nc_path = _posterior_path(path)
        dt = _load_bpinn_results(nc_path)
        attrs = decode_attrs(dt)
        summary = _load_or_compute_summary(dt, attrs, nc_path.parent / FILENAME_SUMMARY)
        label = f"{summary.get('method', attrs.get('method', '?'))}: {nc_path.parent.name}"
        runs.append((label, dt, summary))
    body = [
        _comparison_warnings(runs),
        _comparison_runs(runs),
        _comparison_results(runs),
        _comparison_posterior(runs),
    ]
    out_html = Path(out_html) if out_html is not None else Path(FILENAME_COMPARISON)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    page = _page(f"bpinn comparison of {len(runs)} runs", [b for b in body if b],
                 COMPARISON_SECTION_IDS)
    atomic_write_bytes(out_html, page.encode("utf-8"))
    return out_html


def _comparison_warnings(runs) -> str:
    items = [f"<li><b>{_esc(label)}</b>: {_esc(w)}</li>" for label, _, summary in runs
             for w in (summary.get("diagnostics") or {}).get("warnings", [])]
    if not items:
        return ""
    return _h2("warnings", "Warnings") + f"<div class='warn'><ul>{''.join(items)}</ul></div>"


def _comparison_runs(runs) -> str:
    header = ("run", "method", "kind", "chains x draws", "divergences", "max R-hat", "wall (s)")
    rows = []
    for label, _, summary in runs:
        d = summary.get("diagnostics") or {}
        kind = "exact MCMC" if summary.get("exact_mcmc", True) else "approximation"
        cells = [_esc(label), _esc(summary.get("method")), kind,
                 f"{d.get('num_chains', '?')} x {d.get('num_draws', '?')}",
                 _esc(d.get("divergences", "-")), _fmt(d.get("max_r_hat"), ".3f"),
                 _fmt((summary.get("timing") or {}).get("total_s"), ".0f")]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in header)
    return _h2("runs", "Runs") + f"<table class='num'><tr>{head}</tr>{''.join(rows)}</table>"


def _comparison_results(runs) -> str:
    labels = []
    for _, _, summary in runs:
        labels += [k for k in (summary.get("parameters") or {}) if k not in labels]
    head = "<th>parameter</th>" + "".join(f"<th>{_esc(label)}</th>" for label, _, _ in runs)
    rows = []
    for name in labels:
        cells = []
        for _, _, summary in runs:
            p = (summary.get("parameters") or {}).get(name)
            cells.append("-" if p is None else
                         f"{_num(p.get('mean'))} &plusmn; {_num(p.get('sd'))}<br>"
                         f"[{_num(p.get('q2.5'))}, {_num(p.get('q97.5'))}]")
        rows.append(f"<tr><td>{_esc(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>")
    return (_h2("results", "Results") + "<p>Posterior mean &plusmn; sd and the 95% equal-tailed "
            "interval of each unknown in each run.</p>"
            f"<table class='num'><tr>{head}</tr>{''.join(rows)}</table>")


def _comparison_posterior(runs) -> str:
    names = []
    for _, dt, _ in runs:
        names += [n for n in _unknown_names(dt) if n not in names
                  and dt["posterior"][n].ndim == 2]

    def figure():
        fig = Figure(figsize=(4.0 * len(names), 3.2))
        for i, name in enumerate(names):
            ax = fig.add_subplot(1, len(names), i + 1)
            for label, dt, _ in runs:
                if name in dt["posterior"]:
                    ax.hist(dt["posterior"][name].values.ravel(), bins=50, density=True,
                            histtype="step", label=label)
            ax.set_xlabel(name)
            ax.set_yticks([])
        fig.axes[0].legend(fontsize=7)
        return fig

    if not names:
        return ""
    return (_h2("posterior", "Posteriors, overlaid")
            + _plot_or_note(figure, "overlaid posterior densities"))


# ---------------------------------------------------------------------------------------------
# Matplotlib-only fallbacks and figure encoding
# ---------------------------------------------------------------------------------------------
def _plot_or_note(make: Callable[[], Any], what: str) -> str:
    """The figure as an <img>, or a note saying why it is missing: one failed plot (an
    arviz-plots change, a degenerate draw set) should not cost the whole report."""
    try:
        return _img(make(), what)
    except Exception as err:  # noqa: BLE001 - reported on the page instead
        return f"<p class='note'>No {_esc(what)}: {_esc(type(err).__name__)}: {_esc(err)}</p>"


def _img(fig, alt: str) -> str:
    return f"<img alt='{_esc(alt)}' src='data:image/png;base64,{_png_base64(fig)}'>"


def _png_base64(fig) -> str:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    finally:
        _close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _close(fig) -> None:
    # arviz-plots draws through pyplot, which keeps figures alive until closed.
    import matplotlib.pyplot as plt

    plt.close(fig)


def _num_scalar_entries(dt: xr.DataTree, names: list[str]) -> int:
    ds = dt["posterior"]
    return sum(int(np.prod([ds[n].sizes[d] for d in ds[n].dims if d not in ("chain", "draw")]))
               for n in names)


def _convergence_verdict(summary: Mapping, bfmi: list[float] | None) -> str:
    d = summary.get("diagnostics") or {}
    problems = []
    if d.get("divergences"):
        problems.append("divergent transitions")
    if d.get("max_tree_depth_fraction"):
        problems.append("draws at the maximum tree depth")
    if _bad_rhat(d.get("max_r_hat")):
        problems.append("R-hat above 1.01")
    if _bad_ess(d.get("min_ess_bulk")):
        problems.append(f"bulk ESS below {ESS_MIN:.0f}")
    if bfmi is not None and any(v < BFMI_MIN for v in bfmi):
        problems.append(f"E-BFMI below {BFMI_MIN}")
    if summary.get("exact_mcmc") is False:
        problems.append("an approximate method (these checks describe its draws only)")
    if not problems:
        return "No convergence problem detected by these checks."
    return "Problems: " + "; ".join(problems) + ". See the warnings at the top."


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.25em .55em;vertical-align:top;text-align:left}
table.num td{text-align:right;font-variant-numeric:tabular-nums}
table.num td:first-child{text-align:left}table.kv th{background:#f5f5f5;white-space:nowrap}
.warn{background:#fff4e5;border-left:5px solid #e67e22;padding:.4em 1em}
.bad{background:#fdd;font-weight:bold}.note{color:#a00}img{max-width:100%;display:block}
code{background:#f2f2f2;padding:0 .2em;word-break:break-all}
nav a{margin-right:1em}
"""


def _page(title: str, sections: list[str], ids: tuple[str, ...] = _NAV_IDS) -> str:
    present = [s for s in ids if any(f"id='{s}'" in part for part in sections)]
    nav = "".join(f"<a href='#{s}'>{s}</a>" for s in present)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_esc(title)}</h1><nav>{nav}</nav>{''.join(sections)}</body></html>\n")


def _h2(anchor: str, text: str) -> str:
    return f"<h2 id='{anchor}'>{_esc(text)}</h2>"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _inline(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _mapping_html(values: Mapping) -> str:
    if not values:
        return "-"
    return "<br>".join(f"{_esc(k)} = {_esc(_inline(v))}" for k, v in values.items())


def _conditions_html(conditions: list) -> str:
    if not conditions:
        return "-"
    return "<br>".join(
        _esc(", ".join(f"{k} = {_inline(v)}" for k, v in c.items()) if isinstance(c, Mapping)
             else _inline(c))
        for c in conditions)


def _timing_html(timing: Mapping) -> str:
    parts = [f"{_esc(k)} = {v:.2f}" for k, v in timing.items() if isinstance(v, int | float)]
    return "<br>".join(parts) or "not recorded"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str | np.str_):
        return str(value)
    value = float(value)
    return "nan" if not np.isfinite(value) else f"{value:.4g}"


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(float(value), spec)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.3g}%"


def _bad_rhat(value: Any) -> bool:
    return value is not None and float(value) > RHAT_MAX


def _bad_ess(value: Any) -> bool:
    return value is not None and float(value) < ESS_MIN


def _flag(text: str, bad: bool) -> str:
    return f"<span class='bad'>{text}</span>" if bad else text


# ---------------------------------------------------------------------------------------------
# Checking a report in a real browser
# ---------------------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_check(html_path: str | os.PathLike, screenshot: str | os.PathLike | None = None,
                  *, width: int = 1200, max_height: int = 20000) -> dict[str, Any]:
    """Open a report in headless Chromium: console errors, broken images, optional screenshot.

    Needs the Debian packages ``chromium`` and ``chromium-driver`` and the Python package
    ``selenium`` (``pip install bpinn[browser]``); raises ``RuntimeError`` naming what is missing.
    The screenshot covers the whole page (up to ``max_height`` pixels).
    """
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("the Python package selenium")
    if missing:
        raise RuntimeError(f"browser_check needs {', '.join(missing)} (Debian packages chromium "
                           "and chromium-driver; pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        driver.get(Path(html_path).resolve().as_uri())
        images = driver.execute_script("return document.images.length")
        broken = driver.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.alt)")
        errors = [entry["message"] for entry in driver.get_log("browser")
                  if entry["level"] == "SEVERE"]
        if screenshot is not None:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(int(height) + 100, max_height))
            atomic_write_bytes(Path(screenshot), driver.get_screenshot_as_png())
    finally:
        driver.quit()
    return {"images": int(images), "broken_images": list(broken), "console_errors": errors}
