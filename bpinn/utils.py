"""Small shared helpers: progress bars, timing, module:function references, atomic writes."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from tqdm.auto import tqdm


@contextlib.contextmanager
def progress_bar(*, total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr, or a silent stand-in when disabled."""
    bar = tqdm(total=total, desc=desc, disable=not enabled, leave=True, dynamic_ncols=True,
               file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


class Timer:
    """Wall-clock stopwatch: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        return False


def resolve_reference(ref: str, *, base_dir: Path | None = None, where: str = "reference"):
    """Import ``"module:function"`` without evaluating text.

    ``module`` is first looked up as ``base_dir/module.py`` (a file beside the config), then as
    an importable module. Raises ValueError naming the reference when either part is missing.
    """
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ValueError(f"{where}: expected 'module:function', got {ref!r}")
    module_name, func_name = ref.split(":")
    if not module_name or not func_name.isidentifier():
        raise ValueError(f"{where}: expected 'module:function', got {ref!r}")
    module = None
    if base_dir is not None:
        path = Path(base_dir) / (module_name.replace(".", "/") + ".py")
        if path.is_file():
            unique = f"bpinn_user_{abs(hash(str(path.resolve())))}_{module_name.replace('.', '_')}"
            spec = importlib.util.spec_from_file_location(unique, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            hint = f" (looked for {Path(base_dir) / (module_name + '.py')})" if base_dir else ""
            raise ValueError(f"{where}: cannot import module {module_name!r}{hint}: {err}") from err
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(
            f"{where}: module {module_name!r} has no function {func_name!r}"
        )
    return func


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same directory, which is flushed, fsynced and then
    renamed over ``path`` with :func:`os.replace`. On any error the temporary file is removed and
    ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write_bytes(p, b"hello")
    >>> p.read_bytes()
    b'hello'
    """
    atomic_write_via(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_via(path: Path, write_fn) -> None:
    """Write through ``write_fn(tmp_path)`` beside ``path``, fsync, then rename over ``path``.

    A temp path (not an open handle) because h5py opens files by name.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, _file_mode(path))
        write_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def _file_mode(path: Path) -> int:
    # mkstemp makes 0o600 files; keep an existing file's mode, else the usual rw-r--r--.
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
