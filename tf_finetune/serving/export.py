"""Writing the trained model: versioned SavedModel, label and metrics files, ``model.tar.gz``."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tf_keras

from tf_finetune import storage
from tf_finetune.data import LabelMap
from tf_finetune.model_folder import ARCHIVE_NAME, CODE_DIR, HANDLERS_FILE, LABELS_FILE, METRICS_FILE, VERSION

__all__ = ["ARCHIVE_NAME", "write_model_folder", "pack_archive", "export_archive"]


def write_model_folder(
    model: tf_keras.Model,
    label_map: LabelMap,
    metrics: Mapping[str, Any],
    folder: Path,
    signatures: Mapping[str, Any] | None = None,
) -> Path:
    """Write the deployable model folder.

    ``1/`` is the SavedModel (TensorFlow Serving looks for numbered versions), ``labels.json``
    and ``metrics.json`` describe it, and ``code/inference.py`` holds the request/response
    handlers of the SageMaker TensorFlow Serving container.

    Args:
        model: the trained classifier.
        label_map: class names (and original labels).
        metrics: what to record about the run.
        folder: an empty or new folder.
        signatures: serving signatures (:func:`tf_finetune.serving.signatures.make_signatures`); the
            Keras default when None.

    Returns:
        ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    model.save(
        folder / VERSION, include_optimizer=False, save_format="tf", signatures=dict(signatures) if signatures else None
    )
    (folder / LABELS_FILE).write_text(label_map.to_json(), encoding="utf-8")
    code = folder / CODE_DIR
    code.mkdir(exist_ok=True)
    shutil.copyfile(Path(__file__).parents[1] / "sagemaker" / HANDLERS_FILE, code / HANDLERS_FILE)
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return folder


def pack_archive(folder: Path, archive: Path) -> Path:
    """Tar+gzip the contents of ``folder`` into ``archive`` atomically (see storage.pack_archive)."""
    return storage.pack_archive(((c, c.name) for c in sorted(folder.iterdir())), archive)


def export_archive(
    model: tf_keras.Model,
    label_map: LabelMap,
    metrics: Mapping[str, Any],
    archive: Path,
    signatures: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model folder in a temporary place and pack it as ``archive`` (atomically)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    storage.remove_stale_staging(archive.parent)  # what killed runs left
    with tempfile.TemporaryDirectory(prefix=storage.staging_prefix(), dir=archive.parent) as tmp:
        write_model_folder(model, label_map, metrics, Path(tmp) / "model", signatures)
        return pack_archive(Path(tmp) / "model", archive)
