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

import hashlib
import os
import re
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf_finetune.data import DATA_FORMS, DataSplit, Examples, check_kind
from tf_finetune.errors import DataError

LONG_TEXT_WORDS = 512  # "very long" for a text backbone without a sequence length
IMBALANCE_WARNING = 10.0  # largest / smallest class
IMBALANCE_NOTE = 3.0
FEW_EXAMPLES = 5
SHOWN = 5  # examples listed per finding
_MODES = {
    "L": "grayscale",
    "LA": "grayscale+alpha",
    "1": "black-and-white",
    "CMYK": "CMYK",
    "RGBA": "alpha",
    "P": "palette",
    "I;16": "16-bit",
    "I;16B": "16-bit",
    "I": "32-bit integer",
    "F": "32-bit float",
}


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
        self.keys.setdefault(_digest(text.encode("utf-8")), []).append(where)
        self.normalised.setdefault(_normalise(text), []).append((where, label))

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


@dataclass
class DataReport:
    """The whole report: every split, the duplicates across them, what training would do, findings."""

    task: str
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
    task: str,
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
            if task == "image":
                _read_images(split, Path(path), image_size, findings, workers)
            else:
                _read_text(split, Path(path), max_text_words or LONG_TEXT_WORDS, findings)
        except DataError as exc:
            findings.append(Finding("error", f"{name}: {exc}"))
        splits.append(split)
    _check_classes(splits, task, findings)
    duplicates = _duplicates(splits, task, findings, held_out=validation is None and validation_split_ratio > 0)
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
            if data.task == "image":
                digest = (data.details or {}).get(item, {}).get("hash")
                if digest:
                    split.keys.setdefault(digest, []).append(item)
            else:
                split.add_text(f"line {examples.lines[index]}" if examples.lines else f"text {index + 1}", item, label)
        splits.append(split)
    _check_classes(splits, data.task, findings)
    duplicates = _duplicates(splits, data.task, findings, held_out=bool(held_out))
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


def _mixed_extensions(where: str, paths: list[str]) -> list[Finding]:
    """A note naming the images whose extension is not the usual one of the split, if any."""
    extensions = Counter(Path(p).suffix.lower() for p in paths)
    if len(extensions) < 2:
        return []
    usual = extensions.most_common(1)[0][0]
    others = [p for p in paths if Path(p).suffix.lower() != usual]
    return [
        Finding(
            "note", f"{where}: {len(others)} image(s) have another extension than the usual {usual}: {_list(others)}"
        )
    ]


