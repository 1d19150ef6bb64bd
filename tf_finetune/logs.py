"""Logging for the doors: our progress lines at INFO, other libraries only when they warn."""
from __future__ import annotations

import logging
import os
import sys
from typing import MutableMapping


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
