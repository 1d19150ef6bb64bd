"""The doors' logging: TensorFlow's native start-up lines stay off the terminal unless asked for,
whenever TensorFlow is first imported."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from tf_finetune import logs
if sys.argv[1] == "quiet":
    logs.hide_tensorflow_start_up()  # an import hook: TensorFlow is imported below, as anywhere
import tensorflow
print("imported", file=sys.stderr)
"""


def _stderr(mode: str) -> str:
    # A fresh process: the lines are printed once, when TensorFlow's libraries load.
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_the_quiet_import_hides_the_native_start_up_lines():
    loud, quiet = _stderr("plain"), _stderr("quiet")
    assert "imported" in quiet and quiet.strip().splitlines() == ["imported"]
    assert len(loud.strip().splitlines()) > 1  # the lines exist on this machine, or the test proves nothing
