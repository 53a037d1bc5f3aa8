"""Training checkpoints: everything ``fit`` needs to go on exactly where it stopped.

A checkpoint directory holds two files:

- ``checkpoint-<12 hex>.npz``: the arrays (``np.savez``; read back with ``allow_pickle=False``):
  ``net/<name>`` every array of ``network.arrays()`` (running statistics included),
  ``pre/<x_mean|x_scale|y_mean|y_scale>`` the preprocessing statistics, ``opt/<velocity|m|v>/
  <name>`` the optimizer's state, ``best/<name>`` the early-stopping snapshot, ``loop/order``
  the epoch's sample order and ``loop/sq_err`` a regression epoch's running squared error.
- ``checkpoint.json``: everything else (position, RNG states, running sums, history,
  early-stopping counters, Adam's step count), the spec's sha256, and the NPZ's name and sha256.

The NPZ is named after its own hash and the JSON is written last, each atomically: the JSON is
the commit marker, so a crash at any moment leaves the previous checkpoint or the new one, never
a mix. Nothing is pickled, so loading a checkpoint runs no code from it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt, ValidationError

from .. import atomic, untrusted
from .._version import __version__
from ..errors import NnspecError
from ..file_lock import lock_exclusive
from .optimizers import Adam
from .state import LoopState

if TYPE_CHECKING:
    from ..nn.network import Network
    from ..spec.models import Spec

JSON_NAME = "checkpoint.json"
FORMAT = "nnspec-checkpoint"
_NPZ_NAME = re.compile(r"^checkpoint-[0-9a-f]{12}\.npz$")


class CheckpointError(NnspecError):
    """A checkpoint that cannot be written, read, or used for this spec and network."""


# -- the JSON part ---------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Position(_Model):
    epoch: NonNegativeInt
    batch: NonNegativeInt
    batches_per_epoch: PositiveInt
    samples: PositiveInt
    order_drawn: bool


class _Meta(_Model):
    format: Literal["nnspec-checkpoint"]
    format_version: Literal[1]
    nnspec_version: str
    reason: Literal["interrupted", "periodic", "diverged"]
    spec_name: str
    spec_file: str | None
    spec_sha256: str
    npz: str
    npz_sha256: str
    position: _Position
    optimizer: Literal["sgd", "adam"]
    adam_t: NonNegativeInt | None
    shuffle_rng: dict[str, Any]
    layer_rngs: dict[str, dict[str, Any]]
    total_loss: float
    correct: NonNegativeInt
    seconds: float
    history: list[dict[str, float | int | None]]
    best_epoch: PositiveInt | None
    best_value: float | None
    has_best: bool
    waited: NonNegativeInt


@dataclass
class Checkpoint:
    """A loaded checkpoint: its validated JSON and its arrays (plain ndarrays, no objects)."""

    path: Path  # the checkpoint.json
    meta: _Meta
    arrays: dict[str, np.ndarray]

    @property
    def where(self) -> str:
        p = self.meta.position
        return f"epoch {p.epoch + 1}, batch {p.batch} (of {p.batches_per_epoch})"

    def check_spec(self, spec: Spec) -> None:
        """Refuse a checkpoint written for another spec text (its sha256 differs)."""
        if spec.source.sha256 != self.meta.spec_sha256:
            raise CheckpointError(
                f"{self.path}: written for another spec: expected the sha256 of "
                f"{spec.source.file or 'this spec'} ({spec.source.sha256[:12]}…), the checkpoint "
                f"has {self.meta.spec_sha256[:12]}… (spec {self.meta.spec_name!r}, file "
                f"{self.meta.spec_file}). Resume with the unchanged spec it was written for, or "
                "train afresh without --resume"
            )


def layer_rngs(network: Network) -> dict[str, np.random.Generator]:
    """Layers that draw random numbers while training keep their Generator as ``self.rng``;
    their states are part of the checkpoint, so a resumed run draws the same numbers."""
    return {la.name: la.rng for la in network.layers if getattr(la, "rng", None) is not None}


@dataclass(frozen=True)
class RunParts:
    """The live objects of one ``fit`` run that a checkpoint writes out and restores into.

    ``samples`` training samples in ``batches_per_epoch`` batches: a checkpoint only fits a
    run with the same split and batch size.
    """

    network: Network
    optimizer: Any
    shuffle_rng: np.random.Generator
    state: LoopState
    batches_per_epoch: int
    samples: int


# -- writing ---------------------------------------------------------------------------------
def write_checkpoint(directory: str | Path, run: RunParts, *, reason: str) -> Path:
    """Write the checkpoint of ``run``'s current state into ``directory``; returns the JSON's
    path.

    Only the latest checkpoint is kept: older NPZ files are removed once the JSON names the
    new one.
    """
    directory = Path(directory)
    network, optimizer, state = run.network, run.optimizer, run.state
    data = _npz_bytes(_gather_arrays(network, optimizer, state))
    digest = hashlib.sha256(data).hexdigest()
    npz_name = f"checkpoint-{digest[:12]}.npz"
    atomic.write_bytes(directory / npz_name, data)
    source = network.spec.source
    meta = _Meta(
        format=FORMAT,
        format_version=1,
        nnspec_version=__version__,
        reason=reason,
        spec_name=network.spec.name,
        spec_file=source.file,
        spec_sha256=source.sha256,
        npz=npz_name,
        npz_sha256=digest,
        position=_Position(
            epoch=state.epoch,
            batch=state.batch,
            batches_per_epoch=run.batches_per_epoch,
            samples=run.samples,
            order_drawn=state.order is not None,
        ),
        optimizer="adam" if isinstance(optimizer, Adam) else "sgd",
        adam_t=optimizer.t if isinstance(optimizer, Adam) else None,
        shuffle_rng=run.shuffle_rng.bit_generator.state,
        layer_rngs={k: g.bit_generator.state for k, g in layer_rngs(network).items()},
        total_loss=state.total_loss,
        correct=state.correct,
        seconds=state.seconds,
        history=state.history.epochs,
        best_epoch=state.history.best_epoch,
        best_value=state.best_value,
        has_best=state.best_arrays is not None,
        waited=state.waited,
    )
    # JSON floats round-trip exactly (shortest repr); NaN (an undefined R²) stays NaN.
    path = directory / JSON_NAME
    atomic.write_text(path, json.dumps(meta.model_dump(), indent=1) + "\n")
    for old in directory.glob("checkpoint-*.npz"):
        if old.name != npz_name and _NPZ_NAME.match(old.name):
            old.unlink(missing_ok=True)
    return path


def _gather_arrays(network: Network, optimizer, state: LoopState) -> dict[str, np.ndarray]:
    arrays = {f"net/{k}": v for k, v in network.arrays().items()}
    arrays.update({f"pre/{k}": v for k, v in network.statistics().items()})
    for table, values in _optimizer_tables(optimizer).items():
        arrays.update({f"opt/{table}/{k}": v for k, v in values.items()})
    if state.best_arrays is not None:
        arrays.update({f"best/{k}": v for k, v in state.best_arrays.items()})
    if state.order is not None:
        arrays["loop/order"] = state.order
    if state.sq_err is not None:
        arrays["loop/sq_err"] = state.sq_err
    return arrays


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


OWNER_NAME = ".owner"


class DirectoryOwner:
    """One training run's hold on a checkpoint directory: an exclusive lock (``file_lock``) on
    ``DIR/.owner``, which holds the run's PID. Two runs writing one directory would delete
    each other's checkpoints (each keeps only its latest NPZ), so a second run is refused,
    with the owner's PID. The lock goes with the process, killed or not."""

    def __init__(self, directory: Path):
        path = directory / OWNER_NAME
        try:
            f = open(path, "a+", encoding="ascii")  # noqa: SIM115  held for the run
        except OSError as e:
            raise CheckpointError(
                f"--checkpoint {directory}: cannot lock it: {e.strerror}"
            ) from None
        try:
            held = lock_exclusive(f.fileno(), wait=False)
        except OSError:
            held = False
        if not held:
            f.seek(0)
            pid = f.read(32).strip() or "unknown"
            f.close()
            raise CheckpointError(
                f"--checkpoint {directory}: in use by another training run (PID {pid}); two "
                "runs writing one directory would delete each other's checkpoints: wait for "
                "it to end, or give this run another directory"
            ) from None
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        self._file.close()


