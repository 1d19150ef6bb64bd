"""Using a fine-tuned model: open it (folder, model.tar.gz or s3://), predict, evaluate.

Predictions go through the SavedModel's ``serving_default`` signature, the one deployed
endpoints use, so what ``predict`` and ``evaluate`` report is what a deployment will answer.
"""
from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tf_finetune import model_folder, storage
from tf_finetune.data import LabelMap
from tf_finetune.errors import TfFinetuneError, first_line

BATCH = 64


@dataclass
class FineTunedModel:
    """A model written by tf_finetune, loaded for inference.

    Attributes:
        directory: the unpacked model folder (``1/``, ``labels.json``, ...).
        label_map: its classes.
        task: ``image`` or ``text``.
        serve: the ``serving_default`` concrete function.
    """

    directory: Path
    label_map: LabelMap
    task: str
    serve: Any

    def predict(self, inputs: Sequence[str]) -> np.ndarray:
        """Class probabilities, one row per input (image file paths, or texts), in batches.

        Raises:
            TfFinetuneError: an image file that cannot be read or decoded (named).
        """
        import tensorflow as tf

        rows = []
        for start in range(0, len(inputs), BATCH):
            chunk = list(inputs[start:start + BATCH])
            try:
                if self.task == "image":
                    data = [Path(p).read_bytes() for p in chunk]
                    out = self.serve(image_bytes=tf.constant(data))
                else:
                    out = self.serve(text=tf.constant(chunk))
            except (OSError, tf.errors.InvalidArgumentError) as exc:
                raise TfFinetuneError(f"cannot predict on {_name_batch(chunk)}: "
                                      f"{first_line(exc, 200)}") from None
            rows.append(out["probabilities"].numpy())
        width = self.label_map.num_classes
        return np.concatenate(rows) if rows else np.zeros((0, width), dtype=np.float32)


def _name_batch(chunk: Sequence[str]) -> str:
    return chunk[0] if len(chunk) == 1 else f"one of {len(chunk)} inputs from {chunk[0]!s}"


def unpack_model(source: str, workdir: Path) -> Path:
    """The local folder of a fine-tuned model given as a folder, ``model.tar.gz`` or
    ``s3://…/model.tar.gz`` (downloaded and extracted into ``workdir`` as needed).

    Raises:
        TfFinetuneError: nothing there, or not a tf_finetune model (what is missing is named).
    """
    path = Path(source)
    if storage.is_s3(source):
        from tf_finetune import s3

        path = Path(s3.download_prefix(source, workdir / "download"))
    elif not path.exists():
        raise TfFinetuneError(f"{source}: no such model file or folder")
    if path.is_file() and storage.is_archive(path):
        path = storage.extract_archive(path, workdir / "model")
    model_folder.check(path, source)
    return path


@contextlib.contextmanager
def open_model(source: str) -> Iterator[FineTunedModel]:
    """Open a model folder, ``model.tar.gz`` or ``s3://…/model.tar.gz`` for inference.

    Yields:
        The loaded model; temporary files are removed on exit.

    Raises:
        TfFinetuneError: not a tf_finetune model (what is missing is named).
    """
    import tensorflow as tf

    from tf_finetune.custom_ops import register_ops_for

    with tempfile.TemporaryDirectory(prefix="tf_finetune.model.") as tmp:
        path = unpack_model(source, Path(tmp))
        label_map = model_folder.read_labels(path)
        register_ops_for(model_folder.saved_model_dir(path), f"the model {source}")
        serve = tf.saved_model.load(str(model_folder.saved_model_dir(path))).signatures["serving_default"]
        yield FineTunedModel(path, label_map, model_folder.task_of_signature(serve), serve)


def read_metrics(model: FineTunedModel) -> dict:
    """The training metrics stored with the model (empty when absent)."""
    return model_folder.read_metrics(model.directory)


def collect_inputs(arguments: Sequence[str], task: str, stdin_lines: Sequence[str] = ()) -> list[str]:
    """What to predict on, from ``predict``'s arguments.

    Image models: image files, and folders (searched recursively for .jpg/.jpeg/.png).
    Text models: a ``data.csv`` (its text column), a ``.txt`` file (one text per line), or
    the argument itself as a text. ``-`` reads ``stdin_lines`` (texts, or image paths).

    Raises:
        TfFinetuneError: an image argument that is not a file or folder.
    """
    from tf_finetune.data.images import IMAGE_EXTENSIONS
    from tf_finetune.data.text import read_text_csv

    inputs: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if argument == "-":
            inputs.extend(line.rstrip("\r\n") for line in stdin_lines if line.strip())
        elif task == "image" and path.is_dir():
            inputs.extend(str(p) for p in sorted(path.rglob("*"))
                          if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif task == "image":
            if not path.is_file():
                raise TfFinetuneError(f"{argument}: no such image file or folder")
            inputs.append(argument)
        elif path.is_file() and path.suffix.lower() == ".csv":
            inputs.extend(read_text_csv(path).texts)
        elif path.is_file() and path.suffix.lower() == ".txt":
            inputs.extend(line for line in path.read_text("utf-8-sig").splitlines() if line.strip())
        else:
            inputs.append(argument)
    return inputs


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely (class name, probability) pairs of each row, best first."""
    order = np.argsort(-probabilities, axis=1)[:, :k]
    return [[(class_names[i], float(row[i])) for i in idx] for row, idx in zip(probabilities, order)]
