"""Sensor observations: readings at points in space-time, read from CSV, NetCDF, npz or MAT files.

Everything here is in the user's physical units and plain NumPy; nothing is rescaled or moved to
an accelerator. :func:`load_observations` reads a file into an :class:`Observations`;
:func:`validate_observations` checks it against a :class:`~bpinn.models.problem.Domain`;
:func:`file_sha256` fingerprints the file for provenance.

Array layouts
-------------
NetCDF, npz and MAT files hold named arrays. After MATLAB-style squeezing (an array with at most
one axis longer than 1, such as ``(n, 1)`` or ``(1, n)``, becomes a vector of length ``n``) each
selected coordinate array must be one of

* **the value's shape** -- "points" when everything is 1-D of the same length ``n``, "meshed"
  when the value is k-D and each coordinate holds the coordinate of every grid node (as
  ``numpy.meshgrid`` returns it). All arrays are flattened.
* **a vector along one axis of the value** -- "grid": the value is k-D and each coordinate is a
  1-D vector whose length matches one of the value's axes. Every grid node becomes one
  observation. NetCDF variables are matched to the value's axes by dimension name; otherwise by
  length, and when two axes have the same length they are taken in the order of the ``coords``
  mapping. A value stored with such axes transposed (``u[t, x]`` with ``len(x) == len(t)``, but
  ``coords={"x": ..., "t": ...}``) cannot be told apart from the untransposed one: store the value
  with its axes in ``coords`` order, or use NetCDF with named dimensions.
* **a single number** (length 1) -- a constant, such as the time of a snapshot.

A group array follows the same rules, except that a group vector may share an axis with a
coordinate (one sensor id per position, say); its axis must be unique by length or named by a
NetCDF dimension.

Observations always come out in the value array's C order (the last axis varies fastest), and
rows are numbered from 1 in that order in error messages. In a CSV file, rows are the data rows
(comment and blank lines are not counted).

Row order and repeats
---------------------
Each row is one independent reading. Row order does not matter: rows need not be sorted by time,
position or sensor, and the order is kept as read. Several readings at the same point and time
(of one sensor or of several) are repeated measurements and are kept. A row identical to an
earlier one in group, every coordinate and the reading is refused by
:func:`validate_observations`: it would be counted twice and make the noise look smaller, and it
is almost always a copy-paste or concatenation error.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

__all__ = [
    "FORMATS",
    "DataError",
    "Observations",
    "file_sha256",
    "load_observations",
    "validate_observations",
]

FORMATS = ("csv", "netcdf", "npz", "mat")
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".nc": "netcdf",
    ".nc4": "netcdf",
    ".netcdf": "netcdf",
    ".npz": "npz",
    ".mat": "mat",
}
# What each format calls a named array, for error messages.
_ITEM_WORD = {"csv": "column", "netcdf": "variable", "npz": "array", "mat": "variable"}
# CSV cells read as a missing reading (NaN); validation then reports them.
_MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})
_MAX_LISTED = 5
_INT_LABEL = re.compile(r"[+-]?\d+")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class DataError(ValueError):
    """A sensor file or its description cannot be turned into valid observations.

    The message names the file, the column or variable, the offending value(s) or rows and what
    would be valid.
    """


# --------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True, eq=False, repr=False)
class Observations:
    """Sensor readings at points in space-time, in physical units.

    Arrays are copied to C-contiguous, read-only float64 (``group_index``: int32) on construction.

    Parameters
    ----------
    coords : array of shape (n, ndim)
        Point coordinates, columns ordered as ``coord_names``.
    values : array of shape (n,)
        The readings.
    group_index : array of shape (n,)
        Index into ``group_names`` of each reading's sensor or group.
    group_names : tuple of str
        Group labels; ``("all",)`` when the file has no group column.
    coord_names : tuple of str
        Canonical coordinate names, e.g. ``("x", "t")``.
    origin : str
        The file the readings came from.
    value_name : str
        The column or variable the readings came from (for messages).
    coord_columns : tuple of str
        The column or variable each coordinate came from; defaults to ``coord_names``.

    Examples
    --------
    >>> obs = Observations(coords=[[0.1, 0.0], [0.5, 1.0]], values=[1.0, 2.0],
    ...                    group_index=[0, 0], group_names=("all",), coord_names=("x", "t"),
    ...                    origin="synthetic")
    >>> obs.n, obs.coords.shape
    (2, (2, 2))
    """

    coords: np.ndarray
    values: np.ndarray
    group_index: np.ndarray
    group_names: tuple[str, ...]
    coord_names: tuple[str, ...]
    origin: str
    value_name: str = "value"
    coord_columns: tuple[str, ...] = ()

    def __post_init__(self):
        origin = str(self.origin)
        where = f"Observations from {origin!r}"
        coord_names = tuple(str(c) for c in self.coord_names)
        coord_columns = tuple(str(c) for c in self.coord_columns) or coord_names
        group_names = tuple(self.group_names)
        coords = _frozen(self.coords, np.float64)
        values = _frozen(self.values, np.float64)
        group_index = np.asarray(self.group_index)
        if group_index.size and not np.issubdtype(group_index.dtype, np.integer):
            raise DataError(f"{where}: group_index must hold integers, got {group_index.dtype}")
        group_index = _frozen(group_index, np.int32)

        if not coord_names:
            raise DataError(f"{where}: coord_names is empty; give at least one coordinate")
        if len(set(coord_names)) != len(coord_names):
            raise DataError(f"{where}: coord_names {coord_names} has duplicates")
        if len(coord_columns) != len(coord_names):
            raise DataError(
                f"{where}: coord_columns {coord_columns} must have one entry per coordinate "
                f"{coord_names}"
            )
        if values.ndim != 1:
            raise DataError(f"{where}: values must be 1-D, got shape {values.shape}")
        n = values.shape[0]
        if coords.shape != (n, len(coord_names)):
            raise DataError(
                f"{where}: coords must have shape (n, ndim) = {(n, len(coord_names))} for "
                f"{n} values and coordinates {coord_names}, got {coords.shape}"
            )
        if group_index.shape != (n,):
            raise DataError(f"{where}: group_index must have shape ({n},), got {group_index.shape}")
        if not group_names or not all(isinstance(g, str) for g in group_names):
            raise DataError(
                f"{where}: group_names must be a non-empty tuple of str, got {group_names!r}"
            )
        if len(set(group_names)) != len(group_names):
            raise DataError(f"{where}: group_names {group_names!r} has duplicates")
        if n and (group_index.min() < 0 or group_index.max() >= len(group_names)):
            raise DataError(
                f"{where}: group_index must lie in [0, {len(group_names)}), got values in "
                f"[{group_index.min()}, {group_index.max()}]"
            )
        for name, value in [
            ("origin", origin),
            ("coord_names", coord_names),
            ("coord_columns", coord_columns),
            ("group_names", group_names),
            ("coords", coords),
            ("values", values),
            ("group_index", group_index),
            ("value_name", str(self.value_name)),
        ]:
            object.__setattr__(self, name, value)

    @property
    def n(self) -> int:
        """Number of readings."""
        return int(self.values.shape[0])

    def groups(self, names) -> Observations:
        """The readings of the named groups only, with the groups renumbered in that order.

        Examples
        --------
        >>> obs = Observations(coords=[[0.1], [0.5], [0.9]], values=[1.0, 2.0, 3.0],
        ...                    group_index=[0, 1, 0], group_names=("A", "B"),
        ...                    coord_names=("x",), origin="synthetic")
        >>> sub = obs.groups(["A"])
        >>> sub.values.tolist(), sub.group_names
        ([1.0, 3.0], ('A',))
        """
        names = tuple(names)
        unknown = [n for n in names if n not in self.group_names]
        if unknown:
            raise DataError(f"{self.origin}: no sensor group(s) {unknown}; the groups are "
                            f"{list(self.group_names)}")
        old_index = np.array([self.group_names.index(n) for n in names], dtype=np.int32)
        keep = np.isin(self.group_index, old_index)
        renumber = np.full(len(self.group_names), -1, dtype=np.int32)
        renumber[old_index] = np.arange(len(names), dtype=np.int32)
        return Observations(
            coords=self.coords[keep], values=self.values[keep],
            group_index=renumber[self.group_index[keep]], group_names=names,
            coord_names=self.coord_names, origin=self.origin, value_name=self.value_name,
            coord_columns=self.coord_columns)

    def __repr__(self) -> str:
        return (
            f"Observations(n={self.n}, coord_names={self.coord_names}, "
            f"groups={len(self.group_names)}, origin={self.origin!r})"
        )


def _frozen(array, dtype) -> np.ndarray:
    # Copy, so that making it read-only never touches the caller's array.
    out = np.array(array, dtype=dtype, order="C", copy=True)
    out.setflags(write=False)
    return out


# --------------------------------------------------------------------------------------------
# Public functions


def load_observations(
    path: str | PathLike,
    *,
    coords: Mapping[str, str],
    value: str,
    group: str | None = None,
    format: str | None = None,
) -> Observations:
    """Read sensor readings from a CSV, NetCDF, npz or MATLAB file.

    Parameters
    ----------
    path : str or path-like
        The sensor file.
    coords : mapping of str to str
        Canonical coordinate name (``"x"``, ``"y"``, ``"t"``) to the column or variable holding
        it, in ``Domain.coord_names`` order; the columns of ``Observations.coords`` follow it.
    value : str
        Column or variable holding the readings.
    group : str, optional
        Column or variable holding sensor ids or groups (strings or integers). Without it every
        reading is in the one group ``"all"``.
    format : {"csv", "netcdf", "npz", "mat"}, optional
        File format; by default inferred from the suffix (``.csv``/``.txt``, ``.nc``/``.nc4``/
        ``.netcdf``, ``.npz``, ``.mat``).

    Returns
    -------
    Observations
        Coordinates and readings as float64; group labels as sorted unique strings (integer
        labels in numeric order first, then the others alphabetically).

    Raises
    ------
    DataError
        If the file is missing or unreadable, a column or variable is missing, a cell is not a
        number, the array shapes do not line up (see the module docstring), or there are no
        readings. Missing readings (empty cells, NaN) are *not* errors here; they are reported
        by :func:`validate_observations`.

    Notes
    -----
    CSV files need a header row; fields are comma separated, may be quoted and surrounded by
    blanks; lines starting with ``#`` are comments. Empty cells and ``NaN``/``NA``/``null`` read
    as missing readings. NetCDF4/HDF5 files are read with xarray's ``h5netcdf`` engine (needs
    ``h5py``), NetCDF3 classic files with the ``scipy`` engine; times are not decoded, so ``t``
    is in the file's numeric units. MATLAB v7.3 files need ``h5py``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sensors.csv"
    >>> _ = path.write_text("pos,time,temp\\n0.25,0.0,1.5\\n0.75,0.5,2.5\\n")
    >>> obs = load_observations(path, coords={"x": "pos", "t": "time"}, value="temp")
    >>> obs.coords.tolist(), obs.values.tolist(), obs.group_names
    ([[0.25, 0.0], [0.75, 0.5]], [1.5, 2.5], ('all',))
    """
    origin = str(path)
    path = Path(path)
    coord_map = _check_request(origin, coords, value, group)
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as err:  # a name too long, a NUL byte in the name
        raise DataError(f"sensor file {origin!r} cannot be opened: {err}") from None
    if not exists:
        raise DataError(f"sensor file {origin!r} not found (resolved to {str(path.resolve())!r})")
    if not is_file:
        raise DataError(f"sensor file {origin!r} is not a regular file")
    fmt = _resolve_format(path, origin, format)

    wanted = [*coord_map.values(), value] + ([group] if group is not None else [])
    roles = _roles(coord_map, value, group)
    if fmt == "csv":
        arrays, dims = _read_csv(path, origin, roles, text_columns={group} - {None}), {}
    elif fmt == "netcdf":
        arrays, dims = _read_netcdf(path, origin, wanted, roles)
    elif fmt == "npz":
        arrays, dims = _read_npz(path, origin, wanted, roles), {}
    else:
        arrays, dims = _read_mat(path, origin, wanted, roles), {}
    return _assemble(origin, fmt, coord_map, value, group, arrays, dims)


def validate_observations(obs: Observations, domain) -> None:
    """Check that observations are usable for an inverse problem on ``domain``.

    Parameters
    ----------
    obs : Observations
        Loaded readings.
    domain : Domain
        The problem's space-time box (anything with ``coord_names``, ``lower``, ``upper`` and
        ``contains(points)`` like :class:`bpinn.models.problem.Domain`).

    Raises
    ------
    DataError
        If there are no readings ("empty sensor file"); if the coordinates are not the domain's;
        if any reading or coordinate is NaN (a missing reading) or infinite -- naming the count and
        the first rows (1-based); if any point lies outside the domain box -- naming the rows,
        the coordinate, its value and the bounds; or if a row repeats an earlier row exactly
        (group, coordinates and reading) -- naming both rows. Row order is free, and readings at
        the same point that differ are kept as repeated measurements (see the module docstring).

    Examples
    --------
    >>> from bpinn.models.problem import Domain
    >>> obs = Observations(coords=[[0.5, 1.0]], values=[2.0], group_index=[0],
    ...                    group_names=("all",), coord_names=("x", "t"), origin="synthetic")
    >>> validate_observations(obs, Domain(space=((0.0, 1.0),), time=(0.0, 2.0)))
    """
    file = _file(obs.origin)
    names = tuple(domain.coord_names)
    if obs.n == 0:
        raise DataError(f"{file}: empty sensor file: it holds no readings; add data rows")
    if obs.coord_names != names:
        raise DataError(
            f"{file}: observations have coordinates {obs.coord_names} but the domain has "
            f"{names}; pass coords= with exactly the keys {names}, in that order"
        )

    problems = []
    columns = [(f"reading column {obs.value_name!r}", obs.values)]
    for j, name in enumerate(names):
        columns.append((_coord_label(name, obs.coord_columns[j], "column"), obs.coords[:, j]))
    for label, column in columns:
        nan_rows = np.flatnonzero(np.isnan(column))
        inf_rows = np.flatnonzero(np.isinf(column))
        if nan_rows.size:
            problems.append(
                f"{nan_rows.size} missing or NaN value(s) in {label} at {_rows(nan_rows)}"
            )
        if inf_rows.size:
            problems.append(f"{inf_rows.size} infinite value(s) in {label} at {_rows(inf_rows)}")
    if problems:
        raise DataError(
            f"{file}: " + "; ".join(problems) + ". Every reading and coordinate must be a "
            "finite number (rows count data rows from 1); remove or fill these rows"
        )

    inside = np.asarray(domain.contains(obs.coords), dtype=bool)
    if inside.all():
        _check_repeats(obs, file)
        return
    lower = np.asarray(domain.lower, dtype=float)
    upper = np.asarray(domain.upper, dtype=float)
    tol = 1e-9 * (upper - lower)  # the tolerance of Domain.contains
    outside_rows = np.flatnonzero(~inside)
    details = []
    for row in outside_rows[:_MAX_LISTED]:
        point = obs.coords[row]
        bad = np.flatnonzero((point < lower - tol) | (point > upper + tol))
        for j in bad if bad.size else range(len(names)):
            details.append(
                f"row {row + 1}: {_coord_label(names[j], obs.coord_columns[j], 'column')} = "
                f"{float(point[j])!r} not in [{float(lower[j])!r}, {float(upper[j])!r}]"
            )
    more = len(outside_rows) - min(len(outside_rows), _MAX_LISTED)
    bounds = ", ".join(
        f"{n} in [{float(lo)!r}, {float(hi)!r}]"
        for n, lo, hi in zip(names, lower, upper, strict=True)
    )
    raise DataError(
        f"{file}: {len(outside_rows)} sensor point(s) lie outside the domain ({bounds}): "
        + "; ".join(details)
        + (f"; and {more} more row(s)" if more else "")
        + ". Check the coordinate columns, their units, or the domain bounds"
    )


def _check_repeats(obs: Observations, file: str) -> None:
    """Refuse rows identical to an earlier row in group, coordinates and reading."""
    table = np.column_stack([obs.group_index.astype(np.float64), obs.coords, obs.values])
    _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    earlier = first[inverse.reshape(-1)]
    repeats = np.flatnonzero(earlier != np.arange(obs.n))
    if not repeats.size:
        return
    pairs = "; ".join(f"row {r + 1} repeats row {earlier[r] + 1}" for r in repeats[:_MAX_LISTED])
    more = repeats.size - min(repeats.size, _MAX_LISTED)
    raise DataError(
        f"{file}: {repeats.size} row(s) repeat an earlier row exactly (same group, coordinates "
        f"and reading): {pairs}" + (f"; and {more} more" if more else "") + ". Each row is one "
        "independent reading, so a repeated row would be counted twice; remove the repeats "
        "(readings at the same point that differ are kept as repeated measurements)"
    )


def write_readings_csv(path: str | PathLike, rows, columns=("sensor", "x", "t", "u")) -> None:
    """Write readings as a CSV ``load_observations`` reads back exactly (atomically).

    ``rows`` are tuples ``(group, coordinate..., value)`` in the order of ``columns``; numbers
    are written with ``repr`` so they round-trip to the same float64.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sensors.csv"
    >>> write_readings_csv(path, [("S1", 0.25, 0.5, 1.0 / 3.0)])
    >>> path.read_text().splitlines()[1]
    'S1,0.25,0.5,0.3333333333333333'
    """
    import io

    from bpinn.utils import atomic_write_bytes

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for group, *numbers in rows:
        writer.writerow([group, *(repr(float(v)) for v in numbers)])
    atomic_write_bytes(Path(path), text.getvalue().encode("utf-8"))


def file_sha256(path: str | PathLike) -> str:
    """SHA-256 hex digest of a file's bytes, for provenance.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty.csv"
    >>> _ = path.write_bytes(b"")
    >>> file_sha256(path)[:16]
    'e3b0c44298fc1c14'
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"sensor file {str(path)!r} not found or not a regular file")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Arguments


