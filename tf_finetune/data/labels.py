"""The mapping between class indices, class names and (for text) the original labels.

Text data names its classes with an optional ``labels.json`` beside ``data.csv``: a JSON object
mapping each integer label to its name (``{"0": "ham", "1": "spam"}``); without it a class is
named by its label.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tf_finetune.data.text import NAMES_FILE, parse_label
from tf_finetune.errors import DataError

NAMES_EXAMPLE = '{"0": "ham", "1": "spam"}'


@dataclass(frozen=True)
class LabelMap:
    """Class index ``i`` is ``class_names[i]``; text data also keeps its original integer labels.

    Attributes:
        class_names: one name per class, in index order.
        original_labels: for text data, the integer label of each class in the CSV.
    """

    class_names: tuple[str, ...]
    original_labels: tuple[int, ...] | None = None

    @property
    def num_classes(self) -> int:
        """How many classes there are."""
        return len(self.class_names)

    @property
    def named(self) -> bool:
        """Whether text classes have names of their own (from a names file), not their labels."""
        return self.original_labels is not None and self.class_names != _label_names(self.original_labels)

    @classmethod
    def from_integer_labels(cls, labels: Sequence[int], names: Mapping[int, str] | None = None) -> LabelMap:
        """Contiguous indices for any integer labels, in increasing label order.

        Args:
            labels: the labels of the data (repeats allowed).
            names: label -> class name for every label (see :meth:`ClassNames.check`); each
                class is named by its label when None.
        """
        unique = sorted(set(labels))
        return cls(tuple(names[v] for v in unique) if names else _label_names(unique), tuple(unique))

    def names_json(self) -> str:
        """The ``labels.json`` to put beside ``data.csv`` for these text classes."""
        return json.dumps({str(v): n for v, n in zip(self.original_labels or (), self.class_names)}, ensure_ascii=False)

    def mismatch(self, model: LabelMap) -> str | None:
        """Why data with these classes cannot continue training a model with ``model``'s, or None.

        Classes match by name. A text model whose classes have no names (they are named by their
        labels) takes the data's names for the same labels; other renamings are refused, so a
        continued model answers with the names of the one it continues.
        """
        if self.class_names == model.class_names:
            return None
        if self.original_labels is not None and self.original_labels == model.original_labels:
            if not model.named:
                return None
            given = (
                "names them " + ", ".join(map(repr, self.class_names))
                if self.named
                else f"names none (no {NAMES_FILE} beside data.csv)"
            )
            return (
                f"its classes are named {', '.join(map(repr, model.class_names))} (labels "
                f"{', '.join(map(str, model.original_labels or ()))}) and the data {given}; "
                f"put the model's names in {NAMES_FILE} beside data.csv: {model.names_json()}"
            )
        old, new = set(model.class_names), set(self.class_names)
        return (
            f"its classes differ from the data's. Only in the model: {sorted(old - new) or 'none'}; "
            f"only in the data: {sorted(new - old) or 'none'}"
            + ("; same classes in another order" if old == new else "")
            + ". Train from a backbone instead, or use data with the model's classes."
        )

    def to_json(self) -> str:
        """The label-mapping file written next to the SavedModel."""
        document = {
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "index_to_name": {str(i): n for i, n in enumerate(self.class_names)},
        }
        if self.original_labels is not None:
            document["original_labels"] = list(self.original_labels)
            document["index_to_original_label"] = {str(i): v for i, v in enumerate(self.original_labels)}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabelMap:
        """Read a file written by :meth:`to_json`."""
        document = json.loads(text)
        original = document.get("original_labels")
        return cls(tuple(document["class_names"]), tuple(original) if original else None)


class _Pairs(list):
    """A JSON object as its (key, value) pairs in file order, a repeated key kept."""


@dataclass(frozen=True)
class ClassNames:
    """A class names file of text data: the name of each integer label of the CSV beside it.

    Attributes:
        path: the file.
        names: integer label -> class name.
    """

    path: Path
    names: Mapping[int, str]

    def check(self, labels: Collection[int], data_file: Path, training: LabelMap | None = None) -> None:
        """Check the names against the data they name.

        Args:
            labels: the labels of ``data_file``: each must have a name.
            data_file: the CSV beside the names file.
            training: the training classes, for held-out data: the names must be theirs. For
                training data (None), every name must be of a label in ``data_file``.

        Raises:
            DataError: naming the file, the labels concerned and what to do.
        """
        missing = sorted(set(labels) - set(self.names))
        if missing:
            raise DataError(
                f"{self.path} has no name for label(s) {_listing(missing)}, which {data_file} "
                f"has; give every label of the data a name, e.g. {NAMES_EXAMPLE}"
            )
        if training is None:
            extra = sorted(set(self.names) - set(labels))
            if extra:
                raise DataError(
                    f"{self.path} names label(s) {_listing(extra)}, which {data_file} does not "
                    "have; remove them, or add rows of those classes"
                )
            return
        known = dict(zip(training.original_labels or (), training.class_names))
        conflicts = [
            f"label {label} is {name!r} here and "
            + (f"{known[label]!r} in training" if label in known else "not a training class")
            for label, name in sorted(self.names.items())
            if known.get(label) != name
        ]
        if not conflicts:
            return
        fix = (
            f"give this data the training data's {NAMES_FILE}, or none: {training.names_json()}"
            if training.named
            else f"the training classes have no names (no {NAMES_FILE} beside "
            f"the training data): put this {NAMES_FILE} beside the training data too, or remove it"
        )
        raise DataError(f"{self.path} contradicts the training data's class names ({'; '.join(conflicts)}); {fix}")


def read_class_names(path: Path) -> ClassNames:
    """Read and check a class names file: a JSON object of integer label -> non-empty, unique name.

    Raises:
        DataError: naming the file and the first problem (not UTF-8 or not JSON, with the line;
            not an object; a key that is not an integer or repeats a label; a name that is not a
            string, is empty, has surrounding spaces or control characters, or repeats another).
    """
    what = f"write one object mapping each integer label to its class name, e.g. {NAMES_EXAMPLE}"
    try:
        text = path.read_bytes().decode("utf-8-sig")
        document = json.loads(text, object_pairs_hook=_Pairs)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); {what}"
        ) from None
    if not isinstance(document, _Pairs):
        raise DataError(f"{path} holds {json.dumps(document, ensure_ascii=False)[:60]}, not an object; {what}")
    if "class_names" in dict(document):  # a model's labels.json, copied here
        model = LabelMap.from_json(text)
        raise DataError(
            f"{path} is a model's labels.json; beside data.csv, {NAMES_FILE} maps each integer "
            f"label to its class name: write {model.names_json() if model.named else NAMES_EXAMPLE}"
        )
    names: dict[int, str] = {}
    for key, name in document:
        label = parse_label(key)
        if label is None:
            raise DataError(f"{path}: key {key!r} is not an integer label; {what}")
        if label in names:
            raise DataError(f"{path} names label {label} twice ({names[label]!r} and {name!r}); keep one")
        if not isinstance(name, str) or not name.strip():
            raise DataError(
                f"{path}: the name of label {label} is {json.dumps(name, ensure_ascii=False)}; "
                "a class name is a non-empty string"
            )
        if name != name.strip() or not name.isprintable():
            raise DataError(
                f"{path}: the name of label {label}, {name!r}, has surrounding spaces or a "
                "control character (line break, tab); write the name alone"
            )
        twin = next((other for other, existing in names.items() if existing == name), None)
        if twin is not None:
            raise DataError(
                f"{path}: labels {twin} and {label} are both named {name!r}; each class needs a name of its own"
            )
        names[label] = name
    return ClassNames(path, names)


def _label_names(labels: Sequence[int]) -> tuple[str, ...]:
    """Classes without a names file are named by their labels."""
    return tuple(str(v) for v in labels)


def _listing(labels: Sequence[int]) -> str:
    return ", ".join(map(str, labels))
