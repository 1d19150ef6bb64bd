"""The end-to-end half of tests/unit/test_job_options.py: the tests that train a model or run a door."""

from __future__ import annotations

import json
import tarfile

from tf_finetune.cli import commands

ALL_FLAGS = [
    "--model-id",
    "m",
    "--handle",
    "h",
    "--validation-data",
    "v",
    "--test-data",
    "t",
    "--no-feature-cache",
    "--image-size",
    "96",
    "--max-seq-length",
    "64",
    "--checkpoint-dir",
    "ck",
    "--checkpoint-steps",
    "5",
    "--fresh-start",
    "--feature-layer",
    "pool",
    "--pixel-range=-1,1",
    "--registry",
    "r.yaml",
    "--cache-dir",
    "c",
    "--epochs",
    "3",
    "--learning_rate",
    "0.1",
]


ALL_VALUES = dict(
    data="d",
    output="o",
    model_id="m",
    handle="h",
    validation_data="v",
    test_data="t",
    feature_cache=False,
    image_size=96,
    max_seq_length=64,
    checkpoint_dir="ck",
    checkpoint_steps=5,
    fresh_start=True,
    feature_layer="pool",
    pixel_range="-1,1",
    registry="r.yaml",
    cache_dir="c",
)


def test_train_scores_test_data_from_the_command_line(text_module, text_data, cache_dir, tmp_path):
    code = commands.main(
        [
            "train",
            "--data",
            str(text_data),
            "--test-data",
            str(text_data),
            "--handle",
            str(text_module),
            "--output",
            str(tmp_path / "out"),
            "--cache-dir",
            str(cache_dir),
            "--epochs",
            "1",
            "--batch-size",
            "4",
        ]
    )
    assert code == 0
    with tarfile.open(tmp_path / "out" / "output" / "model.tar.gz") as archive:
        metrics = json.loads(archive.extractfile("metrics.json").read())
    assert metrics["num_test_examples"] > 0 and "test_accuracy" in metrics["final"]