def _file(origin: str) -> str:
    return f"sensor file {origin!r}"


def _resolve_format(path: Path, origin: str, format: str | None) -> str:
    valid = ", ".join(repr(f) for f in FORMATS)
    if format is not None:
        fmt = str(format).lower()
        if fmt not in FORMATS:
            raise DataError(f"{_file(origin)}: unknown format={format!r}; valid formats: {valid}")
        return fmt
    suffix = path.suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        known = ", ".join(f"{s} ({f})" for s, f in _SUFFIX_FORMATS.items())
        raise DataError(
            f"{_file(origin)}: cannot infer the format from the suffix {suffix or '(none)'!r}; "
            f"known suffixes: {known}. Pass format= one of {valid}"
        )
    return _SUFFIX_FORMATS[suffix]


def _check_request(origin, coords, value, group) -> dict[str, str]:
    if not isinstance(coords, Mapping) or not coords:
        raise DataError(
            f"{_file(origin)}: coords must be a non-empty mapping from coordinate name to "
            f"column, e.g. {{'x': 'x', 't': 'time'}}; got {coords!r}"
        )
    for key, column in coords.items():
        if not isinstance(key, str) or not isinstance(column, str) or not column:
            raise DataError(
                f"{_file(origin)}: coords must map str to a non-empty str; got {key!r}: {column!r}"
            )
    if not isinstance(value, str) or not value:
        raise DataError(f"{_file(origin)}: value must be a non-empty str, got {value!r}")
    if group is not None and (not isinstance(group, str) or not group):
        raise DataError(f"{_file(origin)}: group must be a non-empty str or None, got {group!r}")
    return dict(coords)


