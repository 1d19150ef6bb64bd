"""The pixel range of a Keras network: parsed from the option, read from a Rescaling layer, or assumed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import tf_keras

from tf_finetune.backbones.keras_pixels import DEFAULT_RANGE, choose_pixel_range, parse_pixel_range, range_text
from tf_finetune.errors import BackboneError


@pytest.mark.parametrize(
    "text, expected",
    [("0,1", (0.0, 1.0)), ("[-1, 1]", (-1.0, 1.0)), ("0,255", (0.0, 255.0)), ("-0.5,0.5", (-0.5, 0.5))],
)
def test_ranges_parse(text, expected):
    assert parse_pixel_range(text) == expected


@pytest.mark.parametrize("text", ["1,0", "0", "a,b", "0,1,2", ""])
def test_bad_ranges_are_named(text):
    with pytest.raises(BackboneError, match=f"pixel range {text!r} is invalid: give LOW,HIGH with LOW < HIGH"):
        parse_pixel_range(text)


def _network(first_layer) -> tf_keras.Model:
    inputs = tf_keras.Input([8, 8, 3])
    x = first_layer(inputs) if first_layer is not None else inputs
    return tf_keras.Model(inputs, tf_keras.layers.Conv2D(2, 3)(x))


@pytest.mark.parametrize(
    "layer, expected",
    [
        # The range the network takes in, before its own rescaling.
        (tf_keras.layers.Rescaling(1 / 127.5, offset=-1), (0.0, 255.0)),  # [0, 255] -> [-1, 1] inside
        (tf_keras.layers.Rescaling(1 / 255.0), (0.0, 255.0)),  # [0, 255] -> [0, 1] inside
        (tf_keras.layers.Rescaling(2.0, offset=-1), (0.0, 1.0)),  # [0, 1] -> [-1, 1] inside
    ],
)
def test_a_rescaling_layer_tells_the_range(layer, expected):
    value, source = choose_pixel_range(_network(layer), None, Path("m.h5"))
    assert value == expected and source.startswith("Rescaling layer")


def test_the_option_wins_with_a_warning_when_the_model_disagrees(caplog):
    with caplog.at_level(logging.WARNING, logger="tf_finetune"):
        value, source = choose_pixel_range(_network(tf_keras.layers.Rescaling(1 / 255.0)), "0,1", Path("m.h5"))
    assert (value, source) == ((0.0, 1.0), "option")
    assert "pixel range [0, 1] given, although the model suggests [0, 255]" in caplog.text


def test_nothing_to_read_assumes_zero_one_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="tf_finetune"):
        value, source = choose_pixel_range(_network(None), None, Path("m.h5"))
    assert (value, source) == (DEFAULT_RANGE, "assumed")
    assert f"assuming {range_text(DEFAULT_RANGE)}; pass --pixel-range" in caplog.text
