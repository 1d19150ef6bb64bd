"""The examples a model gets wrong, most confidently wrong first: a CSV naming each one
(``misclassified.csv``: the image file or the text), for images also a picture grid
(``misclassified.png``), and the per-class table (``per_class.txt``). Written after training
(validation data) and by ``evaluate``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tf_finetune.reports.plots import image_grid
from tf_finetune.tasks import Task

log = logging.getLogger(__name__)

GALLERY_PNG = "misclassified.png"
MISTAKES_CSV = "misclassified.csv"
PER_CLASS_TXT = "per_class.txt"
MAX_TILES = 36
LOGGED = 10


@dataclass(frozen=True)
class Mistake:
    """One example the model got wrong.

    Attributes:
        input: the image path or the text.
        true: the true class name.
        predicted: the predicted class name.
        probability: the probability of the predicted class.
    """

    input: str
    true: str
    predicted: str
    probability: float


def mistakes(
    inputs: Sequence[str], truth: Sequence[int], probabilities: np.ndarray, class_names: Sequence[str]
) -> list[Mistake]:
    """The wrongly classified examples, most confident first (ties in input order).

    Args:
        inputs: image paths or texts.
        truth: the true class index of each.
        probabilities: ``[examples, classes]`` predicted probabilities.
        class_names: names in index order.
    """
    predicted = probabilities.argmax(axis=1)
    wrong = [i for i in range(len(inputs)) if predicted[i] != truth[i]]
    wrong.sort(key=lambda i: -float(probabilities[i, predicted[i]]))
    return [
        Mistake(str(inputs[i]), class_names[truth[i]], class_names[predicted[i]], float(probabilities[i, predicted[i]]))
        for i in wrong
    ]


def write_gallery(task: Task, found: Sequence[Mistake], report_table: str, directory: Path) -> list[Path]:
    """Write the per-class table, the mistakes as a CSV and, for images, as a PNG grid.

    Args:
        task: ``image`` or ``text``.
        found: the mistakes, most confident first (see :func:`mistakes`).
        report_table: the per-class table (``evaluation.format_report``).
        directory: where to write (created).

    Returns:
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    table = directory / PER_CLASS_TXT
    table.write_text(report_table + "\n", encoding="utf-8")
    written = [table, _write_csv(task, found, directory / MISTAKES_CSV)]
    if task == Task.IMAGE:
        shown = found[:MAX_TILES]
        title = (
            f"misclassified, most confident first ({len(shown)} of {len(found)})"
            if found
            else "no misclassified examples"
        )
        written.append(image_grid([(m.input, tile_caption(m)) for m in shown], directory / GALLERY_PNG, title))
    else:
        for mistake in found[:LOGGED]:
            log.info(
                "mistake: %r is %s, predicted %s (%.2f)",
                _clip(mistake.input),
                mistake.true,
                mistake.predicted,
                mistake.probability,
            )
    return written


def tile_caption(mistake: Mistake) -> str:
    """The caption of an image's tile: the file (its folder and name, so it can be found and
    fixed), the true class and the predicted one with its probability."""
    path = Path(mistake.input)
    return (
        f"{path.parent.name}/{path.name}\ntrue: {mistake.true}\n"
        f"predicted: {mistake.predicted} ({mistake.probability:.2f})"
    )


def _write_csv(task: Task, found: Sequence[Mistake], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path" if task == Task.IMAGE else "text", "true", "predicted", "probability"])
        writer.writerows([m.input, m.true, m.predicted, f"{m.probability:.4f}"] for m in found)
    return path


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