def _roles(coord_map: Mapping[str, str], value: str, group: str | None) -> dict[str, str]:
    """Column -> the argument that asked for it, e.g. ``"coords['t']"``."""
    roles: dict[str, list[str]] = {}
    for key, column in coord_map.items():
        roles.setdefault(column, []).append(f"coords[{key!r}]")
    roles.setdefault(value, []).append("value")
    if group is not None:
        roles.setdefault(group, []).append("group")
    return {column: " and ".join(who) for column, who in roles.items()}


def _missing_error(origin, fmt, missing, available, roles, hint="") -> DataError:
    word = _ITEM_WORD[fmt]
    wanted = ", ".join(f"{m!r} (requested as {roles[m]})" for m in missing)
    # A binary file read as CSV can have a header of thousands of "columns": list the first few.
    listed = ", ".join(
        repr(a) if len(str(a)) <= 60 else repr(str(a)[:40]) + "..." for a in available[:20]
    ) if available else "(none)"
    if len(available) > 20:
        listed += f" and {len(available) - 20} more"
    plural = "s" if len(missing) > 1 else ""
    return DataError(
        f"{_file(origin)}: {word}{plural} {wanted} not found; available {word}s: {listed}."
        f"{hint} Pass one of the available names"
    )


def _coord_label(name: str, source: str, word: str) -> str:
    return f"coordinate {name!r}" + (f" ({word} {source!r})" if source != name else "")


