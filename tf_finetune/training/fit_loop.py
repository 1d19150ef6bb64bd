"""Running ``fit``: per-epoch metric lines (and a bar through each epoch on a terminal), early
stopping, final validation metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
import tf_keras

from tf_finetune.hyperparameters import Hyperparameters
from tf_finetune.progress import bars
from tf_finetune.training import checkpoint, eval_metrics, stopping
from tf_finetune.training.scoring import Scorer, ValidationCallback

if TYPE_CHECKING:
    from tf_finetune.training.checkpoint import Checkpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tracking:
    """What a fit writes as it goes, besides the weights it trains: its TensorBoard logs (when
    ``tensorboard_dir`` is given) and its checkpoints, to resume from and save to (or None)."""

    tensorboard_dir: str | None = None
    checkpoints: Checkpoints | None = None


def format_metrics(values: dict[str, float]) -> str:
    """``name=value`` pairs with 4 decimals, the form hyperparameter-tuning regexes read."""
    return " ".join(f"{name}={float(value):.4f}" for name, value in values.items())


class EpochMetricsLogger(tf_keras.callbacks.Callback):
    """One line per epoch: ``epoch=2/5 loss=0.4321 accuracy=0.8750 val_loss=… val_accuracy=… time=3.2s``."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {k: v for k, v in (logs or {}).items() if k != "lr"}
        log.info(
            "epoch=%d/%d %s time=%.1fs",
            epoch + 1,
            self.epochs,
            format_metrics(values),
            time.perf_counter() - self._start,
        )


