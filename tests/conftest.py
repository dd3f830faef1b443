"""Shared set-up: float64 everywhere, a compilation cache per session, and a writable copy of
the heat-diffusion case study."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from bpinn.utils import COMPILATION_CACHE_ENV, configure_jax

# Before any test module builds arrays or compiles anything: double precision, as the CLI
# runs, and a compilation cache of this session's own (never the user's), which the tests
# that run the same small problem again (reruns, resumes, calibrations) reuse.
SESSION_CACHE = tempfile.mkdtemp(prefix="bpinn-test-xla-")
os.environ[COMPILATION_CACHE_ENV] = SESSION_CACHE
# A JAX_COMPILATION_CACHE_DIR of the user's is dropped: for this process (JAX read it at
# import, and its cache, once opened, stays on that directory until reset) and for the CLI
# subprocesses the tests start.
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
jax.config.update("jax_compilation_cache_dir", None)
configure_jax()
compilation_cache.reset_cache()


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


HEAT_DIR = Path(__file__).resolve().parents[1] / "case_studies" / "heat_diffusion"
HEAT_FILES = ("sensors.csv", "initial.py", "config.toml")


def toml_value(value) -> str:
    """A Python scalar as a TOML literal (enough for the settings the tests change)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


class HeatCase:
    """The heat-diffusion case study copied into a temporary directory.

    Call it to write a variant of its config: ``heat_case(("D = {", "K = {"))`` replaces text
    (each old string must occur exactly once, so a stale edit fails loudly), ``inference=`` and
    ``model=`` set keys of those sections, ``drop=`` removes lines that start with a prefix and
    ``extra=`` appends text. It returns the path of the written config.
    """

    def __init__(self, root: Path):
        self.root = root
        for name in HEAT_FILES:
            shutil.copy(HEAT_DIR / name, root / name)
        self.config = root / "config.toml"
        self.text = self.config.read_text()
        self.sensors = root / "sensors.csv"

    def __call__(
        self,
        *edits: tuple[str, str],
        inference: dict | None = None,
        model: dict | None = None,
        drop: tuple[str, ...] = (),
        extra: str = "",
        name: str = "config.toml",
    ) -> Path:
        text = self.text
        for old, new in edits:
            count = text.count(old)
            assert count == 1, f"edit target {old!r} occurs {count} times in the config"
            text = text.replace(old, new)
        for section, values in (("inference", inference), ("model", model)):
            for key, value in (values or {}).items():
                text = _set_key(text, section, key, toml_value(value))
        if drop:
            text = "\n".join(
                line for line in text.splitlines() if not line.startswith(tuple(drop))
            ) + "\n"
        path = self.root / name
        path.write_text(text + extra)
        return path


def _set_key(text: str, section: str, key: str, literal: str) -> str:
    """Set ``key = literal`` inside ``[section]``: replace the line or add it after the header."""
    header = f"[{section}]\n"
    start = text.index(header) + len(header)
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body = text[start:end]
    pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.MULTILINE)
    if pattern.search(body):
        body = pattern.sub(f"{key} = {literal}", body, count=1)
    else:
        body = f"{key} = {literal}\n" + body
    return text[:start] + body + text[end:]


@pytest.fixture
def heat_case(tmp_path) -> HeatCase:
    """A fresh copy of ``case_studies/heat_diffusion`` in ``tmp_path`` and a config writer."""
    return HeatCase(tmp_path)


@pytest.fixture(scope="session")
def make_heat_case(tmp_path_factory):
    """``make_heat_case(name)``: a fresh ``HeatCase`` for fixtures wider than one test."""
    return lambda name: HeatCase(tmp_path_factory.mktemp(name))


# Reduced heat case shared by the method tests: the shipped network and collocation, two MAP
# starts, shorter optimisation. The truth is D = 0.07.
METHOD_TEST_INFERENCE = {"num_chains": 2, "num_warmup": 200, "num_samples": 200,
                         "map_adam_steps": 3000, "map_lbfgs_steps": 300}


@pytest.fixture(scope="session")
def heat_context(make_heat_case):
    """``heat_context(**inference)``: a ``MethodContext`` for the reduced heat case (MAP included),
    cached per settings so the method tests share the MAP fit."""
    from bpinn.api import method_context, prepare
    from bpinn.config import load_config

    cache = {}

    def build(**inference):
        settings = {**METHOD_TEST_INFERENCE, **inference}
        key = tuple(sorted(settings.items()))
        if key not in cache:
            case = make_heat_case("heat_context")
            config = load_config(case(inference=settings))
            model = prepare(config)
            target_key, init_key = jax.random.split(jax.random.key(config.inference.seed))
            cache[key] = method_context(model, config.inference, target_key, init_key)
        return cache[key]

    return build


@pytest.fixture(scope="session")
def heat_nuts_draws(heat_context):
    """Draws of the ``nuts`` method (output layer sampled, implied prior kept, key 1) on the
    reduced heat case, computed once for the tests that compare other samplers with it."""
    import dataclasses

    from bpinn.inference.methods import get_method

    ctx = heat_context()
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, output_layer="sampled", implicit_prior="ignored"))
    return get_method("nuts").run(jax.random.key(1), ctx)