def _rows(indices) -> str:
    indices = np.asarray(indices)
    shown = ", ".join(str(int(i) + 1) for i in indices[:_MAX_LISTED])
    more = indices.size - min(indices.size, _MAX_LISTED)
    word = "row" if indices.size == 1 else "rows"
    return f"{word} {shown}" + (f" and {more} more" if more else "")


# --------------------------------------------------------------------------------------------
# Readers: each returns the requested named arrays, as stored


def _read_csv(path: Path, origin: str, roles: Mapping[str, str], text_columns) -> dict:
    file = _file(origin)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{file} is not UTF-8 text ({err}); is it a CSV file? Pass format= to say which "
            f"of {FORMATS} it is"
        ) from None
    except OSError as err:
        raise DataError(f"{file} cannot be read ({err.strerror or err})") from None
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise DataError(
            f"{file} contains no readings: the file is empty (no header row, no data rows)"
        )
    # One record per line: a stray quote must not swallow the lines after it.
    rows = []
    for number, line in lines:
        try:
            rows.append(next(csv.reader([line], skipinitialspace=True)))
        except csv.Error as err:  # e.g. a field longer than the csv module's limit
            raise DataError(
                f"{file}: line {number} cannot be read as CSV ({err}); is it a CSV file?"
            ) from None
    header = [cell.strip() for cell in rows[0]]

    missing = [column for column in roles if column not in header]
    if missing:
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in "; \t|"):
            hint = " The header has a single column: is the file separated by something other "
            hint += "than commas?"
        raise _missing_error(origin, "csv", missing, header, roles, hint)
    for column in roles:
        if header.count(column) > 1:
            raise DataError(
                f"{file}: column {column!r} (requested as {roles[column]}) appears "
                f"{header.count(column)} times in the header {header}; rename the duplicates"
            )
    if len(rows) == 1:
        raise DataError(
            f"{file} contains no readings: it has a header ({', '.join(header)}) but no data rows"
        )

    index = {column: header.index(column) for column in roles}
    cells: dict[str, list] = {column: [] for column in roles}
    bad: list[str] = []
    n_bad = 0
    for row_number, ((line_number, _), row) in enumerate(zip(lines[1:], rows[1:], strict=True), 1):
        if len(row) > len(header) and not any(c.strip() for c in row[len(header) :]):
            row = row[: len(header)]  # trailing commas
        if len(row) != len(header):
            raise DataError(
                f"{file}: row {row_number} (line {line_number}) has {len(row)} fields but the "
                f"header has {len(header)} columns ({', '.join(header)}); every row needs one "
                f"field per column"
            )
        for column, j in index.items():
            cell = row[j].strip()
            if column in text_columns:
                cells[column].append(cell)
                continue
            try:
                number = float("nan") if cell.lower() in _MISSING_TOKENS else float(cell)
            except ValueError:
                n_bad += 1
                if len(bad) < _MAX_LISTED:
                    bad.append(
                        f"row {row_number} (line {line_number}), column {column!r}: {cell!r}"
                    )
                number = float("nan")
            cells[column].append(number)
    if n_bad:
        more = f"; and {n_bad - len(bad)} more" if n_bad > len(bad) else ""
        raise DataError(
            f"{file}: {n_bad} non-numeric cell(s) in coordinate/reading columns: "
            + "; ".join(bad)
            + more
            + ". Cells must be numbers (e.g. 0.25, -1e-3); leave a cell empty or write NaN "
            "for a missing reading"
        )
    return {
        column: np.array(values, dtype=object if column in text_columns else np.float64)
        for column, values in cells.items()
    }


