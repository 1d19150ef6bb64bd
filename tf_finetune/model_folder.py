"""The layout of a fine-tuned model folder, in one place for every reader and writer.

A model folder (what ``model.tar.gz`` unpacks to) holds::

    1/                 the SavedModel (TensorFlow Serving looks for numbered versions)
    labels.json        class names and the labels they came from
    metrics.json       what the run measured and chose
    code/inference.py  the SageMaker TensorFlow Serving request/response handlers
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tf_finetune.data import LabelMap
from tf_finetune.errors import TfFinetuneError

VERSION = "1"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
CODE_DIR = "code"
HANDLERS_FILE = "inference.py"
ARCHIVE_NAME = "model.tar.gz"
OUTPUT_SUBDIR = "output"  # <output>/output/model.tar.gz, as SageMaker lays out a job's output


def archive_location(output: str) -> str:
    """Where a job with output ``output`` (a folder or an ``s3://`` prefix) puts its model:
    ``<output>/output/model.tar.gz``."""
    return f"{output.rstrip('/')}/{OUTPUT_SUBDIR}/{ARCHIVE_NAME}"


# The serving_default input that tells an image model from a text model.
IMAGE_INPUT = "image_bytes"


def saved_model_dir(folder: str | Path) -> Path:
    """The SavedModel inside a model folder (``<folder>/1``)."""
    return Path(folder) / VERSION


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a model folder written by tf_finetune (``1/`` + ``labels.json``)."""
    return (Path(path) / LABELS_FILE).is_file() and (saved_model_dir(path) / "saved_model.pb").is_file()


def check(folder: Path, source: str) -> None:
    """Raise a :class:`TfFinetuneError` naming ``source`` unless ``folder`` is a model folder.

    Args:
        folder: the local folder to check.
        source: how the user gave the model (path or URI), for the message.
    """
    for needed in (LABELS_FILE, f"{VERSION}/saved_model.pb"):
        if not (folder / needed).is_file():
            raise TfFinetuneError(
                f"{source} is not a tf_finetune model: no {needed} in it "
                "(give the model.tar.gz or the folder it unpacks to)"
            )


def read_labels(folder: str | Path) -> LabelMap:
    """The label map stored in a model folder."""
    return LabelMap.from_json((Path(folder) / LABELS_FILE).read_text("utf-8"))


def read_metrics(folder: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a model folder, or an empty dict when there is none."""
    path = Path(folder) / METRICS_FILE
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}