class BestEpoch(tf_keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best validation ``metric`` (``val_loss`` lowest,
    the others highest) and puts them back when training ends (the epochs were left to the
    tool: it trains them all and keeps the best).

    After a resume from a checkpoint it chooses among the epochs run since.

    Attributes:
        best_epoch: the epoch kept (1-based), or None before any validation.
        scores: epoch (1-based) -> its validation ``metric``, for every epoch seen.
    """

    def __init__(self, metric: str = "loss") -> None:
        super().__init__()
        self.metric = metric
        self.best_epoch: int | None = None
        self.scores: dict[int, float] = {}
        self._weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(f"val_{self.metric}")
        if value is None:
            return
        if self.best_epoch is None or eval_metrics.is_better(self.metric, value, self.scores[self.best_epoch]):
            self.best_epoch, self._weights = epoch + 1, self.model.get_weights()
        self.scores[epoch + 1] = float(value)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._weights is not None:
            self.model.set_weights(self._weights)


class DropoutSeeds(tf_keras.callbacks.Callback):
    """Seeds the model's dropout before every step from ``(seed, step)``, the step counted over
    the whole training: a step's masks do not depend on what ran before it in this process, so
    a run resumed from a checkpoint draws the masks the uninterrupted run drew.

    For dropout layers that draw from a ``tf.random.Generator`` (``rng_type="stateful"``, as
    :func:`~tf_finetune.training.classifier.head_layers` makes them); the others are left as they are.
    """

    _supports_tf_logs = True  # it reads no logs: Keras need not copy them to NumPy every step

    def __init__(self, seed: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.seed, self.steps_per_epoch = seed, steps_per_epoch
        self._generators: list[tf.random.Generator] = []
        self._epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # Keras keeps a layer's generator in this private attribute (None unless "stateful").
        self._generators = [
            layer._random_generator._generator
            for layer in self.model.layers
            if isinstance(layer, tf_keras.layers.Dropout)
            and getattr(layer._random_generator, "_generator", None) is not None
        ]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._epoch * self.steps_per_epoch + batch
        state = np.random.SeedSequence([self.seed, step]).generate_state(2, np.uint64)
        for generator in self._generators:
            generator.reset_from_seed(state)


class CtrlCGuard(tf_keras.callbacks.Callback):
    """Stops the training at the next step or epoch end after a Ctrl-C whose
    ``KeyboardInterrupt`` was lost (:func:`~tf_finetune.training.stopping.raise_if_interrupted`)."""

    _supports_tf_logs = True  # it reads no logs

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        stopping.raise_if_interrupted()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        stopping.raise_if_interrupted()


def fit(
    model: tf_keras.Model,
    batches: Callable[..., tf.data.Dataset],
    steps_per_epoch: int,
    validation: Scorer | None,
    hp: Hyperparameters,
    *,
    tracking: Tracking | None = None,
    class_weight: dict[int, float] | None = None,
    keep_best: BestEpoch | None = None,
) -> dict[str, list[float]]:
    """Train for ``hp.epochs`` (fewer with early stopping, which restores the best weights).

    A run resumed from its checkpoints continues exactly as the uninterrupted run would have:
    the checkpoint restores the weights, the optimizer (its slots and step count, which drives
    the learning-rate schedule) and the epoch and step reached; the batches start at that step
    (``batches``) and the dropout masks are drawn from the step (:class:`DropoutSeeds`).

    Args:
        model: a compiled classifier.
        batches: called with ``first_step=N``, the endless stream of full training batches
            from step N, counted over the whole training (``training_batches``).
        steps_per_epoch: batches per epoch.
        validation: scores the validation split at every epoch end, or None.
        hp: epochs and early-stopping settings.
        tracking: the TensorBoard logs (scalars per epoch) and the
            :class:`~tf_finetune.training.checkpoint.Checkpoints` to resume from and save to;
            None for neither.
        class_weight: class index -> weight of its examples in the loss, or None.
        keep_best: a :class:`BestEpoch` that keeps the best epoch's weights (needs validation).

    Returns:
        Keras history: metric name -> one value per epoch run (with checkpoints, including
        the epochs run before a resume).

    Raises:
        TrainingInterrupted: a stop was requested (SIGTERM); the checkpoint is saved.
    """
    tracking = tracking or Tracking()
    checkpoints = tracking.checkpoints
    callbacks = _callbacks(hp, steps_per_epoch, validation, tracking, keep_best)
    first_step = checkpoints.resume_step(steps_per_epoch) if checkpoints is not None else 0
    history = model.fit(
        batches(first_step=first_step),
        epochs=hp.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=0,
        class_weight=class_weight,
    )
    return checkpoints.history() if checkpoints is not None else history.history


def _callbacks(
    hp: Hyperparameters,
    steps_per_epoch: int,
    validation: Scorer | None,
    tracking: Tracking,
    keep_best: BestEpoch | None,
) -> list[tf_keras.callbacks.Callback]:
    """The callbacks of :func:`fit` (its arguments), in the order they run: the validation
    scores first (the others read its ``val_`` metrics), then the progress bars, the epoch
    lines, the dropout seeds, the Ctrl-C guard, the checkpoints, TensorBoard, the kept best epoch and early
    stopping."""
    tensorboard_dir, checkpoints = tracking.tensorboard_dir, tracking.checkpoints
    # On a terminal, a bar through each epoch, cleared before the epoch's line.
    callbacks = [*bars(), EpochMetricsLogger(hp.epochs)]
    callbacks += [DropoutSeeds(hp.random_seed, steps_per_epoch), CtrlCGuard()]
    if checkpoints is not None:
        # After the epoch line (so "checkpoint saved: epoch 3" follows "epoch=3/20"); its restore
        # at train begin still comes before any epoch runs.
        callbacks.append(checkpoint.make_callback(checkpoints))
    if validation is not None:
        callbacks.insert(0, ValidationCallback(validation))  # first: the others read its val_ metrics
    if tensorboard_dir:
        callbacks.append(
            tf_keras.callbacks.TensorBoard(str(tensorboard_dir), histogram_freq=0, write_graph=False, profile_batch=0)
        )
    if keep_best is not None:
        callbacks.append(keep_best)
    if hp.early_stopping:
        callbacks.append(
            tf_keras.callbacks.EarlyStopping(
                monitor=f"val_{hp.eval_metric}",
                mode=eval_metrics.mode(hp.eval_metric),
                patience=hp.early_stopping_patience,
                min_delta=hp.early_stopping_min_delta,
                restore_best_weights=True,
            )
        )
    return callbacks