def _read_netcdf(path: Path, origin: str, wanted, roles) -> tuple[dict, dict]:
    import xarray as xr

    file = _file(origin)
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic.startswith(b"CDF"):
        engines = ["scipy"]
    elif magic == _HDF5_MAGIC:
        engines = ["h5netcdf"]
    else:
        engines = ["h5netcdf", "scipy"]
    failures = []
    for engine in engines:
        try:
            dataset = xr.open_dataset(
                path, engine=engine, decode_times=False, decode_timedelta=False
            )
        except ImportError as err:
            failures.append(f"engine {engine!r} is unavailable ({err})")
            continue
        except Exception as err:  # noqa: BLE001 - any reader failure is reported below
            failures.append(f"engine {engine!r}: {type(err).__name__}: {err}")
            continue
        with dataset:
            available = sorted(str(name) for name in dataset.variables)
            missing = [name for name in dict.fromkeys(wanted) if name not in dataset.variables]
            if missing:
                raise _missing_error(origin, "netcdf", missing, available, roles)
            arrays, dims = {}, {}
            for name in dict.fromkeys(wanted):
                variable = dataset.variables[name]
                arrays[name] = np.asarray(variable.values)
                dims[name] = tuple(str(d) for d in variable.dims)
        return arrays, dims
    hint = ""
    if magic.startswith(b"CDF\x05"):
        hint = " It is a CDF5 (64-bit data) file, which the scipy reader does not support;"
        hint += " convert it, e.g. `nccopy -k nc4 in.nc out.nc`."
    elif magic == _HDF5_MAGIC:
        hint = " NetCDF4/HDF5 files need h5netcdf and h5py: `pip install h5py`."
    raise DataError(f"{file} could not be read as NetCDF: " + "; ".join(failures) + "." + hint)


