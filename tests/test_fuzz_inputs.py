"""Hostile and malformed input, fuzzed: config files and sensor files through ``bpinn check`` and
(invalid ones) ``bpinn run``.

Every input gets exit status 2 with one ``error: ...`` message naming the key, file or column, or
is accepted as documented; none gets a traceback, a hang, an evaluated payload or a written
file. The strategies and the contract live in ``fuzz_strategies.py``; here each property runs a
bounded, derandomized number of examples so CI stays fast and reproducible. The long campaign
is ``benchmarks/fuzz_campaign.py``, which runs the same properties with thousands of inputs.
"""

from __future__ import annotations

import shutil
import sys

import fuzz_strategies as fz
import pytest
from hypothesis import HealthCheck, given, settings

from bpinn.data import load_observations

CI = settings(
    deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)


def _given(name: str, examples: int):
    strategy, check = fz.PROPERTIES[name]

    @settings(CI, max_examples=examples)
    @given(strategy)
    def test(example):
        check(example)

    test.__name__ = f"test_fuzz_{name}"
    test.__doc__ = check.__doc__
    return test


test_fuzz_key_typos = _given("key_typos", 150)
test_fuzz_wrong_types = _given("wrong_types", 200)
test_fuzz_huge_values = _given("huge_values", 600)  # all ~480 pairs
test_fuzz_files = _given("files", 100)
test_fuzz_array_files = _given("array_files", 60)
test_fuzz_huge_valid_files = _given("huge_valid_files", 4)
test_fuzz_sensor_rows = _given("sensor_rows", 200)
test_fuzz_code_in_config = _given("code_in_config", 150)
test_fuzz_bad_runs = _given("bad_runs", 40)


# --------------------------------------------------------------------------------------------
# The documented behaviours the fuzzers rely on, stated once as plain tests


def test_row_order_is_free_and_repeats_are_told_apart():
    """Unsorted rows read as the same readings; a reading repeated at the same point with
    another value is kept; an exact duplicate row is refused, naming both rows."""
    header, rows = ",".join(fz.HEADER), [",".join(r) for r in fz.ROWS]
    coords = {"x": "x", "t": "t"}
    with fz.Case() as case:
        case.write("sensors.csv", "\n".join([header, *reversed(rows)]) + "\n")
        assert fz.assert_contract(case.check(), expect=0) is None
        shuffled = load_observations(case.sensors, coords=coords, value="u", group="sensor")
        original = load_observations(fz.HEAT_DIR / "sensors.csv", coords=coords, value="u",
                                     group="sensor")
        assert sorted(map(tuple, shuffled.coords.tolist())) == sorted(
            map(tuple, original.coords.tolist()))
        assert shuffled.coords[0].tolist() == original.coords[-1].tolist()  # order kept

        s1, x, t, _ = fz.ROWS[0]
        case.write("sensors.csv", "\n".join([header, *rows, f"{s1},{x},{t},0.123"]) + "\n")
        outcome = case.check()
        fz.assert_contract(outcome, expect=0)
        assert f"{len(rows) + 1} readings" in outcome.out

        case.write("sensors.csv", "\n".join([header, *rows, rows[4]]) + "\n")
        fz.assert_contract(case.check(), expect=2, text=(
            "sensors.csv", f"row {len(rows) + 1} repeats row 5", "counted twice"))


def test_paths_resolve_against_the_config_folder(monkeypatch):
    """``file = "../data/sensors.csv"`` is read relative to the config, not the working folder
    (which holds a broken sensors.csv of the same relative name)."""
    with fz.Case() as case:
        data = case.root / "data"
        data.mkdir()
        shutil.move(case.sensors, data / "sensors.csv")
        config = fz.set_path(fz.BASE, ("data", "file"), "../data/sensors.csv")
        case.write("config.toml", config)
        elsewhere = case.root / "elsewhere"
        (elsewhere / "data").mkdir(parents=True)
        (elsewhere / "data" / "sensors.csv").write_text("broken\n")
        monkeypatch.chdir(elsewhere / "data")
        outcome = case.check()
        fz.assert_contract(outcome, expect=0)
        assert f"from {case.dir / '../data/sensors.csv'}" in outcome.out


