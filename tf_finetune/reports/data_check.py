"""What is in the data and what is wrong with it, before training (``tf-finetune check-data``).

The data is read with the same readers as ``train`` (class folders checked by
:func:`~tf_finetune.data.images.check_image`, ``data.csv`` by
:func:`~tf_finetune.data.text.read_text_csv`), plus what training does not need: image headers
(mode, size), content hashes for duplicates within and across splits, and for text normalised
duplicates and label conflicts. No TensorFlow. Each finding is graded ``error`` (training
would fail), ``warning`` (training runs, the result may mislead) or ``note``, in one line that
says what to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf_finetune.data import DATA_FORMS, DataSplit, Examples, check_kind
from tf_finetune.data.batching import fit_batch
from tf_finetune.data.split import held_out
from tf_finetune.data.text import read_text_csv
from tf_finetune.errors import DataError
from tf_finetune.reports.duplicates import find_duplicates
from tf_finetune.reports.image_scan import read_images
from tf_finetune.reports.split_report import Finding, SplitReport, listed, spread
from tf_finetune.tasks import Task

LONG_TEXT_WORDS = 512  # "very long" for a text backbone without a sequence length
IMBALANCE_WARNING = 10.0  # largest / smallest class
IMBALANCE_NOTE = 3.0
FEW_EXAMPLES = 5


@dataclass
class DataReport:
    """The whole report: every split, the duplicates across them, what training would do, findings."""

    task: Task
    splits: list[SplitReport]
    training: dict[str, Any]
    duplicates: dict[str, Any]
    findings: list[Finding]
    task_reason: str = ""  # why the data was read as this task's data

    @property
    def read_as(self) -> str:
        """The form the data was read in, and why (``image class folders because …``)."""
        return DATA_FORMS[self.task] + (f" because {self.task_reason}" if self.task_reason else "")

    @property
    def ok(self) -> bool:
        """No finding of level ``error``."""
        return not any(f.level == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``, ``reports/data_report.json``)."""
        return {
            "task": self.task,
            "read_as": self.read_as,
            "ok": self.ok,
            "splits": {s.name: s.summary() for s in self.splits},
            "duplicates": self.duplicates,
            "training": self.training,
            "findings": [{"level": f.level, "message": f.message} for f in self.findings],
        }

    def format(self) -> str:
        """The report for the terminal."""
        lines = [f"data report ({self.task}): read as {self.read_as}"]
        for split in self.splits:
            summary = split.summary()
            lines.append(f"  {split.name}: {split.examples} examples, {len(split.classes)} classes ({split.path})")
            if split.classes:
                per_class = ", ".join(f"{k} {v}" for k, v in split.classes.items())
                lines.append(f"    per class: {per_class}; imbalance {summary['imbalance']}x")
            for key, value in split.details.items():
                lines.append(f"    {key.replace('_', ' ')}: {_short(value)}")
        for key, value in self.duplicates.items():
            lines.append(f"  duplicates {key}: {value['count']}")
        for key, value in self.training.items():
            lines.append(f"  {key.replace('_', ' ')}: {value}")
        counts = Counter(f.level for f in self.findings)
        lines.append(f"findings: {counts['error']} error(s), {counts['warning']} warning(s), {counts['note']} note(s)")
        lines += [f"  {f.level}: {f.message}" for f in self.findings]
        return "\n".join(lines)


