"""Logging for the doors: our progress lines at INFO, other libraries only when they warn."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType


def configure(
    environ: MutableMapping[str, str] | None = None, tf_cpp_level: str = "3", quiet_libraries: bool = True
) -> None:
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


class _ShownLines(logging.StreamHandler):
    """What :func:`show_progress` adds: ``tf_finetune``'s lines, and other libraries' warnings as
    Python shows them with no handler, to whatever ``sys.stderr`` is when a line is logged (a
    notebook may replace it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "tf_finetune" or record.name.startswith("tf_finetune.")
        return (ours or record.levelno >= logging.WARNING) and bool(super().filter(record))


def show_progress() -> None:
    """Show ``tf_finetune``'s INFO lines on stderr when the program configured no logging.

    For the library door (a notebook, a script). When neither the root logger nor the
    ``tf_finetune`` logger has a handler, one is added; later calls add no other, so each line
    shows once. A configuration of the program's own is left alone.
    """
    root, package = logging.getLogger(), logging.getLogger("tf_finetune")
    if root.handlers or package.handlers:  # the program's own, or the one added here before
        return
    # On the root logger, not on ours: TensorFlow's saving logs through absl, which calls
    # logging.basicConfig() when the root logger has no handler, and each of our lines would
    # then show twice, once in basicConfig's format.
    root.addHandler(_ShownLines())
    if package.level == logging.NOTSET:  # a level the program set stays
        package.setLevel(logging.INFO)


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
    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; the real finders locate the package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def quietly(module: ModuleType) -> None:
                with _stderr_to_scratch():
                    run(module)

            # This one loader object's method is replaced on purpose (the class's stays as it is).
            spec.loader.exec_module = quietly  # type: ignore[method-assign]
        return spec


@contextlib.contextmanager
def _stderr_to_scratch() -> Iterator[None]:
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