def prepare_checkpoint_directory(directory: str | Path) -> Path:
    """Create the checkpoint directory if needed (its parent must exist); fail before training
    when it cannot be written or another run owns it (``DirectoryOwner``)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"--checkpoint {directory}: expected a directory, got a file")
    try:
        directory.mkdir(exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"--checkpoint {directory}: cannot create it: {e.strerror}") from None
    atomic.check_writable(directory / JSON_NAME)
    DirectoryOwner(directory).release()  # refused now, before the data are read, not later
    return directory


# -- reading ---------------------------------------------------------------------------------
def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint from its directory or its ``checkpoint.json``, checking that the JSON
    is complete, names a well-formed NPZ beside it, and that the NPZ is the one it names."""
    path = Path(path)
    if path.is_dir():
        path = path / JSON_NAME
    elif path.name != JSON_NAME:
        raise CheckpointError(
            f"--resume {path}: expected a checkpoint directory or the {JSON_NAME} in it"
        )
    if not path.is_file():
        raise CheckpointError(
            f"--resume {path.parent}: no checkpoint there (expected {path}, written by "
            "nnspec train --checkpoint DIR)"
        )
    meta = _read_meta(path)
    if not _NPZ_NAME.match(meta.npz):
        # A hand-edited JSON must not send us reading other files (../../something).
        raise CheckpointError(f"{path}: npz: expected a name like checkpoint-<hex>.npz")
    npz = path.parent / meta.npz
    if not npz.exists():
        raise CheckpointError(
            f"{npz}: cannot read the checkpoint's arrays (No such file or directory); {path} "
            "needs it"
        )
    data = untrusted.read_bytes(
        npz, "checkpoint's arrays", CheckpointError, limit=untrusted.memory_limit()
    )
    if hashlib.sha256(data).hexdigest() != meta.npz_sha256:
        raise CheckpointError(
            f"{npz}: its sha256 differs from the one {path} records: the file is truncated "
            "or was changed after the checkpoint was written"
        )
    return Checkpoint(path, meta, _read_npz(npz, data))


