"""One split of the data as ``check-data`` reads it, and one thing it found: the pieces the data checks share.

:class:`SplitReport` holds a split's counts, figures and the content keys duplicates are found by;
:class:`Finding` is one graded line of the report. The helpers shape figures and lists the same way
in every check (:func:`spread`, :func:`listed`). No TensorFlow.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SHOWN = 5  # examples listed per finding


@dataclass(frozen=True)
class Finding:
    """One thing the report found: ``level`` (error, warning, note) and what to do about it."""

    level: str
    message: str


@dataclass
class SplitReport:
    """One split (training, validation or test) as read.

    Attributes:
        name: training, validation or test.
        path: where it was read from.
        examples: usable examples.
        classes: class name (text: the label as written) -> usable examples.
        details: task-specific figures (image sizes and modes, extensions; text lengths).
        keys: content hash -> where it occurs (file paths, or ``line N``), for duplicates.
        normalised: text only: normalised text -> [(where, label)].
    """

    name: str
    path: str
    examples: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)
    normalised: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def add_text(self, where: str, text: str, label: int) -> None:
        """Index one text for exact and normalised duplicates (and label conflicts)."""
        self.keys.setdefault(digest(text.encode("utf-8")), []).append(where)
        self.normalised.setdefault(normalise(text), []).append((where, label))

    def summary(self) -> dict[str, Any]:
        """The split as JSON-ready figures."""
        counts: list[int] = list(self.classes.values())
        smallest = min(counts, default=0)
        imbalance = round(max(counts) / smallest, 2) if smallest else None
        return {
            "path": self.path,
            "examples": self.examples,
            "classes": len(self.classes),
            "per_class": dict(self.classes),
            "imbalance": imbalance,
            **self.details,
        }


def digest(content: bytes) -> str:
    """The content key duplicates are found by (a short BLAKE2b hex digest)."""
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def normalise(text: str) -> str:
    """The text with runs of whitespace made one space, trimmed and case-folded."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def spread(values: list[int]) -> dict[str, float] | None:
    """Smallest, median and largest of ``values`` (None when there are none)."""
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def listed(items: Iterable[Any], limit: int = SHOWN) -> str:
    """The first ``limit`` items, comma-separated, and how many more there are."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")
