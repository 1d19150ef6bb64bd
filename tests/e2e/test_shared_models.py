"""Real pretrained backbones on real data from ../shared (skipped when it is absent).

Accuracy floors: MobileNetV2-0.35 ImageNet on ants/bees >= 0.80 (in-process, 4 CPU replicas,
global batch 32); wordllama words on SMS spam >= 0.95 (the command line, one replica, global
batch 128). Few epochs at a raised learning rate keep the suite short.
"""

from __future__ import annotations

import json

import pytest

from helpers import run_cli, run_main

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_mobilenet_on_ants_and_bees(shared, ants_bees_hub_run, tmp_path):
    data = shared / "data" / "hymenoptera"
    output, result = ants_bees_hub_run
    metrics = result.metrics
    print(
        f"\nants/bees val_accuracy={metrics['final']['val_accuracy']:.4f} "
        f"train_seconds={metrics['train_seconds']} total_seconds={metrics['total_seconds']}"
    )
    # A floor, not a target: over random_seed 1-6 this recipe scored 0.856-0.915 (mean 0.889)
    # and 0.837 at the default seed: the floor is for a broken model, not for seed noise.
    assert metrics["final"]["val_accuracy"] >= 0.80
    assert metrics["num_train_examples"] == 244  # 245 images; the GIF placeholder is not an image type
    assert metrics["num_validation_examples"] == 153

    # `evaluate` on the archive (raw JPEG bytes through the serving signature, as a deployed
    # endpoint gets them) reproduces the accuracy reported in training.
    proc = run_main(
        "evaluate", "--model", str(result.archive), "--data", str(data / "val"), "--output", str(tmp_path / "eval")
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    print(f"evaluate on hymenoptera/val: accuracy={report['accuracy']:.4f} macro_f1={report['macro_f1']:.4f}")
    assert report["num_examples"] == 153
    assert report["accuracy"] == pytest.approx(metrics["final"]["val_accuracy"], abs=1e-6)
    # and so does the report training wrote, example for example
    stored = json.loads((output / "output" / "reports" / "evaluation.json").read_text())
    assert stored["confusion_matrix"] == report["confusion_matrix"]
    # the gallery of mistakes: one tile per misclassified validation image (up to 36), in training and evaluate
    from PIL import Image

    from helpers import grid_shape

    wrong = sum(sum(row) for row in stored["confusion_matrix"]) - sum(
        row[i] for i, row in enumerate(stored["confusion_matrix"])
    )
    for gallery in (output / "output" / "reports" / "misclassified.png", tmp_path / "eval" / "misclassified.png"):
        with Image.open(gallery) as grid:
            grid.load()
            assert grid.size == grid_shape(min(wrong, 36))


def test_wordllama_on_sms_spam(shared, cache_dir, tmp_path):
    # One replica, as on a CPU host: the suite's logical CPUs make every step all-reduce the
    # 256-d gradients of the words in the batch 4 ways, 5x slower here than one device (2,400
    # rows, 3 epochs: 48 s against 9.6 s, same accuracy). The door is the one users call.
    proc = run_cli(
        "train",
        "--data",
        str(shared / "data" / "sms_spam" / "data.csv"),
        "--handle",
        str(shared / "models" / "wordllama_words256"),
        "--output",
        str(tmp_path / "out"),
        "--cpu-devices",
        "1",
        "--epochs",
        "3",
        "--batch-size",
        "128",
        "--learning-rate",
        "0.005",
        "--label-smoothing",
        "0.0",
        "--cache-dir",
        str(cache_dir),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(extract_member(tmp_path / "out" / "output" / "model.tar.gz", "metrics.json"))
    print(
        f"\nsms val_accuracy={metrics['final']['val_accuracy']:.4f} "
        f"train_seconds={metrics['train_seconds']} total_seconds={metrics['total_seconds']}"
    )
    assert metrics["replicas"] == 1 and metrics["global_batch_size"] == 128
    assert metrics["num_train_examples"] + metrics["num_validation_examples"] == 5574
    assert metrics["final"]["val_accuracy"] >= 0.95


def extract_member(archive, name: str) -> str:
    import tarfile

    with tarfile.open(archive) as tar:
        return tar.extractfile(name).read().decode("utf-8")
