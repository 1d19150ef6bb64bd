"""Running ``fit`` (tf_finetune.training.fit_loop): the per-epoch metric lines, the kept best epoch, early
stopping, class weights and TensorBoard logs, on a Dense classifier over 4 features trained for
a few epochs under the suite's MirroredStrategy.

The tests that call ``fit`` train, so they are marked e2e, as conftest.py marks training tests.
Validation labels are the training labels swapped, so the better the model learns the training
data, the worse its validation loss: the best epoch is the first, and keeping it is visible.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import REPLICAS
from tf_finetune.hyperparameters import Hyperparameters
from tf_finetune.training import stopping
from tf_finetune.training.classifier import compile_classifier
from tf_finetune.training.distribute import create_strategy
from tf_finetune.training.fit_loop import BestEpoch, EpochMetricsLogger, fit, format_metrics

RNG = np.random.default_rng(11)
TRAIN_X = RNG.normal(size=(8 * REPLICAS, 4)).astype("float32")
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


def test_format_metrics_gives_name_value_pairs_with_four_decimals_in_the_given_order():
    values = {"loss": 0.123456, "accuracy": np.float32(0.875), "val_loss": 2, "val_auc": 1 / 3}
    text = format_metrics(values)
    pairs = re.findall(r"(\w+)=(-?\d+\.\d{4})(?:\s|$)", text)
    assert len(text.split()) == len(pairs) == len(values)
    assert [name for name, _ in pairs] == list(values)
    for name, shown in pairs:
        assert float(shown) == pytest.approx(float(values[name]), abs=5e-5)
    assert format_metrics({}) == ""


def test_epoch_line_counts_from_one_out_of_all_epochs_and_leaves_out_the_learning_rate(caplog):
    caplog.set_level(logging.INFO, logger="tf_finetune.training.fit_loop")
    logger = EpochMetricsLogger(epochs=5)
    logs = {"loss": 0.5, "accuracy": 0.25, "lr": 0.001}
    logger.on_epoch_begin(1)
    logger.on_epoch_end(1, logs)
    (line,) = caplog.messages
    assert re.fullmatch(r"epoch=2/5 (.*) time=\d+\.\ds", line).group(1) == format_metrics(
        {"loss": 0.5, "accuracy": 0.25}
    )
    assert logs["lr"] == 0.001  # the logs the other callbacks read are left alone


def weights_of(value: float) -> list[np.ndarray]:
    return [np.full((4, 2), value, "float32"), np.full(2, value, "float32")]


def run_epochs(callback: BestEpoch, scores: list[float | None], first_epoch: int = 0, metric: str = "loss"):
    """Call ``callback`` as fit would for epochs with these validation scores; the model's weights
    at epoch e (0-based) are all e + 1, so the weights put back tell which epoch was kept."""
    model = tf_keras.Sequential([tf_keras.Input([4]), tf_keras.layers.Dense(2)])
    callback.set_model(model)
    for epoch, score in enumerate(scores, start=first_epoch):
        model.set_weights(weights_of(epoch + 1))
        callback.on_epoch_end(epoch, {"loss": 9.0} if score is None else {"loss": 9.0, f"val_{metric}": score})
    callback.on_train_end()
    return model.get_weights()[0][0, 0]


def test_best_epoch_puts_back_the_weights_of_the_lowest_validation_loss():
    best = BestEpoch("loss")
    assert run_epochs(best, [0.9, 0.4, 0.6, 0.5]) == 2
    assert best.best_epoch == 2 and best.scores == {1: 0.9, 2: 0.4, 3: 0.6, 4: 0.5}


def test_best_epoch_keeps_the_highest_of_other_metrics_and_the_first_of_equals():
    best = BestEpoch("accuracy")
    assert run_epochs(best, [0.5, 0.75, 0.75, 0.25], metric="accuracy") == 2
    assert best.best_epoch == 2 and best.scores == {1: 0.5, 2: 0.75, 3: 0.75, 4: 0.25}


def test_best_epoch_without_validation_metrics_leaves_the_last_weights():
    best = BestEpoch("loss")
    assert run_epochs(best, [None, None]) == 2
    assert best.best_epoch is None and best.scores == {}


def test_best_epoch_after_a_resume_chooses_among_the_epochs_run_since():
    best = BestEpoch("loss")
    assert run_epochs(best, [0.7, 0.3, 0.8], first_epoch=4) == 6
    assert best.best_epoch == 6 and best.scores == {5: 0.7, 6: 0.3, 7: 0.8}


class SwallowsACtrlC(BestEpoch):
    """Presses Ctrl-C at the third step, in code that swallows the ``KeyboardInterrupt`` (as a
    finalizer or a library's broad ``except`` running at that moment would)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == 3:
            with contextlib.suppress(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)


def test_a_ctrl_c_whose_keyboard_interrupt_was_lost_still_stops_fit_at_the_next_step(strategy):
    hp = Hyperparameters(epochs=50, batch_size=4, learning_rate=0.01)
    model = classifier(strategy, hp)
    data = (
        tf.data.Dataset.from_tensor_slices((TRAIN_X, np.eye(2, dtype="float32")[np.arange(len(TRAIN_X)) % 2]))
        .repeat()
        .batch(GLOBAL_BATCH)
    )
    swallower = SwallowsACtrlC()
    previous = signal.getsignal(signal.SIGINT)
    stopping.install_ctrl_c_handler()  # what the command line does
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(model, lambda first_step: data, STEPS, None, hp, keep_best=swallower)
    finally:
        signal.signal(signal.SIGINT, previous)
        stopping.clear_stop_request()
    assert swallower.steps == 3  # not one step more
