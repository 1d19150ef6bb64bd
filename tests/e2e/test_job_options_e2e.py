"""The end-to-end half of tests/unit/test_job_options.py: the tests that train a model or run a door."""

from __future__ import annotations

import json
import tarfile

from tf_finetune.cli import commands


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
