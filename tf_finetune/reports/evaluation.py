"""Classification metrics: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tf_finetune.reports import plots

EVALUATION_FILE = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"


def classification_report(truth: Sequence[int], predicted: Sequence[int], class_names: Sequence[str]) -> dict[str, Any]:
    """Metrics of ``predicted`` class indices against ``truth``.

    Args:
        truth: true class index per example.
        predicted: predicted class index per example.
        class_names: names in index order.

    Returns:
        ``accuracy``, ``macro_f1``, ``per_class`` (name -> precision, recall, f1, support),
        ``confusion_matrix`` (rows: true class, columns: predicted), ``num_examples`` and
        ``absent_classes`` (names with no example in ``truth``). A class never predicted has
        precision 0; an absent class has recall 0, and ``macro_f1`` averages over the classes in
        ``truth`` or ``predicted`` only (as scikit-learn does), so a test set that lacks a class
        the model never predicts is not marked down for it.
    """
    n = len(class_names)
    truth, predicted = np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (truth, predicted), 1)
    hits = np.diag(matrix).astype(float)
    predicted_count, true_count = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted_count, out=np.zeros(n), where=predicted_count > 0)
    recall = np.divide(hits, true_count, out=np.zeros(n), where=true_count > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n), where=denominator > 0)
    seen = (true_count > 0) | (predicted_count > 0)
    return {
        "num_examples": int(len(truth)),
        "accuracy": float(hits.sum() / max(len(truth), 1)),
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(true_count[i]),
            }
            for i, name in enumerate(class_names)
        },
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
        "absent_classes": [name for i, name in enumerate(class_names) if true_count[i] == 0],
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as a text table, as ``evaluate`` prints it."""
    width = max(10, *(len(n) for n in report["class_names"]))
    lines = [f"{'class':<{width}}  precision  recall      f1  support"]
    for name, row in report["per_class"].items():
        absent = "  (not in the test data)" if name in report.get("absent_classes", ()) else ""
        lines.append(
            f"{name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  "
            f"{row['f1']:6.4f}  {row['support']:7d}{absent}"
        )
    lines.append(
        f"accuracy={report['accuracy']:.4f} macro_f1={report['macro_f1']:.4f} examples={report['num_examples']}"
    )
    return "\n".join(lines)


def write_report(report: dict[str, Any], directory: Path, title: str = "") -> list[Path]:
    """Write ``evaluation.json`` and ``confusion_matrix.png`` into ``directory``.

    Returns:
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / EVALUATION_FILE
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    png = plots.confusion_matrix(report["confusion_matrix"], report["class_names"], directory / CONFUSION_PNG, title)
    return [json_path, png]
