"""Logging for the doors: our progress lines at INFO, other libraries only when they warn."""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
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


def hide_tensorflow_start_up() -> None:
    """Keep TensorFlow's native start-up notices off the terminal, whenever it is first imported.

    TensorFlow's libraries print ``Could not find cuda drivers…`` and absl's pre-initialisation
    warning straight to file descriptor 2 while ``import tensorflow`` runs, before any log level
    applies. This installs an import hook: that one import runs with descriptor 2 pointed at a
    scratch file, shown only if the import fails. Commands that never need TensorFlow never pay
    for importing it.
    """
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; the real finders locate the package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def quietly(module):
                with _stderr_to_scratch():
                    run(module)
            spec.loader.exec_module = quietly
        return spec


@contextlib.contextmanager
def _stderr_to_scratch():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