def check_data(
    task: Task,
    data: str | Path,
    *,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    image_size: int | None = None,
    batch_size: int = 32,
    replicas: int = 1,
    validation_split_ratio: float = 0.2,
    max_text_words: int | None = None,
    workers: int = 8,
    task_reason: str = "",
) -> DataReport:
    """Read every split and report on it, as ``train`` would read it.

    Args:
        task: ``image`` or ``text``: the form the data is read in.
        data, validation, test: local paths of the splits (validation and test may be None).
        image_size: the model's input size, to count images smaller than it.
        batch_size, replicas: the per-replica batch and replicas, for steps per epoch.
        validation_split_ratio: held out of the training data when there is no validation split.
        max_text_words: the text model's sequence length, if it has one.
        workers: threads reading image files.
        task_reason: why the data is read as ``task`` data (see :func:`~tf_finetune.training.job_plan.plan`).

    Returns:
        The report; ``report.ok`` is False when training would fail on this data.
    """
    findings: list[Finding] = []
    splits = []
    for name, path in (("training", data), ("validation", validation), ("test", test)):
        if path is None:
            continue
        split = SplitReport(name, str(path))
        try:
            check_kind(task, Path(path))
            if task == Task.IMAGE:
                read_images(split, Path(path), image_size, findings, workers)
            else:
                _read_text(split, Path(path), max_text_words or LONG_TEXT_WORDS, findings)
        except DataError as exc:
            findings.append(Finding("error", f"{name}: {exc}"))
        splits.append(split)
    _check_classes(splits, task, findings)
    duplicates = find_duplicates(splits, task, findings, held_out=validation is None and validation_split_ratio > 0)
    training = _training(splits, batch_size, replicas, validation_split_ratio, findings)
    return DataReport(task, splits, training, duplicates, _graded(findings), task_reason)


def from_loaded(
    data: DataSplit, test: Examples | None = None, held_out: float = 0.0, paths: Mapping[str, str | None] | None = None
) -> DataReport:
    """The report of data ``train`` has already read (``load_data`` with ``inspect=inspect_image``
    for images), without reading any file again.

    Args:
        data: the :class:`~tf_finetune.data.DataSplit` (its validation may be held out of training).
        test: the test :class:`~tf_finetune.data.Examples`, if any.
        held_out: the share of training data held out for validation (0 with separate validation data).
        paths: split name -> where it was read from, for the report.
    """
    findings: list[Finding] = []
    splits = []
    names = data.label_map.class_names
    for name, examples in (("training", data.train), ("validation", data.validation), ("test", test)):
        if examples is None:
            continue
        split = SplitReport(
            name, "held out of training" if name == "validation" and held_out else str((paths or {}).get(name, ""))
        )
        split.examples = len(examples)
        counts = Counter(examples.labels)
        split.classes = {names[i]: counts.get(i, 0) for i in range(len(names))}
        for index, (item, label) in enumerate(zip(examples.inputs, examples.labels)):
            if data.task == Task.IMAGE:
                digest = (data.details or {}).get(item, {}).get("hash")
                if digest:
                    split.keys.setdefault(digest, []).append(item)
            else:
                split.add_text(f"line {examples.lines[index]}" if examples.lines else f"text {index + 1}", item, label)
        splits.append(split)
    _check_classes(splits, data.task, findings)
    duplicates = find_duplicates(splits, data.task, findings, held_out=bool(held_out))
    training = {
        "validation": f"{held_out:g} of the training data held out"
        if held_out
        else "the validation split"
        if data.validation is not None
        else "none"
    }
    return DataReport(data.task, splits, training, duplicates, _graded(findings))


def summary(report: DataReport) -> str:
    """The short block ``train`` logs at the start: counts, imbalance, duplicates across splits."""
    lines = []
    for split in report.splits:
        figures = split.summary()
        lines.append(
            f"data {split.name}: {split.examples} examples, {len(split.classes)} classes, "
            f"imbalance {figures['imbalance']}x"
        )
    across = {k: v["count"] for k, v in report.duplicates.items() if k.startswith("across")}
    if across:
        lines.append("data duplicates " + ", ".join(f"{k}: {v}" for k, v in across.items()))
    lines += [f"data {f.level}: {f.message}" for f in report.findings if f.level != "note"]
    return "\n".join(lines)


