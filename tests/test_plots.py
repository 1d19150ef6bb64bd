"""The PNG figures: written, readable, and quiet about class names the font cannot draw."""
from __future__ import annotations

import warnings

from PIL import Image

from tf_finetune import plots


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
