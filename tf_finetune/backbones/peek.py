"""Whether a local backbone takes images or text, read from its files without TensorFlow.

A bare ``--handle`` has no registry entry to say its task, and the data is read before
TensorFlow is imported. Its files often say it cheaply: a Keras model file is an image
backbone; a model folder written by tf_finetune records its task in ``metrics.json``; a
SavedModel's ``serving_default`` signature declares its input types in ``saved_model.pb``
(read here as raw protocol-buffer fields, about 30 ms, instead of importing TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

from tf_finetune import model_folder, storage
from tf_finetune.backbones.keras_import import KERAS_SUFFIXES, keras_file_in

# TensorFlow DataType numbers (tensorflow/core/framework/types.proto) of a signature's inputs.
_IMAGE_DTYPES = {1, 2, 4, 14, 19}  # float, double, uint8, bfloat16, half: pixels
_TEXT_DTYPES = {3, 7, 9}  # int32, string, int64: strings or a BERT encoder's token ids


def handle_task(handle: str) -> str | None:
    """``"image"`` or ``"text"``: what the backbone at a local ``handle`` takes.

    Args:
        handle: a ``--handle`` value.

    Returns:
        The task, or None when it cannot be told without downloading, extracting or loading
        the backbone (URLs, ``s3://``, ``builtin:``, archives, SavedModels without a
        ``serving_default`` signature).
    """
    path = local_handle(handle)
    if path is None:
        return None
    if path.suffix.lower() in KERAS_SUFFIXES or keras_file_in(path):
        return "image"  # tf_finetune imports Keras model files as image backbones only
    if path.is_file():
        return None  # an archive: its content is known once extracted
    if model_folder.is_model_folder(path):  # a previous fine-tuned model
        task = model_folder.read_metrics(path).get("backbone", {}).get("task")
        return task if task in ("image", "text") else None
    return saved_model_task(path)


def local_handle(handle: str) -> Path | None:
    """The local path a handle names (a path or ``file://`` URI), or None for a URL, ``s3://``
    or ``builtin:`` handle."""
    if handle.startswith("builtin:") or ("://" in handle and not handle.startswith("file://")):
        return None
    return storage.local_path(handle)


def saved_model_task(folder: str | Path) -> str | None:
    """``"image"`` or ``"text"`` from the input types of the ``serving_default`` signature in
    ``folder/saved_model.pb``; None when there is no such file or signature, or it is unclear."""
    path = Path(folder) / "saved_model.pb"
    if not path.is_file():
        return None
    try:
        dtypes = _serving_input_dtypes(path.read_bytes())
    except Exception:  # not a SavedModel protocol buffer: loading it will say so
        return None
    if dtypes and dtypes <= _IMAGE_DTYPES:
        return "image"
    if dtypes and dtypes <= _TEXT_DTYPES:
        return "text"
    return None


def _serving_input_dtypes(content: bytes) -> set[int]:
    """The DataType numbers of ``serving_default``'s inputs in a serialised SavedModel:
    SavedModel.meta_graphs (2) -> MetaGraphDef.signature_def (5, a map) -> SignatureDef.inputs
    (1, a map) -> TensorInfo.dtype (2)."""
    dtypes: set[int] = set()
    for meta_graph in _fields(content, 2):
        for entry in _fields(meta_graph, 5):
            if _fields(entry, 1) == [b"serving_default"]:
                for signature in _fields(entry, 2):
                    for inputs in _fields(signature, 1):
                        for tensor_info in _fields(inputs, 2):
                            dtypes.update(_fields(tensor_info, 2))
    return dtypes


def _fields(content: bytes, number: int) -> list:
    """The values of field ``number`` in a serialised protocol buffer, read without its schema."""
    from google.protobuf import empty_pb2
    from google.protobuf.unknown_fields import UnknownFieldSet

    message = empty_pb2.Empty()
    message.ParseFromString(content)  # every field is unknown to Empty: kept as raw values
    return [field.data for field in UnknownFieldSet(message) if field.field_number == number]
