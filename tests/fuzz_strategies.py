"""Hostile and malformed input for ``bpinn check`` and ``bpinn run``: hypothesis strategies and
the contract every input must meet.

Shared by ``tests/test_fuzz_inputs.py`` (a few dozen inputs per property, in CI) and
``benchmarks/fuzz_campaign.py`` (thousands). Each property is a strategy of inputs plus a
``check_*`` function that writes the input into a fresh copy of the heat-diffusion case study,
runs the command line on it and asserts the contract of :func:`assert_contract`:

* exit status 0 or 2, never an exception (a traceback fails the check) and never a hang
  (:data:`TIME_LIMIT_S` per input);
* on 2, stderr is one ``error: ...`` message naming the offending key, file or column;
* nothing is evaluated: marker files that a payload would create never appear, and the case
  folder holds exactly the files that were written into it (no ``__pycache__``, no OUTDIR).

Nothing here runs inference: inputs go through ``bpinn check``, or through ``bpinn run`` only
when they are invalid.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import random
import re
import shutil
import signal
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hypothesis import assume
from hypothesis import strategies as st

from bpinn.cli import main
from bpinn.config import _MAXIMUM

HEAT_DIR = Path(__file__).resolve().parents[1] / "case_studies" / "heat_diffusion"
HEAT_FILES = ("config.toml", "sensors.csv", "initial.py")
BASE_TEXT = (HEAT_DIR / "config.toml").read_text()
BASE = tomllib.loads(BASE_TEXT)
SENSOR_LINES = (HEAT_DIR / "sensors.csv").read_text().splitlines()
HEADER = SENSOR_LINES[0].split(",")  # sensor, x, t, u
ROWS = [line.split(",") for line in SENSOR_LINES[1:]]
GROUP, COORDS, VALUE = "sensor", ("x", "t"), "u"
DOMAIN = {"x": (0.0, 1.0), "t": (0.0, 1.0)}
TIME_LIMIT_S = 60  # per input; a validation takes ~10 ms, the first one ~1 s (JAX start-up)

# Tables whose keys `_check_keys` validates: an unknown key there gets a "did you mean".
SCHEMA_TABLES = ("problem", "domain", "data", "model", "inference", "conditions")


class Hang(Exception):
    """An input took longer than TIME_LIMIT_S."""


# --------------------------------------------------------------------------------------------
# TOML out (the fuzzers edit the parsed config, then write it back)


def toml_str(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_str(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def dumps(doc: dict) -> str:
    """A config dict as TOML: plain keys, then [tables], then [[arrays of tables]]."""

    def is_table_array(v):
        return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)

    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not is_table_array(v)]
    for key, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    for key, tables in doc.items():
        if is_table_array(tables):
            for table in tables:
                lines.append(f"\n[[{toml_key(key)}]]")
                lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


assert tomllib.loads(dumps(BASE)) == BASE


def get_path(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def set_path(doc: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(doc)
    get_path(out, path[:-1])[path[-1]] = value
    return out


def rename_key(doc: dict, table_path: tuple, old: str, new: str) -> dict:
    """Rename a key in place of the old one (keeps the order of the others)."""
    out = copy.deepcopy(doc)
    table = get_path(out, table_path)
    items = [(new if k == old else k, v) for k, v in table.items()]
    table.clear()
    table.update(items)
    return out


def _leaves(doc, prefix=()):
    """Paths of every value below the top level (tables, their entries, list elements)."""
    for key, value in (doc.items() if isinstance(doc, dict) else enumerate(doc)):
        path = (*prefix, key)
        yield path
        if isinstance(value, dict | list):
            yield from _leaves(value, path)


LEAF_PATHS = tuple(_leaves(BASE))
NUMERIC_PATHS = tuple(p for p in LEAF_PATHS if isinstance(get_path(BASE, p), int | float)
                      and not isinstance(get_path(BASE, p), bool))
# Tables with keys, as (path of the table, key): sections, inline tables, [[conditions]].
KEY_SITES = (
    tuple(((), k) for k in BASE)
    + tuple((p[:-1], p[-1]) for p in LEAF_PATHS if isinstance(p[-1], str))
)


def owner_name(path: tuple) -> str:
    """The name an error about ``path`` must mention: the key under its section (or under its
    [[conditions]] entry), e.g. ("coefficients", "D", "loc") -> "D"."""
    if path[0] == "conditions" and len(path) >= 3:
        return path[2]
    return path[1] if len(path) >= 2 else path[0]


def mentions(text: str, name: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(str(name)) + r"(?![\w])", text) is not None


# --------------------------------------------------------------------------------------------
# Running the command line on a case


@dataclass
class Outcome:
    rc: int
    out: str
    err: str


@contextlib.contextmanager
def time_limit(seconds: float):
    def fire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cli(*argv: str) -> Outcome:
    """``bpinn ARGV`` in this process; an exception (a traceback) propagates to the caller."""
    out, err = io.StringIO(), io.StringIO()
    with time_limit(TIME_LIMIT_S), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return Outcome(rc, out.getvalue(), err.getvalue())


class Case:
    """A fresh copy of the heat case in a temporary folder ``root/case`` (``root`` holds files
    that must stay out of reach, such as a module in the parent folder)."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="bpinn_fuzz_")
        self.root = Path(self._tmp.name)
        self.dir = self.root / "case"
        self.dir.mkdir()
        for name in HEAT_FILES:
            shutil.copy(HEAT_DIR / name, self.dir / name)
        self.config = self.dir / "config.toml"
        self.sensors = self.dir / "sensors.csv"
        self.marker = self.root / "PWNED"
        self.outdir = self.root / "out"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._tmp.cleanup()
        return False

    def write(self, name: str, content: str | bytes | dict) -> Path:
        path = self.dir / name
        if isinstance(content, dict):
            content = dumps(content)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def files(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*")}

    def check(self, config: Path | None = None) -> Outcome:
        return cli("check", str(config or self.config))

    def run(self, config: Path | None = None) -> Outcome:
        return cli("run", str(config or self.config), "-o", str(self.outdir), "--quiet",
                   "--no-report")


def assert_contract(outcome: Outcome, *, names=(), expect: int | None = None,
                    text: tuple[str, ...] = ()) -> None:
    """Exit 0 or 2; on 2 one ``error:`` line that mentions one of ``names`` and all ``text``."""
    rc, err = outcome.rc, outcome.err
    assert rc in (0, 2), f"exit status {rc}; stderr:\n{err}"
    assert "Traceback" not in err, err
    if expect is not None:
        assert rc == expect, f"expected exit status {expect}, got {rc}; stderr:\n{err}"
    if rc == 0:
        assert ": ok" in outcome.out and "error" not in err, (outcome.out, err)
        return
    assert err.startswith("error: "), f"stderr does not start with 'error: ':\n{err}"
    assert err.count("\nerror: ") == 0 and err.endswith("\n"), err
    if names:
        assert any(mentions(err, n) for n in names), f"none of {list(names)} named in:\n{err}"
    for piece in text:
        assert piece in err, f"{piece!r} not in:\n{err}"


# --------------------------------------------------------------------------------------------
# 1. Key typos

KEY_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyz_-0123456789 .é\"'\\[]=")