def _read_npz(path: Path, origin: str, wanted, roles) -> dict:
    file = _file(origin)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - any reader failure means "not an npz archive"
        raise DataError(
            f"{file} could not be read as an npz archive ({type(err).__name__}: {err}); save "
            f"it with numpy.savez(path, x=..., t=..., u=...)"
        ) from None
    if not hasattr(archive, "files"):
        raise DataError(
            f"{file} holds a single unnamed array of shape {np.shape(archive)}, not named "
            f"arrays; save it with numpy.savez(path, x=..., t=..., u=...)"
        )
    with archive:
        missing = [name for name in dict.fromkeys(wanted) if name not in archive.files]
        if missing:
            raise _missing_error(origin, "npz", missing, sorted(archive.files), roles)
        arrays = {}
        for name in dict.fromkeys(wanted):
            try:
                arrays[name] = archive[name]
            except ValueError as err:
                raise DataError(
                    f"{file}: array {name!r} (requested as {roles[name]}) cannot be read without "
                    f"unpickling ({err}); store numbers or fixed-width strings, not objects"
                ) from None
    return arrays


def _read_mat(path: Path, origin: str, wanted, roles) -> dict:
    import scipy.io

    file = _file(origin)
    try:
        contents = scipy.io.loadmat(path, squeeze_me=False, chars_as_strings=True)
    except NotImplementedError:
        return _read_mat73(path, origin, wanted, roles)
    except Exception as err:  # noqa: BLE001 - any reader failure means "not a MAT file"
        raise DataError(
            f"{file} could not be read as a MATLAB file ({type(err).__name__}: {err})"
        ) from None
    available = sorted(name for name in contents if not name.startswith("__"))
    missing = [name for name in dict.fromkeys(wanted) if name not in available]
    if missing:
        raise _missing_error(origin, "mat", missing, available, roles)
    return {name: np.asarray(contents[name]) for name in dict.fromkeys(wanted)}


def _read_mat73(path: Path, origin: str, wanted, roles) -> dict:
    file = _file(origin)
    try:
        import h5py
    except ImportError:
        raise DataError(
            f"{file} is a MATLAB v7.3 (HDF5) file, which needs h5py: `pip install h5py`, or "
            f"save it in MATLAB with save(..., '-v7')"
        ) from None
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{file} could not be opened as MATLAB v7.3/HDF5 ({err})") from None
    with handle:
        available = sorted(name for name in handle if not name.startswith("#"))
        missing = [name for name in dict.fromkeys(wanted) if name not in available]
        if missing:
            raise _missing_error(origin, "mat", missing, available, roles)
        return {
            name: _mat73_array(handle, handle[name], file, name) for name in dict.fromkeys(wanted)
        }


