"""The eval_metric values, checked against scikit-learn (tf_finetune.training.eval_metrics)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from tf_finetune.training import eval_metrics

RNG = np.random.default_rng(3)


def probabilities(n: int, classes: int) -> np.ndarray:
    raw = RNG.random((n, classes))
    raw[: n // 4] = np.round(raw[: n // 4], 1)  # some tied scores
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("classes", [2, 4])
def test_scores_match_scikit_learn(classes):
    p = probabilities(200, classes)
    labels = RNG.integers(0, classes, 200)
    predicted = p.argmax(axis=1)
    if classes == 2:  # the positive class, as JumpStart reports binary classifiers
        expected = {
            "precision": sk.precision_score(labels, predicted),
            "recall": sk.recall_score(labels, predicted),
            "auc": sk.roc_auc_score(labels, p[:, 1]),
            "prc": sk.average_precision_score(labels, p[:, 1]),
        }
    else:  # each class against the rest, averaged
        onehot = np.eye(classes)[labels]
        expected = {
            "precision": sk.precision_score(labels, predicted, average="macro", zero_division=0),
            "recall": sk.recall_score(labels, predicted, average="macro", zero_division=0),
            "auc": sk.roc_auc_score(onehot, p, average="macro"),
            "prc": sk.average_precision_score(onehot, p, average="macro"),
        }
    for name, value in expected.items():
        assert eval_metrics.score(name, p, labels) == pytest.approx(value, abs=1e-9), name


def test_a_class_absent_from_the_labels_does_not_divide_by_zero():
    p = np.array([[0.9, 0.1], [0.8, 0.2]])
    assert eval_metrics.score("auc", p, [0, 0]) == 0.5
    assert eval_metrics.score("prc", p, [0, 0]) == 0.0
    assert eval_metrics.score("recall", p, [0, 0]) == 0.0


def test_direction_of_each_metric():
    assert eval_metrics.mode("loss") == "min" and eval_metrics.is_better("loss", 0.1, 0.2)
    assert eval_metrics.mode("auc") == "max" and eval_metrics.is_better("auc", 0.9, 0.8)
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        eval_metrics.score("f2", np.eye(2), [0, 1])
