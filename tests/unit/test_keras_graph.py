"""Finding and cutting the feature layer of a Keras classifier (tf_finetune.backbones.keras_graph), on
small Functional models built here: flat, nested (a base model inside), and malformed ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tf_keras

from tf_finetune.backbones.keras_graph import (
    NoClassificationHead,
    all_layers,
    cut_at,
    default_feature_layer,
    find_layer,
    image_input_shape,
)
from tf_finetune.errors import BackboneError

SOURCE = Path("m.h5")
L = tf_keras.layers


def base(size=None) -> tf_keras.Model:
    inputs = tf_keras.Input([size, size, 3], name="pixels")
    x = L.Conv2D(5, 3, name="conv")(inputs)
    return tf_keras.Model(inputs, L.GlobalAveragePooling2D(name="pool")(x), name="base")


def classifier(nested: bool) -> tf_keras.Model:
    inputs = tf_keras.Input([16, 16, 3], name="image")
    x = base()(inputs) if nested else L.GlobalAveragePooling2D(name="pool")(L.Conv2D(5, 3, name="conv")(inputs))
    x = L.Dropout(0.5, name="drop")(x)
    x = L.Dense(8, activation="relu", name="hidden")(x)
    return tf_keras.Model(inputs, L.Dense(3, activation="softmax", name="logits")(x))


@pytest.mark.parametrize("nested", [False, True])
def test_the_head_is_walked_back_to_the_pooling_layer_and_cut_there(nested):
    model = classifier(nested)
    layer = default_feature_layer(model, SOURCE)
    assert layer.name == "pool"  # inside the nested base model too
    cut = cut_at(model, layer, SOURCE)
    images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    # the cut network computes the pooled features of the original, with the same weights
    expected = (
        model.get_layer("base")(images)
        if nested
        else tf_keras.Model(model.inputs, model.get_layer("pool").output)(images)
    )
    np.testing.assert_allclose(cut(images), expected, atol=1e-6)
    assert cut.output.shape[-1] == 5 and find_layer(model, "conv", SOURCE) in all_layers(model)
    assert {id(w) for w in cut.weights} <= {id(w) for w in model.weights} and all(w.trainable for w in cut.weights)


def test_image_input_shape_and_a_text_input_are_told_apart():
    assert image_input_shape(classifier(False), SOURCE) == (16, 16)
    assert image_input_shape(base(), SOURCE) == (None, None)
    text = tf_keras.Model(*(lambda i: (i, L.Dense(2)(i)))(tf_keras.Input([10], name="tokens")))
    with pytest.raises(BackboneError, match=r"m.h5 is a text model: its input is float32 \[None, 10\]"):
        image_input_shape(text, SOURCE)


def test_models_without_a_place_to_cut_say_why():
    inputs = tf_keras.Input([16, 16, 3])
    no_dense = tf_keras.Model(inputs, L.GlobalAveragePooling2D(name="gap")(inputs))
    with pytest.raises(NoClassificationHead, match="ends in layer gap .GlobalAveragePooling2D., not a Dense"):
        default_feature_layer(no_dense, SOURCE)
    flat = tf_keras.Input([4])
    only_head = tf_keras.Model(flat, L.Dense(2, name="d")(flat))
    with pytest.raises(BackboneError, match=r"no layer to cut at: the model is only a classification head \(d\)"):
        default_feature_layer(only_head, SOURCE)
    with pytest.raises(BackboneError, match="has no layer named 'nope'; layers with a feature-vector output: "):
        find_layer(classifier(False), "nope", SOURCE)
    model = classifier(False)
    with pytest.raises(BackboneError, match=r"layer conv outputs \[None, 14, 14, 5\], not a feature vector"):
        cut_at(model, find_layer(model, "conv", SOURCE), SOURCE)
