"""The text renderings of a registry (tf_finetune/catalog.py) that list-models and describe print: the
table's columns lined up whatever the values' widths, its task filter, and a card's fields shown only
when the entry has them, its hyperparameters each marked by where its value comes from, wrapped, and
what the job chooses itself. Registries here are written by the tests (the packaged one's renderings
are in test_registry.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers import write_registry
from tf_finetune.cli import catalog
from tf_finetune.hyperparameters import SCHEMA

COLUMNS = ("ID", "TASK", "FINE-TUNABLE", "INPUT", "DIM", "DESCRIPTION")
# The hyperparameters a text job refuses (job_plan), named here from the schema's own names.
IMAGE_ONLY = {p.name for p in SCHEMA if p.name.startswith(("augmentation", "image_")) or p.name == "tflite"}

SHORT = {
    "id": "a",
    "task": "image",
    "handle": "https://tfhub.dev/x/a/1",
    "image_size": 8,
    "fine_tunable": True,
    "license": "MIT",
    "description": "short",
}
LONG = {
    "id": "a-backbone-with-a-rather-long-registry-id",
    "task": "text",
    "handle": "builtin:wordllama-words256",
    "preprocessor": "https://tfhub.dev/x/preprocess/3",
    "output_dim": 123456,
    "fine_tunable": False,
    "license": "Apache-2.0",
    "description": "words, with  two spaces and a ; in it",
}
PLAIN_TEXT = {
    "id": "plain-text",
    "task": "text",
    "handle": "https://tfhub.dev/x/plain/1",
    "fine_tunable": True,
    "license": "MIT",
    "description": "no optional field at all",
}
FULL_IMAGE = {
    "id": "full-image",
    "task": "image",
    "handle": "https://tfhub.dev/x/full/5",
    "kaggle_handle": "https://www.kaggle.com/models/x/full/TensorFlow2/fv/2",
    "image_size": 96,
    "pixel_range": "0,1",
    "output_dim": 1280,
    "output_key": "feature_vector",
    "requires": ["tensorflow-text", "sentencepiece"],
    "fine_tunable": False,
    "license": "CC-BY-4.0",
    "description": "every optional field",
}


def _registry(tmp_path: Path, *models, task_defaults=None) -> str:
    document = {"models": list(models)}
    if task_defaults is not None:
        document["task_defaults"] = task_defaults
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return str(path)


def _hyperparameters(card: str) -> list[tuple[str, str, str]]:
    """(name, value, marker) of every hyperparameter a card lists, in order."""
    lines = card.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  hyperparameters:")) + 1
    block = [line for line in lines[start:] if line.startswith("    ")]
    return [re.fullmatch(r"(\w+)=(.*?)([*+]?)", word).groups() for line in block for word in line.split()]


def _chosen_line(card: str) -> str:
    (line,) = [line for line in card.splitlines() if line.startswith("  chosen by the job")]
    return line


# ---- table -------------------------------------------------------------------------------------


def test_table_columns_start_where_their_headings_do_two_spaces_after_the_widest_value(tmp_path):
    text = catalog.table(_registry(tmp_path, SHORT, LONG))
    header, *rows = text.splitlines()
    starts = [header.index(name) for name in COLUMNS]
    assert starts[0] == 0
    expected = [
        ["a", "image", "yes", "8px", "?", "short"],
        [LONG["id"], "text", "no", "strings +preproc", "123456", LONG["description"]],
    ]
    for line, values in zip(rows, expected):
        cells = [line[start:end].rstrip() for start, end in zip(starts, starts[1:] + [len(line)])]
        assert cells[0] == values[0] and cells[1] == values[1] and cells[2] == values[2]
        assert cells[3].startswith(values[3]) and cells[4] == values[4]
        assert cells[5] == values[5]  # the description whole, spaces and all, to the end of the line
    for i in range(5):
        widest = max(len(line[starts[i] : starts[i + 1]].rstrip()) for line in [header, *rows])
        assert starts[i + 1] - starts[i] == widest + 2, COLUMNS[i]


def test_table_has_a_row_per_entry_of_the_task_asked_for_and_only_the_header_when_none_is(tmp_path):
    registry = _registry(tmp_path, SHORT, PLAIN_TEXT, LONG)
    ids = [line.split()[0] for line in catalog.table(registry).splitlines()[1:]]
    assert ids == [SHORT["id"], PLAIN_TEXT["id"], LONG["id"]]  # registry order
    text_ids = [line.split()[0] for line in catalog.table(registry, task="text").splitlines()[1:]]
    assert text_ids == [PLAIN_TEXT["id"], LONG["id"]]
    only_images = write_registry(tmp_path / "images.yaml", **SHORT)
    assert [line.split()[:2] for line in catalog.table(str(only_images), task="text").splitlines()] == [["ID", "TASK"]]


# ---- card --------------------------------------------------------------------------------------


def _fields(card: str) -> dict[str, str]:
    """The card's "label: value" lines before the hyperparameters."""
    fields = {}
    for line in card.splitlines()[1:]:
        if line.startswith("  hyperparameters:"):
            break
        label, value = re.fullmatch(r"  ([a-z -]+):\s+(.*)", line).groups()
        fields[label] = value
    return fields


