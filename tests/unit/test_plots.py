"""The PNG figures: written, readable, and quiet about class names the font cannot draw."""

from __future__ import annotations

import warnings

from PIL import Image

from tf_finetune.reports import plots


def test_cjk_class_names_draw_without_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "Glyph … missing from font" would fail this
        path = plots.confusion_matrix([[3, 1], [0, 4]], ["蜜蜂", "蚂蚁"], tmp_path / "matrix.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100


def test_training_curves_are_a_png(tmp_path):
    history = {"loss": [0.9, 0.5], "val_loss": [1.0, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    with Image.open(plots.training_curves(history, tmp_path / "curves.png")) as image:
        assert image.format == "PNG"


def test_a_caption_line_too_wide_for_its_tile_keeps_both_ends_of_the_file_name():
    from PIL import ImageFont

    font = ImageFont.load_default(size=13)
    name = "bees/a_photo_with_a_rather_long_camera_file_name_0042.jpg"
    room = plots.TILE_PX - 12
    short = plots.fit_width(name, font, room)
    assert font.getlength(name) > room >= font.getlength(short)
    head, tail = short.split("…")
    assert name.startswith(head) and name.endswith(tail) and head.startswith("bees/") and tail.endswith("0042.jpg")
    assert plots.fit_width("true: bees", font, room) == "true: bees"
