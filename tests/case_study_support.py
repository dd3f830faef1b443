"""What the case-study tests share: a case study's script loaded as a module, and its files
copied where a test may run (and write) beside them."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

CASE_STUDIES = Path(__file__).resolve().parents[1] / "case_studies"


def case_script(case: str, script: str = "analyse"):
    """``case_studies/<case>/<script>.py`` as a module (the folders are not packages)."""
    spec = importlib.util.spec_from_file_location(f"{case}_{script}",
                                                  CASE_STUDIES / case / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_case(case: str, root: Path, names) -> Path:
    """Copy the named files of ``case_studies/<case>`` into ``root``; returns ``root``."""
    for name in names:
        shutil.copy(CASE_STUDIES / case / name, root / name)
    return root
