"""``bpinn run`` on bad input: exit status 2, a message naming the file, key or value and what
would be valid, and nothing written to OUTDIR.

Every case here fails during validation, before any sampling, so each takes well under a second
(the end-to-end run that succeeds lives in ``test_api.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpinn.cli import EXIT_BAD_INPUT, main

HEAT_NOISE = 'noise = { prior = "HalfNormal", scale = 0.1 }'
HEAT_COORDS = 'coords = { x = "x", t = "t" }'
HEAT_INITIAL = 'value = "initial:u0"'


def run_cli(capsys, config, outdir, *extra) -> tuple[int, str]:
    code = main(["run", str(config), "-o", str(outdir), "--quiet", *extra])
    return code, capsys.readouterr().err


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def assert_bad_input(code: int, err: str, expected: tuple[str, ...]) -> None:
    assert code == EXIT_BAD_INPUT == 2, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, f"{text!r} not in stderr:\n{err}"


def set_cell(case, row: int, column: str, value: str) -> Path:
    """Replace one cell of the heat sensors (``row`` counts data rows from 1)."""
    lines = case.sensors.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    case.sensors.write_text("\n".join(lines) + "\n")
    return case()


def write_sensors(case, text: str) -> Path:
    case.sensors.write_text(text)
    return case()


def initial_value(case, code: str) -> Path:
    """Add a function ``bad`` to initial.py and use it as the initial condition."""
    module = case.root / "initial.py"
    module.write_text(module.read_text() + "\n\n" + code + "\n")
    return case((HEAT_INITIAL, 'value = "initial:bad"'))


# (id, writes the bad config and returns its path, extra CLI arguments, expected in stderr)
BAD_INPUTS = [
    pytest.param(
        lambda c: set_cell(c, 5, "u", ""), (),
        ("sensors.csv", "missing or NaN", "reading column 'u'", "row 5"),
        id="missing-reading",
    ),
    pytest.param(
        lambda c: set_cell(c, 7, "u", "NaN"), (),
        ("sensors.csv", "missing or NaN", "reading column 'u'", "row 7", "finite number"),
        id="nan-reading",
    ),
    pytest.param(
        lambda c: set_cell(c, 3, "u", "inf"), (),
        ("sensors.csv", "infinite value(s) in reading column 'u' at row 3", "finite number"),
        id="inf-reading",
    ),
    pytest.param(
        lambda c: set_cell(c, 4, "u", "-inf"), (),
        ("sensors.csv", "infinite value(s) in reading column 'u' at row 4"),
        id="minus-inf-reading",
    ),
    pytest.param(
        lambda c: set_cell(c, 5, "x", "1.5"), (),
        ("sensors.csv", "outside the domain", "row 5", "'x' = 1.5 not in [0.0, 1.0]"),
        id="sensor-outside-space",
    ),
    pytest.param(
        lambda c: set_cell(c, 2, "t", "-0.5"), (),
        ("sensors.csv", "outside the domain", "row 2", "'t' = -0.5 not in [0.0, 1.0]"),
        id="sensor-outside-time",
    ),
    pytest.param(
        lambda c: c((HEAT_NOISE, "noise = -0.1")), (),
        ("config.toml [data] noise", "must be > 0", "-0.1"),
        id="negative-noise",
    ),
    pytest.param(
        lambda c: c((HEAT_NOISE, "noise = 0.0")), (),
        ("config.toml [data] noise", "must be > 0", "0.0"),
        id="zero-noise",
    ),
    pytest.param(
        lambda c: c(("loc = -2.995732273553991, scale = 1.0", "loc = -3.0, scale = -1.0")), (),
        ("config.toml [coefficients] D.scale", "must be > 0", "-1.0"),
        id="prior-negative-scale",
    ),
    pytest.param(
        lambda c: c((HEAT_NOISE, 'noise = { prior = "HalfNormal", scale = -0.1 }')), (),
        ("config.toml [data] noise.scale", "must be > 0", "-0.1"),
        id="noise-prior-negative-scale",
    ),
    pytest.param(
        lambda c: c((HEAT_NOISE, 'noise = { prior = "Normal", loc = 0.0, scale = 0.1 }')), (),
        ("config.toml [data] noise", "(0, inf)", "HalfNormal", "Normal(loc=0, scale=0.1)"),
        id="noise-prior-not-positive",
    ),
    pytest.param(
        lambda c: c(('pde = "heat"', 'pde = "haet"')), (),
        ("config.toml [problem] pde", "unknown PDE 'haet'", "'heat'", "did you mean 'heat'"),
        id="unknown-pde",
    ),
    pytest.param(
        lambda c: c(('prior = "LogNormal"', 'prior = "LogNormla"')), (),
        ("config.toml [coefficients] D", "unknown prior 'LogNormla'", "LogNormal", "HalfNormal"),
        id="unknown-prior",
    ),
    pytest.param(
        lambda c: c(), ("--method", "foo"),
        ("[inference] method (overridden)", "unknown method 'foo'", "valid methods are nuts"),
        id="unknown-method-flag",
    ),
    pytest.param(
        lambda c: c(inference={"method": "foo"}), (),
        ("config.toml [inference] method", "unknown method 'foo'", "valid methods are nuts"),
        id="unknown-method-config",
    ),
    pytest.param(
        lambda c: c(drop=("D = {",)), (),
        ("config.toml [coefficients]", "['D']", "neither a value nor a prior", "D = 1.0"),
        id="coefficient-without-prior",
    ),
    pytest.param(
        lambda c: c(("D = {", "K = 1.0\nD = {")), (),
        ("config.toml [coefficients]", "'K' is not a coefficient of the heat PDE", "['D']"),
        id="coefficient-not-in-pde",
    ),
    pytest.param(
        lambda c: write_sensors(c, ""), (),
        ("sensors.csv", "no readings", "empty"),
        id="empty-sensor-file",
    ),
    pytest.param(
        lambda c: write_sensors(c, "sensor,x,t,u\n"), (),
        ("sensors.csv", "no readings", "no data rows"),
        id="header-only-sensor-file",
    ),
    pytest.param(
        lambda c: c((HEAT_COORDS, 'coords = { x = "pos", t = "t" }')), (),
        ("sensors.csv", "column 'pos'", "coords['x']", "'sensor', 'x', 't', 'u'"),
        id="wrong-coordinate-column",
    ),
    pytest.param(
        lambda c: c(('value = "u"', 'value = "temp"')), (),
        ("sensors.csv", "column 'temp'", "available columns"),
        id="wrong-value-column",
    ),
    pytest.param(
        lambda c: c(inference={"num_warmpu": 30}), (),
        ("config.toml [inference]", "'num_warmpu'", "did you mean 'num_warmup'"),
        id="typo-inference-key",
    ),
    pytest.param(
        lambda c: c(model={"widht": 8}), (),
        ("config.toml [model]", "'widht'", "did you mean 'width'"),
        id="typo-model-key",
    ),
    pytest.param(
        lambda c: c(extra="\n[infrence]\nseed = 1\n"), (),
        ("config.toml", "unknown section(s) ['infrence']", "did you mean 'inference'"),
        id="unknown-section",
    ),
    pytest.param(
        lambda c: c((HEAT_INITIAL, 'value = "nosuchmodule:u0"')), (),
        ("config.toml [[conditions]][1] value", "cannot import module 'nosuchmodule'",
         "nosuchmodule.py"),
        id="missing-module",
    ),
    pytest.param(
        lambda c: c((HEAT_INITIAL, 'value = "initial:u1"')), (),
        ("config.toml [[conditions]][1] value", "module 'initial' has no function 'u1'"),
        id="missing-function",
    ),
    pytest.param(
        lambda c: c((HEAT_INITIAL, 'value = "u0"')), (),
        ("config.toml [[conditions]][1] value", "'module:function'", "'u0' is none of these",
         "declared under [coefficients]"),
        id="reference-without-colon",
    ),
    pytest.param(
        lambda c: initial_value(c, "def bad(z, extra):\n    return z[0]"), (),
        ("config.toml [[conditions]][1] value", "calling 'initial:bad'", "(x, t) = [0.5, 0.5]",
         "TypeError", "coordinate vector z as its only argument"),
        id="function-with-wrong-signature",
    ),
    pytest.param(
        lambda c: initial_value(c, "def bad(z):\n    return z"), (),
        ("config.toml [[conditions]][1] value", "'initial:bad' must return one number",
         "shape (2,)"),
        id="function-returning-a-vector",
    ),
    pytest.param(
        lambda c: c(('file = "sensors.csv"', 'file = "no_such_sensors.csv"')), (),
        ("no_such_sensors.csv", "not found"),
        id="missing-data-file",
    ),
    pytest.param(
        lambda c: c(("width = 16", "width = = 16")), (),
        ("config.toml", "not valid TOML", "line"),
        id="invalid-toml",
    ),
    pytest.param(
        lambda c: c.root / "no_such_config.toml", (),
        ("no_such_config.toml", "config file not found"),
        id="missing-config",
    ),
    pytest.param(
        lambda c: c(('boundary = "all"', 'boundary = "left"')), (),
        ("config.toml [[conditions]][0]", "boundary 'left'", "'x_min', 'x_max'"),
        id="unknown-boundary",
    ),
    pytest.param(
        lambda c: c(('value = "u"', 'value = "u"\nlikelihood = "studentt"')), (),
        ("config.toml [data] likelihood", "'studentt'", "did you mean 'student_t'"),
        id="unknown-likelihood",
    ),
    pytest.param(
        lambda c: c(), ("--num-samples", "0"),
        ("[inference] num_samples (overridden)", "must be >= 1", "got 0"),
        id="num-samples-flag-zero",
    ),
    pytest.param(
        lambda c: c(inference={"num_chains": 2.5}), (),
        ("config.toml [inference] num_chains", "expected an integer", "2.5"),
        id="fractional-num-chains",
    ),
]


@pytest.mark.parametrize(("write", "extra", "expected"), BAD_INPUTS)
def test_bad_input_exits_2_and_writes_nothing(heat_case, capsys, write, extra, expected):
    config = write(heat_case)
    outdir = heat_case.root / "results"
    code, err = run_cli(capsys, config, outdir, *extra)
    assert_bad_input(code, err, expected)
    assert not outdir.exists()


def test_bad_input_leaves_an_existing_outdir_unchanged(heat_case, capsys):
    outdir = heat_case.root / "results"
    outdir.mkdir()
    (outdir / "posterior.nc").write_bytes(b"earlier results")
    (outdir / "summary.json").write_text("{}\n")
    before = snapshot(outdir)
    config = heat_case((HEAT_NOISE, "noise = -0.1"))
    code, err = run_cli(capsys, config, outdir, "--overwrite")
    assert_bad_input(code, err, ("[data] noise",))
    assert snapshot(outdir) == before


def test_bad_input_leaves_an_empty_outdir_empty(heat_case, capsys):
    outdir = heat_case.root / "results"
    outdir.mkdir()
    code, err = run_cli(capsys, heat_case(('pde = "heat"', 'pde = "haet"')), outdir)
    assert_bad_input(code, err, ("haet",))
    assert list(outdir.iterdir()) == []


def test_existing_nonempty_outdir_needs_overwrite(heat_case, capsys):
    outdir = heat_case.root / "results"
    (outdir / "sub").mkdir(parents=True)
    (outdir / "posterior.nc").write_bytes(b"earlier results")
    (outdir / "sub" / "notes.txt").write_text("keep me")
    before = snapshot(outdir)
    # A valid config: the run must be refused before anything is loaded or sampled.
    code, err = run_cli(capsys, heat_case.config, outdir)
    assert_bad_input(code, err, (str(outdir), "already holds results", "--overwrite"))
    assert snapshot(outdir) == before


def test_outdir_that_is_a_file(heat_case, capsys):
    outdir = heat_case.root / "results"
    outdir.write_text("not a directory")
    code, err = run_cli(capsys, heat_case.config, outdir)
    assert_bad_input(code, err, (str(outdir), "is not a directory"))
    assert outdir.read_text() == "not a directory"


def test_condition_errors_name_the_config_once(heat_case, capsys):
    # Regression: ConfigErrors from [[conditions]] were wrapped again with the config path.
    config = heat_case((HEAT_INITIAL, 'value = "initial:u1"'))
    code, err = run_cli(capsys, config, heat_case.root / "results")
    assert_bad_input(code, err, ("[[conditions]][1] value",))
    assert err.count(str(config)) == 1, err


@pytest.mark.parametrize("argv", [
    ["run", "config.toml", "--seed", "abc"],
    ["run"],
    ["nonsense"],
    ["calibrate", "config.toml", "--datasets", "9", "--shard", "2/2"],
    ["calibrate", "config.toml", "--datasets", "9", "--shard", "half"],
])
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: bpinn" in capsys.readouterr().err


def test_calibrate_shard_refuses_overwrite(heat_case, capsys, tmp_path):
    # --overwrite would delete the datasets other shards saved in the same checkpoint
    code = main(["calibrate", str(heat_case()), "--datasets", "4", "--shard", "0/2",
                 "--overwrite", "-o", str(tmp_path / "cal")])
    assert code == EXIT_BAD_INPUT
    assert "--shard" in capsys.readouterr().err and not (tmp_path / "cal").exists()


def test_summary_of_missing_or_unreadable_results_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope" / "posterior.nc"
    assert main(["summary", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err
    garbage = tmp_path / "posterior.nc"
    garbage.write_bytes(b"not a netcdf file")
    assert main(["summary", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(garbage) in err and "Traceback" not in err


def test_console_script_exits_2_on_bad_config(heat_case):
    script = Path(sys.executable).with_name("bpinn")
    assert script.is_file(), f"the bpinn console script is not installed beside {sys.executable}"
    config = heat_case(("width = 16", "width = = 16"))
    outdir = heat_case.root / "results"
    proc = subprocess.run(
        [str(script), "run", str(config), "-o", str(outdir), "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{config}: not valid TOML" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not outdir.exists()


def test_check_validates_without_running(heat_case, capsys):
    assert main(["check", str(heat_case())]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "48 readings" in out
    assert not (heat_case.root / "results").exists()


def test_sigterm_during_a_run_stops_it_like_ctrl_c():
    # Pre-emptible machines send SIGTERM before they kill; bpinn run turns it into the same
    # clean stop as Ctrl-C (message, exit 130, checkpoint kept), then restores the handler.
    import os
    import signal

    from bpinn.utils import interrupt_handling

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), interrupt_handling():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 1.0)  # let the handler run
    assert signal.getsignal(signal.SIGTERM) is before


def _swallowed_ctrl_c():
    """Ctrl-C whose KeyboardInterrupt some library code catches and drops."""
    import os
    import signal

    try:
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 1.0)
    except KeyboardInterrupt:
        pass


@pytest.fixture
def python_sigint_handler():
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_swallowed_ctrl_c_still_stops_sampling_after_the_chunk(python_sigint_handler):
    import jax.numpy as jnp

    from bpinn.inference.target import chunked_scan
    from bpinn.utils import check_interrupt, interrupt_handling

    chunks_run = []

    def step(carry, x):
        return carry + x, carry

    def after_chunk(carry, out):
        chunks_run.append(int(carry))
        if len(chunks_run) == 1:
            _swallowed_ctrl_c()
        return ""

    with pytest.raises(KeyboardInterrupt), interrupt_handling():
        chunked_scan(step, jnp.zeros(()), jnp.ones(5), length=5, chunk_size=1, desc="t",
                     progress=False, postfix_fn=after_chunk)
    assert chunks_run == [1]  # stopped at the first safe point, not at the end
    check_interrupt()  # the request ends with the handling: nothing left over to raise


def test_a_ctrl_c_swallowed_after_the_last_chunk_still_ends_the_cli_run(
        heat_case, tmp_path, monkeypatch, capsys, python_sigint_handler):
    import bpinn.api

    def run_then_swallow(*args, **kwargs):
        _swallowed_ctrl_c()  # as if it arrived while the results were being assembled
        return None

    monkeypatch.setattr(bpinn.api, "run", run_then_swallow)
    outdir = tmp_path / "out"
    code = main(["run", str(heat_case()), "-o", str(outdir), "--quiet", "--no-report"])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (outdir / "posterior.nc").exists()


def test_an_ignored_sigint_is_left_ignored():
    # A background job's SIGINT is ignored by its shell; bpinn must not start catching it.
    import signal

    from bpinn.utils import interrupt_handling

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt_handling():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
