"""Class indices, names and original labels (tf_finetune.data.labels)."""
from __future__ import annotations

import json

from tf_finetune.data.labels import LabelMap


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