MAX_JSON_BYTES = 2**28  # a million epochs of history is about 200 MB


def _read_meta(path: Path) -> _Meta:
    raw_bytes = untrusted.read_bytes(path, "checkpoint", CheckpointError, limit=MAX_JSON_BYTES)
    try:
        text = raw_bytes.decode("utf-8")
        # NaN stays allowed here: an undefined R² in the history is written as NaN.
        raw = json.loads(text)
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text; expected a checkpoint's JSON") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg}); the checkpoint is "
            "truncated or corrupt"
        ) from None
    except (RecursionError, ValueError):
        raw = None
    if raw is None or untrusted.nested_deeper_than(raw, untrusted.MAX_JSON_DEPTH):
        raise CheckpointError(
            f"{path}: JSON nested over {untrusted.MAX_JSON_DEPTH} levels deep (or numbers too "
            "long to read); not a checkpoint nnspec wrote"
        )
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nnspec checkpoint (expected format: {FORMAT})")
    try:
        return _Meta.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CheckpointError(
            f"{path}: {where}: {err['msg']} (got {err.get('input')!r:.60}); the checkpoint is "
            f"corrupt or from another version of nnspec (this is {__version__})"
        ) from None


# The names a checkpoint's arrays have (see the module docstring); any other entry is refused
# before anything is decompressed.
_ARRAY_NAME = re.compile(r"(net|best|pre|opt/(velocity|m|v)|loop)/[A-Za-z0-9_.\-]{1,200}")


def _read_npz(npz: Path, data: bytes) -> dict[str, np.ndarray]:
    """The arrays, through ``nnspec.untrusted``: entries checked by name and declared size
    before any is decompressed, headers before allocating, no pickle; all finite."""
    arrays = untrusted.read_npz(
        data, str(npz), CheckpointError, allowed=lambda key: _ARRAY_NAME.fullmatch(key)
    )
    for key, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise CheckpointError(f"{npz}: {key}: {a.dtype} values; expected plain numbers")
        untrusted.check_finite(a, f"{npz}: {key}", CheckpointError, float32=False)
    for key in ("pre/x_scale", "pre/y_scale"):
        if key in arrays and arrays[key].size and not (arrays[key] > 0).all():
            raise CheckpointError(f"{npz}: {key}: expected positive standard deviations")
    return arrays


# -- restoring -------------------------------------------------------------------------------
def restore(ckpt: Checkpoint, run: RunParts) -> None:
    """Put the checkpoint's state into a freshly built run (network, optimizer, shuffle RNG,
    loop state); arrays are copied in place, so references stay valid. Everything is checked
    before anything is changed."""
    network, optimizer, state, samples = run.network, run.optimizer, run.state, run.samples
    batches_per_epoch = run.batches_per_epoch
    meta, arrays = ckpt.meta, ckpt.arrays
    ckpt.check_spec(network.spec)
    _check_position(ckpt, batches_per_epoch, samples, network.spec.train.epochs)
    live = network.arrays()
    targets = {f"net/{k}": v for k, v in live.items()}
    if meta.has_best:
        targets.update({f"best/{k}": v for k, v in live.items()})
    kind = "adam" if isinstance(optimizer, Adam) else "sgd"
    if meta.optimizer != kind:
        raise CheckpointError(f"{ckpt.path}: optimizer: expected {kind}, got {meta.optimizer}")
    for table, values in _optimizer_tables(optimizer).items():
        targets.update({f"opt/{table}/{k}": v for k, v in values.items()})
    targets.update({f"pre/{k}": v for k, v in network.statistics().items()})
    _check_arrays(ckpt, targets, samples, network.task == "regression")
    rngs = layer_rngs(network)
    if set(meta.layer_rngs) != set(rngs):
        raise CheckpointError(
            f"{ckpt.path}: layer_rngs: expected the random layers {sorted(rngs)}, got "
            f"{sorted(meta.layer_rngs)}"
        )

    for key, live_array in targets.items():
        if not key.startswith(("best/", "pre/")):
            live_array[...] = arrays[key]
    for k in network.STATISTICS:
        setattr(network, k, arrays[f"pre/{k}"].copy())
    if meta.has_best:
        state.best_arrays = {k: arrays[f"best/{k}"].copy() for k in live}
    if kind == "adam":
        optimizer.t = meta.adam_t or 0
    _set_rng(ckpt, "shuffle_rng", run.shuffle_rng, meta.shuffle_rng)
    for name, g in rngs.items():
        _set_rng(ckpt, f"layer_rngs.{name}", g, meta.layer_rngs[name])
    _restore_loop(ckpt, state)