def test_card_shows_an_optional_field_exactly_when_the_entry_has_it(tmp_path):
    registry = _registry(tmp_path, PLAIN_TEXT, FULL_IMAGE)
    plain = catalog.card(registry, "plain-text")
    assert plain.splitlines()[0] == f"plain-text: {PLAIN_TEXT['description']}"
    assert _fields(plain) == {
        "task": "text",
        "handle": PLAIN_TEXT["handle"],
        "input": "strings",
        "output dim": "unknown",
        "fine-tunable": "yes",
        "licence": "MIT",
    }
    full = _fields(catalog.card(registry, "full-image"))
    assert full.pop("input").startswith("96px")
    assert full == {
        "task": "image",
        "handle": FULL_IMAGE["handle"],
        "kaggle handle": FULL_IMAGE["kaggle_handle"],
        "output key": "feature_vector",
        "output dim": "1280",
        "fine-tunable": "no",
        "licence": "CC-BY-4.0",
        "requires": "tensorflow-text, sentencepiece",
    }


def test_card_marks_each_hyperparameter_by_the_layer_its_value_comes_from(tmp_path):
    entry = dict(FULL_IMAGE, hyperparameters={"epochs": 7, "learning-rate": 0.01, "train_only_on_top_layer": False})
    registry = _registry(
        tmp_path, entry, task_defaults={"image": {"epochs": 3, "batch_size": 16}, "text": {"dropout_rate": 0.5}}
    )
    listed = _hyperparameters(catalog.card(registry, "full-image"))
    assert [name for name, _, _ in listed] == [p.name for p in SCHEMA]  # each once, in the schema's order
    expected = {p.name: (str(p.default), "") for p in SCHEMA}
    expected.update(
        batch_size=("16", "+"),  # the image task's
        epochs=("7", "*"),
        learning_rate=("0.01", "*"),  # the entry's, over the task's
        train_only_top_layer=("False", "*"),
    )  # an alias, under its schema name
    assert {name: (value, marker) for name, value, marker in listed} == expected


def test_a_text_card_leaves_out_the_image_only_hyperparameters_and_an_image_card_lists_them(tmp_path):
    registry = _registry(tmp_path, PLAIN_TEXT, FULL_IMAGE)
    text_names = [name for name, _, _ in _hyperparameters(catalog.card(registry, "plain-text"))]
    image_names = [name for name, _, _ in _hyperparameters(catalog.card(registry, "full-image"))]
    assert IMAGE_ONLY and set(image_names) >= IMAGE_ONLY
    assert text_names == [p.name for p in SCHEMA if p.name not in IMAGE_ONLY]


def test_card_hyperparameters_are_wrapped_within_100_columns_without_splitting_one(tmp_path):
    entry = dict(FULL_IMAGE, hyperparameters={"learning_rate": 5e-05, "epsilon": 1e-08, "label_smoothing": 0.0})
    card = catalog.card(_registry(tmp_path, entry), "full-image")
    lines = card.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  hyperparameters:")) + 1
    block = [line for line in lines[start:] if line.startswith("    ")]
    assert len(block) > 1 and all(len(line) <= 100 and not line[4].isspace() for line in block)
    assert block == lines[start : start + len(block)]  # one indented block
    # every word is a whole name=value, so the names are exactly the schema's
    assert sorted(name for name, _, _ in _hyperparameters(card)) == sorted(p.name for p in SCHEMA)
    assert ("learning_rate", "5e-05", "*") in _hyperparameters(card)


@pytest.mark.parametrize(
    "task_defaults, entry, chosen, not_chosen",
    [
        ({}, {"choose_hyperparameters": False, "train_only_top_layer": True}, ["nothing"], ["epochs"]),
        ({"train_only_top_layer": True}, {}, ["regularizers_l2", "epochs"], ["nothing"]),
        ({}, {}, ["epochs"], ["regularizers_l2", "nothing"]),
    ],
    ids=["choosing-off", "head-only", "whole-model"],
)
def test_card_says_what_the_job_chooses_itself(tmp_path, task_defaults, entry, chosen, not_chosen):
    registry = _registry(tmp_path, dict(PLAIN_TEXT, hyperparameters=entry), task_defaults={"text": task_defaults})
    line = _chosen_line(catalog.card(registry, "plain-text"))
    assert all(word in line for word in chosen), line
    assert not any(word in line for word in not_chosen), line
