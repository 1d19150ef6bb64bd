"""Finding, checking and splitting training data, and the label mapping.

:func:`load_data` is the one entry: it reads text (``data.csv``) or image (class folders)
data, maps labels to class indices, and returns the train and validation examples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tf_finetune.data.images import list_images
from tf_finetune.data.labels import LabelMap, read_class_names
from tf_finetune.data.split import stratified_split
from tf_finetune.data.text import csv_files, find_names_file, read_text_csv
from tf_finetune.errors import DataError
from tf_finetune.tasks import Task

log = logging.getLogger(__name__)

__all__ = ["Examples", "DataSplit", "LabelMap", "load_data", "load_examples", "check_kind", "DATA_FORMS"]

DATA_FORMS = {Task.IMAGE: "image class folders", Task.TEXT: "a label,text CSV"}  # what each task's data is


@dataclass(frozen=True)
class Examples:
    """Model inputs and their class indices.

    Attributes:
        inputs: image file paths (image task) or texts (text task).
        labels: class index of each input.
        lines: text task: the CSV line each input starts on (to name it); empty for images.
    """

    inputs: tuple[str, ...]
    labels: tuple[int, ...]
    lines: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, indices: Sequence[int]) -> Examples:
        """The examples at ``indices``, in that order."""
        return Examples(
            tuple(self.inputs[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            tuple(self.lines[i] for i in indices) if self.lines else (),
        )


@dataclass(frozen=True)
class DataSplit:
    """What training needs from the data.

    Attributes:
        task: ``image`` or ``text``.
        train: training examples.
        validation: validation examples, or None when there are none.
        label_map: class names (and original text labels).
        details: image path -> what ``load_data``'s ``inspect`` found reading it, when given.
    """

    task: Task
    train: Examples
    validation: Examples | None
    label_map: LabelMap
    details: dict[str, dict] | None = None


def load_data(
    task: Task,
    train_path: str | Path,
    validation_path: str | Path | None = None,
    validation_split_ratio: float = 0.2,
    seed: int = 0,
    inspect: Callable[[str], dict] | None = None,
) -> DataSplit:
    """Read training (and optional validation) data for ``task`` and split it.

    Args:
        task: ``image`` or ``text``.
        train_path: class-folder root (image) or ``data.csv`` / its folder (text; a ``labels.json``
            beside it names the classes, see :func:`~tf_finetune.data.labels.read_class_names`).
        validation_path: separate validation data of the same kind; when None, a stratified
            ``validation_split_ratio`` share of the training data is held out.
        validation_split_ratio: share held out when there is no validation data; 0 for none.
        seed: seed of the split.
        inspect: images: checks each file and reports more in the same read (see
            :func:`~tf_finetune.data.images.list_images`); its results go to ``details``.

    Returns:
        The examples and the label mapping.

    Raises:
        DataError: missing or malformed data, with the file, line or folder to fix.
    """
    train_path = Path(train_path)
    check_kind(task, train_path)
    if task == Task.TEXT:
        train, label_map = _text_examples(train_path)
        validation = _text_examples(validation_path, label_map)[0] if validation_path else None
    details: dict[str, dict] | None = {} if inspect and task == Task.IMAGE else None
    if task == Task.IMAGE:
        train, label_map = _image_examples(train_path, None, inspect, details)
        validation = _image_examples(validation_path, label_map, inspect, details)[0] if validation_path else None
    if validation is None and validation_split_ratio > 0:
        train_idx, val_idx = stratified_split(train.labels, validation_split_ratio, seed)
        train, validation = train.subset(train_idx), train.subset(val_idx)
        if not len(validation):
            log.warning(
                "validation_split_ratio=%g holds out no example of %s (%d examples, too few "
                "per class): training runs without validation metrics; give validation data "
                "or more examples",
                validation_split_ratio,
                train_path,
                len(train),
            )
            validation = None
    return DataSplit(task, train, validation, label_map, details)


def load_examples(
    task: Task,
    path: str | Path,
    label_map: LabelMap,
    inspect: Callable[[str], dict] | None = None,
    details: dict | None = None,
) -> Examples:
    """Read held-out data (e.g. a test channel) with the classes of a training set.

    ``inspect`` and ``details`` are as in :func:`load_data` (``details`` is filled in).

    Raises:
        DataError: malformed data, or a label / class folder the training data does not have.
    """
    check_kind(task, Path(path))
    if task == Task.TEXT:
        return _text_examples(path, label_map)[0]
    return _image_examples(path, label_map, inspect, details)[0]


def check_kind(task: Task, path: Path) -> None:
    """Raise when ``path`` is clearly the other task's data (a .csv or a file for an image model, a
    folder without a .csv for a text model), before anything is read.

    Raises:
        DataError: what the data is and which kind of model reads it.
    """
    is_text = path.suffix.lower() == ".csv" or (
        path.is_dir() and any(p.name.lower() == "data.csv" for p in csv_files(path))
    )
    if task == Task.IMAGE and is_text:
        raise DataError(
            f"{path} holds text data (a .csv) but the model is an image model; "
            "choose a text model (tf-finetune list-models --task text)"
        )
    if task == Task.IMAGE and path.is_file():
        raise DataError(
            f"{path} is a file, but the model is an image model, which reads a folder with one "
            "sub-folder per class; for text data (label,text rows) choose a text model "
            "(tf-finetune list-models --task text)"
        )
    if task == Task.TEXT and path.is_dir() and not is_text and not csv_files(path):
        raise DataError(
            f"{path} holds no data.csv but the model is a text model; for image "
            "folders choose an image model (tf-finetune list-models --task image)"
        )


def _text_examples(path: str | Path, label_map: LabelMap | None = None) -> tuple[Examples, LabelMap]:
    rows = read_text_csv(path)
    if label_map is not None:
        unknown = sorted(set(rows.labels) - set(label_map.original_labels or ()))
        if unknown:
            raise DataError(f"{rows.path} has labels that the training data does not have: {unknown}")
    names_file = find_names_file(rows.path)
    names = read_class_names(names_file) if names_file else None
    if names is not None:
        names.check(rows.labels, rows.path, label_map)
    if label_map is None:
        label_map = LabelMap.from_integer_labels(rows.labels, names.names if names else None)
        if label_map.num_classes < 2:
            raise DataError(f"{rows.path} has only one class (label {rows.labels[0]}); at least 2 classes are needed")
    index = {label: i for i, label in enumerate(label_map.original_labels or ())}
    log.info("read %d rows, %d classes from %s", len(rows.texts), label_map.num_classes, rows.path)
    examples = Examples(rows.texts, tuple(index[v] for v in rows.labels), rows.lines)
    _warn_absent_classes(rows.path, examples, label_map)
    return examples, label_map


def _image_examples(
    path: str | Path,
    label_map: LabelMap | None = None,
    inspect: Callable[[str], dict] | None = None,
    details: dict | None = None,
) -> tuple[Examples, LabelMap]:
    files = list_images(path, label_map.class_names if label_map else None, inspect=inspect)
    if details is not None and files.details:
        details.update(zip(files.paths, files.details))
    log.info("found %d images in %d classes under %s", len(files.paths), len(set(files.labels)), path)
    examples = Examples(files.paths, files.labels)
    _warn_absent_classes(path, examples, label_map)
    return examples, label_map or LabelMap(files.class_names)


def _warn_absent_classes(path: str | Path, examples: Examples, label_map: LabelMap | None) -> None:
    """Held-out data (``label_map`` given) may lack classes: allowed, but said once."""
    if label_map is None:
        return
    present = set(examples.labels)
    absent = [name for index, name in enumerate(label_map.class_names) if index not in present]
    if absent:
        log.warning(
            "%s has no examples of %d of the %d classes (%s): their recall is not measured",
            path,
            len(absent),
            label_map.num_classes,
            ", ".join(absent),
        )
