"""Small shared helpers: progress bars, timing, module:function references."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
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
