"""Checkpoint and resume: interrupted loops continue to exactly the draws of an uninterrupted run.

The unit tests drive :func:`chunked_scan` with a random walk; the end-to-end tests kill a real
``bpinn run`` (SIGKILL, then Ctrl-C) in the middle of sampling and resume it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bpinn.api import run
from bpinn.checkpoint import CheckpointError, CheckpointStore, Stage
from bpinn.cli import EXIT_INTERRUPTED, main
from bpinn.inference.results import read_results
from bpinn.inference.target import chunked_scan, concat_outputs

LENGTH, CHUNK = 23, 5  # a short last chunk on purpose


def _walk(carry, key):
    position, total = carry
    step = jax.random.normal(key, position.shape)
    return (position + step, total + jnp.sum(step)), position


def _scan(keys):
    carry = (jnp.zeros(3), jnp.zeros(()))
    carry, outs, _ = chunked_scan(_walk, carry, keys, length=LENGTH, desc="walk",
                                  progress=False, chunk_size=CHUNK)
    return carry, concat_outputs(outs)


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


@pytest.fixture
def keys():
    return jax.random.split(jax.random.key(3), LENGTH)


def test_checkpointing_does_not_change_the_result(tmp_path, keys):
    plain = _scan(keys)
    store = CheckpointStore(tmp_path / "ck", {"run": 1})
    with store.active():
        saved = _scan(keys)
    _assert_same(plain, saved)
    meta = json.loads((tmp_path / "ck" / "stage-00.json").read_text())
    assert meta == {"desc": "walk", "length": LENGTH, "chunk": CHUNK, "done": LENGTH}
    assert len(list((tmp_path / "ck").glob("stage-00-chunk-*.npz"))) == 5


def test_resume_after_an_interruption_gives_the_same_draws(tmp_path, keys, monkeypatch):
    plain = _scan(keys)
    saves = []
    original = Stage.save

    def save_then_die(self, done, carry, output):
        original(self, done, carry, output)
        saves.append(done)
        if len(saves) == 2:
            raise KeyboardInterrupt  # as if Ctrl-C arrived during the third chunk

    monkeypatch.setattr(Stage, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt), CheckpointStore(tmp_path, {"run": 1}).active():
        _scan(keys)
    assert json.loads((tmp_path / "stage-00.json").read_text())["done"] == 2 * CHUNK
    monkeypatch.setattr(Stage, "save", original)

    with CheckpointStore(tmp_path, {"run": 1}).active():
        resumed = _scan(keys)
    _assert_same(plain, resumed)


def test_a_finished_stage_is_read_back_not_recomputed(tmp_path, keys, monkeypatch):
    with CheckpointStore(tmp_path, {"run": 1}).active():
        first = _scan(keys)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished stage was recomputed")

    monkeypatch.setattr(jax, "jit", must_not_run)
    with CheckpointStore(tmp_path, {"run": 1}).active():
        again = _scan(keys)
    _assert_same(first, again)


def test_a_checkpoint_of_another_run_is_refused(tmp_path, keys):
    with CheckpointStore(tmp_path, {"seed": 0, "data": "abc"}).active():
        _scan(keys)
    with pytest.raises(CheckpointError, match="differs in seed"):
        CheckpointStore(tmp_path, {"seed": 1, "data": "abc"})


def test_a_stage_of_another_shape_is_refused(tmp_path, keys):
    with CheckpointStore(tmp_path, {"run": 1}).active():
        _scan(keys)
    with CheckpointStore(tmp_path, {"run": 1}).active(), pytest.raises(
            CheckpointError, match="stage 0 was saved as"):
        chunked_scan(_walk, (jnp.zeros(3), jnp.zeros(())), keys[:10], length=10, desc="walk",
                     progress=False, chunk_size=CHUNK)
    with CheckpointStore(tmp_path, {"run": 1}).active(), pytest.raises(
            CheckpointError, match="expects"):
        chunked_scan(_walk, (jnp.zeros(4), jnp.zeros(())), keys, length=LENGTH, desc="walk",
                     progress=False, chunk_size=CHUNK)


def test_a_corrupt_checkpoint_file_is_a_clear_error(tmp_path, keys):
    with CheckpointStore(tmp_path, {"run": 1}).active():
        _scan(keys)
    (tmp_path / "stage-00.npz").write_bytes(b"not an npz")
    with CheckpointStore(tmp_path, {"run": 1}).active(), pytest.raises(
            CheckpointError, match="unreadable checkpoint file"):
        _scan(keys)


# ---- end to end: a real run killed in the middle of sampling ----------------------------------
KILL_INFERENCE = {"num_chains": 2, "num_warmup": 40, "num_samples": 400, "map_adam_steps": 300,
                  "map_lbfgs_steps": 20, "max_tree_depth": 6}
KILL_MODEL = {"width": 8, "num_collocation": 32}


# A shell that starts the test suite in the background makes its children ignore SIGINT; the run
# must see Ctrl-C as a terminal user's would, so the child restores Python's handler first.
_CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from bpinn.cli import main; sys.exit(main(sys.argv[1:]))")


def _start(config: Path, outdir: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-c", _CLI, "run", str(config), "-o", str(outdir), "--quiet",
            "--no-report", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_stage(proc, checkpoint: Path, desc: str, *, after: int = 0,
                    timeout: float = 300.0) -> dict:
    """Poll the checkpoint until stage ``desc`` has saved more than ``after`` steps but not all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before it could be interrupted: " \
                                    f"{proc.communicate()}"
        for path in checkpoint.glob("stage-*.json"):
            try:
                meta = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # replaced while being read
            if meta["desc"] == desc and after < meta["done"] < meta["length"]:
                return meta
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"stage {desc!r} never got past {after} steps within {timeout} s")


