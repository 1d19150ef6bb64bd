"""Using a fine-tuned model: open it (folder, model.tar.gz or s3://), predict, evaluate.

Predictions go through the SavedModel's ``serving_default`` signature, the one deployed
endpoints use, so what ``predict`` and ``evaluate`` report is what a deployment will answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tf_finetune import model_folder, s3, storage
from tf_finetune.backbones.custom_ops import register_ops_for
from tf_finetune.backbones.peek import task_of_model
from tf_finetune.data import LabelMap
from tf_finetune.data.images import IMAGE_EXTENSIONS, check_image, walk_files
from tf_finetune.data.text import read_text_csv
from tf_finetune.errors import TfFinetuneError, first_line
from tf_finetune.tasks import Task

log = logging.getLogger(__name__)

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
    task: Task
    serve: Any

    def predict(self, inputs: Sequence[str]) -> np.ndarray:
        """Class probabilities, one row per input (image file paths, or texts), in batches.

        Raises:
            TfFinetuneError: inputs that cannot be read or decoded, each named with the cause.
        """
        probabilities, failed = self.predict_each(inputs)
        if failed:
            raise TfFinetuneError(describe_failures(inputs, failed, self.task))
        return probabilities

    def answer(self, inputs: Inputs) -> Answers:
        """Predict on every usable input of ``inputs`` (see :func:`collect_inputs`); each other
        one, refused before the model or failing in it, is named with why.

        Args:
            inputs: what to predict on, as collected.

        Returns:
            The inputs answered with their probabilities, and the message naming the rest.
        """
        usable = [i for i in range(len(inputs.items)) if i not in inputs.refused]
        probabilities, failed = self.predict_each([inputs.items[i] for i in usable])
        failures = {**inputs.refused, **{usable[j]: why for j, why in failed.items()}}
        answered = [inputs.items[i] for j, i in enumerate(usable) if j not in failed]
        return Answers(
            answered,
            probabilities,
            describe_failures(inputs.items, dict(sorted(failures.items())), self.task) if failures else None,
        )

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
                rows.append(self._serve(inputs[start : start + BATCH]))
            except (OSError, tf.errors.InvalidArgumentError):
                for index in range(start, min(start + BATCH, len(inputs))):  # find the culprit(s)
                    try:
                        rows.append(self._serve(inputs[index : index + 1]))
                    except (OSError, tf.errors.InvalidArgumentError) as exc:
                        failed[index] = _cause(exc)
        width = self.label_map.num_classes
        return (np.concatenate(rows) if rows else np.zeros((0, width), dtype=np.float32)), failed

    def _serve(self, chunk: Sequence[str]) -> np.ndarray:
        import tensorflow as tf

        if self.task == Task.IMAGE:
            out = self.serve(image_bytes=tf.constant([Path(p).read_bytes() for p in chunk]))
        else:
            out = self.serve(text=tf.constant(list(chunk)))
        return out["probabilities"].numpy()


@dataclass(frozen=True)
class Inputs:
    """What ``predict`` was given, in order (see :func:`collect_inputs`).

    Attributes:
        items: each input, an image file or a text.
        refused: index in ``items`` -> why that input cannot be used, found before the model
            runs (training's rules: a complete JPEG or PNG file; a text that is not empty).
        ignored: files in the folders given that are not named like images (training ignores
            them too).
    """

    items: list[str]
    refused: dict[int, str]
    ignored: list[str]


@dataclass(frozen=True)
class Answers:
    """What :meth:`FineTunedModel.answer` found.

    Attributes:
        inputs: the inputs answered, in order.
        probabilities: one row of class probabilities for each of them.
        failures: the message naming every other input with why, or None.
    """

    inputs: list[str]
    probabilities: np.ndarray
    failures: str | None


def describe_failures(inputs: Sequence[str], failed: dict[int, str], task: Task) -> str:
    """One message naming each input that could not be used, with why (at most ten shown).

    Args:
        inputs: every input.
        failed: index in ``inputs`` -> why.
        task: ``image`` (inputs are files, named as given) or ``text`` (quoted, shortened).
    """
    shown = "; ".join(f"{_name(inputs[i], task)}: {why}" for i, why in list(failed.items())[:10])
    more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
    return f"cannot predict on {len(failed)} input(s): {shown}{more}"


def _name(item: str, task: Task) -> str:
    """An input as a message names it: an image file as given, a text quoted (an empty one shows),
    shortened unless it names a file or folder (refused as a path: the user needs all of it)."""
    if task == Task.IMAGE:
        return item
    return repr(item if len(item) <= 60 or os.path.exists(item) else item[:59] + "…")


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
    with tempfile.TemporaryDirectory(prefix="tf_finetune.training.classifier.") as tmp:
        path = unpack_model(source, Path(tmp))
        import tensorflow as tf  # only now: a wrong path answers at once

        label_map = model_folder.read_labels(path)
        register_ops_for(model_folder.saved_model_dir(path), f"the model {source}")
        serve = tf.saved_model.load(str(model_folder.saved_model_dir(path))).signatures["serving_default"]
        yield FineTunedModel(path, label_map, _task(path, source), serve)


def _task(folder: Path, source: str) -> Task:
    """What the model in ``folder`` takes (:func:`~tf_finetune.backbones.peek.task_of_model`)."""
    task = task_of_model(folder)
    if task is None:
        raise TfFinetuneError(f"{source}: cannot tell whether the model takes images or text (its saved_model.pb)")
    return task


def collect_inputs(arguments: Sequence[str], task: Task, stdin_lines: Sequence[str] = ()) -> Inputs:
    """What to predict on, from ``predict``'s arguments, checked by training's rules.

    Image models: image files, and folders (read as training reads a class folder: hidden files
    left out, files not named .jpg/.jpeg/.png ignored and logged). Each image must be a complete
    JPEG or PNG (:func:`~tf_finetune.data.images.check_image`): a GIF is refused, as training
    leaves it out. Text models: a ``data.csv`` (its text column), a ``.txt`` file (one text per
    line), or the argument itself as a text. ``-`` reads ``stdin_lines`` (texts, or image paths).
    Blank lines are skipped.

    An input that breaks a rule is refused alone, with why (see :class:`Inputs`): a missing
    image file; for a text model an empty text, a folder, an image file, or a file name that
    does not exist (a typo in a batch script would otherwise be classified as a text).

    Raises:
        TfFinetuneError: nothing at all to predict on (the ignored files are named).
        DataError: a ``data.csv`` that cannot be read (file and line named).
    """
    items: list[str] = []
    refused: dict[int, str] = {}
    ignored: list[str] = []

    def add(item: str, problem: str | None = None) -> None:
        if problem:
            refused[len(items)] = problem
        items.append(item)

    for argument in arguments:
        path = Path(argument)
        if argument == "-":
            for line in (line.rstrip("\r\n") for line in stdin_lines if line.strip()):
                add(line, _image_problem(line) if task == Task.IMAGE else None)
        elif task == Task.IMAGE and path.is_dir():
            for file in walk_files(path):
                if file.lower().endswith(IMAGE_EXTENSIONS):
                    add(file, check_image(file))
                else:
                    ignored.append(file)
        elif task == Task.IMAGE:
            add(argument, _image_problem(argument))
        elif path.is_file() and path.suffix.lower() == ".csv":
            for text in read_text_csv(path).texts:
                add(text)
        elif path.is_file() and path.suffix.lower() == ".txt":
            for line in path.read_text("utf-8-sig").splitlines():
                if line.strip():
                    add(line)
        else:
            add(argument, _text_problem(argument))
    _check_something_found(arguments, items, ignored)
    return Inputs(items, refused, ignored)


def _check_something_found(arguments: Sequence[str], items: list[str], ignored: list[str]) -> None:
    """Raise TfFinetuneError when the arguments gave no input at all (naming the files ignored),
    else log the ignored files, if any."""
    not_images = (
        f"{len(ignored)} file(s) that are not {'/'.join(IMAGE_EXTENSIONS)}, which training ignores "
        f"too: {', '.join(ignored[:10])}{' …' if len(ignored) > 10 else ''}"
    )
    if not items:
        raise TfFinetuneError(
            f"nothing to predict on in {' '.join(arguments)}" + (f": it holds {not_images}" if ignored else "")
        )
    if ignored:
        log.warning("ignored %s", not_images)


# Image files a text model refuses; and suffixes of files a text argument is taken for, when it
# is one word: a path, not a text.
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
_FILE_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl") + _IMAGE_SUFFIXES


def _image_problem(item: str) -> str | None:
    """Why the image file ``item`` cannot be used, by training's rules, or None."""
    path = Path(item)
    if path.is_dir():
        return "a folder: give folders as arguments (standard input takes image files)"
    if not path.is_file():
        return "no such image file or folder"
    if not item.lower().endswith(IMAGE_EXTENSIONS):
        return f"not a {'/'.join(IMAGE_EXTENSIONS)} file, and training reads only those: convert it to JPEG or PNG"
    return check_image(item)


def _text_problem(argument: str) -> str | None:
    """Why ``argument`` is not a text to classify (empty, or a file or folder name), or None."""
    path = Path(argument)
    if not argument.strip():
        return "an empty text, nothing to classify (give a text, a data.csv or a .txt file)"
    if path.is_dir():
        return "a folder; a text model takes texts, a data.csv or a .txt file (one text per line)"
    if path.is_file() and path.suffix.lower() in _IMAGE_SUFFIXES:
        return "an image file, and this model classifies texts"
    if path.is_file():
        return "a text model reads .csv and .txt files only; give the texts in a .txt file (one per line) or a data.csv"
    if " " not in argument.strip() and (
        path.suffix.lower() in _FILE_SUFFIXES or argument.startswith(("/", "./", "../", "~"))
    ):
        return "no such file (to classify these characters as a text, pass them on standard input with -)"
    return None


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely (class name, probability) pairs of each row, best first."""
    order = np.argsort(-probabilities, axis=1)[:, :k]
    return [[(class_names[i], float(row[i])) for i in idx] for row, idx in zip(probabilities, order)]
