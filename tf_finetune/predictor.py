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
            TfFinetuneError: inputs that cannot be read or decoded, each named with the cause.
        """
        probabilities, failed = self.predict_each(inputs)
        if failed:
            raise TfFinetuneError(describe_failures(inputs, failed))
        return probabilities

    def predict_each(self, inputs: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
        """Like :meth:`predict`, but an unreadable input fails alone.

        Returns:
            (the probabilities of the inputs that could be used, in order; input index -> why
            each other one could not be).
        """
        import tensorflow as tf

        rows: list[np.ndarray] = []
        failed: dict[int, str] = {}
        for start in range(0, len(inputs), BATCH):
            try:
                rows.append(self._serve(inputs[start:start + BATCH]))
            except (OSError, tf.errors.InvalidArgumentError):
                for index in range(start, min(start + BATCH, len(inputs))):  # find the culprit(s)
                    try:
                        rows.append(self._serve(inputs[index:index + 1]))
                    except (OSError, tf.errors.InvalidArgumentError) as exc:
                        failed[index] = _cause(exc)
        width = self.label_map.num_classes
        return (np.concatenate(rows) if rows else np.zeros((0, width), dtype=np.float32)), failed

    def _serve(self, chunk: Sequence[str]) -> np.ndarray:
        import tensorflow as tf

        if self.task == "image":
            out = self.serve(image_bytes=tf.constant([Path(p).read_bytes() for p in chunk]))
        else:
            out = self.serve(text=tf.constant(list(chunk)))
        return out["probabilities"].numpy()


def describe_failures(inputs: Sequence[str], failed: dict[int, str]) -> str:
    """One message naming each input that could not be used, with why (at most ten shown)."""
    shown = "; ".join(f"{inputs[i]}: {why}" for i, why in list(failed.items())[:10])
    more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
    return f"cannot predict on {len(failed)} input(s): {shown}{more}"


def _cause(exc: Exception) -> str:
    """The useful line of a read or decode error (TensorFlow's first line is often generic)."""
    if isinstance(exc, OSError):
        return f"cannot read it ({exc.strerror or exc})"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if any(word in line for word in ("image file format", "JPEG", "PNG", "GIF", "BMP", "empty", "corrupt")):
            return line.split("[[")[0].strip().rstrip(".") + " (not an image this model can decode)"
    return first_line(exc, 200)


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
    with tempfile.TemporaryDirectory(prefix="tf_finetune.model.") as tmp:
        path = unpack_model(source, Path(tmp))
        import tensorflow as tf  # only now: a wrong path answers at once

        from tf_finetune.backbones.custom_ops import register_ops_for

        label_map = model_folder.read_labels(path)
        register_ops_for(model_folder.saved_model_dir(path), f"the model {source}")
        serve = tf.saved_model.load(str(model_folder.saved_model_dir(path))).signatures["serving_default"]
        yield FineTunedModel(path, label_map, model_folder.task_of_signature(serve), serve)


def read_metrics(model: FineTunedModel) -> dict:
    """The training metrics stored with the model (empty when absent)."""
    return model_folder.read_metrics(model.directory)


def collect_inputs(arguments: Sequence[str], task: str, stdin_lines: Sequence[str] = ()) -> list[str]:
    """What to predict on, from ``predict``'s arguments.

    Image models: image files, and folders (searched recursively for the formats the model
    decodes: .jpg/.jpeg/.png/.gif/.bmp).
    Text models: a ``data.csv`` (its text column), a ``.txt`` file (one text per line), or
    the argument itself as a text. ``-`` reads ``stdin_lines`` (texts, or image paths).

    Raises:
        TfFinetuneError: an image argument that is not a file or folder; for a text model, an
            empty text, a folder, an image file, or a file name that does not exist (a typo
            in a batch script would otherwise be classified as a text).
    """
    from tf_finetune.data.text import read_text_csv

    inputs: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if argument == "-":
            inputs.extend(line.rstrip("\r\n") for line in stdin_lines if line.strip())
        elif task == "image" and path.is_dir():
            inputs.extend(str(p) for p in sorted(path.rglob("*"))
                          if p.is_file() and p.suffix.lower() in DECODED_EXTENSIONS)
        elif task == "image":
            if not path.is_file():
                raise TfFinetuneError(f"{argument}: no such image file or folder")
            inputs.append(argument)
        elif path.is_file() and path.suffix.lower() == ".csv":
            inputs.extend(read_text_csv(path).texts)
        elif path.is_file() and path.suffix.lower() == ".txt":
            inputs.extend(line for line in path.read_text("utf-8-sig").splitlines() if line.strip())
        else:
            _check_text_argument(argument)
            inputs.append(argument)
    return inputs


# What the serving signature's tf.io.decode_image reads (GIF: its first frame).
DECODED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
# Suffixes of files a text argument is taken for, when it is one word: a path, not a text.
_FILE_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


def _check_text_argument(argument: str) -> None:
    path = Path(argument)
    if not argument.strip():
        raise TfFinetuneError("an empty text: nothing to classify (give a text, a data.csv or a .txt file)")
    if path.is_dir():
        raise TfFinetuneError(f"{argument} is a folder; a text model takes texts, a data.csv or a .txt "
                              "file (one text per line)")
    if path.is_file() and path.suffix.lower() in DECODED_EXTENSIONS + (".webp",):
        raise TfFinetuneError(f"{argument} is an image file and this model classifies texts")
    if path.is_file():
        raise TfFinetuneError(f"{argument}: a text model reads .csv and .txt files only; give the "
                              "texts in a .txt file (one per line) or a data.csv")
    if " " not in argument.strip() and (path.suffix.lower() in _FILE_SUFFIXES
                                        or argument.startswith(("/", "./", "../", "~"))):
        raise TfFinetuneError(f"{argument}: no such file (to classify these characters as a text, "
                              "pass them on standard input with -)")


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely (class name, probability) pairs of each row, best first."""
    order = np.argsort(-probabilities, axis=1)[:, :k]
    return [[(class_names[i], float(row[i])) for i in idx] for row, idx in zip(probabilities, order)]
