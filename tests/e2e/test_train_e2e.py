"""The end-to-end half of tests/unit/test_train.py: the tests that train a model or run a door."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import REPLICAS
from tf_finetune.data.pipeline import inference_batches
from tf_finetune.hyperparameters import resolve
from tf_finetune.training.classifier import compile_classifier
from tf_finetune.training.distribute import create_strategy
from tf_finetune.training.fit_loop import BestEpoch, Tracking, fit, format_metrics
from tf_finetune.training.scoring import Scorer

RNG = np.random.default_rng(11)


TRAIN_X = RNG.normal(size=(8 * REPLICAS, 4)).astype("float32")


TRAIN_Y = (TRAIN_X[:, 0] > 0).astype(int)  # separable on the first feature


VAL_X = RNG.normal(size=(7, 4)).astype("float32")


SWAPPED_VAL_Y = tuple(int(v) for v in VAL_X[:, 0] <= 0)


GLOBAL_BATCH = 4 * REPLICAS


STEPS = len(TRAIN_X) // GLOBAL_BATCH  # one pass over the training data per epoch


@pytest.fixture(scope="module")
def strategy() -> tf.distribute.Strategy:
    return create_strategy()


def classifier(strategy, hp) -> tf_keras.Model:
    """A compiled Dense + softmax on 4 features, built under ``strategy``, with fixed start weights."""
    with strategy.scope():
        model = tf_keras.Sequential([tf_keras.Input([4]), tf_keras.layers.Dense(2, activation="softmax")])
        model.set_weights([np.full((4, 2), 0.1, "float32"), np.zeros(2, "float32")])
        compile_classifier(model, hp, STEPS * hp.epochs)
    return model


def training_stream(first_step: int = 0) -> tf.data.Dataset:
    """Endless full batches in a fixed order from step ``first_step`` (the job's stream shuffles;
    order is not under test here)."""
    onehot = np.eye(2, dtype="float32")[TRAIN_Y]
    batches = tf.data.Dataset.from_tensor_slices((TRAIN_X, onehot)).repeat().batch(GLOBAL_BATCH, drop_remainder=True)
    return batches.skip(first_step)


def swapped_validation(model, strategy) -> Scorer:
    table = tf.constant(VAL_X)
    batches = inference_batches(tf.range(len(VAL_X), dtype=tf.int64), "index", GLOBAL_BATCH)
    return Scorer(model, batches.map(lambda i: tf.gather(table, i)), SWAPPED_VAL_Y, strategy, label_smoothing=0.0)


class Lines(logging.Handler):
    """The messages of tf_finetune.training.fit_loop's log."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def kept_best_run(strategy, tmp_path_factory):
    """ONE fit of 3 epochs with validation, a BestEpoch and TensorBoard logs.

    Returns (model, scorer, keep_best, history, the epoch lines logged, the TensorBoard folder).
    """
    hp = resolve({"epochs": 3, "learning_rate": 0.5, "optimizer": "sgd"})
    model = classifier(strategy, hp)
    scorer = swapped_validation(model, strategy)
    keep_best = BestEpoch("loss")
    tensorboard = tmp_path_factory.mktemp("tensorboard")
    logger, lines = logging.getLogger("tf_finetune.training.fit_loop"), Lines()
    logger.addHandler(lines)
    saved_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        history = fit(
            model, training_stream, STEPS, scorer, hp, tracking=Tracking(str(tensorboard)), keep_best=keep_best
        )
    finally:
        logger.removeHandler(lines)
        logger.setLevel(saved_level)
    return model, scorer, keep_best, history, [m for m in lines.messages if m.startswith("epoch=")], tensorboard


@pytest.mark.e2e
def test_fit_returns_every_epochs_training_and_validation_metrics(kept_best_run):
    _, _, keep_best, history, _, _ = kept_best_run
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 3 for values in history.values())
    assert history["accuracy"][-1] == 1.0 and history["loss"][-1] < history["loss"][0]  # it trained
    assert keep_best.scores == {e + 1: pytest.approx(v) for e, v in enumerate(history["val_loss"])}


@pytest.mark.e2e
def test_fit_logs_one_line_per_epoch_with_the_validation_metrics_of_that_epoch(kept_best_run):
    _, _, _, history, lines, _ = kept_best_run
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        shown = format_metrics({name: values[epoch] for name, values in history.items()}).split()
        assert line.startswith(f"epoch={epoch + 1}/3 ") and sorted(line.split()[1:-1]) == sorted(shown)


@pytest.mark.e2e
def test_fit_with_keep_best_ends_with_the_best_epochs_model(kept_best_run):
    model, scorer, keep_best, history, _, _ = kept_best_run
    losses = history["val_loss"]
    assert keep_best.best_epoch == 1 and losses[0] < min(losses[1:])  # the swapped labels at work
    assert scorer.metrics()["loss"] == pytest.approx(losses[0], rel=1e-5)


@pytest.mark.e2e
def test_fit_writes_the_epoch_scalars_for_tensorboard(kept_best_run):
    *_, tensorboard = kept_best_run
    for folder, tag in (("train", "epoch_loss"), ("validation", "epoch_loss")):
        steps = [
            event.step
            for path in sorted((Path(tensorboard) / folder).glob("events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value
            if value.tag == tag
        ]
        assert steps == [0, 1, 2], folder


@pytest.mark.e2e
def test_fit_without_validation_weighs_each_examples_loss_by_its_class_weight(strategy):
    hp = resolve({"epochs": 2, "learning_rate": 1e-12, "optimizer": "sgd"})  # the weights stay (almost) as they start
    model = classifier(strategy, hp)
    probabilities = model.predict(TRAIN_X, verbose=0)
    history = fit(model, training_stream, STEPS, None, hp, class_weight={0: 0.0, 1: 3.0})
    assert set(history) == {"loss", "accuracy"}
    per_example = -np.log(probabilities[np.arange(len(TRAIN_Y)), TRAIN_Y])
    expected = float(np.mean(np.where(TRAIN_Y == 1, 3.0, 0.0) * per_example))
    assert history["loss"] == pytest.approx([expected, expected], rel=1e-5)


@pytest.mark.e2e
def test_early_stopping_stops_after_patience_epochs_without_improvement_and_restores_the_best(strategy):
    hp = resolve(
        {"epochs": 6, "learning_rate": 0.5, "optimizer": "sgd", "early_stopping": True, "early_stopping_patience": 2}
    )
    model = classifier(strategy, hp)
    scorer = swapped_validation(model, strategy)
    history = fit(model, training_stream, STEPS, scorer, hp)
    losses = history["val_loss"]
    assert len(losses) == 3 and losses[0] < min(losses[1:])  # epoch 1, then 2 without improvement
    assert scorer.metrics()["loss"] == pytest.approx(losses[0], rel=1e-5)
