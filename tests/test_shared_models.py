"""Real pretrained backbones on real data from ../shared (skipped when it is absent).

Accuracy targets: MobileNetV2-0.35 ImageNet on ants/bees >= 0.85; wordllama words on SMS
spam >= 0.95. Both run in-process with 4 CPU replicas (global batch 32 and 128), few epochs at a
raised learning rate to keep the suite short.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from helpers import REPLICAS, decode_images, extract
from tf_finetune.job import JobConfig, run

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_mobilenet_on_ants_and_bees(shared, cache_dir, tmp_path):
    data = shared / "data" / "hymenoptera"
    result = run(JobConfig(
        data=str(data / "train"), validation_data=str(data / "val"), output=str(tmp_path),
        handle=str(shared / "models" / "mobilenet_v2_035_imagenet"), image_size=160,
        hyperparameters={"train_only_top_layer": True, "epochs": 5, "learning_rate": 0.003,
                         "batch_size": 32 // REPLICAS},
        cache_dir=str(cache_dir)))
    metrics = result.metrics
    print(f"\nants/bees val_accuracy={metrics['final']['val_accuracy']:.4f} "
          f"train_seconds={metrics['train_seconds']} total_seconds={metrics['total_seconds']}")
    assert metrics["final"]["val_accuracy"] >= 0.85
    assert metrics["num_train_examples"] == 244  # 245 images; the GIF placeholder is not an image type
    assert metrics["num_validation_examples"] == 153

    # The exported model, reloaded with plain TensorFlow, reproduces the reported accuracy.
    extract(result.archive, tmp_path / "x")
    labels = json.loads((tmp_path / "x" / "labels.json").read_text())["class_names"]
    serve = tf.saved_model.load(str(tmp_path / "x" / "1")).signatures["serving_default"]
    correct = total = 0
    for index, name in enumerate(labels):
        paths = sorted((data / "val" / name).iterdir())
        probabilities = next(iter(serve(image=decode_images(paths, 160)).values())).numpy()
        correct += int(np.sum(probabilities.argmax(axis=1) == index))
        total += len(paths)
    assert correct / total == pytest.approx(metrics["final"]["val_accuracy"], abs=1e-6)


def test_wordllama_on_sms_spam(shared, cache_dir, tmp_path):
    result = run(JobConfig(
        data=str(shared / "data" / "sms_spam" / "data.csv"), output=None,
        handle=str(shared / "models" / "wordllama_words256"),
        hyperparameters={"epochs": 3, "batch_size": 128 // REPLICAS, "learning_rate": 0.005,
                         "label_smoothing": 0.0},
        cache_dir=str(cache_dir)))
    metrics = result.metrics
    print(f"\nsms val_accuracy={metrics['final']['val_accuracy']:.4f} "
          f"train_seconds={metrics['train_seconds']} total_seconds={metrics['total_seconds']}")
    assert metrics["num_train_examples"] + metrics["num_validation_examples"] == 5574
    assert metrics["final"]["val_accuracy"] >= 0.95
