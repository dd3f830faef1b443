"""Checkpoint and resume: every compiled loop saves its state after each chunk.

All of bpinn's long loops (MAP optimisation, warmup, sampling, SVI) run through
:func:`bpinn.inference.target.chunked_scan`. While a :class:`CheckpointStore` is active (``with
store.active(): ...``), each such loop is one *stage* of the run, numbered in the order the run
reaches them. After every chunk the stage's carry (sampler and adaptation state, optimiser state,
positions) and that chunk's outputs are written atomically (temporary file, fsync, rename). A
resumed run reaches the same stages in the same order: finished stages are read back instead of
computed, and an unfinished one continues from its last saved chunk. Random keys are split
before a loop starts and sliced per chunk, so the resumed draws are bit-for-bit the draws of an
uninterrupted run with the same seed.

Layout of ``OUTDIR/checkpoint/``:

- ``manifest.json``: the fingerprint of the run (config, seed, method, data hash, versions). A
  checkpoint is only resumed by the run that wrote it.
- ``stage-NN.npz`` and ``stage-NN.json``: the carry after the last saved chunk, and (readable)
  the stage's name, length, chunk size and number of steps done.
- ``stage-NN-chunk-MMMM.npz``: the outputs of chunk MMMM (draws, sampler statistics).

Nothing here is unpickled or evaluated: arrays are stored as plain ``.npz`` entries and put back
into the structure of the live loop, whose shapes and dtypes must match.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bpinn.utils import atomic_write_bytes

CHECKPOINT_DIRNAME = "checkpoint"
_MANIFEST = "manifest.json"

_active: contextvars.ContextVar[CheckpointStore | None] = contextvars.ContextVar(
    "bpinn_checkpoint", default=None
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; the message says why and what to do instead."""


def active_store() -> CheckpointStore | None:
    """The store the current run saves into, or None when checkpointing is off."""
    return _active.get()


