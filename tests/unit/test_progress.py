"""Progress bars: drawn on a terminal (a real pseudo-terminal here) through each epoch and each
feature-extraction pass, cleared before the epoch's line; never in a pipe, a log or on SageMaker."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

from helpers import REPO


def test_bars_are_drawn_for_a_person_at_a_terminal_only(monkeypatch):
    from tf_finetune import progress

    for name in progress.SAGEMAKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    package = logging.getLogger("tf_finetune")
    level = package.level
    leader, follower = pty.openpty()
    try:
        with open(follower, "w") as terminal, open(leader, "rb"):
            monkeypatch.setattr(sys, "stderr", terminal)  # a real terminal
            package.setLevel(logging.INFO)
            assert progress.showing()
            package.setLevel(logging.WARNING)  # the program hides our INFO lines
            assert not progress.showing()
            package.setLevel(logging.INFO)
            monkeypatch.setenv("TRAINING_JOB_NAME", "job")  # a SageMaker training container
            assert not progress.showing()
        monkeypatch.delenv("TRAINING_JOB_NAME")
        monkeypatch.setattr(sys, "stderr", io.StringIO())  # a file or a pipe
        assert not progress.showing()
    finally:
        package.setLevel(level)


def _on_a_terminal(args: list[str], columns: int = 120) -> tuple[int, str]:
    """Run ``python -m tf_finetune ARGS`` with stdin, stdout and stderr on a pseudo-terminal of
    ``columns`` columns; returns its exit code and everything it wrote there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("TRAINING_JOB_NAME", "SM_TRAINING_ENV")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tf_finetune", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=dict(env, TF_CPP_MIN_LOG_LEVEL="2"),
        cwd=REPO,
    )
    os.close(follower)
    written = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 1.0)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            written += chunk
    os.close(leader)
    return proc.wait(timeout=30), written.decode("utf-8", "replace")


def test_a_terminal_shows_a_bar_through_each_epoch_and_extraction_pass_cleared_before_its_line(
    image_module, image_data, tmp_path
):
    code, written = _on_a_terminal(
        [
            "train",
            "--handle",
            str(image_module),
            "--image-size",
            "32",
            "--data",
            str(image_data),
            "--output",
            str(tmp_path / "out"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--cpu-devices",
            "1",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--train-only-top-layer",
            "True",
            "--choose-hyperparameters",
            "False",
        ]
    )
    assert code == 0, written
    # The bars: steps done of the pass, rate and time left.
    assert re.search(r"\rfeatures \(train\): +\d+%\|[^\r]*\| \d+/5 \[", written), written
    for epoch in (1, 2):
        assert re.search(rf"\repoch {epoch}/2: +\d+%\|[^\r]*\| \d/5 \[\d\d:\d\d<[^\r]*step/s\]", written), written
    # What stays on the screen (the text after each line's last carriage return): the lines a
    # pipe gets, every bar cleared, each epoch line whole.
    shown = [line.rsplit("\r", 1)[-1].rstrip() for line in written.split("\r\n")]
    assert not [line for line in shown if "%|" in line], written
    epochs = [line for line in shown if line.startswith("epoch")]
    assert len(epochs) == 2 and all(
        re.fullmatch(r"epoch=\d/2 loss=[\d.]+ accuracy=[\d.]+ val_loss=[\d.]+ val_accuracy=[\d.]+ time=[\d.]+s", line)
        for line in epochs
    ), epochs
