"""Checkpoint and resume: real training processes stopped with SIGTERM and SIGKILL, then rerun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import tensorflow as tf

import tiny_modules
from helpers import REPO, extract

EPOCHS = 6


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    """Enough tiny images that an epoch takes a noticeable fraction of a second at batch 1."""
    return tiny_modules.write_image_folder(tmp_path_factory.mktemp("data") / "images", per_class=30)


class Training:
    """``python -m tf_finetune train`` in a subprocess whose log is read line by line."""

    def __init__(self, *args: str, signal_at: tuple[str, int] | None = None):
        """``signal_at``: (pattern, signal) to send the moment a line matching it is read."""
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONFAULTHANDLER="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tf_finetune", "train", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.lines: list[str] = []
        self._signal_at = signal_at
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            if self._signal_at and re.search(self._signal_at[0], line):
                self.proc.send_signal(self._signal_at[1])  # here, not in the test: an epoch is 0.6 s
                self._signal_at = None
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()

    def wait_for(self, pattern: str, timeout: float = 240) -> None:
        with self._seen:
            found = self._seen.wait_for(
                lambda: any(re.search(pattern, line) for line in self.lines) or self.proc.poll() is not None, timeout
            )
        assert found and any(re.search(pattern, line) for line in self.lines), self.log

    def finish(self, timeout: float = 240) -> int:
        """The exit code; a process still running after ``timeout`` is aborted, and the test
        fails with its log and every thread's stack (``PYTHONFAULTHANDLER`` prints them)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(30)
            self._reader.join(10)
            pytest.fail(f"still running {timeout:.0f} s later; its log and stacks:\n{self.log}")
        self._reader.join(10)
        return code

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def epochs_run(self) -> list[int]:
        return [int(m) for m in re.findall(rf"epoch=(\d+)/{EPOCHS} ", self.log)]

    def epochs_saved(self) -> list[int]:
        return [int(m) for m in re.findall(r"checkpoint saved: epoch (\d+)", self.log)]


def train_args(image_module, data, out, checkpoints, cache_dir, *extra: str) -> list[str]:
    return [
        "--handle",
        str(image_module),
        "--data",
        str(data),
        "--image-size",
        "16",
        "--output",
        str(out),
        "--checkpoint-dir",
        str(checkpoints),
        "--cache-dir",
        str(cache_dir),
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        "1",
        "--learning-rate",
        "0.01",
        "--random-seed",
        "7",
        "--train-only-top-layer",
        "false",
        *extra,
    ]


def check_model(out, tmp_path) -> dict:
    archive = out / "output" / "model.tar.gz"
    extract(archive, tmp_path / "model")
    serve = tf.saved_model.load(str(tmp_path / "model" / "1")).signatures["serving_images"]
    probabilities = serve(image=tf.zeros([2, 16, 16, 3]))["probabilities"].numpy()
    assert probabilities.shape == (2, 2)
    return json.loads((tmp_path / "model" / "metrics.json").read_text())


def test_sigkill_then_rerun_resumes_after_the_last_saved_epoch(image_module, many_images, cache_dir, tmp_path):
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    args = train_args(image_module, many_images, out, checkpoints, cache_dir)
    killed = Training(*args, signal_at=(r"checkpoint saved: epoch 2\b", signal.SIGKILL))
    assert killed.finish() == -signal.SIGKILL
    saved = max(killed.epochs_saved())
    assert saved < EPOCHS and not (out / "output" / "model.tar.gz").exists()

    # Another job must not pick up this checkpoint, nor destroy it.
    other = Training(*args[:-2], "--random-seed", "8")
    assert other.finish() == 1
    assert "holds a checkpoint of another job (hyperparameters.random_seed: 7 -> 8" in other.log
    assert "--fresh-start" in other.log and "Traceback" not in other.log
    assert (checkpoints / "job.json").is_file() and (checkpoints / "training_state").is_dir()

    resumed = Training(*args)
    assert resumed.finish() == 0, resumed.log
    assert f"saved at epoch {saved}, step" in resumed.log
    assert resumed.epochs_run() == list(range(saved + 1, EPOCHS + 1))
    metrics = check_model(out, tmp_path)
    assert metrics["epochs_run"] == EPOCHS
    assert len(metrics["history"]["loss"]) == len(metrics["history"]["val_loss"]) == EPOCHS
    assert list(checkpoints.iterdir()) == []  # done: nothing to resume


def test_ctrl_c_says_the_checkpoint_is_kept(image_module, many_images, cache_dir, tmp_path):
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    args = train_args(image_module, many_images, out, checkpoints, cache_dir)
    args[args.index("--epochs") + 1] = "1000"  # never done before the signal, however slow the machine
    stopped = Training(*args, signal_at=(r"checkpoint saved: epoch 1\b", signal.SIGINT))
    assert stopped.finish() == 130, stopped.log
    assert (
        f"tf-finetune: interrupted; the last checkpoint in {checkpoints} is kept: run the same command again to resume"
    ) in stopped.log
    assert "Traceback" not in stopped.log and (checkpoints / "job.json").is_file()
    # the epoch's line first, then its checkpoint
    assert stopped.log.index("epoch=1/") < stopped.log.index("checkpoint saved: epoch 1")


