"""The examples a model gets wrong, most confidently wrong first: a picture grid for images
(``misclassified.png``), a CSV for text (``misclassified.csv``), and the per-class table
(``per_class.txt``). Written after training (validation data) and by ``evaluate``.
"""
from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def mistakes(inputs: Sequence[str], truth: Sequence[int], probabilities: np.ndarray,
             class_names: Sequence[str]) -> list[Mistake]:
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
    return [Mistake(str(inputs[i]), class_names[truth[i]], class_names[predicted[i]],
                    float(probabilities[i, predicted[i]])) for i in wrong]


def write_gallery(task: str, found: Sequence[Mistake], report_table: str, directory: Path) -> list[Path]:
    """Write the mistakes (a PNG grid for images, a CSV for text) and the per-class table.

    Returns:
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    table = directory / PER_CLASS_TXT
    table.write_text(report_table + "\n", encoding="utf-8")
    written = [table]
    if task == "image":
        from tf_finetune.plots import image_grid

        shown = found[:MAX_TILES]
        tiles = [(m.input, f"true: {m.true}\npredicted: {m.predicted} ({m.probability:.2f})") for m in shown]
        title = (f"misclassified, most confident first ({len(shown)} of {len(found)})" if found
                 else "no misclassified examples")
        written.append(image_grid(tiles, directory / GALLERY_PNG, title))
    else:
        written.append(_write_csv(found, directory / MISTAKES_CSV))
        for mistake in found[:LOGGED]:
            log.info("mistake: %r is %s, predicted %s (%.2f)", _clip(mistake.input), mistake.true,
                     mistake.predicted, mistake.probability)
    return written


def _write_csv(found: Sequence[Mistake], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "true", "predicted", "probability"])
        writer.writerows([m.input, m.true, m.predicted, f"{m.probability:.4f}"] for m in found)
    return path


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
