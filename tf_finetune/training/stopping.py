"""What a signal asks of a running training: SIGTERM a stop after a saved checkpoint, Ctrl-C
(SIGINT) a stop at once.

The library installs no handler; the doors do (:func:`install_sigterm_handler`,
:func:`install_ctrl_c_handler`). A Ctrl-C is also remembered, so the training loop can raise
it again at the next step if the first ``KeyboardInterrupt`` landed in code that swallowed it
(a finalizer or a library's broad ``except`` running at that moment): one Ctrl-C always stops.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_stop_requested = threading.Event()
_ctrl_c = threading.Event()


def request_stop(signum: int | None = None, frame: FrameType | None = None) -> None:
    """Ask the running training to save a checkpoint after the current step and stop."""
    _stop_requested.set()


def stop_requested() -> bool:
    """Whether a stop was requested (by SIGTERM or :func:`request_stop`)."""
    return _stop_requested.is_set()


def clear_stop_request() -> None:
    """Forget a stop request or Ctrl-C: it was for the job that has ended (each job calls this
    at its end)."""
    _stop_requested.clear()
    _ctrl_c.clear()


def install_sigterm_handler() -> None:
    """Turn SIGTERM into a stop request."""
    signal.signal(signal.SIGTERM, request_stop)


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    _ctrl_c.set()
    raise KeyboardInterrupt


def install_ctrl_c_handler() -> None:
    """Make Ctrl-C raise ``KeyboardInterrupt`` as Python's own handler does, and remember it
    for :func:`raise_if_interrupted`."""
    signal.signal(signal.SIGINT, _on_ctrl_c)


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed during this job.

    Raises:
        KeyboardInterrupt: Ctrl-C was pressed and its first ``KeyboardInterrupt`` was lost.
    """
    if _ctrl_c.is_set():
        raise KeyboardInterrupt
