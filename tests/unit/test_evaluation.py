"""The classification report of ``evaluate`` and of every run's validation (tf_finetune.reports.evaluation)."""

from __future__ import annotations

import json

import pytest


def test_classification_report_counts():
    from tf_finetune.reports.evaluation import classification_report

    report = classification_report([0, 0, 1, 1, 2], [0, 1, 1, 1, 1], ["a", "b", "c"])
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert report["accuracy"] == pytest.approx(0.6)
    assert report["per_class"]["b"] == {
        "precision": pytest.approx(0.5),
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert report["per_class"]["c"]["f1"] == 0.0  # never predicted, no division error
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def test_classification_report_leaves_absent_classes_out_of_macro_f1():
    from tf_finetune.reports.evaluation import classification_report, format_report

    # "c" is neither in the test data nor predicted: reported, marked, and not averaged in.
    report = classification_report([0, 0, 1, 1], [0, 0, 1, 0], ["a", "b", "c"])
    assert report["absent_classes"] == ["c"] and report["per_class"]["c"]["support"] == 0
    f1_a, f1_b = 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5
    assert report["macro_f1"] == pytest.approx((f1_a + f1_b) / 2)
    assert format_report(report).splitlines()[3].endswith("0  (not in the test data)")
    # Predicted though absent: its false positives count (F1 0 in the average).
    report = classification_report([0, 0, 1, 1], [0, 2, 1, 1], ["a", "b", "c"])
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_the_report_is_written_as_json_and_a_confusion_matrix(tmp_path):
    from tf_finetune.reports.evaluation import classification_report, write_report

    report = classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])
    written = write_report(report, tmp_path / "eval", "title")
    assert [p.name for p in written] == ["evaluation.json", "confusion_matrix.png"]
    assert json.loads(written[0].read_text()) == report
    assert written[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
