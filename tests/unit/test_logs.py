"""The doors' logging: TensorFlow's native start-up lines stay off the terminal unless asked for,
whenever TensorFlow is first imported; the library door shows its lines once."""

from __future__ import annotations

import contextlib
import io
import logging
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
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_the_quiet_import_hides_the_native_start_up_lines():
    loud, quiet = _stderr("plain"), _stderr("quiet")
    assert "imported" in quiet and quiet.strip().splitlines() == ["imported"]
    assert len(loud.strip().splitlines()) > 1  # the lines exist on this machine, or the test proves nothing


def test_the_users_keras_choice_wins():
    from tf_finetune import startup

    chosen, unset = {"TF_USE_LEGACY_KERAS": "0"}, {}
    startup.prepare_tensorflow(chosen, quiet=False)
    startup.prepare_tensorflow(unset, quiet=False)
    assert (chosen, unset) == ({"TF_USE_LEGACY_KERAS": "0"}, {"TF_USE_LEGACY_KERAS": "1"})


@contextlib.contextmanager
def _no_logging_configured():
    """The logging of a program that configured none (pytest's own handlers set aside: they are
    added for each test's call, after its fixtures)."""
    root, package = logging.getLogger(), logging.getLogger("tf_finetune")
    saved = root.handlers[:], package.handlers[:], package.level
    root.handlers.clear()
    package.handlers.clear()
    package.setLevel(logging.NOTSET)
    try:
        yield root, package
    finally:
        root.handlers[:], package.handlers[:] = saved[:2]
        package.setLevel(saved[2])


def test_the_library_door_shows_its_lines_once_and_leaves_a_programs_own_logging_alone(capsys):
    from tf_finetune import logs

    with _no_logging_configured() as (root, package):
        logs.show_progress()
        logs.show_progress()  # a second job in the same notebook
        logging.basicConfig()  # what absl does when TensorFlow saves a model: a no-op now
        logging.getLogger("tf_finetune.training.job").info("epoch=1/1 loss=0.5")
        logging.getLogger("absl").info("library chatter")
        logging.getLogger("absl").warning("a library warning")
        assert capsys.readouterr().err == "epoch=1/1 loss=0.5\na library warning\n"

    with _no_logging_configured() as (root, package):
        own = io.StringIO()
        root.addHandler(logging.StreamHandler(own))  # the program's configuration (WARNING and up)
        logs.show_progress()
        logging.getLogger("tf_finetune.training.job").info("epoch=1/1 loss=0.5")
        assert (len(root.handlers), package.handlers, package.level) == (1, [], logging.NOTSET)
        assert capsys.readouterr().err == "" and own.getvalue() == ""
