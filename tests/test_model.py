"""Optimizers, the warmup schedule and the classifier head, on small Keras models."""
from __future__ import annotations

import numpy as np
import pytest
import tf_keras

from tf_finetune.hyperparameters import resolve
from tf_finetune.model import WarmupLinearDecay, make_optimizer

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
    hp = resolve({"optimizer": name, "learning_rate": "0.05", "beta_1": 0.8, "beta_2": 0.99,
                  "epsilon": 1e-6, "momentum": 0.5, "rho": 0.7, "initial_accumulator_value": 0.2})
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


def test_warmup_rises_then_decays_to_zero():
    schedule = WarmupLinearDecay(peak=0.1, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 0.05, 0.1, 0.05, 0.0, 0.0])


def test_adamw_uses_the_warmup_fraction():
    optimizer = make_optimizer(resolve({"optimizer": "adamw", "warmup_steps_fraction": 0.25}), 100)
    schedule = optimizer.learning_rate if isinstance(optimizer.learning_rate, WarmupLinearDecay) \
        else optimizer._learning_rate
    assert isinstance(schedule, WarmupLinearDecay)
    assert schedule.warmup_steps == 25 and schedule.total_steps == 100