@st.composite
def key_typos(draw):
    """(table path, old key, new key): one character inserted, deleted, swapped or replaced."""
    table_path, old = draw(st.sampled_from(KEY_SITES))
    kind = draw(st.sampled_from(("insert", "delete", "swap", "replace")))
    i = draw(st.integers(0, len(old)))
    if kind == "insert":
        new = old[:i] + draw(KEY_CHARS) + old[i:]
    elif kind == "delete" and len(old) > 1:
        i = min(i, len(old) - 1)
        new = old[:i] + old[i + 1:]
    elif kind == "swap" and len(old) > 1:
        i = min(i, len(old) - 2)
        new = old[:i] + old[i + 1] + old[i] + old[i + 2:]
    else:
        i = min(i, len(old) - 1)
        new = old[:i] + draw(KEY_CHARS) + old[i + 1:]
    table = get_path(BASE, table_path)
    assume(new != old and new not in table)
    return table_path, old, new


def _valid_keys(table_path: tuple) -> set[str]:
    from bpinn.config import _CONDITION_KEYS, _SCHEMA, _TOP_LEVEL

    if table_path == ():
        return set(_TOP_LEVEL)
    if table_path[0] == "conditions":
        return set(_CONDITION_KEYS) if len(table_path) == 2 else set()
    if len(table_path) == 1 and _SCHEMA.get(table_path[0]):
        return set(_SCHEMA[table_path[0]])
    if table_path == ("data", "coords"):
        return set(DOMAIN)
    return set()


