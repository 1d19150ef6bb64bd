"""The mapping between class indices, class names and (for text) the original labels."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


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

    @classmethod
    def from_integer_labels(cls, labels: Sequence[int]) -> LabelMap:
        """Contiguous indices for any integer labels, in increasing label order."""
        unique = sorted(set(labels))
        return cls(tuple(str(v) for v in unique), tuple(unique))

    def to_json(self) -> str:
        """The label-mapping file written next to the SavedModel."""
        document = {
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "index_to_name": {str(i): n for i, n in enumerate(self.class_names)},
        }
        if self.original_labels is not None:
            document["original_labels"] = list(self.original_labels)
            document["index_to_original_label"] = {
                str(i): v for i, v in enumerate(self.original_labels)}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabelMap:
        """Read a file written by :meth:`to_json`."""
        document = json.loads(text)
        original = document.get("original_labels")
        return cls(tuple(document["class_names"]), tuple(original) if original else None)
