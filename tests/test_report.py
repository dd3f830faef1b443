"""The HTML report of a tiny heat run: sections, self-containedness, embedded PNGs, CSV, errors.

The run is far too short to converge (R-hat > 1.01), which is what the warnings test relies on.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
import shutil

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display in tests

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from test_api import TINY_INFERENCE, TINY_MODEL  # noqa: E402

from bpinn.api import run  # noqa: E402
from bpinn.report import FILENAME_CSV, SECTION_IDS, write_report  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_SRC = re.compile(r"<img[^>]*\ssrc=['\"]data:image/png;base64,([A-Za-z0-9+/=]+)['\"]")


@pytest.fixture(scope="module")
def tiny_results(make_heat_case):
    """(output directory, summary) of a tiny NUTS run on the heat case."""
    case = make_heat_case("report_run")
    config = case(model=TINY_MODEL)
    outdir = case.root / "results"
    result = run(config, outdir=outdir, overrides=TINY_INFERENCE)
    return outdir, result.summary


@pytest.fixture(scope="module")
def report(tiny_results):
    outdir, _ = tiny_results
    path = write_report(outdir)
    return path, path.read_text(encoding="utf-8")


def test_report_written_beside_posterior(tiny_results, report):
    outdir, _ = tiny_results
    path, _ = report
    assert path == outdir / "report.html"
    assert (outdir / FILENAME_CSV).is_file()


def test_every_section_present(report):
    _, text = report
    ids = re.findall(r"<h2 id=['\"]([a-z_]+)['\"]", text)
    assert set(ids) == set(SECTION_IDS)
    assert len(ids) == len(SECTION_IDS)


def test_field_over_the_domain_is_mapped(tiny_results, report):
    outdir, _ = tiny_results
    _, text = report
    start = text.index("The field over the domain")
    section = text[start:text.index("Predicted field (median", start)]
    assert len(IMG_SRC.findall(section)) == 1  # the mean and sd maps, as one embedded figure


def test_report_is_self_contained(report):
    _, text = report
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()


def test_images_are_valid_embedded_pngs(report):
    _, text = report
    sources = IMG_SRC.findall(text)
    # data, traces, ranks, prior/posterior, pairs (D and sigma), bands, residuals
    assert len(sources) >= 7
    assert len(sources) == text.count("<img")  # no image is anything but an embedded PNG
    for source in sources:
        assert base64.b64decode(source, validate=True).startswith(PNG_SIGNATURE)
    assert "class='note'" not in text  # no plot fell back to an error note


def test_results_csv_has_a_row_per_parameter(tiny_results, report):
    outdir, summary = tiny_results
    with open(outdir / FILENAME_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["parameter"] for r in rows] == list(summary["parameters"])
    assert {"D", "sigma"} <= {r["parameter"] for r in rows}
    for row in rows:
        name = row["parameter"]
        for key in ("mean", "sd", "r_hat", "ess_bulk"):
            assert float(row[key]) == pytest.approx(summary["parameters"][name][key])
    assert float(next(r for r in rows if r["parameter"] == "D")["truth"]) == 0.07


def test_warnings_come_first_for_an_unconverged_run(tiny_results, report):
    _, summary = tiny_results
    _, text = report
    # The premise: 2 chains x 20 draws do not converge.
    assert summary["diagnostics"]["max_r_hat"] > 1.01
    ids = re.findall(r"<h2 id=['\"]([a-z_]+)['\"]", text)
    assert ids[0] == "warnings"
    warnings_html = text[text.index("id='warnings'"):text.index("id='problem'")]
    assert "R-hat of D" in warnings_html
    for warning in summary["diagnostics"]["warnings"]:
        assert html.escape(warning) in warnings_html


def test_results_table_shows_intervals_and_truth(tiny_results, report):
    _, summary = tiny_results
    _, text = report
    results_html = text[text.index("id='results'"):text.index("id='convergence'")]
    d = summary["parameters"]["D"]
    assert f"{d['mean']:.4g}" in results_html
    assert f"[{d['hdi94_low']:.4g}, {d['hdi94_high']:.4g}]" in results_html
    assert f"[{d['q2.5']:.4g}, {d['q97.5']:.4g}]" in results_html


def test_report_recomputes_summary_when_absent(tiny_results, tmp_path):
    outdir, summary = tiny_results
    shutil.copy(outdir / "posterior.nc", tmp_path / "posterior.nc")
    path = write_report(tmp_path / "posterior.nc", tmp_path / "sub" / "page.html")
    text = path.read_text(encoding="utf-8")
    assert path.parent / FILENAME_CSV == tmp_path / "sub" / FILENAME_CSV
    assert (tmp_path / "sub" / FILENAME_CSV).is_file()
    assert text.index("id='warnings'") < text.index("id='problem'")
    assert f"{summary['parameters']['D']['mean']:.4g}" in text


def test_text_file_named_nc_is_rejected(tmp_path):
    bogus = tmp_path / "posterior.nc"
    bogus.write_text("D,sigma\n0.07,0.02\n")
    with pytest.raises(ValueError, match="posterior.nc written by `bpinn run`"):
        write_report(bogus)


def test_netcdf_without_posterior_is_rejected(tmp_path):
    path = tmp_path / "other.nc"
    tree = xr.DataTree.from_dict(
        {"observed_data": xr.Dataset({"u_obs": ("obs", np.arange(3.0))})})
    tree.attrs["note"] = json.dumps({"not": "bpinn"})
    tree.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ValueError, match="no posterior group.*written by `bpinn run`"):
        write_report(path)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="posterior.nc"):
        write_report(tmp_path)


def test_comparison_report_puts_runs_side_by_side(tiny_results, tmp_path):
    """Two results on one page: every run in the runs table, every unknown in one results
    table, one overlaid plot, nothing fetched from the network."""
    from bpinn.cli import main

    outdir, summary = tiny_results
    runs = []
    for name in ("first", "second"):
        shutil.copytree(outdir, tmp_path / name)
        runs.append(str(tmp_path / name))
    out = tmp_path / "comparison.html"
    assert main(["report", *runs, "-o", str(out)]) == 0
    page = out.read_text()
    for anchor in ("runs", "results", "posterior"):
        assert f"id='{anchor}'" in page
    assert "nuts: first" in page and "nuts: second" in page
    for name in summary["parameters"]:
        assert f"<td>{name}</td>" in page
    assert "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == 1


def test_report_opens_cleanly_in_a_browser(report, tmp_path):
    """Headless Chromium opens the page from a file URL: no console errors, every image
    decoded, a screenshot saved. Skipped only where Chromium or selenium is not installed."""
    from bpinn.report import browser_check

    path, _ = report
    shot = tmp_path / "report.png"
    try:
        result = browser_check(path, shot)
    except RuntimeError as err:
        pytest.skip(str(err))
    assert result["console_errors"] == []
    assert result["broken_images"] == []
    assert result["images"] >= 7
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("axes", [("x",), ("x", "y", "t")])
def test_field_maps_for_1d_and_3d_domains(axes):
    # The heat run covers 2-D (x, t); 1-D draws a band over x, 3-D maps the final time.
    from bpinn.inference.results import build_datatree
    from bpinn.report import _field_figure

    rng = np.random.default_rng(0)
    sizes = {"x": 11, "y": 6, "t": 4}
    coords = {f"field_{a}": np.linspace(0, 1, sizes[a]) for a in axes}
    dt = build_datatree(posterior={"D": rng.normal(size=(2, 5))},
                        predictions={"u": rng.normal(size=(2, 5, *(sizes[a] for a in axes)))},
                        dims={"u": list(coords)}, coords=coords)
    table = {a: np.array([0.2, 0.5]) for a in axes} | {"reading": np.array([0.1, 0.2])}
    fig = _field_figure(dt["predictions"]["u"], table)
    assert len(fig.axes) == (1 if len(axes) == 1 else 4)  # 3-D: two maps and their colorbars