def test_sigterm_saves_mid_epoch_and_the_rerun_continues_from_that_step(image_module, many_images, cache_dir, tmp_path):
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    args = train_args(image_module, many_images, out, checkpoints, cache_dir, "--checkpoint-steps", "5")
    stopped = Training(*args, signal_at=(r"checkpoint saved: epoch 1\b", signal.SIGTERM))
    assert stopped.finish() == 143, stopped.log
    match = re.search(
        r"stopped on request \(SIGTERM\) at epoch (\d+), step (\d+); the checkpoint is in "
        + re.escape(str(checkpoints)),
        stopped.log,
    )
    assert match, stopped.log
    epoch, step = int(match.group(1)), int(match.group(2))
    assert "Traceback" not in stopped.log
    assert not (out / "output" / "model.tar.gz").exists(), "an interrupted run must not leave a model"

    resumed = Training(*args)
    assert resumed.finish() == 0, resumed.log
    assert f"saved at epoch {epoch}, step {step})" in resumed.log
    # The interrupted epoch is finished; a signal that comes while the epoch ends (its validation,
    # its save) stops the run after that save, and the rerun starts at the next epoch.
    steps = int(re.search(r"steps_per_epoch=(\d+)", stopped.log).group(1))
    assert resumed.epochs_run() == list(range(epoch + (step == steps), EPOCHS + 1))
    metrics = check_model(out, tmp_path)
    assert metrics["epochs_run"] == EPOCHS
    assert list(checkpoints.iterdir()) == []


def test_fresh_start_discards_another_jobs_checkpoint(image_module, image_data, cache_dir, tmp_path):
    from tf_finetune.errors import CheckpointError
    from tf_finetune.training.checkpoint import open_checkpoints

    folder = tmp_path / "checkpoints"
    first, resuming = open_checkpoints(folder, {"hyperparameters": {"epochs": 3}})
    assert not resuming
    first.record_epoch(0, {"loss": 0.5})
    (folder / "training_state").mkdir()
    again, resuming = open_checkpoints(folder, {"hyperparameters": {"epochs": 3}})
    assert resuming and again.history() == {"loss": [0.5]}
    with pytest.raises(CheckpointError, match=r"hyperparameters.epochs: 3 -> 4"):
        open_checkpoints(folder, {"hyperparameters": {"epochs": 4}})
    fresh, resuming = open_checkpoints(folder, {"hyperparameters": {"epochs": 4}}, fresh_start=True)
    assert not resuming and fresh.history() == {}
    assert sorted(p.name for p in folder.iterdir()) == ["job.json"]


def test_ctrl_c_without_a_checkpoint_folder_keeps_nothing_and_says_how_to_make_the_run_resumable(
    image_module, many_images, cache_dir, tmp_path
):
    (tmp_path / "runs").mkdir()
    out = tmp_path / "runs" / "out"
    args = train_args(image_module, many_images, out, tmp_path / "unused", cache_dir)
    del args[args.index("--checkpoint-dir") : args.index("--checkpoint-dir") + 2]
    args[args.index("--epochs") + 1] = "1000"  # never done before the signal, however slow the machine
    training = Training(*args)
    training.wait_for(r"epoch=1/")
    assert list((out / "output" / "tensorboard").rglob("events.out.tfevents.*")), "logs are being written"
    training.proc.send_signal(signal.SIGINT)
    assert training.finish() == 130, training.log
    messages = [line for line in training.log.splitlines() if line.startswith("tf-finetune:")]
    assert messages == [
        "tf-finetune: interrupted: nothing was kept (the model is written when training ends); "
        "to make the next run resumable, add --checkpoint-dir DIR (a checkpoint is saved at "
        "every epoch's end)"
    ], training.log
    assert "Traceback" not in training.log
    # Nothing written: the run's TensorBoard folder went, and with it the folders made for it.
    assert not out.exists() and (tmp_path / "runs").is_dir()


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_kept(tmp_path):
    from tf_finetune.cli import commands, parser
    from tf_finetune.training.checkpoint import open_checkpoints

    folder = tmp_path / "checkpoints"
    open_checkpoints(folder, {"hyperparameters": {"epochs": 3}})  # what a job writes before its first save
    args = parser.build_parser().parse_args(
        ["train", "--handle", "h", "--data", "d", "--output", "o", "--checkpoint-dir", str(folder)]
    )
    assert commands._interrupted(args) == (
        f"interrupted before the first checkpoint was saved in {folder}: nothing "
        "was kept; run the same command again to start over"
    )
