"""How a door starts TensorFlow in its process: settings that only apply before the first
``import tensorflow``."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import MutableMapping

from tf_finetune import logs

LEGACY_KERAS = "TF_USE_LEGACY_KERAS"


def prepare_tensorflow(environ: MutableMapping[str, str] | None = None, quiet: bool = True) -> None:
    """Set up this process for TensorFlow before anything imports it.

    Every model here is built with ``tf_keras`` (``hub.KerasLayer`` is a tf_keras layer); Keras 3
    is installed beside it with TensorFlow but never used. Left alone, it is imported twice over,
    and it imports scikit-learn, pandas and matplotlib when they are installed: about 5 s more
    for every command that trains (measured on 2 cores). So:

    - ``TF_USE_LEGACY_KERAS=1`` makes ``tf.keras`` the tf_keras package, and ``import tensorflow``
      no longer imports Keras 3. A value the user set wins.
    - see :func:`_skip_keras2_probe` for the second import.

    Args:
        environ: where to set the variable (default ``os.environ``; TensorFlow reads it there).
        quiet: also keep TensorFlow's native start-up lines off the terminal (not with ``--debug``).
    """
    (os.environ if environ is None else environ).setdefault(LEGACY_KERAS, "1")
    _skip_keras2_probe()
    if quiet:
        logs.hide_tensorflow_start_up()


def _skip_keras2_probe() -> None:
    """``hub.KerasLayer`` first tries ``from keras.saving.legacy.saved_model import load_context``,
    a Keras 2 module, then falls back to TensorFlow's own. With Keras 3 installed, that attempt
    imports all of Keras 3 (2.4 s) only to fail. Recording the module as absent makes it fail at
    once; Keras 3 has no such module, so nothing else can miss it."""
    try:
        major = int(importlib.metadata.version("keras").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return
    if major >= 3:
        sys.modules.setdefault("keras.saving.legacy.saved_model", None)  # type: ignore[arg-type]
