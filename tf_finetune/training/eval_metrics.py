"""Validation metrics besides loss and accuracy, for ``eval_metric`` (numpy only).

With two classes they are those of class 1 (the positive class, as JumpStart's binary
classifiers report them); with more, the mean over classes, each class against the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy only where a metric is computed: the registry commands stay light
    import numpy as np

    from tf_finetune.hyperparameters import Hyperparameters


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (the loss), or larger (the others)."""
    return metric == "loss"


def mode(metric: str) -> str:
    """``min`` or ``max``: what Keras's ``EarlyStopping`` calls the direction of ``metric``."""
    return "min" if lower_is_better(metric) else "max"


def is_better(metric: str, value: float, than: float) -> bool:
    """Whether ``value`` of ``metric`` beats ``than``."""
    return value < than if lower_is_better(metric) else value > than


def extra_metrics(hp: Hyperparameters) -> tuple[str, ...]:
    """Validation metrics to compute besides loss and accuracy: the ``eval_metric``, if other."""
    return () if hp.eval_metric in ("loss", "accuracy") else (hp.eval_metric,)


def score(name: str, probabilities: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """``precision``, ``recall`` (of the predicted class, argmax), ``auc`` (area under the ROC
    curve) or ``prc`` (average precision, the area under the precision-recall curve).

    Args:
        name: the metric.
        probabilities: ``[n, classes]`` class probabilities.
        labels: the class index of each row.

    Returns:
        The metric, in [0, 1].
    """
    import numpy as np

    labels = np.asarray(labels)
    classes = [1] if probabilities.shape[1] == 2 else range(probabilities.shape[1])
    predicted = probabilities.argmax(axis=1)
    values = []
    for c in classes:
        truth, scores = labels == c, probabilities[:, c]
        if name == "precision":
            values.append(np.sum(truth & (predicted == c)) / max(np.sum(predicted == c), 1))
        elif name == "recall":
            values.append(np.sum(truth & (predicted == c)) / max(np.sum(truth), 1))
        elif name == "auc":
            values.append(_roc_auc(truth, scores))
        elif name == "prc":
            values.append(_average_precision(truth, scores))
        else:
            raise ValueError(f"unknown metric {name!r}")
    return float(np.mean(values))


def _roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """The probability that a positive scores above a negative (ties count half)."""
    import numpy as np

    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return 0.5
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """The area under the precision-recall curve as a step sum over the distinct scores, from
    the highest: each threshold's precision times the recall it adds (tied scores together)."""
    import numpy as np

    positives = int(truth.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], truth[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    true_positives = np.cumsum(hits)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall_added = np.diff(np.r_[0, true_positives]) / positives
    return float(np.sum(precision * recall_added))
