"""Exception types of tf_finetune.

Every error a user can cause or fix derives from :class:`TfFinetuneError`. Its message says
what is wrong, where (file, line, value) and what to do; the command-line doors print it
without a traceback and exit non-zero.
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterator


def install_extra(extra: str) -> str:
    """How to install one of the package's extras (``bert``, ``sagemaker``): from the clone, since
    tf_finetune is not on PyPI."""
    return f"pip install '.[{extra}]' in the tf_finetune clone (or a wheel built from it)"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The informative first line of a library's error message, for quoting in ours (skipping
    Keras's "Exception encountered when calling layer" preamble)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if "in user code:" in lines:
        # A traced function's error: the cause is the first "SomeError: ..." line after the
        # traceback of the user code (which quotes file names and source lines).
        causes = [line for line in lines[lines.index("in user code:") :] if re.match(r"\w+(Error|Exception): ", line)]
        if causes:
            return causes[0][:limit]
    useful = [line for line in lines if not line.startswith("Exception encountered when calling")]
    return (useful or lines or [exc.__class__.__name__])[0][:limit]


def disk_full(exc: BaseException, writing: str | None = None, flag: str | None = None) -> str | None:
    """The one message for a full disk or quota anywhere in ``exc``'s chain (Python's ``OSError``
    or TensorFlow's errors, which carry only the text), else None.

    Args:
        exc: the error.
        writing: what was being written and where (e.g. ``the checkpoint in /ckpt``), when known.
        flag: the option that moves that write elsewhere (e.g. ``--checkpoint-dir``), when known.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            writing = writing or (str(seen.filename) if seen.filename else None)
            break
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            # TensorFlow's file errors name the file: "… /path/events.out…; No space left on device"
            named = re.search(r"(/\S+); (?:No space left on device|Disk quota exceeded)", str(seen))
            writing = writing or (named.group(1) if named else None)
            break
        seen = seen.__cause__ or seen.__context__
    else:
        return None
    where = f" writing {writing}" if writing else ""
    elsewhere = f"choose another {flag}" if flag else "choose another --output, --cache-dir or TMPDIR"
    return (
        f"no space left on the device{where}: nothing was published and temporary files were removed; "
        f"free some space, or {elsewhere}, and run again"
    )


@contextlib.contextmanager
def writing(what: str, flag: str | None = None) -> Iterator[None]:
    """Turn a full disk inside the block into a :class:`DiskFullError` that says what was being
    written (``what``, e.g. ``the checkpoint in /ckpt``) and which option moves it elsewhere."""
    try:
        yield
    except TfFinetuneError:
        raise
    except Exception as exc:
        message = disk_full(exc, what, flag)
        if message is None:
            raise
        raise DiskFullError(message) from exc


class TfFinetuneError(Exception):
    """Base class of all errors tf_finetune raises on purpose."""


class RegistryError(TfFinetuneError):
    """The model registry file is malformed, or a model id is unknown."""


class HyperparameterError(TfFinetuneError):
    """A hyperparameter is unknown, of the wrong type or out of range."""


class UsageError(TfFinetuneError):
    """A flag that is not a hyperparameter is missing or wrong (``launch``'s ``--role``, ``--name``,
    ``--gpus``, …); caught after the command line was parsed, so both doors exit 1 as for any
    other error, not 2 as for argparse's usage errors."""


class DataError(TfFinetuneError):
    """Training or validation data is missing or malformed."""


class BackboneError(TfFinetuneError):
    """A backbone handle cannot be resolved, loaded or used for the task."""


class StorageError(TfFinetuneError):
    """A local or remote path cannot be read or written."""


class CheckpointError(TfFinetuneError):
    """The checkpoint folder holds another job's checkpoint, or cannot be used."""


class DiskFullError(StorageError):
    """The disk filled up (or a quota was reached) while writing; what and where are named."""


class TrainingInterrupted(TfFinetuneError):
    """Training stopped on request (SIGTERM) after saving a checkpoint; rerun to resume."""

    exit_code = 128 + 15  # what shells report for SIGTERM; both doors exit with it
