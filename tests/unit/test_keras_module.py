"""A cut Keras network as a TF-Hub image feature-vector module (tf_finetune/backbones/keras_module.py): make_module's
input size (any size when the network allows, else the declared or given one, else one error), images in
[0, 1] mapped to the network's pixel range, and save_module's folder: loaded by tf.saved_model.load and
hub.KerasLayer with the network's features, variables and regularization losses, its
serving signature, the extra files beside it, and nothing half-written when saving fails. Networks are tiny
tf_keras models built here (the Keras-file import around them is in test_keras_import.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tf_finetune.backbones.keras_module import make_module, save_module
from tf_finetune.backbones.tfhub import hub
from tf_finetune.errors import BackboneError

SOURCE = Path("models/tiny.h5")  # how messages name the network's file; never read
KERNEL_L2, GAMMA_L2 = 0.01, 0.1


def any_size_network(regularized=False):
    """Conv -> BatchNorm -> ReLU -> average pooling: 4 features, any image size; with ``regularized``,
    L2 on the conv kernel and on BatchNorm's gamma."""
    tf_keras.utils.set_random_seed(0)
    l2 = tf_keras.regularizers.L2
    inputs = tf_keras.Input([None, None, 3])
    x = tf_keras.layers.Conv2D(4, 3, kernel_regularizer=l2(KERNEL_L2) if regularized else None, name="conv")(inputs)
    x = tf_keras.layers.BatchNormalization(gamma_regularizer=l2(GAMMA_L2) if regularized else None, name="bn")(x)
    x = tf_keras.layers.ReLU()(x)
    network = tf_keras.Model(inputs, tf_keras.layers.GlobalAveragePooling2D()(x))
    bn = network.get_layer("bn")
    # moving statistics and gamma away from their initial values, so pixel mapping and modes show
    bn.set_weights([w + np.linspace(0.5, 1.5, w.size).astype(np.float32) for w in bn.get_weights()])
    return network


def flat_network(size=None):
    """Conv -> Flatten: the feature width depends on the image size."""
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input([size, size, 3])
    return tf_keras.Model(inputs, tf_keras.layers.Flatten()(tf_keras.layers.Conv2D(2, 3)(inputs)))


def images(size, batch=3):
    return tf.random.stateless_uniform([batch, size, size, 3], seed=[size, 7])


@pytest.fixture(scope="module")
def saved_any_size(tmp_path_factory):
    """(the network, the folder save_module wrote) for any_size_network with pixel range -1..1."""
    network = any_size_network()
    module, any_size, size = make_module(network, (-1.0, 1.0), None, None, SOURCE)
    assert (any_size, size) == (True, None)
    target = tmp_path_factory.mktemp("keras_module") / "new" / "folders" / "module"
    save_module(module, target, any_size, size, {"info.json": '{"feature_layer": "pool"}\n', "NOTE.txt": "é\n"})
    return network, target


# ---- make_module -------------------------------------------------------------------------------


