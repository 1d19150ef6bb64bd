"""The misclassified examples a report shows (tf_finetune.reports.gallery)."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

import tiny_modules
from helpers import grid_shape
from tf_finetune.reports.gallery import GALLERY_PNG, MISTAKES_CSV, PER_CLASS_TXT, mistakes, tile_caption, write_gallery


def test_mistakes_are_the_wrong_ones_most_confident_first_ties_in_input_order():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    found = mistakes(["a", "b", "c", "d", "e"], [0, 0, 0, 0, 1], probabilities, ["cat", "dog"])
    assert [(m.input, m.true, m.predicted, round(m.probability, 2)) for m in found] == [
        ("b", "cat", "dog", 0.8),
        ("d", "cat", "dog", 0.8),
        ("e", "dog", "cat", 0.7),
        ("c", "cat", "dog", 0.6),
    ]


def test_text_mistakes_go_to_a_csv_with_the_per_class_table(tmp_path):
    found = mistakes(['she said "no", twice', "fine"], [1, 1], np.array([[0.75, 0.25], [0.1, 0.9]]), ["neg", "pos"])
    written = write_gallery("text", found, "the table", tmp_path / "reports")
    assert [p.name for p in written] == [PER_CLASS_TXT, MISTAKES_CSV]
    assert (tmp_path / "reports" / PER_CLASS_TXT).read_text() == "the table\n"
    with open(tmp_path / "reports" / MISTAKES_CSV, newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [
            ["text", "true", "predicted", "probability"],
            ['she said "no", twice', "pos", "neg", "0.7500"],
        ]


def test_image_mistakes_are_named_in_a_csv_and_in_each_tile_caption(tmp_path):
    """Users find and fix the files a model gets wrong: the CSV has every path, each tile its file name."""
    long_name = "a_photo_with_a_rather_long_camera_file_name_0042.jpg"
    paths = [
        tiny_modules.write_image(tmp_path / "val" / "blue" / long_name, tiny_modules.COLOURS["red"]),
        tiny_modules.write_image(tmp_path / "val" / "red" / "r1.jpg", tiny_modules.COLOURS["red"]),
        tiny_modules.write_image(tmp_path / "val" / "red" / "r2.jpg", tiny_modules.COLOURS["blue"]),
    ]
    probabilities = np.array([[0.1, 0.9], [0.2, 0.8], [0.75, 0.25]])
    found = mistakes([str(p) for p in paths], [0, 1, 1], probabilities, ["blue", "red"])
    written = write_gallery("image", found, "the table", tmp_path / "reports")
    assert [p.name for p in written] == [PER_CLASS_TXT, MISTAKES_CSV, GALLERY_PNG]
    with open(tmp_path / "reports" / MISTAKES_CSV, newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [
            ["path", "true", "predicted", "probability"],
            [str(paths[0]), "blue", "red", "0.9000"],
            [str(paths[2]), "red", "blue", "0.7500"],
        ]
    assert tile_caption(found[0]) == f"blue/{long_name}\ntrue: blue\npredicted: red (0.90)"
    with Image.open(tmp_path / "reports" / GALLERY_PNG) as grid:
        assert grid.size == grid_shape(2)
