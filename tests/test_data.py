"""Tests for bpinn.data: sensor files in every format and layout, and every bad input."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest
import scipy.io
import xarray as xr

from bpinn.data import (
    DataError,
    Observations,
    file_sha256,
    load_observations,
    validate_observations,
)
from bpinn.models.problem import Domain

try:
    import h5py  # noqa: F401

    HAS_H5PY = True
except ImportError:
    HAS_H5PY = False
needs_h5py = pytest.mark.skipif(not HAS_H5PY, reason="h5py is not installed")

DOMAIN = Domain(space=((0.0, 1.0),), time=(0.0, 2.0))
COORDS = {"x": "pos", "t": "time"}
SUFFIX = {
    "csv": ".csv",
    "npz": ".npz",
    "mat": ".mat",
    "mat73": ".mat",
    "nc3": ".nc",
    "nc4": ".nc",
}
ARRAY_FORMATS = [
    "npz",
    "mat",
    "nc3",
    pytest.param("nc4", marks=needs_h5py),
    pytest.param("mat73", marks=needs_h5py),
]
ALL_FORMATS = ["csv", *ARRAY_FORMATS]


# --------------------------------------------------------------------------------------------
# Fixture writers: variables are name -> (netcdf dims, array)


def _write_csv(path, columns: dict[str, np.ndarray]) -> None:
    names = list(columns)
    lines = [",".join(names)]
    for row in zip(*(columns[n] for n in names), strict=True):
        lines.append(",".join(repr(float(v)) if _is_num(v) else str(v) for v in row))
    path.write_text("\n".join(lines) + "\n")


def _is_num(v) -> bool:
    return isinstance(v, float | int | np.floating | np.integer)


def _savemat73(path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 with a 512-byte header block."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        for name, array in arrays.items():
            array = np.asarray(array)
            if array.dtype.kind in "UO":
                cells = np.empty(array.shape, dtype=h5py.ref_dtype)
                for i, text in enumerate(array.reshape(-1)):
                    chars = refs.create_dataset(
                        f"{name}{i}", data=np.array([[ord(c)] for c in str(text)], np.uint16)
                    )
                    chars.attrs["MATLAB_class"] = np.bytes_("char")
                    cells.reshape(-1)[i] = chars.ref
                data = f.create_dataset(name, data=np.atleast_2d(cells).T)
                data.attrs["MATLAB_class"] = np.bytes_("cell")
            else:
                # MATLAB is column-major: HDF5 holds the transpose of a 2-D array.
                data = f.create_dataset(name, data=np.atleast_2d(array).T)
                data.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116)
    with open(path, "r+b") as f:
        f.write(header + b" " * 8 + b"\x00\x02IM")


def _write(fmt: str, path, variables: dict[str, tuple[tuple[str, ...], np.ndarray]]) -> None:
    arrays = {name: array for name, (_, array) in variables.items()}
    if fmt == "csv":
        _write_csv(path, arrays)
    elif fmt == "npz":
        with open(path, "wb") as handle:  # a path would get ".npz" appended
            np.savez(handle, **arrays)
    elif fmt == "mat":
        scipy.io.savemat(path, arrays)
    elif fmt == "mat73":
        _savemat73(path, arrays)
    else:
        dataset = xr.Dataset({name: dims_array for name, dims_array in variables.items()})
        dataset.to_netcdf(path, engine="scipy" if fmt == "nc3" else "h5netcdf")


def _points(n=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, n), rng.uniform(0, 2, n), rng.normal(size=n)


def _file(tmp_path, fmt, variables, name="sensors"):
    path = tmp_path / f"{name}{SUFFIX[fmt]}"
    _write(fmt, path, variables)
    return path


# --------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_points_round_trip(tmp_path, fmt):
    x, t, u = _points()
    path = _file(tmp_path, fmt, {"pos": (("obs",), x), "time": (("obs",), t), "u": (("obs",), u)})
    obs = load_observations(path, coords=COORDS, value="u")
    np.testing.assert_array_equal(obs.coords, np.column_stack([x, t]))
    np.testing.assert_array_equal(obs.values, u)
    assert obs.n == 7
    assert obs.coord_names == ("x", "t")
    assert obs.coord_columns == ("pos", "time")
    assert obs.group_names == ("all",)
    np.testing.assert_array_equal(obs.group_index, np.zeros(7, np.int32))
    assert obs.origin == str(path)
    for array, dtype in [(obs.coords, np.float64), (obs.values, np.float64)]:
        assert array.dtype == dtype and array.flags.c_contiguous
    assert obs.group_index.dtype == np.int32
    validate_observations(obs, DOMAIN)


@pytest.mark.parametrize("fmt", ARRAY_FORMATS)
@pytest.mark.parametrize("transposed", [False, True], ids=["u[x,t]", "u[t,x]"])
def test_grid_round_trip(tmp_path, fmt, transposed):
    x, t = np.linspace(0, 1, 5), np.linspace(0, 2, 3)
    field = np.sin(x)[:, None] * np.exp(-t)[None, :]  # u[x, t]
    value = (("time", "pos"), field.T) if transposed else (("pos", "time"), field)
    path = _file(tmp_path, fmt, {"pos": (("pos",), x), "time": (("time",), t), "u": value})
    obs = load_observations(path, coords=COORDS, value="u")
    assert obs.n == 15
    # Rows follow the value's C order; every (x, t) node appears once with its reading.
    if transposed:
        ts, xs = np.meshgrid(t, x, indexing="ij")
    else:
        xs, ts = np.meshgrid(x, t, indexing="ij")
    np.testing.assert_array_equal(obs.coords, np.column_stack([xs.ravel(), ts.ravel()]))
    np.testing.assert_array_equal(obs.values, value[1].ravel())
    np.testing.assert_array_equal(obs.values, np.sin(obs.coords[:, 0]) * np.exp(-obs.coords[:, 1]))


@pytest.mark.parametrize("fmt", ARRAY_FORMATS)
def test_meshed_round_trip(tmp_path, fmt):
    xs, ts = np.meshgrid(np.linspace(0, 1, 4), np.linspace(0, 2, 3), indexing="ij")
    field = xs + 10 * ts
    dims = ("i", "j")
    path = _file(tmp_path, fmt, {"pos": (dims, xs), "time": (dims, ts), "u": (dims, field)})
    obs = load_observations(path, coords=COORDS, value="u")
    np.testing.assert_array_equal(obs.coords, np.column_stack([xs.ravel(), ts.ravel()]))
    np.testing.assert_array_equal(obs.values, field.ravel())


def test_square_grid_follows_coords_order(tmp_path):
    # Equal lengths cannot be told apart by shape: axes are taken in `coords` order.
    x, t = np.linspace(0, 1, 3), np.linspace(0, 2, 3)
    field = x[:, None] + 10 * t[None, :]
    np.savez(tmp_path / "g.npz", pos=x, time=t, u=field)
    obs = load_observations(tmp_path / "g.npz", coords=COORDS, value="u")
    np.testing.assert_array_equal(obs.values, obs.coords[:, 0] + 10 * obs.coords[:, 1])


def test_netcdf_square_grid_matches_axes_by_dimension_name(tmp_path):
    x, t = np.linspace(0, 1, 3), np.linspace(0, 2, 3)
    field_tx = 10 * t[:, None] + x[None, :]  # u[t, x]: transposed, equal lengths
    dataset = xr.Dataset({"u": (("time", "pos"), field_tx)}, coords={"pos": x, "time": t})
    dataset.to_netcdf(tmp_path / "g.nc", engine="scipy")
    obs = load_observations(tmp_path / "g.nc", coords=COORDS, value="u")
    np.testing.assert_array_equal(obs.values, obs.coords[:, 0] + 10 * obs.coords[:, 1])


@pytest.mark.parametrize("shape", [(-1, 1), (1, -1)], ids=["column", "row"])
def test_matlab_vectors_are_squeezed(tmp_path, shape):
    x, t, u = _points()
    scipy.io.savemat(
        tmp_path / "s.mat", {"pos": x.reshape(shape), "time": t.reshape(shape), "u": u[:, None]}
    )
    obs = load_observations(tmp_path / "s.mat", coords=COORDS, value="u")
    np.testing.assert_array_equal(obs.coords, np.column_stack([x, t]))
    np.testing.assert_array_equal(obs.values, u)


def test_single_number_coordinate_is_broadcast(tmp_path):
    x = np.linspace(0, 1, 6)
    np.savez(tmp_path / "snap.npz", pos=x, time=np.array(0.5), u=x**2)
    obs = load_observations(tmp_path / "snap.npz", coords=COORDS, value="u")
    np.testing.assert_array_equal(obs.coords, np.column_stack([x, np.full(6, 0.5)]))


def test_two_space_dimensions_and_time(tmp_path):
    x, y, t = np.linspace(0, 1, 2), np.linspace(0, 1, 3), np.linspace(0, 1, 4)
    field = np.arange(24.0).reshape(2, 3, 4)
    np.savez(tmp_path / "g.npz", x=x, y=y, t=t, u=field)
    obs = load_observations(tmp_path / "g.npz", coords={"x": "x", "y": "y", "t": "t"}, value="u")
    grids = np.meshgrid(x, y, t, indexing="ij")
    np.testing.assert_array_equal(obs.coords, np.column_stack([g.ravel() for g in grids]))
    np.testing.assert_array_equal(obs.values, field.ravel())
    validate_observations(obs, Domain(space=((0.0, 1.0), (0.0, 1.0)), time=(0.0, 1.0)))


def test_integer_columns_become_float64(tmp_path):
    np.savez(tmp_path / "i.npz", pos=np.array([0, 1]), time=np.array([1, 2]), u=np.array([3, 4]))
    obs = load_observations(tmp_path / "i.npz", coords=COORDS, value="u")
    assert obs.coords.dtype == obs.values.dtype == np.float64
    np.testing.assert_array_equal(obs.values, [3.0, 4.0])


def test_csv_dialect_details(tmp_path):
    path = tmp_path / "s.csv"
    text = (
        "\ufeff# sensors from run 7\n"
        ' "pos" , "time",  u ,note\n'
        "# calibrated\n"
        "\n"
        "0.25, 0.5 , 1e-3, a\r\n"
        "0.75,1.5,-2,b,\n"
    )
    path.write_text(text, encoding="utf-8")
    obs = load_observations(path, coords=COORDS, value="u")
    np.testing.assert_array_equal(obs.coords, [[0.25, 0.5], [0.75, 1.5]])
    np.testing.assert_array_equal(obs.values, [1e-3, -2.0])


def test_observations_are_immutable():
    obs = Observations(
        coords=[[0.1, 0.2]], values=[1.0], group_index=[0], group_names=("all",),
        coord_names=("x", "t"), origin="synthetic",
    )  # fmt: skip
    with pytest.raises(ValueError, match="read-only"):
        obs.values[0] = 2.0
    with pytest.raises(AttributeError):
        obs.values = np.zeros(1)
    assert "n=1" in repr(obs)


def test_observations_check_their_shapes():
    with pytest.raises(DataError, match=r"coords must have shape"):
        Observations(
            coords=np.zeros((3, 1)), values=np.zeros(3), group_index=np.zeros(3, int),
            group_names=("all",), coord_names=("x", "t"), origin="synthetic",
        )  # fmt: skip
    with pytest.raises(DataError, match=r"group_index must lie in"):
        Observations(
            coords=np.zeros((2, 1)), values=np.zeros(2), group_index=[0, 1],
            group_names=("all",), coord_names=("x",), origin="synthetic",
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Groups


def test_csv_groups_are_strings_in_natural_order(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("pos,time,u,sensor\n0.1,0,1,10\n0.2,0,2, 2 \n0.3,0,3,10\n0.4,0,4,A\n")
    obs = load_observations(path, coords=COORDS, value="u", group="sensor")
    assert obs.group_names == ("2", "10", "A")
    np.testing.assert_array_equal(obs.group_index, [1, 0, 1, 2])
    assert obs.group_index.dtype == np.int32


@pytest.mark.parametrize(
    ("fmt", "labels", "names", "index"),
    [
        ("npz", np.array([3, 1, 3, 20]), ("1", "3", "20"), [1, 0, 1, 2]),
        ("npz", np.array(["b", "a", "b", "c"]), ("a", "b", "c"), [1, 0, 1, 2]),
        ("mat", np.array([2.0, 1.0, 2.0, 1.0]), ("1", "2"), [1, 0, 1, 0]),
        ("mat", np.array(["b", "a", "b", "c"], dtype=object), ("a", "b", "c"), [1, 0, 1, 2]),
        ("mat", np.array(["b", 7, "b", 7], dtype=object), ("7", "b"), [1, 0, 1, 0]),
        ("nc3", np.array(["s2", "s1", "s2", "s1"]), ("s1", "s2"), [1, 0, 1, 0]),
        pytest.param(
            "mat73",
            np.array(["b", "a", "b", "c"]),
            ("a", "b", "c"),
            [1, 0, 1, 2],
            marks=needs_h5py,
        ),
    ],  # fmt: skip
)
def test_groups_in_array_formats(tmp_path, fmt, labels, names, index):
    x, t, u = _points(4)
    variables = {
        "pos": (("obs",), x),
        "time": (("obs",), t),
        "u": (("obs",), u),
        "sensor": (("obs",), labels),
    }
    path = _file(tmp_path, fmt, variables)
    obs = load_observations(path, coords=COORDS, value="u", group="sensor")
    assert obs.group_names == names
    np.testing.assert_array_equal(obs.group_index, index)


def test_grid_group_along_one_axis(tmp_path):
    x, t = np.array([0.1, 0.5, 0.9]), np.array([0.0, 1.0])
    np.savez(
        tmp_path / "g.npz", pos=x, time=t, u=np.zeros((3, 2)), sensor=np.array(["a", "b", "c"])
    )
    obs = load_observations(tmp_path / "g.npz", coords=COORDS, value="u", group="sensor")
    assert obs.group_names == ("a", "b", "c")
    np.testing.assert_array_equal(obs.group_index, [0, 0, 1, 1, 2, 2])


def test_missing_group_label(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("pos,time,u,sensor\n0.1,0,1,a\n0.2,0,2,\n")
    with pytest.raises(DataError, match=r"g\.csv.*no group label.*'sensor'.*row 2"):
        load_observations(path, coords=COORDS, value="u", group="sensor")


# --------------------------------------------------------------------------------------------
# Formats


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".csv", "csv"),
        (".txt", "csv"),
        (".CSV", "csv"),
        (".nc", "nc3"),
        (".nc4", "nc3"),
        (".netcdf", "nc3"),
        (".npz", "npz"),
        (".mat", "mat"),
    ],
)
def test_format_inferred_from_suffix(tmp_path, suffix, fmt):
    x, t, u = _points(3)
    path = tmp_path / f"s{suffix}"
    _write(fmt, path, {"pos": (("obs",), x), "time": (("obs",), t), "u": (("obs",), u)})
    np.testing.assert_array_equal(load_observations(path, coords=COORDS, value="u").values, u)


@pytest.mark.parametrize("fmt", ["csv", "npz", "mat", "nc3"])
def test_explicit_format_overrides_suffix(tmp_path, fmt):
    x, t, u = _points(3)
    path = tmp_path / "readings.dat"
    _write(fmt, path, {"pos": (("obs",), x), "time": (("obs",), t), "u": (("obs",), u)})
    name = {"nc3": "NetCDF"}.get(fmt, fmt)
    obs = load_observations(path, coords=COORDS, value="u", format=name)
    np.testing.assert_array_equal(obs.values, u)


def test_file_sha256(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"pos,time,u\n0,0,1\n")
    assert file_sha256(path) == hashlib.sha256(b"pos,time,u\n0,0,1\n").hexdigest()
    with pytest.raises(DataError, match="nope.csv"):
        file_sha256(tmp_path / "nope.csv")


# --------------------------------------------------------------------------------------------
# Bad input: files and formats


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"absent\.csv' not found"):
        load_observations(tmp_path / "absent.csv", coords=COORDS, value="u")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "s.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match=r"s\.xlsx.*'\.xlsx'.*'csv', 'netcdf', 'npz', 'mat'"):
        load_observations(path, coords=COORDS, value="u")


def test_unknown_format_argument(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("pos,time,u\n0,0,1\n")
    with pytest.raises(DataError, match=r"s\.csv.*format='excel'.*'csv', 'netcdf', 'npz', 'mat'"):
        load_observations(path, coords=COORDS, value="u", format="excel")


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "the file is empty"),
        ("# only a comment\n\n", "the file is empty"),
        ("pos,time,u\n", "header .* but no data rows"),
        ("pos,time,u\n# nothing measured\n", "header .* but no data rows"),
    ],
    ids=["empty", "comments", "header-only", "header-and-comment"],
)
def test_csv_without_readings(tmp_path, text, detail):
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"s\.csv' contains no readings.*{detail}"):
        load_observations(path, coords=COORDS, value="u")


@pytest.mark.parametrize(
    ("coords", "value", "missing"),
    [
        ({"x": "pos", "t": "time"}, "temp", "'temp' (requested as value)"),
        ({"x": "position", "t": "time"}, "u", "'position' (requested as coords['x'])"),
        ({"x": "pos", "t": "t"}, "v", "'t' (requested as coords['t']), 'v' (requested as value)"),
    ],
)
def test_csv_missing_columns_lists_available(tmp_path, coords, value, missing):
    path = tmp_path / "s.csv"
    path.write_text("pos,time,u\n0,0,1\n")
    with pytest.raises(DataError) as info:
        load_observations(path, coords=coords, value=value)
    message = str(info.value)
    assert "s.csv" in message
    assert missing in message
    assert "available columns: 'pos', 'time', 'u'" in message


def test_csv_with_other_separator_gets_a_hint(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("pos;time;u\n0;0;1\n")
    with pytest.raises(DataError, match=r"available columns: 'pos;time;u'.*other than commas"):
        load_observations(path, coords=COORDS, value="u")


def test_csv_duplicate_column(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("pos,time,u,u\n0,0,1,2\n")
    with pytest.raises(DataError, match=r"s\.csv.*column 'u'.*appears 2 times"):
        load_observations(path, coords=COORDS, value="u")


def test_csv_non_numeric_cells(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("pos,time,u\n0.1,0,1\n# note\n0.2,0,high\n0.3,zero,3\n")
    with pytest.raises(DataError) as info:
        load_observations(path, coords=COORDS, value="u")
    message = str(info.value)
    assert "s.csv" in message
    assert "2 non-numeric" in message
    assert "row 2 (line 4), column 'u': 'high'" in message
    assert "row 3 (line 5), column 'time': 'zero'" in message


def test_csv_ragged_row(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("pos,time,u\n0.1,0,1\n0.2,0\n")
    with pytest.raises(DataError, match=r"s\.csv': row 2 \(line 3\) has 2 fields.*3 columns"):
        load_observations(path, coords=COORDS, value="u")


@pytest.mark.parametrize("fmt", ARRAY_FORMATS)
def test_missing_variable_lists_available(tmp_path, fmt):
    x, t, u = _points(3)
    path = _file(tmp_path, fmt, {"pos": (("obs",), x), "time": (("obs",), t), "u": (("obs",), u)})
    with pytest.raises(DataError) as info:
        load_observations(path, coords=COORDS, value="temperature")
    message = str(info.value)
    assert path.name in message
    assert "'temperature' (requested as value) not found" in message
    assert "'pos', 'time', 'u'" in message


@pytest.mark.parametrize("fmt", ARRAY_FORMATS)
def test_mismatched_point_lengths(tmp_path, fmt):
    x, t, u = _points(5)
    path = _file(tmp_path, fmt, {"pos": (("a",), x), "time": (("b",), t[:4]), "u": (("a",), u)})
    with pytest.raises(DataError) as info:
        load_observations(path, coords=COORDS, value="u")
    message = str(info.value)
    assert path.name in message
    assert "shapes do not line up" in message
    assert "coordinate 't'" in message and "'time') has shape" in message
    assert "5" in message and "4" in message


@pytest.mark.parametrize(
    ("x_shape", "t_shape", "u_shape"),
    [
        ((4,), (2,), (4, 3)),  # t matches no axis
        ((4,), (4,), (4, 3)),  # nothing runs along the axis of length 3
        ((3, 4), (4, 3), (4, 3)),  # meshed coordinate transposed
        ((12,), (12,), (4, 3)),  # flattened coordinates with a 2-D value
    ],
)
def test_mismatched_grid_shapes(tmp_path, x_shape, t_shape, u_shape):
    np.savez(
        tmp_path / "g.npz",
        pos=np.zeros(x_shape),
        time=np.zeros(t_shape),
        u=np.zeros(u_shape),
    )
    with pytest.raises(DataError, match=r"g\.npz.*shapes do not line up.*\(4, 3\)"):
        load_observations(tmp_path / "g.npz", coords=COORDS, value="u")


def test_empty_array(tmp_path):
    np.savez(tmp_path / "e.npz", pos=np.zeros(0), time=np.zeros(0), u=np.zeros(0))
    with pytest.raises(DataError, match=r"e\.npz' contains no readings.*'u' is empty"):
        load_observations(tmp_path / "e.npz", coords=COORDS, value="u")


def test_non_numeric_array(tmp_path):
    np.savez(tmp_path / "s.npz", pos=np.zeros(2), time=np.zeros(2), u=np.array(["a", "b"]))
    with pytest.raises(DataError, match=r"s\.npz.*'u' has dtype <U1.*must be real numbers"):
        load_observations(tmp_path / "s.npz", coords=COORDS, value="u")


def test_npz_object_array_is_refused(tmp_path):
    np.savez(tmp_path / "s.npz", pos=np.zeros(2), time=np.zeros(2), u=np.array([1, None]))
    with pytest.raises(DataError, match=r"s\.npz.*'u'.*unpickling"):
        load_observations(tmp_path / "s.npz", coords=COORDS, value="u")


def test_npz_holding_a_single_array(tmp_path):
    path = tmp_path / "s.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(DataError, match=r"s\.npz' holds a single unnamed array"):
        load_observations(path, coords=COORDS, value="u")


@pytest.mark.parametrize(
    ("name", "reader"),
    [("s.npz", "npz archive"), ("s.mat", "MATLAB file"), ("s.nc", "NetCDF")],
)
def test_corrupt_files(tmp_path, name, reader):
    path = tmp_path / name
    path.write_bytes(b"this is not a binary data file at all" * 8)
    with pytest.raises(DataError, match=rf"{name}' could not be read as .*{reader}"):
        load_observations(path, coords=COORDS, value="u")


def test_mat73_without_h5py(tmp_path, monkeypatch):
    path = tmp_path / "v73.mat"
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116)
    path.write_bytes(header + b" " * 8 + b"\x00\x02IM" + b"\x00" * 512)
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(DataError, match=r"v73\.mat' is a MATLAB v7\.3 .*needs h5py"):
        load_observations(path, coords=COORDS, value="u")


def test_hdf5_netcdf_that_cannot_be_opened(tmp_path):
    path = tmp_path / "s.nc"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(DataError, match=r"s\.nc' could not be read as NetCDF") as info:
        load_observations(path, coords=COORDS, value="u")
    if not HAS_H5PY:
        assert "pip install h5py" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coords": {}, "value": "u"}, "coords must be a non-empty mapping"),
        ({"coords": {"x": ""}, "value": "u"}, "coords must map str"),
        ({"coords": COORDS, "value": ""}, "value must be a non-empty str"),
        ({"coords": COORDS, "value": "u", "group": 3}, "group must be a non-empty str"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    path = tmp_path / "s.csv"
    path.write_text("pos,time,u\n0,0,1\n")
    with pytest.raises(DataError, match=match):
        load_observations(path, **kwargs)


# --------------------------------------------------------------------------------------------
# Bad input: validation against the domain


def _csv_obs(tmp_path, body: str, name="s.csv") -> Observations:
    path = tmp_path / name
    path.write_text("pos,time,u\n" + body)
    return load_observations(path, coords=COORDS, value="u")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("0.1,0,1\n0.2,0,\n0.3,0,NaN\n", ["2 missing or NaN", "'u'", "rows 2, 3"]),
        ("0.1,0,inf\n0.2,0,1\n0.3,0,-Infinity\n", ["2 infinite", "'u'", "rows 1, 3"]),
        ("0.1,,1\n0.2,0,1\n", ["1 missing or NaN", "coordinate 't' (column 'time')", "row 1"]),
    ],
    ids=["nan", "inf", "nan-coordinate"],
)
def test_non_finite_readings(tmp_path, body, expected):
    obs = _csv_obs(tmp_path, body)
    with pytest.raises(DataError) as info:
        validate_observations(obs, DOMAIN)
    message = str(info.value)
    assert "s.csv" in message
    for part in expected:
        assert part in message


def test_many_bad_rows_are_summarised(tmp_path):
    obs = _csv_obs(tmp_path, "0.5,0,\n" * 9)
    with pytest.raises(DataError, match=r"9 missing or NaN.*rows 1, 2, 3, 4, 5 and 4 more"):
        validate_observations(obs, DOMAIN)


def test_points_outside_domain(tmp_path):
    obs = _csv_obs(tmp_path, "0.5,1,1\n1.5,1,2\n0.5,-0.25,3\n")
    with pytest.raises(DataError) as info:
        validate_observations(obs, DOMAIN)
    message = str(info.value)
    assert "s.csv" in message
    assert "2 sensor point(s) lie outside the domain" in message
    assert "row 2: coordinate 'x' (column 'pos') = 1.5 not in [0.0, 1.0]" in message
    assert "row 3: coordinate 't' (column 'time') = -0.25 not in [0.0, 2.0]" in message


def test_points_on_the_boundary_are_inside(tmp_path):
    validate_observations(_csv_obs(tmp_path, "0,0,1\n1,2,2\n"), DOMAIN)


def test_coordinates_must_match_the_domain(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("pos,u\n0.5,1\n")
    obs = load_observations(path, coords={"x": "pos"}, value="u")
    with pytest.raises(DataError, match=r"s\.csv.*\('x',\).*\('x', 't'\)"):
        validate_observations(obs, DOMAIN)


def test_empty_observations():
    obs = Observations(
        coords=np.zeros((0, 2)), values=np.zeros(0), group_index=np.zeros(0, np.int32),
        group_names=("all",), coord_names=("x", "t"), origin="none.csv",
    )  # fmt: skip
    with pytest.raises(DataError, match=r"'none\.csv': empty sensor file"):
        validate_observations(obs, DOMAIN)
