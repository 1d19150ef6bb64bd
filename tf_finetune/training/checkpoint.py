"""Checkpoints that let an interrupted job resume where it stopped.

The training state (model, optimizer, epoch and step) is saved at the end of every epoch, every
``steps`` steps when asked, and when SIGTERM arrives (SageMaker sends it before stopping a spot
instance). Beside it, ``job.json`` holds a fingerprint of what the job trains (data, backbone,
hyperparameters, global batch) and the metrics of the epochs done, so a restart only resumes
the same job and still reports the whole history.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tf_finetune import storage
from tf_finetune.errors import CheckpointError, TrainingInterrupted, writing
from tf_finetune.training.stopping import stop_requested

if TYPE_CHECKING:  # TensorFlow only where a checkpoint is saved or read
    import tf_keras

    from tf_finetune.data import Examples

log = logging.getLogger(__name__)

STATE_FILE = "job.json"
TRAINING_STATE_DIR = "training_state"
_NEVER = 2**62  # BackupAndRestore's step-count mode without periodic step saves
_KERAS_READ_DIR = "chief"  # where BackupAndRestore keeps the checkpoint that every worker restores


def fingerprint_examples(examples: Examples, root: str | None) -> str:
    """A digest of a data split: inputs (image paths relative to ``root``, or texts), labels
    and image file sizes, so a changed, added or removed example gives another digest."""
    digest = hashlib.sha256()
    for item, label in zip(examples.inputs, examples.labels):
        path = Path(item)
        if root and path.is_absolute() and path.is_file():
            item = f"{os.path.relpath(path, root)}:{path.stat().st_size}"
        digest.update(f"{label}\t{item}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoints:
    """A checkpoint folder bound to one job.

    Attributes:
        directory: the folder (``/opt/ml/checkpoints`` on SageMaker, ``--checkpoint-dir`` locally).
        job: what identifies the job (JSON-able; compared on resume).
        steps: also save every this many steps (0: at epoch ends only).
    """

    directory: Path
    job: Mapping[str, Any]
    steps: int = 0

    @property
    def training_state(self) -> Path:
        return self.directory / TRAINING_STATE_DIR

    def history(self) -> dict[str, list[float]]:
        """Metric name -> one value per completed epoch, across restarts."""
        state = _read_state(self.directory) or {}
        history: dict[str, list[float]] = {}
        for _, logs in sorted(state.get("epochs", {}).items(), key=lambda item: int(item[0])):
            for name, value in logs.items():
                history.setdefault(name, []).append(value)
        return history

    def record_epoch(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Keep epoch ``epoch``'s metrics in ``job.json`` (written atomically; an epoch run
        again after a restart replaces its earlier record)."""
        state = _read_state(self.directory) or {"job": dict(self.job), "epochs": {}}
        state.setdefault("epochs", {})[str(epoch)] = {k: float(v) for k, v in logs.items() if k != "lr"}
        _write_state(self.directory, state)

    def record_partial_epoch(self, epoch: int, step: int, sums: Mapping[str, list]) -> None:
        """Keep the training metrics' running sums of epoch ``epoch`` up to step ``step``
        (0-based; a save inside the epoch), so that a run resuming there reports the whole epoch."""
        state = _read_state(self.directory) or {"job": dict(self.job), "epochs": {}}
        state["partial_epoch"] = {"epoch": int(epoch), "step": int(step), "sums": dict(sums)}
        _write_state(self.directory, state)

    def partial_epoch(self, epoch: int, step: int) -> dict[str, list] | None:
        """The sums :meth:`record_partial_epoch` kept at ``epoch``, ``step``; None when none were
        kept there (a kill between the two saves leaves sums of another step)."""
        partial = (_read_state(self.directory) or {}).get("partial_epoch") or {}
        return partial.get("sums") if (partial.get("epoch"), partial.get("step")) == (epoch, step) else None

    def resume_step(self, steps_per_epoch: int) -> int:
        """The step, counted over the whole training, that a run resumed from this checkpoint
        continues at: the one after the last step saved (0 when no training state is saved)."""
        import tensorflow as tf

        saved = tf.train.latest_checkpoint(str(self.training_state / _KERAS_READ_DIR))
        if saved is None:
            return 0
        reader = tf.train.load_checkpoint(saved)
        epoch, step = (
            int(reader.get_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))
            for name in ("ckpt_saved_epoch", "ckpt_saved_batch")
        )
        return epoch * steps_per_epoch + step + 1 if epoch >= 0 else 0

    def clear(self) -> None:
        """Remove the checkpoint after the job's outputs are written (the job is done)."""
        for entry in self.directory.iterdir() if self.directory.is_dir() else ():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def open_checkpoints(
    directory: str | Path, job: Mapping[str, Any], steps: int = 0, fresh_start: bool = False
) -> tuple[Checkpoints, bool]:
    """Bind ``directory`` to ``job``, checking what is already there.

    Args:
        directory: the checkpoint folder; created when missing.
        job: what identifies the job (data digests, backbone, hyperparameters, global batch).
        steps: also save every this many steps.
        fresh_start: discard a checkpoint of another job instead of refusing to start.

    Returns:
        (the checkpoints, whether a checkpoint of this job is there to resume from).

    Raises:
        CheckpointError: the folder holds another job's checkpoint and ``fresh_start`` is off.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create the checkpoint folder {directory}: {exc.strerror}") from None
    checkpoints = Checkpoints(directory, json.loads(json.dumps(dict(job))), steps)
    if not any(directory.iterdir()):
        _write_state(directory, {"job": checkpoints.job, "epochs": {}})
        return checkpoints, False
    state = _read_state(directory)
    previous = state.get("job") if state else None
    if previous == checkpoints.job:
        return checkpoints, (directory / TRAINING_STATE_DIR).is_dir()
    differences = _differences(previous, checkpoints.job)
    if not fresh_start:
        raise CheckpointError(
            f"the checkpoint folder {directory} holds a checkpoint of another job ({differences}). "
            "Run with the same data, backbone and hyperparameters to resume it, use another "
            "checkpoint folder, or pass --fresh-start (SageMaker: fresh_start=True) to discard it"
        )
    log.warning("discarding the checkpoint in %s (%s): fresh start", directory, differences)
    checkpoints.clear()
    _write_state(directory, {"job": checkpoints.job, "epochs": {}})
    return checkpoints, False


def _differences(previous: Mapping | None, current: Mapping) -> str:
    if not isinstance(previous, Mapping):
        return f"no readable {STATE_FILE}"
    changed = []
    for key in sorted(set(previous) | set(current)):
        old, new = previous.get(key), current.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changed += [
                f"{key}.{k}: {old.get(k)!r} -> {new.get(k)!r}"
                for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)
            ]
        elif old != new:
            changed.append(f"{key}: {old!r} -> {new!r}")
    return "; ".join(changed[:6]) + ("; …" if len(changed) > 6 else "")


def _read_state(directory: Path) -> dict | None:
    try:
        return json.loads((directory / STATE_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _write_state(directory: Path, state: Mapping) -> None:
    storage.write_atomically(directory / STATE_FILE, (json.dumps(state, indent=1) + "\n").encode("utf-8"))


def make_callback(checkpoints: Checkpoints) -> tf_keras.callbacks.Callback:
    """A Keras callback that restores the training state at the start of ``fit`` (which then
    continues at the saved epoch and step) and saves it at every epoch end, every ``steps`` steps
    and on a stop request (then raises :class:`TrainingInterrupted`). The state: weights, optimizer
    (slots and step count, hence the learning-rate schedule's step), epoch and step, and inside an
    epoch the training metrics' running sums (added back after the resumed run's first step)."""
    import tf_keras

    class Checkpointer(tf_keras.callbacks.BackupAndRestore):
        def __init__(self) -> None:
            # Step-count mode (even without periodic step saves) so a save in the middle of an
            # epoch resumes at the next step rather than at the next epoch.
            super().__init__(
                str(checkpoints.training_state), save_freq=checkpoints.steps or _NEVER, delete_checkpoint=False
            )
            self._carried: dict[str, list] | None = None

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            super().on_train_begin(logs)
            epoch = int(self._training_state._ckpt_saved_epoch.numpy())
            step = int(self._training_state._ckpt_saved_batch.numpy())
            if epoch >= 0:
                _log_resume(checkpoints, epoch, step)
                if step + 1 < self.params["steps"]:  # inside the epoch: it continues
                    self._carried = checkpoints.partial_epoch(epoch, step)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            with _writing(checkpoints):
                checkpoints.record_epoch(epoch, logs or {})  # first: a kill in between reruns the epoch
            step = int(self._training_state._ckpt_saved_batch.numpy())
            self._backup(epoch=epoch, batch=step)
            log.info("checkpoint saved: epoch %d", epoch + 1)
            if stop_requested():  # asked during the epoch's last step or its validation
                raise _stopped(checkpoints, epoch, step)

        # Every save: epoch ends, every `steps`, on a stop request.
        def _backup(self, epoch: int, batch: int = 0) -> None:
            with _writing(checkpoints):
                if batch + 1 < self.params["steps"]:
                    checkpoints.record_partial_epoch(epoch, batch, _metric_sums(self.model))
                super()._backup(epoch, batch)

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if self._carried is not None:  # the metrics exist from the first step on
                _add_metric_sums(self.model, self._carried)
                self._carried = None
            super().on_train_batch_end(batch, logs)
            # At an epoch's last step, on_epoch_end stops after the epoch's validation and save
            # (stopping here would resume at the next epoch and never finish this one).
            if stop_requested() and batch + 1 < self.params["steps"]:
                self._backup(epoch=self._current_epoch, batch=batch)
                raise _stopped(checkpoints, self._current_epoch, batch)

    return Checkpointer()


def _log_resume(checkpoints: Checkpoints, epoch: int, step: int) -> None:
    """Say that training resumes from ``checkpoints``, saved at ``epoch`` and ``step`` (0-based)."""
    log.info(
        "resuming from the checkpoint in %s (saved at epoch %d, step %d)", checkpoints.directory, epoch + 1, step + 1
    )


def _writing(checkpoints: Checkpoints) -> AbstractContextManager[None]:
    """A full disk while saving to ``checkpoints`` becomes a DiskFullError that names the folder."""
    return writing(f"the checkpoint in {checkpoints.directory}", "--checkpoint-dir")


def _stopped(checkpoints: Checkpoints, epoch: int, step: int) -> TrainingInterrupted:
    return TrainingInterrupted(
        f"stopped on request (SIGTERM) at epoch {epoch + 1}, step {step + 1}; the checkpoint is in "
        f"{checkpoints.directory}: run the same job again to resume"
    )


def _metric_sums(model: tf_keras.Model) -> dict[str, list]:
    """The training metrics' state (running sums and counts): metric name -> per variable, the
    values of each replica's copy (JSON-able)."""
    local = model.distribute_strategy.experimental_local_results
    return {
        metric.name: [[np.asarray(copy).tolist() for copy in local(variable)] for variable in metric.variables]
        for metric in model.metrics
    }


def _add_metric_sums(model: tf_keras.Model, sums: Mapping[str, list]) -> None:
    """Add :func:`_metric_sums` kept before a resume to the metrics (each replica's copy to its own)."""
    local = model.distribute_strategy.experimental_local_results
    for metric in model.metrics:
        for variable, values in zip(metric.variables, sums.get(metric.name, [])):
            for copy, value in zip(local(variable), values):
                copy.assign_add(np.asarray(value, copy.dtype.as_numpy_dtype))