@dataclass
class CheckpointStore:
    """Saves and restores the stages of one run in ``directory``.

    Parameters
    ----------
    directory : where the checkpoint files live (created on first save).
    fingerprint : JSON-able description of the run; a checkpoint written under a different
        fingerprint is refused rather than silently mixed into this run.

    Examples
    --------
    >>> # store = CheckpointStore(outdir / "checkpoint", fingerprint)   # doctest: +SKIP
    >>> # with store.active():                                         # doctest: +SKIP
    >>> #     result = run_the_loops()                                  # doctest: +SKIP
    """

    directory: Path
    fingerprint: dict
    _next_stage: int = field(default=0, init=False)

    def __post_init__(self):
        self.directory = Path(self.directory)
        self._check_manifest()

    # -- the run's identity -----------------------------------------------------------------
    def _check_manifest(self) -> None:
        manifest = self.directory / _MANIFEST
        if not manifest.is_file():
            return
        try:
            saved = json.loads(manifest.read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{manifest}: unreadable checkpoint manifest ({err}); "
                                  "start again with --overwrite") from None
        wanted = _canonical(self.fingerprint)
        differs = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        if differs:
            raise CheckpointError(
                f"{self.directory}: the checkpoint was written by a different run (it differs in "
                f"{', '.join(differs)}); resume with the same config, data, command-line options "
                "(seed, method, sample counts) and package version, or start again with "
                "--overwrite"
            )

    @property
    def has_checkpoint(self) -> bool:
        return (self.directory / _MANIFEST).is_file()

    @contextlib.contextmanager
    def active(self):
        """Make this the store that :func:`chunked_scan` saves into (stages count from 0)."""
        self._next_stage = 0
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def remove(self) -> None:
        """Delete the checkpoint (after the results it leads to are safely written)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- stages -----------------------------------------------------------------------------
    def stage(self, desc: str, length: int, chunk: int) -> Stage:
        """The next stage of the run: loops must ask in the same order on every resume."""
        index = self._next_stage
        self._next_stage += 1
        return Stage(self, index, desc, length, chunk)

    def _write_manifest(self) -> None:
        if not self.has_checkpoint:
            self.directory.mkdir(parents=True, exist_ok=True)
            text = json.dumps(_canonical(self.fingerprint), indent=2, sort_keys=True)
            atomic_write_bytes(self.directory / _MANIFEST, text.encode())


@dataclass
class Stage:
    """One chunked loop of a run: restore what was saved, save after each chunk."""

    store: CheckpointStore
    index: int
    desc: str
    length: int
    chunk: int

    @property
    def _stem(self) -> Path:
        return self.store.directory / f"stage-{self.index:02d}"

    def _chunk_path(self, number: int) -> Path:
        return self.store.directory / f"stage-{self.index:02d}-chunk-{number:04d}.npz"

    def restore(self, carry, output_like) -> tuple[int, Any, list]:
        """``(steps done, carry, outputs of the saved chunks)``; ``(0, carry, [])`` if none.

        ``carry`` is the live initial carry and ``output_like()`` returns a pytree with the
        structure of one chunk's outputs (leading axis: steps): saved arrays are put back into
        these structures. It is called only when there is something to restore.
        """
        meta_path = self._stem.with_suffix(".json")
        if not meta_path.is_file():
            return 0, carry, []
        meta = json.loads(meta_path.read_text())
        expected = {"desc": self.desc, "length": self.length, "chunk": self.chunk}
        if {k: meta.get(k) for k in expected} != expected:
            raise CheckpointError(
                f"{meta_path}: stage {self.index} was saved as {meta} but this run's stage is "
                f"{expected}; the checkpoint does not belong to this run, start again with "
                "--overwrite"
            )
        done = int(meta["done"])
        carry = _unflatten_like(carry, _load_npz(self._stem.with_suffix(".npz")), meta_path)
        outputs = []
        output_like = output_like() if done else None
        for i in range(_num_chunks(done, self.chunk)):
            steps = min(self.chunk, self.length - i * self.chunk)  # the last chunk is shorter
            like = jax.tree.map(
                lambda s, n=steps: jax.ShapeDtypeStruct((n, *s.shape[1:]), s.dtype), output_like)
            outputs.append(_unflatten_like(like, _load_npz(self._chunk_path(i)),
                                           self._chunk_path(i)))
        return done, carry, outputs

    def save(self, done: int, carry, output) -> None:
        """Save the carry after ``done`` steps and the outputs of the chunk that ended there.

        The chunk's outputs are written before the state that counts them, so a kill between
        the two writes leaves the previous, consistent state.
        """
        self.store._write_manifest()
        number = _num_chunks(done, self.chunk) - 1
        atomic_write_bytes(self._chunk_path(number), _npz_bytes(output))
        atomic_write_bytes(self._stem.with_suffix(".npz"), _npz_bytes(carry))
        meta = {"desc": self.desc, "length": self.length, "chunk": self.chunk, "done": done}
        atomic_write_bytes(self._stem.with_suffix(".json"), json.dumps(meta).encode())


def _num_chunks(done: int, chunk: int) -> int:
    return -(-done // chunk)


def _npz_bytes(tree) -> bytes:
    leaves = [np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
              for leaf in jax.tree.leaves(tree)]
    buffer = io.BytesIO()
    np.savez(buffer, **{f"leaf_{i:04d}": leaf for i, leaf in enumerate(leaves)})
    return buffer.getvalue()


def _load_npz(path: Path) -> list[np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return [data[f"leaf_{i:04d}"] for i in range(len(data.files))]
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint file ({err}); start again with "
                              "--overwrite") from None


def _unflatten_like(like, leaves: list[np.ndarray], where: Path):
    live, treedef = jax.tree.flatten(like)
    if len(live) != len(leaves):
        raise CheckpointError(f"{where}: holds {len(leaves)} arrays, this run's loop has "
                              f"{len(live)}; start again with --overwrite")
    restored = []
    for i, (ref, saved) in enumerate(zip(live, leaves, strict=True)):
        expected = jax.random.key_data(ref) if _is_key(ref) else ref
        if not hasattr(expected, "dtype"):  # a Python scalar in the carry
            expected = np.asarray(expected)
        if tuple(np.shape(expected)) != saved.shape or np.dtype(expected.dtype) != saved.dtype:
            raise CheckpointError(
                f"{where}: array {i} has shape {saved.shape} and dtype {saved.dtype}, this run "
                f"expects {tuple(np.shape(expected))} {expected.dtype}; start again with "
                "--overwrite")
        value = jnp.asarray(saved)
        if _is_key(ref):  # typed PRNG keys are stored as their raw bits
            value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(ref))
        restored.append(value)
    return jax.tree.unflatten(treedef, restored)


def _is_key(leaf) -> bool:
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _canonical(obj):
    """A JSON round trip, so a fingerprint compares equal to the one read back from disk."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))
