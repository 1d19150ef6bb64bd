"""Class indices, names and original labels (tf_finetune.data.labels), and text class names
from labels.json beside data.csv through to the model, predict, the reports and the endpoint."""

from __future__ import annotations

import json
import re

import pytest

from tf_finetune.data.labels import LabelMap, read_class_names
from tf_finetune.errors import DataError


def test_integer_labels_get_contiguous_indices_in_label_order():
    labels = LabelMap.from_integer_labels([7, -1, 3, 7, 3])
    assert labels.class_names == ("-1", "3", "7") and labels.original_labels == (-1, 3, 7)
    assert labels.num_classes == 3


def test_the_json_file_round_trips_and_spells_out_both_mappings():
    for labels in (LabelMap.from_integer_labels([2, 5]), LabelMap(("ants", "bees", "蜂"))):
        text = labels.to_json()
        assert LabelMap.from_json(text) == labels
        document = json.loads(text)
        assert document["num_classes"] == labels.num_classes
        assert document["index_to_name"] == {str(i): n for i, n in enumerate(labels.class_names)}
        assert ("index_to_original_label" in document) == (labels.original_labels is not None)
    assert "蜂" in LabelMap(("蜂",)).to_json()  # written as text, not \u escapes


# --- class names of text data: labels.json beside data.csv -------------------------------------


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            '{"0": "ham", "1": "spam"',
            r" is not valid JSON \(Expecting ',' delimiter at line 1 column 25\); "
            r"write one object mapping each integer label to its class name",
        ),
        ('["ham", "spam"]', r" holds \[\"ham\", \"spam\"\], not an object; write one object"),
        ('{"ham": 0, "spam": 1}', r": key 'ham' is not an integer label; write one object"),
        ('{"0": "ham", "00": "spam"}', r" names label 0 twice \('ham' and 'spam'\); keep one"),
        ('{"0": "ham", "1": ""}', r": the name of label 1 is \"\"; a class name is a non-empty string"),
        ('{"0": "ham", "1": null}', r": the name of label 1 is null; a class name is a non-empty string"),
        ('{"0": "ham", "1": "spam "}', r": the name of label 1, 'spam ', has surrounding spaces"),
        (
            '{"0": "ham", "1": "sp\\nam"}',
            r": the name of label 1, 'sp\\nam', has surrounding spaces or a "
            r"control character \(line break, tab\); write the name alone",
        ),
        ('{"0": "ham", "1": "ham"}', r": labels 0 and 1 are both named 'ham'; each class needs a name of its own"),
        (
            '{"num_classes": 2, "class_names": ["ham", "spam"], "original_labels": [0, 1]}',
            r" is a model's labels.json; beside data.csv, labels.json maps each integer label to its class "
            r"name: write \{\"0\": \"ham\", \"1\": \"spam\"\}",
        ),
    ],
)
def test_a_bad_names_file_is_one_error_naming_it_and_what_to_write(tmp_path, content, expected):
    path = tmp_path / "labels.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}{expected}"):
        read_class_names(path)


def test_a_names_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "labels.json"
    path.write_bytes('{"0": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(DataError, match=r"labels.json: not valid UTF-8 \(byte 10\); save the file as UTF-8"):
        read_class_names(path)


def test_names_file_keys_are_labels_as_data_csv_writes_them(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('\ufeff{" -1 ": "minus", "+7": "plus"}', encoding="utf-8")
    assert read_class_names(path).names == {-1: "minus", 7: "plus"}


def test_continuing_a_model_keeps_the_names_it_answers_with():
    named = LabelMap(("ham", "spam"), (0, 1))
    unnamed = LabelMap.from_integer_labels([0, 1])
    assert named.mismatch(named) is None and unnamed.mismatch(unnamed) is None
    assert named.mismatch(unnamed) is None  # names given to a model that had none
    assert unnamed.mismatch(named) == (
        "its classes are named 'ham', 'spam' (labels 0, 1) and the data names none (no labels.json "
        "beside data.csv); put the model's names in labels.json beside data.csv: "
        '{"0": "ham", "1": "spam"}'
    )
    assert "and the data names them 'spam', 'ham'; put the model's names" in (
        LabelMap(("spam", "ham"), (0, 1)).mismatch(named)
    )
    assert LabelMap.from_integer_labels([1, 3]).mismatch(LabelMap.from_integer_labels([1, 2])) == (
        "its classes differ from the data's. Only in the model: ['2']; only in the data: ['3']. "
        "Train from a backbone instead, or use data with the model's classes."
    )
