"""Small shared helpers: JAX set-up, progress bars, interrupts, timing, module:function
references, atomic writes."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from tqdm.auto import tqdm

COMPILATION_CACHE_ENV = "BPINN_COMPILATION_CACHE"
COMPILATION_CACHE_MAX_BYTES = 2 * 1024**3  # beyond it the oldest programs go


def configure_jax() -> None:
    """float64 everywhere, and compiled programs kept on disk between runs.

    B-PINN posteriors are sharp in some weight directions; float32 round-off in the second
    derivatives of the residual is then visible to the sampler. Compilation is most of a small
    run's time, and a rerun of the same problem, a resumed run or a calibration's next dataset
    compiles the same programs again; JAX's persistent cache keeps them
    (``compilation_cache_dir``): the tests' 2-chain heat run took 79 s, and 25 s again from the
    cache. JAX's own ``JAX_COMPILATION_CACHE_DIR`` wins where set.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    if jax.config.jax_compilation_cache_dir is not None:
        return
    path = compilation_cache_dir()
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run uncached rather than fail
    # Bounded here, once per process, not by JAX's own ``compilation_cache_max_size``: that
    # locks and lists the directory on every write, which made a first run 30% slower.
    prune_compilation_cache(path, COMPILATION_CACHE_MAX_BYTES)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Every program: the hundreds of small ones under JAX's default 1 s threshold, compiled
    # for array operations run outside a compiled program, are most of what a rerun saves.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def prune_compilation_cache(path: Path, max_bytes: int) -> None:
    """Delete the oldest files of the cache directory ``path`` until it holds at most three
    quarters of ``max_bytes``, if it holds more than ``max_bytes``. A file another process is
    reading may go: JAX then compiles that program again."""
    entries = []
    for entry in os.scandir(path):
        with contextlib.suppress(OSError):
            if entry.is_file():
                info = entry.stat()
                entries.append((info.st_mtime, info.st_size, entry.path))
    total = sum(size for _, size, _ in entries)
    if total <= max_bytes:
        return
    for _, size, file in sorted(entries):
        with contextlib.suppress(OSError):
            os.unlink(file)
        total -= size
        if total <= max_bytes * 3 // 4:
            return


def compilation_cache_dir() -> Path | None:
    """Where ``configure_jax`` keeps compiled programs: ``$BPINN_COMPILATION_CACHE`` (``off``
    for none), else ``$XDG_CACHE_HOME/bpinn/xla`` or ``~/.cache/bpinn/xla``."""
    value = os.environ.get(COMPILATION_CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "false", "no") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bpinn" / "xla"


@contextlib.contextmanager
def progress_bar(*, total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr, or a silent stand-in when disabled."""
    bar = tqdm(total=total, desc=desc, disable=not enabled, leave=True, dynamic_ncols=True,
               file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


# Set by the handler ``interrupt_handling`` installs and read at the safe points (after every
# compiled chunk, after a run returns): a KeyboardInterrupt raised inside library code can be
# caught there and lost, and a run must still stop as the user asked.
_interrupt_requested = threading.Event()


def _request_interrupt(signum, frame):
    _interrupt_requested.set()
    raise KeyboardInterrupt(signal.Signals(signum).name)


def check_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C or SIGTERM arrived under ``interrupt_handling``,
    even when the exception its handler raised was swallowed on the way."""
    if _interrupt_requested.is_set():
        raise KeyboardInterrupt("interrupt requested")


@contextlib.contextmanager
def interrupt_handling():
    """Stop on Ctrl-C (SIGINT) and on SIGTERM, which a pre-empted machine sends before it kills,
    in the same way: a ``KeyboardInterrupt`` now, and again from ``check_interrupt`` at the next
    safe point. SIGINT is left alone where it is ignored (a background job's) or handled by
    someone else; outside the main thread signals are left alone entirely."""
    _interrupt_requested.clear()
    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if signum == signal.SIGINT and current is not signal.default_int_handler:
                continue
            previous[signum] = signal.signal(signum, _request_interrupt)
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _interrupt_requested.clear()


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
