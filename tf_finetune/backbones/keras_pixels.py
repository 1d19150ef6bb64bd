"""The pixel range a Keras network was trained on: given, detected, or assumed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tf_finetune.backbones.keras_graph import all_layers
from tf_finetune.errors import BackboneError

if TYPE_CHECKING:
    import tf_keras

log = logging.getLogger(__name__)

NAMED_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}
DEFAULT_RANGE = (0.0, 1.0)
# Keras Applications that expect inputs in [-1, 1] ("tf" preprocessing) and have no
# preprocessing layer inside, recognised by layer names they always have.
_KNOWN_ARCHITECTURES = (
    ("Keras MobileNetV2", {"bn_Conv1", "block_16_project"}, (-1.0, 1.0)),
    ("Keras MobileNet", {"conv_dw_1", "conv_pw_13"}, (-1.0, 1.0)),
    ("Keras InceptionV3", {"mixed10"}, (-1.0, 1.0)),
    ("Keras Xception", {"block14_sepconv2"}, (-1.0, 1.0)),
    ("Keras InceptionResNetV2", {"conv_7b"}, (-1.0, 1.0)),
    ("Keras ResNetV2", {"post_bn", "conv1_conv"}, (-1.0, 1.0)),
)


def parse_pixel_range(text: str) -> tuple[float, float]:
    """``"0,1"``/``"-1,1"``/``"0,255"``/``"LOW,HIGH"`` as a (low, high) pair.

    Raises:
        BackboneError: not two numbers with low < high.
    """
    key = str(text).replace(" ", "").replace("[", "").replace("]", "")
    if key in NAMED_RANGES:
        return NAMED_RANGES[key]
    try:
        low, high = (float(v) for v in key.split(","))
    except ValueError:
        low = high = float("nan")  # compares False: refused below
    if not low < high:
        raise BackboneError(
            f"pixel range {text!r} is invalid: give LOW,HIGH with LOW < HIGH, e.g. 0,1 or -1,1 or 0,255"
        )
    return low, high


def choose_pixel_range(model: tf_keras.Model, option: str | None, source: Path) -> tuple[tuple[float, float], str]:
    """The pixel range to map [0, 1] images to, and where it came from: ``option`` (the user's,
    with a warning when the model suggests another), detected from the model, or assumed [0, 1]."""
    detected = _detect_pixel_range(model)
    if option:
        chosen = parse_pixel_range(option)
        if detected and detected[0] != chosen:
            log.warning(
                "%s: pixel range %s given, although the model suggests %s (%s)",
                source,
                range_text(chosen),
                range_text(detected[0]),
                detected[1],
            )
        return chosen, "option"
    if detected:
        return detected
    log.warning(
        "%s: the pixel range the network was trained on cannot be read from the model: "
        "assuming %s; pass --pixel-range (e.g. -1,1 or 0,255) if it was trained on other "
        "values",
        source,
        range_text(DEFAULT_RANGE),
    )
    return DEFAULT_RANGE, "assumed"


def _detect_pixel_range(model: tf_keras.Model) -> tuple[tuple[float, float], str] | None:
    """From a Rescaling layer at the input, or from a known Keras Application's layer names."""
    import numpy as np

    layers = all_layers(model)
    for layer in _leading_layers(model):
        if type(layer).__name__ == "Rescaling":
            scale = np.asarray(layer.scale, dtype=np.float64).reshape(-1)[0]
            offset = np.asarray(layer.offset, dtype=np.float64).reshape(-1)[0]
            low_target = -1.0 if offset < 0 else 0.0  # the network's internal range
            low, high = (low_target - offset) / scale, (1.0 - offset) / scale
            low, high = (round(float(low), 4), round(float(high), 4))
            return (min(low, high), max(low, high)), f"Rescaling layer {layer.name}"
        if type(layer).__name__ in ("Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D"):
            break
    names = {layer.name for layer in layers}
    for architecture, required, value in _KNOWN_ARCHITECTURES:
        if required <= names:
            return value, f"{architecture} (recognised by its layer names)"
    return None


def _leading_layers(model: tf_keras.Model, limit: int = 8) -> list[tf_keras.layers.Layer]:
    """The first layers the input flows through, nested models followed in (depth first)."""
    import tf_keras

    found: list[tf_keras.layers.Layer] = []

    def walk(container: tf_keras.Model) -> None:
        for layer in container.layers:
            if len(found) >= limit:
                return
            if isinstance(layer, tf_keras.Model):
                walk(layer)
            elif not isinstance(layer, tf_keras.layers.InputLayer):
                found.append(layer)

    walk(model)
    return found


def range_text(value: Sequence[float]) -> str:
    """``[low, high]`` for messages."""
    low, high = value
    return f"[{low:g}, {high:g}]"