def _check_position(ckpt: Checkpoint, batches_per_epoch: int, samples: int, epochs: int):
    p = ckpt.meta.position
    if (p.samples, p.batches_per_epoch) != (samples, batches_per_epoch):
        raise CheckpointError(
            f"{ckpt.path}: position: written for {p.samples} training samples in "
            f"{p.batches_per_epoch} batches, this run has {samples} in {batches_per_epoch}: "
            "the data changed since the checkpoint was written"
        )
    if p.epoch >= epochs or p.batch > p.batches_per_epoch or (p.batch and not p.order_drawn):
        raise CheckpointError(
            f"{ckpt.path}: position: epoch {p.epoch + 1}, batch {p.batch} is not a place "
            f"where {epochs} epochs of {p.batches_per_epoch} batches can stop"
        )


def _check_arrays(ckpt: Checkpoint, targets: dict, samples: int, regression: bool) -> None:
    """Every expected array present with the live one's shape and dtype; no extra ones."""
    npz = ckpt.path.parent / ckpt.meta.npz
    expected = dict(targets)
    if ckpt.meta.position.order_drawn:
        # Running sums exist once an epoch has started: its order, and a regression's
        # (outputs,) squared error.
        expected["loop/order"] = np.empty(samples, dtype=np.int64)
        if regression:
            expected["loop/sq_err"] = np.empty(targets["pre/y_mean"].shape, dtype=np.float64)
    for key, live in expected.items():
        if key not in ckpt.arrays:
            raise CheckpointError(f"{npz}: missing the array {key!r} that this network needs")
        got = ckpt.arrays[key]
        if got.shape != live.shape or got.dtype != live.dtype:
            raise CheckpointError(
                f"{npz}: {key}: expected {live.dtype} of shape {live.shape}, got {got.dtype} of "
                f"shape {got.shape}: the checkpoint does not fit this network"
            )
    extra = sorted(set(ckpt.arrays) - set(expected))
    if extra:
        raise CheckpointError(f"{npz}: unexpected arrays {extra}; this network has no such state")
    order = ckpt.arrays.get("loop/order")
    if order is not None and not np.array_equal(np.sort(order), np.arange(samples)):
        raise CheckpointError(f"{npz}: loop/order: expected a permutation of 0..{samples - 1}")


def _optimizer_tables(optimizer) -> dict[str, dict[str, np.ndarray]]:
    """The optimizer's per-parameter arrays by table: SGD's velocity (empty without
    momentum), Adam's first and second moments."""
    if isinstance(optimizer, Adam):
        return {"m": optimizer.m, "v": optimizer.v}
    return {"velocity": optimizer.velocity}


def _set_rng(ckpt: Checkpoint, where: str, rng: np.random.Generator, value: dict) -> None:
    try:
        rng.bit_generator.state = value
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise CheckpointError(
            f"{ckpt.path}: {where}: not a usable generator state ({str(e)[:200]})"
        ) from None


def _restore_loop(ckpt: Checkpoint, state: LoopState) -> None:
    meta, p = ckpt.meta, ckpt.meta.position
    state.epoch, state.batch = p.epoch, p.batch
    state.order = ckpt.arrays["loop/order"].copy() if p.order_drawn else None
    state.total_loss, state.correct, state.seconds = meta.total_loss, meta.correct, meta.seconds
    sq = ckpt.arrays.get("loop/sq_err")
    state.sq_err = sq.copy() if sq is not None else None
    state.history.epochs = [dict(row) for row in meta.history]
    state.history.best_epoch = meta.best_epoch
    state.best_value, state.waited = meta.best_value, meta.waited
