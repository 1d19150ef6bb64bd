"""A run that fails at any stage (data, training, export, upload) leaves the previous good model
in place, byte for byte, and nothing half-written beside it."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import tarfile

import pytest

from flaky_proxy import FlakyProxy
from helpers import REPO, s3_environment
from tf_finetune.errors import DataError, StorageError, TrainingInterrupted
from tf_finetune.job_options import JobConfig
from tf_finetune.training import stopping
from tf_finetune.training.job import run

FAST = {"epochs": 2, "batch_size": 4, "learning_rate": 0.05}


@pytest.fixture(scope="module")
def previous(text_module, text_data, cache_dir, tmp_path_factory):
    """A first, successful run: (its output folder, the archive's bytes). The tests below keep it
    as it is, except the last, which replaces it after checking the kill left it alone."""
    out = tmp_path_factory.mktemp("previous") / "out"
    result = run(
        JobConfig(
            data=str(text_data),
            output=str(out),
            handle=str(text_module),
            hyperparameters=FAST,
            cache_dir=str(cache_dir),
        )
    )
    return out, result.archive.read_bytes()


def unchanged(out, archive_bytes) -> None:
    archive = out / "output" / "model.tar.gz"
    assert archive.read_bytes() == archive_bytes
    with tarfile.open(archive) as tar:
        assert "1/saved_model.pb" in tar.getnames()
    leftovers = [p.name for p in (out / "output").iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"half-written files left: {leftovers}"


def test_failing_in_data_keeps_the_previous_model(previous, text_module, cache_dir, tmp_path):
    out, archive_bytes = previous
    bad = tmp_path / "bad" / "data.csv"
    bad.parent.mkdir()
    bad.write_text("label,text\n0,a\n1,b\n")
    with pytest.raises(DataError, match="line 1"):
        run(
            JobConfig(
                data=str(bad), output=str(out), handle=str(text_module), hyperparameters=FAST, cache_dir=str(cache_dir)
            )
        )
    unchanged(out, archive_bytes)


def test_failing_in_training_keeps_the_previous_model(previous, text_module, text_data, cache_dir, tmp_path):
    out, archive_bytes = previous
    stopping.request_stop()  # what SIGTERM does: stop after the next step
    job = JobConfig(
        data=str(text_data),
        output=str(out),
        handle=str(text_module),
        hyperparameters=dict(FAST, learning_rate=0.01),
        cache_dir=str(cache_dir),
        checkpoint_dir=str(tmp_path / "checkpoints"),
    )
    with pytest.raises(TrainingInterrupted, match="epoch 1, step 1"):
        run(job)
    unchanged(out, archive_bytes)
    # The request ended with its job: the next job in this process (a notebook, a service)
    # resumes from the checkpoint and runs to the end instead of stopping at its first step.
    assert not stopping.stop_requested()
    resumed = run(dataclasses.replace(job, output=str(tmp_path / "second")))
    assert resumed.metrics["epochs_run"] == FAST["epochs"]


def test_failing_upload_keeps_the_previous_object(s3_server, s3, text_module, text_data, cache_dir, monkeypatch):
    s3.create_bucket(Bucket="models")
    key = "m/output/model.tar.gz"
    run(
        JobConfig(
            data=str(text_data),
            output="s3://models/m",
            handle=str(text_module),
            hyperparameters=FAST,
            cache_dir=str(cache_dir),
        )
    )
    before = s3.get_object(Bucket="models", Key=key)["Body"].read()

    def upload(request):
        return request.operation in ("PutObject", "UploadPart", "CreateMultipartUpload")

    with FlakyProxy(s3_server, errors=(500,), fail_when=upload) as proxy:
        for name, value in s3_environment(proxy.url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        with pytest.raises(StorageError, match=re.escape(f"s3://models/{key}")):
            run(
                JobConfig(
                    data=str(text_data),
                    output="s3://models/m",
                    handle=str(text_module),
                    hyperparameters=dict(FAST, learning_rate=0.01),
                    cache_dir=str(cache_dir),
                )
            )
        assert proxy.injected
    assert s3.get_object(Bucket="models", Key=key)["Body"].read() == before
    assert s3.list_multipart_uploads(Bucket="models").get("Uploads", []) == []


def test_killed_while_exporting_keeps_the_previous_model(previous, text_module, text_data, cache_dir):
    out, archive_bytes = previous
    # The weights digest is logged after training, just before the export starts.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tf_finetune",
            "train",
            "--handle",
            str(text_module),
            "--data",
            str(text_data),
            "--output",
            str(out),
            "--cache-dir",
            str(cache_dir),
            "--epochs",
            "1",
            "--learning-rate",
            "0.02",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    for line in proc.stderr:
        if re.search(r"weights_digest=", line):
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait(120) == -signal.SIGKILL, "the run ended before it could be killed in export"
    archive = out / "output" / "model.tar.gz"
    assert archive.read_bytes() == archive_bytes
    # A kill leaves its hidden staging folder; the next successful run to this output removes it.
    assert not [p for p in (out / "output").iterdir() if p.name.startswith(".") and p.is_file()]
    run(
        JobConfig(
            data=str(text_data),
            output=str(out),
            handle=str(text_module),
            hyperparameters=FAST,
            cache_dir=str(cache_dir),
        )
    )
    assert archive.read_bytes() != archive_bytes
    assert [p.name for p in (out / "output").iterdir() if p.name.startswith(".")] == []
