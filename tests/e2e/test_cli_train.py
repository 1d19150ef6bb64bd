"""``python -m tf_finetune train`` as a user runs it: real subprocesses, exit codes, messages."""

from __future__ import annotations

import json
import re
import tarfile

import pytest

from helpers import offline_environment, run_cli

EPOCH_LINE = re.compile(
    r"^epoch=(\d+)/(\d+) loss=\d+\.\d{4} accuracy=\d\.\d{4} "
    r"val_loss=\d+\.\d{4} val_accuracy=\d\.\d{4} time=[\d.]+s$",
    re.M,
)


def test_train_with_two_replicas_prints_metric_lines_and_writes_the_archive(text_module, text_data, tmp_path):
    out = tmp_path / "model-name"
    proc = run_cli(
        "train",
        "--handle",
        str(text_module),
        "--data",
        str(text_data),
        "--output",
        str(out),
        "--cpu-devices",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--learning_rate",
        "0.01",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert proc.returncode == 0, proc.stderr
    archive = out / "output" / "model.tar.gz"
    assert proc.stdout.strip() == str(archive)
    assert "replicas=2 batch_size=4 global_batch=8" in proc.stderr
    assert [m.group(1, 2) for m in EPOCH_LINE.finditer(proc.stderr)] == [("1", "2"), ("2", "2")]
    assert "\r" not in proc.stderr and "%|" not in proc.stderr  # a pipe gets no progress bars
    assert re.search(r"^final val_loss=\d+\.\d{4} val_accuracy=\d\.\d{4}$", proc.stderr, re.M)
    with tarfile.open(archive) as tar:
        assert {"1/saved_model.pb", "labels.json", "metrics.json", "code/inference.py"} <= set(tar.getnames())
        metrics = json.load(tar.extractfile("metrics.json"))
    reports = out / "output" / "reports"
    assert (reports / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (reports / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    evaluation = json.loads((reports / "evaluation.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(metrics["final"]["val_accuracy"], abs=1e-6)
    assert list((out / "output" / "tensorboard").rglob("events.out.tfevents.*"))
    record = json.loads((out / "output" / "training_job.json").read_text())  # JumpStart's training output
    assert record["training_job_name"] == "model-name" and record["status"] == "Completed"
    assert record["output_path"] == str(archive) and record["parent_model"] == str(text_module)
    assert record["training_job_arn"] is None and record["training_time_seconds"] >= 0
    assert re.search(r"^training output\n  parent model +\S+\n  training job name +model-name$", proc.stderr, re.M)


def test_bad_data_is_one_message_and_exit_1_with_nothing_written(text_module, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("0,fine\n1,also fine\nx,broken\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("train", "--handle", str(text_module), "--data", str(data), "--output", str(out))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert len(errors) == 1 and f"{data} line 3" in errors[0] and "'x'" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_offline_registry_model_is_one_clear_error(image_data, tmp_path):
    proc = run_cli(
        "train",
        "--model-id",
        "efficientnet-b0",
        "--data",
        str(image_data),
        "--output",
        str(tmp_path / "out"),
        env={"TFHUB_CACHE_DIR": str(tmp_path / "hub"), **offline_environment()},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("tf-finetune: error:")]
    assert "https://tfhub.dev/tensorflow/efficientnet/b0/feature-vector/1" in line
    assert "TFHUB_CACHE_DIR" in line and "--handle" in line
    assert not (tmp_path / "out").exists()


def test_a_backbone_is_required(text_data, tmp_path):
    proc = run_cli("train", "--data", str(text_data), "--output", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "tf-finetune: error: give a registry model id (--model-id) or a backbone handle (--handle)"
    )