def check_key_typo(example) -> Outcome:
    table_path, old, new = example
    valid = _valid_keys(table_path)
    with Case() as case:
        case.write("config.toml", rename_key(BASE, table_path, old, new))
        outcome = case.check()
        # A typo that is itself a valid key of the table (x -> y in [domain]) is reported as
        # the key it leaves missing; any other typo is named as written.
        assert_contract(outcome, expect=2, names=(new, old) if new in valid else ())
        if new not in valid:
            assert repr(new) in outcome.err or mentions(outcome.err, new), outcome.err
        schema_table = table_path == () or len(table_path) == 1 and (
            table_path[0] in SCHEMA_TABLES) or table_path[0] == "conditions"
        if len(old) >= 4 and new not in valid and schema_table:
            assert "did you mean" in outcome.err, outcome.err
        return outcome


# --------------------------------------------------------------------------------------------
# 2. Wrong types

SHORT_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
# Values of every TOML type, and a few valid-looking ones, so that acceptance is exercised too.
OTHER_VALUES = st.one_of(
    SHORT_TEXT,
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-10, 10, allow_nan=False),
    st.lists(st.integers(-2, 2), max_size=3),
    st.lists(SHORT_TEXT, max_size=2),
    st.dictionaries(st.sampled_from(("a", "prior", "scale", "x")), st.integers(0, 2),
                    max_size=2),
    st.sampled_from(("poisson", "x_min", "fourier", "laplace", "csv", "netcdf", "x", "u",
                     "initial:u0", "LogNormal", "sensors.csv", "", " ", "0", "true")),
)
# Changing the PDE changes which coefficients are valid; a format is checked against the file.
ALSO_NAMED = {("problem", "pde"): ("coefficients",), ("data", "format"): ("sensors.csv",)}


def wrong_types():
    return st.tuples(st.sampled_from(LEAF_PATHS), OTHER_VALUES)


def check_wrong_type(example) -> Outcome:
    path, value = example
    with Case() as case:
        case.write("config.toml", set_path(BASE, path, value))
        names = (owner_name(path), *ALSO_NAMED.get(path[:2], ()))
        outcome = case.check()
        assert_contract(outcome, names=names)
        return outcome


# --------------------------------------------------------------------------------------------
# 3. Huge and non-finite numbers

HUGE = (10**12, 10**30, -(10**12), 10**400, 1e300, -1e300, 1e308, float("inf"), float("-inf"),
        float("nan"), 1e-320, 2**63, 2**64 + 1)
# Integer settings the fuzzer adds when the heat config does not set them.
COUNT_PATHS = tuple(
    (section, key)
    for section, keys in (("inference", ("seed", "num_chains", "num_warmup", "num_samples",
                                         "max_tree_depth", "map_adam_steps", "map_lbfgs_steps",
                                         "num_leapfrog_steps", "svi_steps", "svi_num_particles",
                                         "svi_rank", "num_members", "map_resample_rounds",
                                         "implicit_prior_points",
                                         "implicit_prior_max_tree_depth")),
                          ("model", ("width", "depth", "num_fourier", "num_collocation",
                                     "num_condition_points", "num_test_functions")))
    for key in keys
)
assert {k for _, k in COUNT_PATHS} == set(_MAXIMUM)