def _walk_class_folders(
    root: Path, folders: list[Path]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(image file, class) pairs, (other file, class) pairs and hidden entries under the folders."""
    from tf_finetune.data.images import IMAGE_EXTENSIONS

    hidden = [p.name for p in root.iterdir() if p.name.startswith(".")]
    files: list[tuple[str, str]] = []
    ignored: list[tuple[str, str]] = []
    for folder in folders:
        for current, dirs, names in os.walk(folder, followlinks=False):
            hidden += [os.path.join(current, n) for n in dirs + names if n.startswith(".")]
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(n for n in names if not n.startswith(".")):
                path = os.path.join(current, name)
                (files if name.lower().endswith(IMAGE_EXTENSIONS) else ignored).append((path, folder.name))
    return files, ignored, hidden


def _read_images(split: SplitReport, root: Path, image_size: int | None, findings: list[Finding], workers: int) -> None:
    from tf_finetune.data.images import IMAGE_EXTENSIONS, check_layout, list_class_folders

    folders = list_class_folders(root)
    files, ignored, hidden = _walk_class_folders(root, folders)
    check_layout(root, folders, [path for path, _ in files])
    infos = _inspect_all([p for p, _ in files], workers)
    classes = Counter({folder.name: 0 for folder in folders})
    skipped, widths, heights, small, misnamed = [], [], [], 0, []
    modes: Counter[str] = Counter()
    for (path, label), info in zip(files, infos):
        split.keys.setdefault(info["hash"], []).append(path)
        if info["problem"]:
            skipped.append(f"{path} ({info['problem']})")
            continue
        classes[label] += 1
        width, height = info["size"]
        widths.append(width)
        heights.append(height)
        small += bool(image_size and min(width, height) < image_size)
        if info["mode"] != "RGB":
            modes[_MODES.get(info["mode"], info["mode"])] += 1
        if (info["format"] == "PNG") != path.lower().endswith(".png"):
            misnamed.append(f"{path} ({info['format']})")
    split.classes = dict(classes)
    split.examples = sum(classes.values())
    split.details = {
        "extensions": dict(Counter(Path(p).suffix.lower() for p, _ in files + ignored)),
        "width": _spread(widths),
        "height": _spread(heights),
        "non_rgb": dict(modes),
        "skipped": len(skipped),
        "ignored_files": len(ignored),
        "hidden": len(hidden),
    }
    if image_size:
        split.details[f"smaller_than_{image_size}"] = small
    where = split.name
    if skipped:
        findings.append(
            Finding(
                "warning",
                f"{where}: {len(skipped)} image file(s) cannot be used and will be "
                f"skipped: {_list(skipped)}; fix or remove them",
            )
        )
    if ignored:
        findings.append(
            Finding(
                "note",
                f"{where}: {len(ignored)} file(s) are not {'/'.join(IMAGE_EXTENSIONS)} "
                f"and are ignored: {_list(p for p, _ in ignored)}",
            )
        )
    findings.extend(_mixed_extensions(where, [p for p, _ in files]))
    if misnamed:
        findings.append(
            Finding(
                "note",
                f"{where}: {len(misnamed)} image(s) are named for another format than "
                f"their content (they still train): {_list(misnamed)}; rename them",
            )
        )
    if hidden:
        findings.append(
            Finding("note", f"{where}: {len(hidden)} hidden file(s)/folder(s) are ignored: {_list(hidden)}")
        )
    if small:
        findings.append(
            Finding(
                "note",
                f"{where}: {small} image(s) have a side shorter than the model's {image_size} px and are enlarged",
            )
        )
    if modes:
        described = ", ".join(f"{n} {m}" for m, n in modes.items())
        findings.append(Finding("note", f"{where}: {described} image(s) are converted to RGB"))
    for name, count in classes.items():
        if count == 0:
            findings.append(
                Finding(
                    "error", f"{where}: class folder {root / name} has no usable image; add images or remove the folder"
                )
            )


def _inspect_all(paths: list[str], workers: int) -> list[dict[str, Any]]:
    """:func:`inspect_image` of each path, on ``workers`` threads, in order."""
    from PIL import Image

    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=workers) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return list(pool.map(inspect_image, paths))


def inspect_image(path: str) -> dict[str, Any]:
    """One read of an image file: ``problem`` (as :func:`~tf_finetune.data.images.check_image`
    says), content ``hash``, and ``size``, ``mode``, ``format`` from its header."""
    from PIL import Image

    from tf_finetune.data.images import check_image

    with open(path, "rb") as handle:
        digest = _digest(handle.read())
    info = {"hash": digest, "problem": check_image(path), "size": (0, 0), "mode": None, "format": None}
    if not info["problem"]:
        with Image.open(path) as image:
            info["size"], info["mode"], info["format"] = image.size, image.mode, image.format
    return info


def _read_text(split: SplitReport, path: Path, long_words: int, findings: list[Finding]) -> None:
    from tf_finetune.data.text import read_text_csv

    rows = read_text_csv(path)
    split.path = str(rows.path)
    split.examples = len(rows.texts)
    split.classes = {str(k): v for k, v in sorted(Counter(rows.labels).items())}
    words = [len(text.split()) for text in rows.texts]
    long_rows = [i for i, n in enumerate(words) if n > long_words]
    split.details = {
        "label_to_index": {str(v): i for i, v in enumerate(sorted(set(rows.labels)))},
        "words": _spread(words),
        f"longer_than_{long_words}_words": len(long_rows),
    }
    for text, label, line in zip(rows.texts, rows.labels, rows.lines):
        split.add_text(f"line {line}", text, label)
    if long_rows:
        findings.append(
            Finding(
                "note",
                f"{split.name}: {len(long_rows)} text(s) are longer than {long_words} "
                f"words ({_list(f'line {rows.lines[i]}' for i in long_rows)})",
            )
        )
    conflicts = [rows_ for rows_ in split.normalised.values() if len({label for _, label in rows_}) > 1]
    if conflicts:
        shown = _list(" / ".join(f"{w} label {label}" for w, label in rows_) for rows_ in conflicts)
        findings.append(
            Finding(
                "warning",
                f"{split.name}: {len(conflicts)} text(s) appear with different labels "
                f"(label conflicts): {shown}; keep one label per text",
            )
        )


def _digest(content: bytes) -> str:
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _check_classes(splits: list[SplitReport], task: str, findings: list[Finding]) -> None:
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
                "warning", f"training: class(es) with fewer than {FEW_EXAMPLES} examples: {_list(few)}; add examples"
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
                    f"{split.name}: class(es) {_list(unknown)} are not in the training "
                    "data; training would stop on them: add them to training or remove them",
                )
            )
        if missing:
            level = "error" if task == "image" else "warning"  # image splits must have the same folders
            findings.append(
                Finding(
                    level,
                    f"{split.name}: class(es) {_list(missing)} of the training data are "
                    "missing here"
                    + ("; add their folders" if task == "image" else "; their scores will not be measured"),
                )
            )


def _duplicates(splits: list[SplitReport], task: str, findings: list[Finding], held_out: bool) -> dict[str, Any]:
    """Duplicates within and across splits (named by path, or ``line N`` of a CSV): split -> count and
    examples; what to do goes to ``findings``. ``held_out``: validation is (or will be) held out of the
    training data at random, so the copies are to be removed from the training data."""
    found: dict[str, Any] = {}
    splitting = held_out and all(split.name != "validation" for split in splits)  # check-data: not split yet
    dedupe = (
        f"deduplicate the training data {splits[0].path} (keep one row per text)"
        if task == "text"
        else "delete the copies from the training data"
    ) + " or give separate --validation-data"
    for split in splits:
        groups = [places for places in split.keys.values() if len(places) > 1]
        extra = sum(len(places) - 1 for places in groups)
        found[f"within {split.name}"] = {"count": extra, "examples": [places[:3] for places in groups[:SHOWN]]}
        if extra and split.name == "training" and splitting:
            findings.append(
                Finding(
                    "warning",
                    f"training: {extra} exact duplicate(s) "
                    f"({_list(' = '.join(places[:2]) for places in groups)}); validation is "
                    "held out of this data at random, so copies land on both sides and inflate "
                    f"the validation score: {dedupe}",
                )
            )
        elif extra:
            findings.append(
                Finding(
                    "note",
                    f"{split.name}: {extra} exact duplicate(s): {_list(' = '.join(places[:2]) for places in groups)}",
                )
            )
        if task == "text":
            loose = sum(len(rows) - 1 for rows in split.normalised.values() if len(rows) > 1) - extra
            found[f"within {split.name}, ignoring case and whitespace"] = {"count": extra + loose}
            if loose > 0:
                findings.append(
                    Finding("note", f"{split.name}: {loose} more duplicate(s) when case and whitespace are ignored")
                )
    for i, first in enumerate(splits):
        for second in splits[i + 1 :]:
            # A text's "line N" is in its split's CSV: the split names the file.
            a, b = (f"{first.name} ", f"{second.name} ") if task == "text" else ("", "")
            shared = sorted(set(first.keys) & set(second.keys))
            pairs = [f"{a}{first.keys[k][0]} = {b}{second.keys[k][0]}" for k in shared]
            if task == "text":
                same = sorted(set(first.normalised) & set(second.normalised))
                exact_rows = {second.keys[k][0] for k in shared}
                pairs += [
                    f"{a}{first.normalised[t][0][0]} ~ {b}{second.normalised[t][0][0]}"
                    for t in same
                    if second.normalised[t][0][0] not in exact_rows
                ]
            found[f"across {first.name} and {second.name}"] = {"count": len(pairs), "examples": pairs[:SHOWN]}
            if not pairs:
                continue
            if held_out and first.name == "training" and second.name == "validation":
                fix = f"validation is held out of the training data at random, so copies land on both sides: {dedupe}"
            else:
                fix = f"remove them from one of the two{' files' if task == 'text' else ''}"
            findings.append(
                Finding(
                    "warning",
                    f"{len(pairs)} example(s) of {second.name} also occur in "
                    f"{first.name} ({_list(pairs)}): they inflate the {second.name} score; {fix}",
                )
            )
    return found


def _training(
    splits: list[SplitReport], batch_size: int, replicas: int, ratio: float, findings: list[Finding]
) -> dict[str, Any]:
    """What ``train`` would do with the training split: the validation it holds out, the batch
    and the steps an epoch, by the functions ``train`` uses (per-class hold-out, batch fitting)."""
    from tf_finetune.data.batching import fit_batch
    from tf_finetune.data.split import held_out

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


def _spread(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _list(items: Iterable[Any], limit: int = SHOWN) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)
