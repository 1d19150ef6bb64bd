"""Predicting and scoring during a job, with every example scored exactly once, in order.

Validation (every epoch and at the end), the test set, the training-time report and the
head-only feature cache all take their outputs from :func:`predict_in_order`, and metrics
come from those outputs paired with the labels by position. So the ``val_accuracy`` training
prints, the one it stores, the report's confusion matrix and ``tf-finetune evaluate`` on the
exported model count the same examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tf_finetune.progress import bars
from tf_finetune.training import distribute, eval_metrics


def predict_in_order(
    model: tf_keras.Model,
    batches: tf.data.Dataset,
    count: int,
    strategy: tf.distribute.Strategy,
    progress: str | None = None,
) -> np.ndarray:
    """The model's outputs for the first ``count`` inputs of ``batches``, in input order.

    Args:
        model: a model built under ``strategy``.
        batches: full batches from :func:`~tf_finetune.data.pipeline.inference_batches`
            (padded, so each replica gets a full share of every batch).
        count: how many inputs are real (the rest is padding).
        strategy: the job's strategy.
        progress: name the pass with this on a progress bar (on a terminal; one host), or
            None for no bar.

    Returns:
        ``[count, ...]`` outputs as float32.
    """
    if distribute.worker_count(strategy) > 1:
        # Across hosts, Keras would return only this worker's share of each batch. Every host
        # predicts on all of it instead (a forward pass has no collectives), so all hosts see
        # the same metrics and make the same early-stopping decision. In replica context:
        # a restored hub module refuses to run in cross-replica context.
        @tf.function
        def call(x: tf.Tensor) -> tf.Tensor:
            outputs = strategy.run(lambda x: model(x, training=False), args=(x,))
            return strategy.experimental_local_results(outputs)[0]

        outputs = np.concatenate([call(x).numpy() for x in batches])
    else:
        outputs = model.predict(batches, verbose=0, callbacks=bars(progress) if progress else None)
    return np.asarray(outputs[:count], dtype=np.float32)


def classification_metrics(
    probabilities: np.ndarray, labels: Sequence[int] | np.ndarray, label_smoothing: float, regularization: float = 0.0
) -> dict[str, float]:
    """``loss`` and ``accuracy`` as Keras computes them for the compiled classifier.

    Args:
        probabilities: ``[n, classes]`` softmax outputs.
        labels: the class index of each row.
        label_smoothing: as compiled into the loss.
        regularization: the model's regularization losses, added to the loss as Keras does.
    """
    labels = np.asarray(labels, dtype=np.int64)
    onehot = tf.one_hot(labels, probabilities.shape[1])
    losses = tf_keras.losses.categorical_crossentropy(onehot, probabilities, label_smoothing=label_smoothing)
    return {
        "loss": float(np.mean(losses.numpy())) + regularization,
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
    }


@dataclass
class Scorer:
    """Scores ``model`` on one labelled split (validation or test).

    Attributes:
        model: the classifier (or the head, on cached features).
        batches: the split's inputs from ``inference_batches``.
        labels: the class index of each input, in the same order.
        strategy: the job's strategy.
        label_smoothing: as compiled.
        extra: more metrics to report (of :mod:`tf_finetune.training.eval_metrics`: ``auc``, …).
    """

    model: tf_keras.Model
    batches: tf.data.Dataset
    labels: Sequence[int]
    strategy: tf.distribute.Strategy
    label_smoothing: float
    extra: tuple[str, ...] = ()

    def probabilities(self) -> np.ndarray:
        """Class probabilities, one row per example, in the split's order."""
        return predict_in_order(self.model, self.batches, len(self.labels), self.strategy)

    def metrics(self, probabilities: np.ndarray | None = None) -> dict[str, float]:
        """``loss``, ``accuracy`` and the ``extra`` metrics (of ``probabilities``, predicted
        now when not given)."""
        if probabilities is None:
            probabilities = self.probabilities()
        losses = self.model.losses
        regularization = float(tf.add_n(losses).numpy()) if losses else 0.0
        values = classification_metrics(probabilities, self.labels, self.label_smoothing, regularization)
        values.update({name: eval_metrics.score(name, probabilities, self.labels) for name in self.extra})
        return values


class ValidationCallback(tf_keras.callbacks.Callback):
    """Adds ``val_loss`` and ``val_accuracy`` to every epoch's logs, from :class:`Scorer`.

    It takes the place of ``fit(validation_data=…)``, whose last short batch would leave
    replicas empty. It must come first among the callbacks: the others (metric lines, early
    stopping, checkpoints, TensorBoard) read the same logs after it.
    """

    def __init__(self, scorer: Scorer) -> None:
        super().__init__()
        self.scorer = scorer

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update({"val_" + k: v for k, v in self.scorer.metrics().items()})