def _mat73_array(handle, node, file: str, name: str) -> np.ndarray:
    import h5py

    if not isinstance(node, h5py.Dataset):
        raise DataError(
            f"{file}: variable {name!r} is a MATLAB struct or object; store plain numeric "
            f"arrays, char arrays or cell arrays of strings"
        )
    matlab_class = node.attrs.get("MATLAB_class", b"double")
    if isinstance(matlab_class, bytes):
        matlab_class = matlab_class.decode("ascii", "replace")
    if node.attrs.get("MATLAB_empty", 0):
        return np.zeros((0,))
    # HDF5 stores MATLAB's column-major arrays with the axes reversed.
    data = np.asarray(node[()]).T
    if matlab_class == "char":
        rows = np.atleast_2d(data)
        return np.array(["".join(map(chr, row)) for row in rows], dtype=object)
    if matlab_class == "cell":
        out = np.empty(data.shape, dtype=object)
        for position, reference in np.ndenumerate(data):
            element = _mat73_array(handle, handle[reference], file, name)
            out[position] = element.item() if element.size == 1 else element
        return out
    return data


# --------------------------------------------------------------------------------------------
# Layout: named arrays -> one row per observation


def _vectorize(array: np.ndarray) -> np.ndarray:
    """MATLAB-style squeeze: at most one axis longer than 1 -> a vector."""
    array = np.asarray(array)
    if array.ndim == 0 or sum(s > 1 for s in array.shape) <= 1:
        return array.reshape(-1)
    return array


def _assemble(origin, fmt, coord_map, value, group, arrays, dims) -> Observations:
    file = _file(origin)
    word = _ITEM_WORD[fmt]
    raw_value = np.asarray(arrays[value])
    value_array = _vectorize(raw_value)
    value_dims = dims.get(value) if value_array.shape == raw_value.shape else None
    if value_array.size == 0:
        raise DataError(
            f"{file} contains no readings: {word} {value!r} is empty (shape {raw_value.shape})"
        )
    shape = value_array.shape

    labels = {name: _coord_label(name, column, word) for name, column in coord_map.items()}
    parts = [(name, column, labels[name]) for name, column in coord_map.items()]
    if group is not None:
        parts.append((None, group, f"group {word} {group!r}"))

    def shapes_error(extra: str) -> DataError:
        listed = "; ".join(
            f"{label} has shape {np.shape(arrays[column])}" for _, column, label in parts
        )
        return DataError(
            f"{file}: the shapes do not line up ({extra}): {word} {value!r} (readings) has shape "
            f"{raw_value.shape}; {listed}. Valid layouts: every array 1-D of the same length "
            f"(points); each coordinate 1-D with the length of one axis of the readings (grid); "
            f"each coordinate with the readings' shape (meshed); or a single number"
        )

    squeezed_shape = tuple(s for s in shape if s != 1)

    def classify(column: str, label: str):
        """'full' (the value's shape), None (one number), or a vector's (length, named axis)."""
        array = _vectorize(arrays[column])
        if array.size == value_array.size and tuple(s for s in array.shape if s != 1) == (
            squeezed_shape
        ):
            return "full"
        if array.ndim != 1:
            raise shapes_error(f"{label} is neither 1-D nor shaped like the readings")
        if array.size == 1:
            return None
        column_dims = dims.get(column)
        named = None
        if value_dims is not None and column_dims is not None and len(column_dims) == 1:
            if column_dims[0] in value_dims:
                named = value_dims.index(column_dims[0])
        return array.size, named

    # Coordinates: NetCDF dimension names first, then lengths, free axes in `coords` order.
    placements: list[object] = []  # per coordinate: "full" | None (constant) | int axis
    claimed: set[int] = set()
    kinds = [classify(column, labels[name]) for name, column in coord_map.items()]
    for kind in kinds:
        if isinstance(kind, tuple) and kind[1] is not None and kind[1] not in claimed:
            claimed.add(kind[1])
            placements.append(kind[1])
        else:
            placements.append(kind)
    for i, (kind, (name, _)) in enumerate(zip(kinds, coord_map.items(), strict=True)):
        if isinstance(placements[i], tuple):
            length = kind[0]
            free = [a for a, s in enumerate(shape) if s == length and a not in claimed]
            if not free:
                raise shapes_error(f"{labels[name]} has length {length}, matching no free axis")
            placements[i] = free[0]
            claimed.add(free[0])
    unclaimed = [a for a, s in enumerate(shape) if s > 1 and a not in claimed]
    if unclaimed and "full" not in placements:
        raise shapes_error(f"no coordinate runs along axis {unclaimed[0]} of the readings")

    def spread(column: str, placement) -> np.ndarray:
        array = _vectorize(arrays[column])
        if placement == "full":
            return array.reshape(shape).reshape(-1)
        if placement is None:
            return np.broadcast_to(array.reshape(()), shape).reshape(-1)
        axes = [-1 if a == placement else 1 for a in range(len(shape))]
        return np.broadcast_to(array.reshape(axes), shape).reshape(-1)

    columns = [
        _numeric(file, labels[name], spread(column, placement))
        for (name, column), placement in zip(coord_map.items(), placements, strict=True)
    ]
    values = _numeric(file, f"reading {word} {value!r}", value_array.reshape(-1))
    n = values.shape[0]
    if group is None:
        group_index, group_names = np.zeros(n, dtype=np.int32), ("all",)
    else:
        group_label = f"group {word} {group!r}"
        kind = classify(group, group_label)
        if isinstance(kind, tuple):
            # A vector of sensor ids runs along the one axis of its length (or its named one).
            axes = [a for a, s in enumerate(shape) if s == kind[0]]
            if kind[1] is not None:
                axes = [kind[1]]
            if len(axes) != 1:
                raise shapes_error(
                    f"{group_label} has length {kind[0]}, matching "
                    + ("no axis" if not axes else f"axes {axes} alike: it is ambiguous")
                )
            kind = axes[0]
        group_index, group_names = _group_codes(file, word, group, spread(group, kind))
    return Observations(
        coords=np.column_stack(columns),
        values=values,
        group_index=group_index,
        group_names=group_names,
        coord_names=tuple(coord_map),
        origin=origin,
        value_name=value,
        coord_columns=tuple(coord_map.values()),
    )


