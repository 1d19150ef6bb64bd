"""Progress bars on a terminal: one per training epoch and one per feature-extraction pass.

A bar (steps done, rate, time left) is drawn on stderr only when a person watches it: stderr is
a terminal, the job is not on SageMaker, and ``tf_finetune``'s INFO lines are shown. Logs, pipes
and SageMaker get the one line per epoch alone, the form the metric regexes read. A bar is
cleared before its epoch's line is logged, so that line stands alone on the terminal too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import tf_keras
from tqdm import tqdm

T = TypeVar("T")

# Set in every SageMaker training container (by the platform and by the training toolkit).
SAGEMAKER_VARIABLES = ("TRAINING_JOB_NAME", "SM_TRAINING_ENV")


def showing() -> bool:
    """Whether progress bars are drawn: stderr is a terminal, not on SageMaker, INFO lines shown."""
    return (
        sys.stderr.isatty()
        and not any(os.environ.get(name) for name in SAGEMAKER_VARIABLES)
        and logging.getLogger("tf_finetune").isEnabledFor(logging.INFO)
    )


def _bar(description: str, total: int | None, iterable: Iterable[Any] | None = None) -> tqdm:
    return tqdm(iterable, total=total, desc=description, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True)


def iterate(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """``items``, with a bar of ``total`` steps named ``description`` while they are consumed
    (when :func:`showing`)."""
    if not showing():
        return iter(items)
    return iter(_bar(description, total, items))


def bars(description: str = "predicting") -> list[tf_keras.callbacks.Callback]:
    """A :class:`ProgressBar` for ``fit`` or ``predict`` when :func:`showing`, else none (a callback
    with step hooks costs Keras a call every step)."""
    return [ProgressBar(description)] if showing() else []


class ProgressBar(tf_keras.callbacks.Callback):
    """A bar per epoch of ``fit`` (``epoch 2/5``), or per ``predict`` call (``description``).

    Among ``fit``'s callbacks it goes before the one that logs the epoch line: the bar is
    cleared when the epoch ends, before that line is written.
    """

    _supports_tf_logs = True  # it reads no logs: Keras need not copy them to NumPy every step

    def __init__(self, description: str = "predicting") -> None:
        super().__init__()
        self.description = description
        self._bar: tqdm | None = None

    def _open(self, description: str) -> None:
        self._close()
        if showing():
            self._bar = _bar(description, self.params.get("steps"))

    def _advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._open(f"epoch {epoch + 1}/{self.params.get('epochs')}")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._advance()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._close()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._close()  # an epoch cut short (a stop request) leaves no bar behind

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._open(self.description)

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._advance()

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self._close()
