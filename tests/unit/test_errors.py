"""The error helpers (tf_finetune.errors): quoting a library's message, naming a full disk."""

from __future__ import annotations

import errno

import pytest

from tf_finetune.errors import DiskFullError, StorageError, TfFinetuneError, disk_full, first_line, writing


def test_first_line_skips_keras_preamble_and_traced_code():
    keras = ValueError("Exception encountered when calling layer 'dense'.\n\n  Input 0 is incompatible\n")
    assert first_line(keras) == "Input 0 is incompatible"
    traced = TypeError(
        'in user code:\n\n    File "/x.py", line 3, in f  *\n        return g(x)\n\n'
        "    ValueError: Could not find matching concrete function\n    more detail\n"
    )
    assert first_line(traced) == "ValueError: Could not find matching concrete function"
    assert first_line(RuntimeError("")) == "RuntimeError"
    assert first_line(RuntimeError("x" * 500), limit=10) == "x" * 10


def test_disk_full_finds_the_cause_in_python_and_tensorflow_errors():
    full = OSError(errno.ENOSPC, "No space left on device", "/out/model.tar.gz")
    assert disk_full(full) == (
        "no space left on the device writing /out/model.tar.gz: nothing was published and temporary files "
        "were removed; free some space, or choose another --output, --cache-dir or TMPDIR, and run again"
    )
    wrapped = RuntimeError("saving failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert disk_full(wrapped, "the checkpoint in ck", "--checkpoint-dir").startswith(
        "no space left on the device writing the checkpoint in ck:"
    )
    assert "choose another --checkpoint-dir, and run" in disk_full(wrapped, "the checkpoint in ck", "--checkpoint-dir")
    # TensorFlow's errors carry only text, with the file before the reason
    tf_text = Exception("/logs/events.out.tfevents.1; No space left on device [Op:WriteSummary]")
    assert disk_full(tf_text).startswith("no space left on the device writing /logs/events.out.tfevents.1:")
    assert disk_full(OSError(errno.EACCES, "Permission denied")) is None


def test_writing_turns_only_a_full_disk_into_its_error():
    with pytest.raises(DiskFullError, match="writing the model folder m: ") as raised, writing("the model folder m"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(raised.value, StorageError) and isinstance(raised.value.__cause__, OSError)
    with pytest.raises(PermissionError), writing("the model folder m"):
        raise PermissionError("no")
    with pytest.raises(TfFinetuneError, match="^ours$"), writing("the model folder m"):  # ours pass unchanged
        raise TfFinetuneError("ours")