def _unwrap(element):
    # MATLAB cells arrive as object arrays of 1-element (or empty) arrays.
    while isinstance(element, np.ndarray):
        if element.size == 0:
            return None
        if element.size > 1 and element.dtype.kind not in "US":
            return element
        element = element.reshape(-1)[0] if element.size == 1 else "".join(element.reshape(-1))
    return element


def _numeric(file: str, label: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind in "iuf":
        return np.asarray(array, dtype=np.float64)
    if array.dtype.kind == "O":
        items = [_unwrap(e) for e in array.reshape(-1)]
        try:
            return np.array([np.nan if e is None else float(e) for e in items], dtype=np.float64)
        except (TypeError, ValueError):
            example = next(e for e in items if e is not None and not _is_number(e))
            raise DataError(
                f"{file}: {label} holds non-numeric entries such as {example!r}; coordinates "
                f"and readings must be numbers"
            ) from None
    example = array.reshape(-1)[0] if array.size else None
    raise DataError(
        f"{file}: {label} has dtype {array.dtype} (e.g. {example!r}); coordinates and readings "
        f"must be real numbers (integer or floating point)"
    )


def _is_number(element) -> bool:
    if isinstance(element, bool | np.bool_ | str | bytes):
        return False
    try:
        float(element)
    except (TypeError, ValueError):
        return False
    return True


def _label_of(element) -> str | None:
    element = _unwrap(element)
    if element is None:
        return None
    if isinstance(element, bytes | np.bytes_):
        element = element.decode("utf-8", "replace")
    if isinstance(element, str):
        return element.strip() or None
    if isinstance(element, np.ndarray):
        return None
    if isinstance(element, float | np.floating):
        if not np.isfinite(element):
            return None
        return str(int(element)) if float(element).is_integer() else repr(float(element))
    if isinstance(element, int | np.integer):
        return str(int(element))
    return str(element).strip() or None


def _label_key(label: str):
    return (0, int(label), label) if _INT_LABEL.fullmatch(label) else (1, 0, label)


def _group_codes(file: str, word: str, group: str, array: np.ndarray):
    array = np.asarray(array)
    if array.dtype.kind in "iufUSb":
        unique, inverse = np.unique(array.reshape(-1), return_inverse=True)
    else:
        unique, inverse = np.unique(
            np.array([_label_of(e) or "" for e in array.reshape(-1)], dtype=str),
            return_inverse=True,
        )
    labels = [_label_of(u) for u in unique]
    missing_codes = [code for code, label in enumerate(labels) if label is None]
    if missing_codes:
        rows = np.flatnonzero(np.isin(inverse, missing_codes))
        raise DataError(
            f"{file}: {rows.size} reading(s) have no group label in {word} {group!r} "
            f"(empty or NaN) at {_rows(rows)}; give every reading a sensor id or group, "
            f"or load without group="
        )
    names = sorted(set(labels), key=_label_key)
    position = {label: i for i, label in enumerate(names)}
    remap = np.array([position[label] for label in labels], dtype=np.int32)
    return remap[inverse.reshape(-1)], tuple(names)