def test_a_network_that_takes_any_size_gives_a_module_of_any_size_on_images_in_0_1():
    network = any_size_network()
    module, any_size, size = make_module(network, (0.0, 255.0), 32, 16, SOURCE)
    assert (any_size, size) == (True, None)
    for side in (16, 23):
        x = images(side)
        np.testing.assert_allclose(module(x), network(x * 255.0, training=False), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("declared, given", [(8, None), (None, 8), (8, 12)], ids=["declared", "given", "both"])
def test_a_network_whose_width_depends_on_the_size_keeps_one_size_the_declared_first(declared, given):
    network = flat_network(declared)
    module, any_size, size = make_module(network, (0.0, 1.0), declared, given, SOURCE)
    assert (any_size, size) == (False, 8)
    np.testing.assert_allclose(module(images(8)), network(images(8)), atol=1e-6)


def test_a_network_of_no_declared_size_that_takes_no_size_asks_for_image_size():
    with pytest.raises(BackboneError) as info:
        make_module(flat_network(), (0.0, 1.0), None, None, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: ") and "--image-size" in message


# ---- save_module -------------------------------------------------------------------------------


def test_the_saved_module_gives_the_networks_features_at_any_size_with_the_files_beside_it(saved_any_size):
    network, target = saved_any_size
    assert {p.name for p in target.iterdir()} >= {"saved_model.pb", "variables", "info.json", "NOTE.txt"}
    assert (target / "NOTE.txt").read_text("utf-8") == "é\n"
    assert (target / "info.json").read_text("utf-8") == '{"feature_layer": "pool"}\n'
    assert [p.name for p in target.parent.iterdir()] == ["module"]  # no staging folder left beside it
    loaded = tf.saved_model.load(str(target))
    layer = hub.KerasLayer(str(target), trainable=False)
    serving = loaded.signatures["serving_default"]
    assert serving.structured_input_signature[1]["inputs"].shape.as_list() == [None, None, None, 3]
    for side in (16, 29):
        x = images(side)
        expected = network(x * 2.0 - 1.0, training=False)
        np.testing.assert_allclose(loaded(x), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(next(iter(serving(inputs=x).values())), expected, rtol=1e-5, atol=1e-5)
    # training=True is BatchNorm's batch mode, not the moving statistics
    batch_mode = network(images(16) * 2.0 - 1.0, training=True)
    np.testing.assert_allclose(loaded(images(16), training=True), batch_mode, rtol=1e-5, atol=1e-5)


def test_the_saved_module_trains_the_networks_weights_and_not_its_statistics(saved_any_size):
    network, target = saved_any_size
    frozen = hub.KerasLayer(str(target), trainable=False)
    trainable = hub.KerasLayer(str(target), trainable=True)
    for layer in (frozen, trainable):
        layer(images(16))
    assert len(trainable.weights) == len(network.weights)
    assert sorted(w.shape.as_list() for w in trainable.trainable_weights) == sorted(
        w.shape.as_list() for w in network.trainable_weights
    )  # kernel, bias, gamma, beta; no statistics
    assert len(network.trainable_weights) == 4 < len(network.weights)
    assert frozen.trainable_weights == [] and frozen.losses == []


def test_a_network_with_regularizers_saves_and_the_trainable_module_adds_their_losses(tmp_path):
    network = any_size_network(regularized=True)
    module, any_size, size = make_module(network, (0.0, 1.0), None, None, SOURCE)
    save_module(module, tmp_path / "regularized", any_size, size, {})
    layer = hub.KerasLayer(str(tmp_path / "regularized"), trainable=True)
    layer(images(16))
    kernel = network.get_layer("conv").kernel.numpy()
    gamma = network.get_layer("bn").gamma.numpy()
    expected = KERNEL_L2 * np.sum(kernel**2) + GAMMA_L2 * np.sum(gamma**2)
    assert len(layer.losses) == 2
    np.testing.assert_allclose(float(tf.add_n(layer.losses)), expected, rtol=1e-5)


def test_a_fixed_size_module_is_saved_with_that_size_in_its_signature(tmp_path):
    network = flat_network(8)
    module, any_size, size = make_module(network, (0.0, 1.0), 8, None, SOURCE)
    save_module(module, tmp_path / "flat", any_size, size, {})
    loaded = tf.saved_model.load(str(tmp_path / "flat"))
    serving = loaded.signatures["serving_default"]
    assert serving.structured_input_signature[1]["inputs"].shape.as_list() == [None, 8, 8, 3]
    np.testing.assert_allclose(next(iter(serving(inputs=images(8)).values())), network(images(8)), atol=1e-6)
    assert hub.KerasLayer(str(tmp_path / "flat"))(images(8)).shape == (3, 6 * 6 * 2)


def test_a_save_that_fails_leaves_no_module_and_no_staging_folder(tmp_path):
    module, any_size, size = make_module(any_size_network(), (0.0, 1.0), None, None, SOURCE)
    (tmp_path / "models").mkdir()
    with pytest.raises(FileNotFoundError):  # an extra file in a folder that does not exist
        save_module(module, tmp_path / "models" / "m", any_size, size, {"no/such/folder.json": "{}"})
    assert list((tmp_path / "models").iterdir()) == []


def test_a_finished_module_already_at_the_target_is_kept(tmp_path):
    module, any_size, size = make_module(any_size_network(), (0.0, 1.0), None, None, SOURCE)
    target = tmp_path / "cache" / "m"
    target.mkdir(parents=True)
    (target / "saved_model.pb").write_bytes(b"another process's finished module")
    save_module(module, target, any_size, size, {"info.json": "{}"})
    assert [p.name for p in target.iterdir()] == ["saved_model.pb"]
    assert (target / "saved_model.pb").read_bytes() == b"another process's finished module"
    assert [p.name for p in target.parent.iterdir()] == ["m"]