def _read_text(split: SplitReport, path: Path, long_words: int, findings: list[Finding]) -> None:
    rows = read_text_csv(path)
    split.path = str(rows.path)
    split.examples = len(rows.texts)
    split.classes = {str(k): v for k, v in sorted(Counter(rows.labels).items())}
    words = [len(text.split()) for text in rows.texts]
    long_rows = [i for i, n in enumerate(words) if n > long_words]
    split.details = {
        "label_to_index": {str(v): i for i, v in enumerate(sorted(set(rows.labels)))},
        "words": spread(words),
        f"longer_than_{long_words}_words": len(long_rows),
    }
    for text, label, line in zip(rows.texts, rows.labels, rows.lines):
        split.add_text(f"line {line}", text, label)
    if long_rows:
        findings.append(
            Finding(
                "note",
                f"{split.name}: {len(long_rows)} text(s) are longer than {long_words} "
                f"words ({listed(f'line {rows.lines[i]}' for i in long_rows)})",
            )
        )
    conflicts = [rows_ for rows_ in split.normalised.values() if len({label for _, label in rows_}) > 1]
    if conflicts:
        shown = listed(" / ".join(f"{w} label {label}" for w, label in rows_) for rows_ in conflicts)
        findings.append(
            Finding(
                "warning",
                f"{split.name}: {len(conflicts)} text(s) appear with different labels "
                f"(label conflicts): {shown}; keep one label per text",
            )
        )


def _check_classes(splits: list[SplitReport], task: Task, findings: list[Finding]) -> None:
    if not splits or not splits[0].classes:
        return
    training = set(splits[0].classes)
    if len(training) < 2:
        findings.append(Finding("error", f"training: {len(training)} class(es); at least 2 are needed"))
    counts = list(splits[0].classes.values())
    if min(counts) > 0:
        ratio = max(counts) / min(counts)
        if ratio >= IMBALANCE_NOTE:
            level = "warning" if ratio >= IMBALANCE_WARNING else "note"
            findings.append(
                Finding(
                    level,
                    f"training: classes are imbalanced {ratio:.1f}x (largest / smallest); "
                    "consider class_weights=auto or more examples of the small classes",
                )
            )
    few = [name for name, n in splits[0].classes.items() if 0 < n < FEW_EXAMPLES]
    if few:
        findings.append(
            Finding(
                "warning", f"training: class(es) with fewer than {FEW_EXAMPLES} examples: {listed(few)}; add examples"
            )
        )
    for split in splits[1:]:
        if not split.classes:
            continue
        unknown = sorted(set(split.classes) - training)
        missing = sorted(training - set(split.classes))
        if unknown:
            findings.append(
                Finding(
                    "error",
                    f"{split.name}: class(es) {listed(unknown)} are not in the training "
                    "data; training would stop on them: add them to training or remove them",
                )
            )
        if missing:
            level = "error" if task == Task.IMAGE else "warning"  # image splits must have the same folders
            findings.append(
                Finding(
                    level,
                    f"{split.name}: class(es) {listed(missing)} of the training data are "
                    "missing here"
                    + ("; add their folders" if task == Task.IMAGE else "; their scores will not be measured"),
                )
            )


def _training(
    splits: list[SplitReport], batch_size: int, replicas: int, ratio: float, findings: list[Finding]
) -> dict[str, Any]:
    """What ``train`` would do with the training split: the validation it holds out, the batch
    and the steps an epoch, by the functions ``train`` uses (per-class hold-out, batch fitting)."""

    if not splits or not splits[0].examples:
        return {}
    train = splits[0].examples
    held = sum(held_out(count, ratio) for count in splits[0].classes.values())
    if any(s.name == "validation" for s in splits):
        validation = "the validation split"
    elif held:
        validation = f"{ratio:g} of the training data held out ({held} examples)"
        train -= held
    else:
        validation = "none" + (
            f" (validation_split_ratio={ratio:g} holds out no example: too few per class)" if ratio > 0 else ""
        )
    batches = fit_batch(batch_size, replicas, train)
    if batches.warning():
        findings.append(Finding("warning", f"training: {batches.warning()}"))
    return {
        "validation": validation,
        "global_batch": f"{batches.global_batch} ({batches.batch_size} x {replicas} replica(s))",
        "steps_per_epoch": batches.steps,
    }


def _graded(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then notes (each in the order found)."""
    order = {"error": 0, "warning": 1, "note": 2}
    return sorted(findings, key=lambda f: order[f.level])


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)