def huge_values():
    return st.tuples(st.sampled_from(NUMERIC_PATHS + COUNT_PATHS), st.sampled_from(HUGE))


def check_huge_value(example) -> Outcome:
    path, value = example
    with Case() as case:
        case.write("config.toml", set_path(BASE, path, value))
        outcome = case.check()
        non_finite = isinstance(value, float) and not math.isfinite(value)
        too_big = path in COUNT_PATHS and abs(value) >= 10**12
        assert_contract(outcome, names=(owner_name(path),),
                        expect=2 if non_finite or too_big else None)
        if too_big and not non_finite:
            assert "must be" in outcome.err or "expected an integer" in outcome.err, outcome.err
        return outcome


# --------------------------------------------------------------------------------------------
# 4. Whole files: empty, random, non-UTF-8, huge, a folder


def _big_junk(size_mb: int) -> bytes:
    return (b"u,x;t\t\x01 junk " * (size_mb << 17))[: size_mb << 20]


FILE_CONTENT = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    st.binary(min_size=1, max_size=100).map(lambda b: b"\xff\xfe" + b),  # never UTF-8
    SHORT_TEXT.map(str.encode),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from((b"\xef\xbb\xbf", b"\x00" * 64, b"\n\n\n", b"#", b"sensor,x,t,u\n",
                     b"sensor,x,t,u\nS1,0.1,0.1\n", "x,t,u\n0,0,\u00e9\n".encode("latin-1"),
                     b"[problem]\npde = 'heat'\n")),
    st.integers(1, 3).map(_big_junk),
)
TARGETS = ("config.toml", "sensors.csv", "initial.py")


def file_inputs():
    """(which file, content bytes, or "folder" / "fifo" / "device" for that in its place)."""
    return st.tuples(st.sampled_from(TARGETS),
                     st.one_of(st.sampled_from(("folder", "fifo", "device")), FILE_CONTENT))


def check_file_input(example) -> Outcome:
    target, content = example
    with Case() as case:
        path = case.dir / target
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:  # reading a FIFO or /dev/zero would block or never end
            path.unlink()
            {"folder": path.mkdir, "fifo": lambda: os.mkfifo(path),
             "device": lambda: path.symlink_to("/dev/zero")}[content]()
        # A module beside the config is Python the user wrote: its import errors are named.
        names = {"config.toml": (str(case.config),), "sensors.csv": ("sensors.csv",),
                 "initial.py": ("initial",)}[target]
        outcome = case.check()
        assert_contract(outcome, names=names, expect=2)
        return outcome


# Headers of the array formats, followed by junk: each reader must fail with a DataError.
MAGIC = (b"", b"PK\x03\x04", b"PK\x05\x06" + b"\x00" * 18, b"\x93NUMPY\x01\x00",
         b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n",
         b"MATLAB 5.0 MAT-file" + b" " * 97 + b"\x00\x01IM", b"MATLAB 7.3 MAT-file")


def array_files():
    """(suffix, content) of a sensor file in an array format: a magic number, then junk."""
    return st.tuples(st.sampled_from((".npz", ".nc", ".mat", ".nc4")),
                     st.tuples(st.sampled_from(MAGIC), st.binary(max_size=400)).map(
                         lambda parts: parts[0] + parts[1]))


def check_array_file(example) -> Outcome:
    suffix, content = example
    with Case() as case:
        name = "sensors" + suffix
        (case.dir / name).write_bytes(content)
        case.write("config.toml", set_path(BASE, ("data", "file"), name))
        outcome = case.check()
        assert_contract(outcome, expect=2, names=(name,))
        return outcome


