"""Optimizers, the warmup schedule and the classifier head, on small Keras models."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import REPLICAS
from tf_finetune.hyperparameters import resolve
from tf_finetune.training.classifier import WarmupLinearDecay, make_optimizer
from tf_finetune.training.distribute import create_strategy

EXPECTED = {
    "adam": ("Adam", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
    "adamw": ("AdamW", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
    "sgd": ("SGD", {"momentum": 0.5, "nesterov": False}),
    "nesterov": ("SGD", {"momentum": 0.5, "nesterov": True}),
    "rmsprop": ("RMSprop", {"rho": 0.7, "momentum": 0.5, "epsilon": 1e-6}),
    "adagrad": ("Adagrad", {"initial_accumulator_value": 0.2, "epsilon": 1e-6}),
    "adadelta": ("Adadelta", {"rho": 0.7, "epsilon": 1e-6}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_optimizer_gets_its_hyperparameters_and_trains(name):
    hp = resolve(
        {
            "optimizer": name,
            "learning_rate": "0.05",
            "beta_1": 0.8,
            "beta_2": 0.99,
            "epsilon": 1e-6,
            "momentum": 0.5,
            "rho": 0.7,
            "initial_accumulator_value": 0.2,
        }
    )
    optimizer = make_optimizer(hp, total_steps=10)
    class_name, values = EXPECTED[name]
    assert type(optimizer).__name__ == class_name
    config = optimizer.get_config()
    for key, value in values.items():
        assert config[key] == pytest.approx(value), key

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = tf_keras.utils.to_categorical((x[:, 0] > 0).astype(int), 2)
    model = tf_keras.Sequential([tf_keras.Input([4]), tf_keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sparse_gradients_without_rows_sum_across_replicas(name):
    # A text backbone's embedding gets a sparse gradient with a row per known word; a batch
    # without one gave every replica an empty share, and TensorFlow's all-gather of those
    # crashed the process (segmentation fault). The update must equal one device's, given
    # the dense sum of the replicas' gradients.
    hp = resolve({"optimizer": name, "learning_rate": "0.05"})
    strategy = create_strategy()  # a second MirroredStrategy in one process breaks collectives
    assert strategy.num_replicas_in_sync == REPLICAS
    with strategy.scope():
        distributed = tf.Variable(tf.ones([5, 3]))
        optimizer = make_optimizer(hp, total_steps=10)
        optimizer.build([distributed])

    @tf.function
    def sparse_step(rows):
        def on_replica():
            gradient = tf.IndexedSlices(tf.ones([tf.size(rows), 3]), rows, tf.constant([5, 3], tf.int64))
            optimizer.apply_gradients([(gradient, distributed)])

        strategy.run(on_replica)

    reference = tf.Variable(tf.ones([5, 3]))
    single = make_optimizer(hp, total_steps=10)
    single.build([reference])
    summed = np.zeros([5, 3])
    summed[1] = REPLICAS  # each replica's gradient has a row of ones for row 1
    for rows, dense in ((tf.constant([], tf.int64), np.zeros([5, 3])), (tf.constant([1], tf.int64), summed)):
        sparse_step(rows)
        single.apply_gradients([(tf.constant(dense, tf.float32), reference)])
        np.testing.assert_allclose(distributed.numpy(), reference.numpy(), rtol=1e-5)
    assert not np.allclose(distributed.numpy()[1], distributed.numpy()[0])


def test_warmup_rises_then_decays_to_zero():
    schedule = WarmupLinearDecay(peak=0.1, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 0.05, 0.1, 0.05, 0.0, 0.0])


def test_adamw_uses_the_warmup_fraction():
    optimizer = make_optimizer(resolve({"optimizer": "adamw", "warmup_steps_fraction": 0.25}), 100)
    schedule = (
        optimizer.learning_rate if isinstance(optimizer.learning_rate, WarmupLinearDecay) else optimizer._learning_rate
    )
    assert isinstance(schedule, WarmupLinearDecay)
    assert schedule.warmup_steps == 25 and schedule.total_steps == 100


def head_on_features(dim: int = 6, classes: int = 3, compile_steps: int | None = None, **hp_values):
    """The classification head alone, on feature vectors, with these hyperparameters."""
    from tf_finetune.training.classifier import apply_layers, compile_classifier, head_layers

    hp = resolve(dict(hp_values))
    features = tf_keras.Input([dim])
    model = tf_keras.Model(features, apply_layers(head_layers(classes, hp), features))
    if compile_steps:
        compile_classifier(model, hp, compile_steps)
    return model


FEATURES = np.random.default_rng(1).normal(size=(64, 6)).astype("float32")


def test_dropout_rate_drops_that_share_of_the_features_in_training_only():
    from tf_finetune.training.classifier import DROPOUT_LAYER

    ones = np.ones((200, 50), "float32")
    for rate in (0.0, 0.2, 0.5):
        dropout = head_on_features(dropout_rate=rate).get_layer(DROPOUT_LAYER)
        dropped = float(np.mean(dropout(ones, training=True).numpy() == 0))
        assert dropped == pytest.approx(rate, abs=0.02)
        np.testing.assert_array_equal(dropout(ones, training=False), ones)


def test_regularizers_l2_adds_its_factor_times_the_squared_kernel_to_the_loss():
    from tf_finetune.training.classifier import CLASSIFIER_LAYER, set_head_l2

    model = head_on_features(regularizers_l2=0.01)
    kernel = model.get_layer(CLASSIFIER_LAYER).kernel.numpy()
    assert float(sum(model.losses)) == pytest.approx(0.01 * float(np.sum(kernel**2)), rel=1e-5)
    set_head_l2(model, 0.5)  # chosen on cached features, before training
    assert float(sum(model.losses)) == pytest.approx(0.5 * float(np.sum(kernel**2)), rel=1e-5)
    assert float(sum(head_on_features(regularizers_l2=0.0).losses)) == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothing_mixes_the_targets_with_the_uniform_distribution(smoothing):
    model = head_on_features(compile_steps=10, label_smoothing=smoothing, regularizers_l2=0.0, dropout_rate=0.0)
    labels = np.eye(3, dtype="float32")[np.arange(64) % 3]
    probabilities = model.predict(FEATURES, verbose=0)
    targets = labels * (1 - smoothing) + smoothing / 3  # computed here, not by Keras
    expected = float(np.mean(-np.sum(targets * np.log(probabilities), axis=1)))
    assert model.evaluate(FEATURES, labels, verbose=0, batch_size=64)[0] == pytest.approx(expected, rel=1e-4)
