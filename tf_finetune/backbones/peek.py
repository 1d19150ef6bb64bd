"""Whether a model takes images or text, read from its files without TensorFlow: :func:`task_of_model`.

A bare ``--handle`` has no registry entry to say its task, and the data is read before
TensorFlow is imported; a fine-tuned model to serve or convert says its task the same way. The
files often say it cheaply: a Keras model file is an image backbone; a model folder written by
tf_finetune records its task in ``metrics.json``; a SavedModel's ``serving_default`` signature
declares its inputs in ``saved_model.pb`` (read here as raw protocol-buffer fields, about 30 ms,
instead of importing TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

from tf_finetune import model_folder, storage
from tf_finetune.backbones.keras_import import KERAS_SUFFIXES, keras_file_in
from tf_finetune.tasks import TASK_NAMES, Task

# TensorFlow DataType numbers (tensorflow/core/framework/types.proto) of a signature's inputs.
_IMAGE_DTYPES = {1, 2, 4, 14, 19}  # float, double, uint8, bfloat16, half: pixels
_TEXT_DTYPES = {3, 7, 9}  # int32, string, int64: strings or a BERT encoder's token ids


def task_of_model(handle: str | Path) -> Task | None:
    """What the model at a local path or ``file://`` handle takes: images or text, read from its files.

    The one way the task of a model is told from the model itself (a registry entry declares its own):
    a Keras model file is an image backbone; a model folder written by tf_finetune records its task in
    ``metrics.json``, and its ``serving_default`` takes ``image_bytes`` for images; another
    SavedModel's ``serving_default`` takes pixels (floats, bytes) or text (strings, token ids).

    Args:
        handle: a ``--handle`` value, a model folder or a SavedModel folder.

    Returns:
        The task, or None when it cannot be told without downloading, extracting or loading the
        model (URLs, ``s3://``, ``builtin:``, archives, SavedModels without a ``serving_default``).
    """
    path = local_handle(str(handle))
    if path is None:
        return None
    if path.suffix.lower() in KERAS_SUFFIXES or keras_file_in(path):
        return Task.IMAGE  # tf_finetune imports Keras model files as image backbones only
    if path.is_file():
        return None  # an archive: its content is known once extracted
    if model_folder.is_model_folder(path):  # a fine-tuned model: a previous one, or one to serve
        recorded = model_folder.read_metrics(path).get("backbone", {}).get("task")
        if recorded in TASK_NAMES:
            return Task(recorded)
        inputs = _serving_inputs(model_folder.saved_model_dir(path))
        return None if inputs is None else Task.IMAGE if model_folder.IMAGE_INPUT in inputs else Task.TEXT
    inputs = _serving_inputs(path)
    dtypes = set(inputs.values()) if inputs else set()
    if dtypes and dtypes <= _IMAGE_DTYPES:
        return Task.IMAGE
    if dtypes and dtypes <= _TEXT_DTYPES:
        return Task.TEXT
    return None


def local_handle(handle: str) -> Path | None:
    """The local path a handle names (a path or ``file://`` URI), or None for a URL, ``s3://``
    or ``builtin:`` handle."""
    if handle.startswith("builtin:") or ("://" in handle and not handle.startswith("file://")):
        return None
    return storage.local_path(handle)


def _serving_inputs(folder: Path) -> dict[str, int] | None:
    """The inputs of the ``serving_default`` signature in ``folder/saved_model.pb``: name -> TensorFlow
    DataType number; None when there is no such file or it is no SavedModel."""
    path = folder / "saved_model.pb"
    if not path.is_file():
        return None
    try:
        return _serving_input_dtypes(path.read_bytes())
    except Exception:  # not a SavedModel protocol buffer: loading it will say so
        return None


def _serving_input_dtypes(content: bytes) -> dict[str, int]:
    """The inputs of ``serving_default`` in a serialised SavedModel, name -> DataType number:
    SavedModel.meta_graphs (2) -> MetaGraphDef.signature_def (5, a map) -> SignatureDef.inputs
    (1, a map: key 1, TensorInfo 2) -> TensorInfo.dtype (2)."""
    inputs: dict[str, int] = {}
    for meta_graph in _fields(content, 2):
        for entry in _fields(meta_graph, 5):
            if _fields(entry, 1) == [b"serving_default"]:
                for signature in _fields(entry, 2):
                    for item in _fields(signature, 1):
                        for name in _fields(item, 1):
                            for tensor_info in _fields(item, 2):
                                for dtype in _fields(tensor_info, 2):
                                    inputs[name.decode("utf-8", "replace")] = dtype
    return inputs


def _fields(content: bytes, number: int) -> list:
    """The values of field ``number`` in a serialised protocol buffer, read without its schema."""
    from google.protobuf import empty_pb2
    from google.protobuf.unknown_fields import UnknownFieldSet

    message = empty_pb2.Empty()
    message.ParseFromString(content)  # every field is unknown to Empty: kept as raw values
    return [field.data for field in UnknownFieldSet(message) if field.field_number == number]