def test_dotted_module_beside_the_config_is_found():
    """``"lib.ic:u0"`` is ``lib/ic.py`` beside the config (a dotted name, never a path)."""
    with fz.Case() as case:
        (case.dir / "lib").mkdir()
        shutil.copy(case.dir / "initial.py", case.dir / "lib" / "ic.py")
        case.write("config.toml", fz.set_path(fz.BASE, ("conditions", 1, "value"), "lib.ic:u0"))
        fz.assert_contract(case.check(), expect=0)
        for ref in ("lib/ic:u0", "../case/initial:u0", ".lib.ic:u0"):
            case.write("config.toml", fz.set_path(fz.BASE, ("conditions", 1, "value"), ref))
            fz.assert_contract(case.check(), expect=2, text=("value", "dotted Python module"))


def test_module_outside_the_config_folder_is_not_imported():
    with fz.Case() as case:
        (case.root / "evil.py").write_text(
            f"from pathlib import Path\nPath({str(case.marker)!r}).touch()\n"
            "def u0(z):\n    return 0.0\n")
        case.write("config.toml", fz.set_path(fz.BASE, ("conditions", 1, "value"), "evil:u0"))
        fz.assert_contract(case.check(), expect=2, text=("cannot import module 'evil'",))
        assert not case.marker.exists()


@pytest.mark.parametrize("ref", ["os:system", "builtins:exec", "subprocess:run", "sys:exit"])
def test_standard_library_references_are_refused_before_import(ref):
    with fz.Case() as case:
        case.write("config.toml", fz.set_path(fz.BASE, ("problem", "pde"), ref))
        fz.assert_contract(case.check(), expect=2, text=("[problem] pde", "standard library"))


@pytest.mark.parametrize(("flags", "expected"), [
    (("--num-samples", "1000000000000"), "num_samples (overridden): must be <= 1000000"),
    (("--num-chains", "100000"), "num_chains (overridden): must be <= 1024"),
    (("--seed", str(2**64)), "seed (overridden): must be <= 4294967295"),
    (("--method", "os:system"), "method (overridden): unknown method 'os:system'"),
])
def test_huge_command_line_overrides_leave_no_outdir(flags, expected):
    with fz.Case() as case:
        outcome = fz.cli("run", str(case.config), "-o", str(case.outdir), "--quiet", *flags)
        fz.assert_contract(outcome, expect=2, text=(expected,))
        assert not case.outdir.exists()


@pytest.mark.parametrize("name", ["x" * 5000 + ".toml", "a\x00b.toml", "missing.toml"])
def test_unusable_config_paths(name):
    with fz.Case() as case:
        fz.assert_contract(fz.cli("check", str(case.dir / name)), expect=2)


def test_checking_writes_no_bytecode_beside_the_config(monkeypatch):
    """Importing initial.py must not leave __pycache__ in the config folder, even where Python
    would write bytecode (the test machine may set PYTHONDONTWRITEBYTECODE)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    with fz.Case() as case:
        before = case.files()
        fz.assert_contract(case.check(), expect=0)
        assert case.files() == before
        assert sys.dont_write_bytecode is False


# --------------------------------------------------------------------------------------------
# The fuzz checks can fail: with a validation step switched off, they do


def test_sensor_check_fails_without_the_repeat_check(monkeypatch):
    import bpinn.data

    monkeypatch.setattr(bpinn.data, "_check_repeats", lambda obs, file: None)
    with pytest.raises(AssertionError, match="expected exit status 2, got 0"):
        fz.check_sensor_edits([("dup", 3)])


def test_huge_value_check_fails_without_the_bounds(monkeypatch):
    import bpinn.config

    monkeypatch.setitem(bpinn.config._MAXIMUM, "num_samples", 10**13)
    with pytest.raises(AssertionError, match="expected exit status 2, got 0"):
        fz.check_huge_value((("inference", "num_samples"), 10**12))


def test_contract_rejects_an_error_that_names_nothing():
    outcome = fz.Outcome(2, "", "error: something is wrong\n")
    with pytest.raises(AssertionError, match="named"):
        fz.assert_contract(outcome, names=("width",))
    with pytest.raises(AssertionError, match="exit status 1"):
        fz.assert_contract(fz.Outcome(1, "", "Traceback ...\n"))
