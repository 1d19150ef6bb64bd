"""Logging for the doors: our progress lines at INFO, other libraries only when they warn."""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import MutableMapping


def configure(environ: MutableMapping[str, str] | None = None, tf_cpp_level: str = "3",
              quiet_libraries: bool = True) -> None:
    """Send ``tf_finetune``'s INFO lines to stderr; keep boto3's and TensorFlow's chatter out.

    Args:
        environ: where to set ``TF_CPP_MIN_LOG_LEVEL`` (default ``os.environ``); a value
            already set wins.
        tf_cpp_level: TensorFlow's C++ log level to use when none is set.
        quiet_libraries: False leaves TensorFlow's own logs alone (``--debug``).
    """
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("tf_finetune").setLevel(logging.INFO)
    if quiet_libraries:
        # TensorFlow's C++ and Python INFO/WARNING chatter hides our epoch lines.
        (os.environ if environ is None else environ).setdefault("TF_CPP_MIN_LOG_LEVEL", tf_cpp_level)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up notices kept off the terminal.

    TensorFlow's native libraries print ``Could not find cuda drivers…`` and absl's
    pre-initialisation warning straight to file descriptor 2 while loading, before any log
    level applies. They go to a scratch file instead, which is shown only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