def huge_valid_files():
    """A valid config or sensor file padded with megabytes of comment: still accepted."""
    return st.tuples(st.sampled_from(("config.toml", "sensors.csv")), st.integers(1, 4))


def check_huge_valid_file(example) -> Outcome:
    target, megabytes = example
    with Case() as case:
        path = case.dir / target
        padding = ("# " + "x" * 1000 + "\n") * (megabytes * 1024)
        path.write_text(path.read_text() + padding)
        outcome = case.check()
        assert_contract(outcome, expect=0)
        return outcome


# --------------------------------------------------------------------------------------------
# 5. Sensor rows

BAD_TOKENS = ("nan", "NaN", "", " ", "inf", "-inf", "Infinity", "1e999", "abc", "0x1", "1.2.3",
              "null", "NA", "--1", "é", "1e-999")
OUTSIDE = (-0.5, 1.5, -1e-3, 1.001, 1e6, -1e300)

_ROW = st.integers(0, len(ROWS) - 1)
SENSOR_EDITS = st.one_of(
    st.tuples(st.just("dup"), _ROW),  # the same reading twice
    st.tuples(st.just("repeat"), _ROW),  # same point, another value: a repeated measurement
    st.tuples(st.just("shuffle"), st.integers(0, 2**32 - 1)),  # a seed of the permutation
    st.tuples(st.just("cell"), _ROW, st.sampled_from(HEADER), st.sampled_from(BAD_TOKENS)),
    st.tuples(st.just("outside"), _ROW, st.sampled_from(COORDS), st.sampled_from(OUTSIDE)),
    st.tuples(st.just("time_units"), st.sampled_from((1000.0, 3600.0, 1e-3))),
    st.tuples(st.just("extra_column"), st.sampled_from(("extra", "notes", "u2"))),
    st.tuples(st.just("drop_column"), st.sampled_from(HEADER)),
    st.tuples(st.just("ragged"), _ROW),
)


def apply_edits(edits) -> tuple[list[str], list[list[str]]]:
    header, rows = list(HEADER), [list(r) for r in ROWS]
    for edit in edits:
        kind = edit[0]
        if kind == "dup":
            rows.append(list(rows[edit[1] % len(rows)]))
        elif kind == "repeat" and VALUE in header:
            row = list(rows[edit[1] % len(rows)])
            j = header.index(VALUE)
            value = _parsed(row[j])
            row[j] = "0.5" if value is None else repr(value + 0.125)
            rows.append(row)
        elif kind == "shuffle":
            random.Random(edit[1]).shuffle(rows)
        elif kind in ("cell", "outside") and edit[2] in header:
            row = rows[edit[1] % len(rows)]
            if len(row) == len(header):
                row[header.index(edit[2])] = edit[3] if kind == "cell" else repr(edit[3])
        elif kind == "time_units" and "t" in header:
            j = header.index("t")
            for row in rows:
                value = _parsed(row[j]) if len(row) == len(header) else None
                if value is not None and math.isfinite(value):
                    row[j] = repr(value * edit[1])
        elif kind == "extra_column" and edit[1] not in header:
            header.append(edit[1])
            for i, row in enumerate(rows):
                row.append(str(i))
        elif kind == "drop_column" and edit[1] in header:
            j = header.index(edit[1])
            header.pop(j)
            for row in rows:
                if len(row) > j:
                    row.pop(j)
        elif kind == "ragged":
            rows[edit[1] % len(rows)].append("1")
    return header, rows


_MISSING = {"", "nan", "na", "n/a", "null", "none"}


def _parsed(cell: str) -> float | None:
    """A cell as bpinn reads it: a float, NaN for a missing token, None if not a number."""
    cell = cell.strip()
    if cell.lower() in _MISSING:
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return None