@pytest.fixture(scope="module")
def uninterrupted(make_heat_case):
    case = make_heat_case("checkpoint_kill")
    config = case(inference=KILL_INFERENCE, model=KILL_MODEL)
    return config, run(config).datatree  # no checkpoint at all


def test_interrupted_twice_then_resumed_gives_the_uninterrupted_draws(uninterrupted, tmp_path):
    config, reference = uninterrupted
    outdir, checkpoint = tmp_path / "out", tmp_path / "out" / "checkpoint"

    # Ctrl-C in the middle of sampling: a clear message and exit status, no traceback.
    proc = _start(config, outdir)
    first = _wait_for_stage(proc, checkpoint, "Sampling")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "--resume" in err and "Traceback" not in err
    # Without --resume the interrupted run is not silently overwritten.
    assert main(["run", str(config), "-o", str(outdir), "--quiet", "--no-report"]) == 2

    # Resumed, then killed outright (SIGKILL: no handler runs) further into sampling.
    proc = _start(config, outdir, "--resume")
    second = _wait_for_stage(proc, checkpoint, "Sampling", after=first["done"])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (outdir / "posterior.nc").exists()
    assert first["done"] < second["done"] < KILL_INFERENCE["num_samples"]

    code = main(["run", str(config), "-o", str(outdir), "--quiet", "--no-report", "--resume"])
    assert code == 0
    resumed = read_results(outdir)
    for group, name in [("posterior", "D"), ("posterior", "sigma"), ("sample_stats", "lp"),
                        ("sample_stats", "diverging"), ("posterior_predictive", "u_obs")]:
        a, b = resumed[group][name].values, reference[group][name].values
        assert a.tobytes() == b.tobytes(), f"{group}/{name} differs from the uninterrupted run"
    assert not checkpoint.exists()  # removed once the results are written


def test_resume_refuses_a_checkpoint_from_another_seed(uninterrupted, tmp_path, capsys):
    config, _ = uninterrupted
    outdir = tmp_path / "out"
    proc = _start(config, outdir)
    _wait_for_stage(proc, outdir / "checkpoint", "MAP (Adam)")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = sorted(p.name for p in (outdir / "checkpoint").iterdir())
    code = main(["run", str(config), "-o", str(outdir), "--quiet", "--resume", "--seed", "1"])
    assert code == 2
    assert "different run" in capsys.readouterr().err
    assert sorted(p.name for p in (outdir / "checkpoint").iterdir()) == before
