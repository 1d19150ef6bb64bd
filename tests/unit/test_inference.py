"""Predicting and scoring during a job (tf_finetune.training.scoring): every example scored exactly once,
in order, padding dropped, and loss and accuracy as Keras computes them for the compiled classifier.

The models are a Dense layer on 4 features built under the suite's MirroredStrategy; the
expected outputs are computed here with numpy from the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from sklearn import metrics as sk

from helpers import REPLICAS
from tf_finetune.data.pipeline import inference_batches
from tf_finetune.hyperparameters import resolve
from tf_finetune.training.classifier import compile_classifier
from tf_finetune.training.distribute import create_strategy
from tf_finetune.training.scoring import Scorer, ValidationCallback, classification_metrics, predict_in_order

RNG = np.random.default_rng(7)
FEATURES = RNG.normal(size=(11, 4)).astype("float32")  # 11: not a multiple of any global batch here
LABELS = (0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0)
GLOBAL_BATCH = 2 * REPLICAS  # 11 examples -> several batches, the last one padded


@pytest.fixture(scope="module")
def strategy() -> tf.distribute.Strategy:
    return create_strategy()


def dense_model(strategy, classes: int = 2, l2: float = 0.0, dtype: str = "float32") -> tf_keras.Model:
    """Dense + softmax on 4 features, built under ``strategy``, with seeded weights."""
    with strategy.scope():
        regularizer = tf_keras.regularizers.L2(l2) if l2 else None
        model = tf_keras.Sequential(
            [
                tf_keras.Input([4], dtype=dtype),
                tf_keras.layers.Dense(classes, activation="softmax", dtype=dtype, kernel_regularizer=regularizer),
            ]
        )
    rng = np.random.default_rng(classes)
    model.set_weights([rng.normal(size=(4, classes)), rng.normal(size=classes)])
    return model


def numpy_probabilities(model: tf_keras.Model, features: np.ndarray) -> np.ndarray:
    kernel, bias = model.get_weights()
    logits = features.astype("float64") @ kernel + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def feature_batches(features: np.ndarray, batch: int) -> tf.data.Dataset:
    """The features in order as full batches, padded as the job pads them (by example index)."""
    table = tf.constant(features)
    indices = tf.range(len(features), dtype=tf.int64)
    return inference_batches(indices, "index", batch).map(lambda i: tf.gather(table, i))


def numpy_cross_entropy(probabilities: np.ndarray, labels, smoothing: float) -> float:
    classes = probabilities.shape[1]
    targets = np.eye(classes)[list(labels)] * (1 - smoothing) + smoothing / classes
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)  # Keras's epsilon
    return float(np.mean(-np.sum(targets * np.log(clipped), axis=1)))


@pytest.mark.parametrize("count", [11, 8, 1])
def test_predict_in_order_gives_one_row_per_input_in_input_order_without_the_padding(strategy, count):
    model = dense_model(strategy, classes=3)
    features = FEATURES[:count]
    outputs = predict_in_order(model, feature_batches(features, GLOBAL_BATCH), count, strategy)
    assert outputs.shape == (count, 3) and outputs.dtype == np.float32
    np.testing.assert_allclose(outputs, numpy_probabilities(model, features), atol=1e-6)


def test_predict_in_order_returns_float32_whatever_the_model_computes_in(strategy):
    model = dense_model(strategy, dtype="float64")
    outputs = predict_in_order(model, feature_batches(FEATURES.astype("float64"), GLOBAL_BATCH), 11, strategy)
    assert outputs.dtype == np.float32
    np.testing.assert_allclose(outputs, numpy_probabilities(model, FEATURES), atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_classification_metrics_are_what_keras_evaluates_for_the_compiled_classifier(smoothing):
    # Outside the strategy: evaluate on one device is the reference, regularization included.
    hp = resolve({"label_smoothing": smoothing})
    model = tf_keras.Sequential(
        [
            tf_keras.Input([4]),
            tf_keras.layers.Dense(3, activation="softmax", kernel_regularizer=tf_keras.regularizers.L2(0.05)),
        ]
    )
    compile_classifier(model, hp, total_steps=10)
    labels = [i % 3 for i in range(len(FEATURES))]
    keras_loss, keras_accuracy = model.evaluate(FEATURES, np.eye(3)[labels], batch_size=len(FEATURES), verbose=0)
    regularization = float(tf.add_n(model.losses))
    assert regularization > 0.01
    values = classification_metrics(model.predict(FEATURES, verbose=0), labels, smoothing, regularization)
    assert values == {"loss": pytest.approx(keras_loss, rel=1e-5), "accuracy": pytest.approx(keras_accuracy)}


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_classification_metrics_smooth_the_targets_and_add_the_regularization(smoothing):
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25]], "float32")
    labels = (0, 2, 0, 1)
    values = classification_metrics(probabilities, labels, smoothing, regularization=0.25)
    assert values["loss"] == pytest.approx(numpy_cross_entropy(probabilities, labels, smoothing) + 0.25, rel=1e-5)
    assert values["accuracy"] == pytest.approx(2 / 4)  # rows 0 and 1 right, 2 and 3 wrong


def test_scorer_probabilities_are_one_row_per_label_in_the_splits_order(strategy):
    model = dense_model(strategy)
    scorer = Scorer(model, feature_batches(FEATURES, GLOBAL_BATCH), LABELS, strategy, label_smoothing=0.0)
    np.testing.assert_allclose(scorer.probabilities(), numpy_probabilities(model, FEATURES), atol=1e-6)


def test_scorer_metrics_add_the_models_regularization_and_the_extra_metrics(strategy):
    model = dense_model(strategy, l2=0.1)
    scorer = Scorer(
        model, feature_batches(FEATURES, GLOBAL_BATCH), LABELS, strategy, label_smoothing=0.1, extra=("auc", "recall")
    )
    expected = numpy_probabilities(model, FEATURES)
    l2 = 0.1 * float(np.sum(model.get_weights()[0] ** 2))
    predicted = expected.argmax(axis=1)
    values = scorer.metrics()
    assert set(values) == {"loss", "accuracy", "auc", "recall"}
    assert values["loss"] == pytest.approx(numpy_cross_entropy(expected, LABELS, 0.1) + l2, rel=1e-5)
    assert values["accuracy"] == pytest.approx(np.mean(predicted == np.array(LABELS)))
    assert values["auc"] == pytest.approx(sk.roc_auc_score(LABELS, expected[:, 1]), abs=1e-6)
    assert values["recall"] == pytest.approx(sk.recall_score(LABELS, predicted))


def test_scorer_metrics_of_given_probabilities_score_those_and_not_a_new_prediction(strategy):
    model = dense_model(strategy)
    scorer = Scorer(model, feature_batches(FEATURES, GLOBAL_BATCH), LABELS, strategy, label_smoothing=0.0)
    own = scorer.metrics()
    assert own["accuracy"] < 1.0
    perfect = np.eye(2, dtype="float32")[list(LABELS)]
    assert scorer.metrics(perfect) == {"loss": pytest.approx(-np.log(1 - 1e-7), abs=1e-6), "accuracy": 1.0}


def test_validation_callback_adds_each_metric_with_val_prefix_and_keeps_the_training_ones(strategy):
    model = dense_model(strategy)
    scorer = Scorer(
        model, feature_batches(FEATURES, GLOBAL_BATCH), LABELS, strategy, label_smoothing=0.0, extra=("precision",)
    )
    callback = ValidationCallback(scorer)
    logs = {"loss": 0.5, "accuracy": 0.75}
    callback.on_epoch_end(0, logs)
    expected = scorer.metrics()
    assert logs == {"loss": 0.5, "accuracy": 0.75, **{"val_" + k: pytest.approx(v) for k, v in expected.items()}}
    callback.on_epoch_end(1, None)  # Keras may pass no logs: nothing to add to, no error
