"""Duplicates within and across the splits of the data, by content key (and for text, ignoring case and whitespace).

Examples are named by file path, or ``line N`` of a CSV; what to do about them goes to the findings,
with the fix that fits: copies in training data that validation is held out of at random land on
both sides and inflate the validation score. No TensorFlow.
"""

from __future__ import annotations

from typing import Any

from tf_finetune.reports.split_report import SHOWN, Finding, SplitReport, listed
from tf_finetune.tasks import Task


def find_duplicates(splits: list[SplitReport], task: Task, findings: list[Finding], held_out: bool) -> dict[str, Any]:
    """Duplicates within and across splits (named by path, or ``line N`` of a CSV): split -> count and
    examples; what to do goes to ``findings``. ``held_out``: validation is (or will be) held out of the
    training data at random, so the copies are to be removed from the training data."""
    found: dict[str, Any] = {}
    splitting = held_out and all(split.name != "validation" for split in splits)  # check-data: not split yet
    dedupe = (
        f"deduplicate the training data {splits[0].path} (keep one row per text)"
        if task == Task.TEXT
        else "delete the copies from the training data"
    ) + " or give separate --validation-data"
    for split in splits:
        found.update(_within(split, task, findings, splitting, dedupe))
    for i, first in enumerate(splits):
        for second in splits[i + 1 :]:
            pairs = _shared(first, second, task)
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
                    f"{first.name} ({listed(pairs)}): they inflate the {second.name} score; {fix}",
                )
            )
    return found


def _within(
    split: SplitReport, task: Task, findings: list[Finding], splitting: bool, dedupe: str
) -> dict[str, dict[str, Any]]:
    """The duplicates within one split (exact, and for text ignoring case and whitespace); what to do goes
    to ``findings``. ``splitting``: validation will be held out of this training split at random."""
    found: dict[str, dict[str, Any]] = {}
    groups = [places for places in split.keys.values() if len(places) > 1]
    extra = sum(len(places) - 1 for places in groups)
    found[f"within {split.name}"] = {"count": extra, "examples": [places[:3] for places in groups[:SHOWN]]}
    if extra and split.name == "training" and splitting:
        findings.append(
            Finding(
                "warning",
                f"training: {extra} exact duplicate(s) "
                f"({listed(' = '.join(places[:2]) for places in groups)}); validation is "
                "held out of this data at random, so copies land on both sides and inflate "
                f"the validation score: {dedupe}",
            )
        )
    elif extra:
        findings.append(
            Finding(
                "note",
                f"{split.name}: {extra} exact duplicate(s): {listed(' = '.join(places[:2]) for places in groups)}",
            )
        )
    if task == Task.TEXT:
        loose = sum(len(rows) - 1 for rows in split.normalised.values() if len(rows) > 1) - extra
        found[f"within {split.name}, ignoring case and whitespace"] = {"count": extra + loose}
        if loose > 0:
            findings.append(
                Finding("note", f"{split.name}: {loose} more duplicate(s) when case and whitespace are ignored")
            )
    return found


def _shared(first: SplitReport, second: SplitReport, task: Task) -> list[str]:
    """The examples of ``second`` that also occur in ``first``, as ``where = where`` pairs (``~`` for
    texts that are equal only when case and whitespace are ignored)."""
    # A text's "line N" is in its split's CSV: the split names the file.
    a, b = (f"{first.name} ", f"{second.name} ") if task == Task.TEXT else ("", "")
    shared = sorted(set(first.keys) & set(second.keys))
    pairs = [f"{a}{first.keys[k][0]} = {b}{second.keys[k][0]}" for k in shared]
    if task == Task.TEXT:
        same = sorted(set(first.normalised) & set(second.normalised))
        exact_rows = {second.keys[k][0] for k in shared}
        pairs += [
            f"{a}{first.normalised[t][0][0]} ~ {b}{second.normalised[t][0][0]}"
            for t in same
            if second.normalised[t][0][0] not in exact_rows
        ]
    return pairs