def expected_sensor_outcome(header, rows) -> tuple[int, tuple[str, ...]]:
    """What bpinn must say about the edited file: (exit status, names one of which it
    mentions), in the order its checks run."""
    missing = [c for c in (*COORDS, VALUE, GROUP) if c not in header]
    if missing:
        return 2, tuple(missing)
    if any(len(r) != len(header) for r in rows):
        return 2, ("row", "fields")
    used = {c: header.index(c) for c in (*COORDS, VALUE)}
    if any(_parsed(r[j]) is None for r in rows for j in used.values()):
        return 2, tuple(c for c, j in used.items() if any(_parsed(r[j]) is None for r in rows))
    g = header.index(GROUP)
    if any(not r[g].strip() for r in rows):
        return 2, (GROUP,)
    values = [[_parsed(r[j]) for j in used.values()] for r in rows]
    bad = [c for i, c in enumerate(used) if any(not math.isfinite(v[i]) for v in values)]
    if bad:
        return 2, tuple(bad)
    outside = [c for i, c in enumerate(COORDS) if any(
        not DOMAIN[c][0] - 1e-9 <= v[i] <= DOMAIN[c][1] + 1e-9 for v in values)]
    if outside:
        return 2, tuple(outside)
    keys = [(r[g].strip(), *v) for r, v in zip(rows, values, strict=True)]
    if len(set(keys)) != len(keys):
        return 2, ("repeat",)
    return 0, ()


def check_sensor_edits(edits) -> Outcome:
    header, rows = apply_edits(edits)
    rc, names = expected_sensor_outcome(header, rows)
    with Case() as case:
        case.write("sensors.csv", "\n".join(",".join(r) for r in [header, *rows]) + "\n")
        outcome = case.check()
        assert_contract(outcome, expect=rc, names=names)
        if rc == 2:
            assert "sensors.csv" in outcome.err, outcome.err
        else:  # row order and repeated measurements are kept, every row counted once
            assert f"observations  {len(rows)} readings" in outcome.out, outcome.out
        return outcome


def sensor_edits():
    return st.lists(SENSOR_EDITS, min_size=1, max_size=3)


# --------------------------------------------------------------------------------------------
# 6. Code in a config

# Module and function parts of references; none of them may import or call anything outside
# the case folder, and only "initial:u0" (excluded below) is valid.
REF_MODULES = ("os", "sys", "builtins", "subprocess", "shutil", "importlib", "this", "pathlib",
               "..initial", ".initial", "initial.", "../initial", "/tmp/initial", "initial ",
               " initial", "initial.u0", "initial.py", "init ial", "evil", "case.initial",
               "__main__", "bpinn_fuzz_missing", "initial;os", "initial\n", "initial\x00")
REF_FUNCS = ("u0", "system", "exec", "eval", "__import__", "u0()", "u0; import os", "u0 ",
             "__init__", "rmtree", "", "1u0", "u0:u0", "__class__", "write_text")


def payloads(marker: Path) -> tuple[str, ...]:
    m = str(marker)
    return (
        f"__import__('os').system('touch {m}')",
        f"initial:u0; import os; os.system('touch {m}')",
        f"$(touch {m})",
        f"`touch {m}`",
        f"{{{{ touch {m} }}}}",
        f"!!python/object/apply:os.system ['touch {m}']",
        f"eval(\"open('{m}', 'w')\")",
        f"lambda z: open('{m}', 'w')",
        "os:system", "builtins:exec", "builtins:eval", "subprocess:call", "shutil:rmtree",
        "evil:payload", "pathlib:Path", "initial:u0()", "initial.py:u0",
        f"{m}:f", str(marker), "/etc/passwd", "../../../../etc/passwd", "../config.toml",
        "~/.bashrc",
    )


# Config slots that hold strings, and the name an error about each must mention.
STRING_SLOTS = (
    ("problem", "pde"), ("problem", "source"), ("conditions", 0, "value"),
    ("conditions", 1, "value"), ("data", "file"), ("data", "value"), ("data", "group"),
    ("data", "format"), ("coefficients", "D", "prior"), ("inference", "method"),
    ("model", "network"), ("model", "activation"), ("inference", "chain_init"),
    ("inference", "svi_coordinates"),
    ("conditions", 0, "boundary"), ("conditions", 0, "kind"), ("conditions", 0, "file"),
)
SLOT_NAMES = {("data", "file"): ("file",), ("data", "format"): ("format",)}


