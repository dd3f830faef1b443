"""``bpinn.utils.configure_jax``: float64, and the on-disk compilation cache."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from bpinn.utils import (
    COMPILATION_CACHE_ENV,
    compilation_cache_dir,
    configure_jax,
    prune_compilation_cache,
)

# conftest points the variable at a directory of the session's own before anything compiles
SESSION_CACHE = os.environ[COMPILATION_CACHE_ENV]


@pytest.mark.parametrize("value", ["off", "OFF", "", "0", "no"])
def test_cache_can_be_switched_off(monkeypatch, value):
    monkeypatch.setenv(COMPILATION_CACHE_ENV, value)
    assert compilation_cache_dir() is None


def test_cache_directory_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(COMPILATION_CACHE_ENV, str(tmp_path / "xla"))
    assert compilation_cache_dir() == tmp_path / "xla"


def test_cache_directory_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(COMPILATION_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "bpinn" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compilation_cache_dir() == Path.home() / ".cache" / "bpinn" / "xla"


def test_the_session_compiles_into_its_own_cache():
    # conftest configured the cache after importing bpinn (and blackjax, which compiles at
    # import): a program compiled now must still land in the directory.
    assert jax.config.jax_enable_x64
    assert jax.config.jax_compilation_cache_dir == SESSION_CACHE
    before = set(Path(SESSION_CACHE).iterdir())
    offset = 1234.5678  # a constant of its own: a program no other test compiles

    @jax.jit
    def fresh(x):
        return jnp.sin(x) * 3.25 + offset

    fresh(jnp.arange(7.0)).block_until_ready()
    assert set(Path(SESSION_CACHE).iterdir()) - before


def test_a_directory_already_set_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv(COMPILATION_CACHE_ENV, str(tmp_path / "elsewhere"))
    configure_jax()
    assert jax.config.jax_compilation_cache_dir == SESSION_CACHE
    assert not (tmp_path / "elsewhere").exists()


def test_pruning_removes_the_oldest_files_beyond_the_bound(tmp_path):
    for age, name in enumerate(["newest", "middle", "oldest"]):
        file = tmp_path / name
        file.write_bytes(b"x" * 100)
        os.utime(file, (1e9 - age * 1000, 1e9 - age * 1000))
    prune_compilation_cache(tmp_path, 300)  # within the bound: nothing goes
    assert len(list(tmp_path.iterdir())) == 3
    prune_compilation_cache(tmp_path, 250)  # down to 3/4 of 250: the two oldest go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["newest"]