def code_in_config():
    """(slot, payload index or a composed reference)."""
    composed = st.tuples(st.sampled_from(REF_MODULES), st.sampled_from(REF_FUNCS)).map(
        lambda mf: f"{mf[0]}:{mf[1]}")
    return st.tuples(st.sampled_from(STRING_SLOTS),
                     st.one_of(st.integers(0, len(payloads(Path("/m"))) - 1), composed))


def check_code_in_config(example) -> Outcome:
    slot, payload = example
    with Case() as case:
        # A module that would mark its import, in the folder above the config: not beside it,
        # not installed, so a reference to it must not import it.
        (case.root / "evil.py").write_text(
            f"from pathlib import Path\nPath({str(case.marker)!r}).touch()\n"
            "def payload(z):\n    return 0.0\n")
        if isinstance(payload, int):
            payload = payloads(case.marker)[payload]
        assume(payload != "initial:u0")
        case.write("config.toml", set_path(BASE, slot, payload))
        before = case.files()
        outcome = case.check()
        assert not case.marker.exists(), f"{payload!r} in {slot} was executed"
        assert case.files() == before, case.files() ^ before
        assert_contract(outcome, expect=2, names=SLOT_NAMES.get(slot[:2], (owner_name(slot),)))
        return outcome


# --------------------------------------------------------------------------------------------
# 7. Invalid input through `bpinn run`: exit 2 and no OUTDIR, no file anywhere


def bad_runs():
    """Inputs that are invalid for sure, drawn from every kind above."""
    return st.one_of(
        st.tuples(st.just("typo"), key_typos()),
        st.tuples(st.just("huge"), st.tuples(st.sampled_from(COUNT_PATHS),
                                             st.sampled_from((10**12, 1e300, float("nan"))))),
        st.tuples(st.just("type"), st.tuples(st.sampled_from(NUMERIC_PATHS),
                                             st.sampled_from(("abc", [], {}, True)))),
        st.tuples(st.just("sensors"), st.sampled_from(
            ([("dup", 3)], [("cell", 5, "u", "nan")], [("time_units", 1000.0)],
             [("drop_column", "t")], [("outside", 0, "x", 1.5)]))),
        st.tuples(st.just("file"), st.tuples(st.sampled_from(TARGETS), FILE_CONTENT)),
    )


def check_bad_run(example) -> Outcome:
    kind, detail = example
    with Case() as case:
        if kind == "typo":
            table_path, old, new = detail
            case.write("config.toml", rename_key(BASE, table_path, old, new))
        elif kind in ("huge", "type"):
            case.write("config.toml", set_path(BASE, *detail))
        elif kind == "sensors":
            header, rows = apply_edits(detail)
            case.write("sensors.csv", "\n".join(",".join(r) for r in [header, *rows]) + "\n")
        else:
            case.write(*detail)
        before = case.files()
        outcome = case.run()
        assert_contract(outcome, expect=2)
        assert not case.outdir.exists(), "a failed run created OUTDIR"
        assert case.files() == before, case.files() ^ before
        return outcome


# name -> (strategy, check): what both the CI tests and the campaign run.
PROPERTIES = {
    "key_typos": (key_typos(), check_key_typo),
    "wrong_types": (wrong_types(), check_wrong_type),
    "huge_values": (huge_values(), check_huge_value),
    "files": (file_inputs(), check_file_input),
    "array_files": (array_files(), check_array_file),
    "huge_valid_files": (huge_valid_files(), check_huge_valid_file),
    "sensor_rows": (sensor_edits(), check_sensor_edits),
    "code_in_config": (code_in_config(), check_code_in_config),
    "bad_runs": (bad_runs(), check_bad_run),
}
