"""A Keras classifier file as the backbone: finding the feature layer, cutting, the TF-Hub module
it becomes (pixel range, BatchNorm in both modes), the import-backbone command, bad input, and
the real Teachable Machine .h5 against the converted hub module in ../shared."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import decode_images, extract, run_main
from tf_finetune.backbones.keras_import import INFO_FILE, KerasOptions, import_backbone, read_info
from tf_finetune.backbones.loading import local_saved_model
from tf_finetune.backbones.packing import import_to
from tf_finetune.backbones.tfhub import hub
from tf_finetune.errors import BackboneError, DataError
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import run

IMAGES = tf.random.stateless_uniform([4, 32, 32, 3], seed=[3, 4])


def _features(inputs, rescale=None):
    """Conv -> BatchNorm -> ReLU -> average pooling ("pool", 4 features)."""
    x = tf_keras.layers.Rescaling(rescale, name="rescale")(inputs) if rescale else inputs
    x = tf_keras.layers.Conv2D(4, 3, name="conv")(x)
    x = tf_keras.layers.BatchNormalization(name="bn")(x)
    x = tf_keras.layers.ReLU(name="relu")(x)
    return tf_keras.layers.GlobalAveragePooling2D(name="pool")(x)


def tiny_classifier(rescale=None, size=32):
    """features -> Dense(8) "hidden" -> Dropout -> Dense(2) "head": a whole classifier."""
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input([size, size, 3])
    x = tf_keras.layers.Dense(8, activation="relu", name="hidden")(_features(inputs, rescale))
    x = tf_keras.layers.Dropout(0.2, name="drop")(x)
    outputs = tf_keras.layers.Dense(2, activation="softmax", name="head")(x)
    return tf_keras.Model(inputs, outputs)


def nested_classifier():
    """Sequential[Sequential features, Sequential head], as Teachable Machine exports them."""
    tf_keras.utils.set_random_seed(0)
    features = tf_keras.Sequential(
        [
            tf_keras.Input([32, 32, 3]),
            tf_keras.layers.Conv2D(4, 3, name="conv"),
            tf_keras.layers.BatchNormalization(name="bn"),
            tf_keras.layers.ReLU(name="relu"),
            tf_keras.layers.GlobalAveragePooling2D(name="pool"),
        ],
        name="features",
    )
    head = tf_keras.Sequential(
        [
            tf_keras.Input([4]),
            tf_keras.layers.Dense(8, activation="relu", name="hidden"),
            tf_keras.layers.Dense(2, activation="softmax", name="head"),
        ],
        name="classifier",
    )
    return tf_keras.Sequential([tf_keras.Input([32, 32, 3]), features, head])


def _save(model, path):
    if path.suffix:
        model.save(path)
    else:
        model.save(path, save_format="tf")
    return path


def _up_to(model, name):
    return tf_keras.Model(model.inputs, model.get_layer(name).output)


# ---- finding the feature layer ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.h5", "model.keras", "savedmodel"])
def test_default_cut_is_the_input_of_the_classification_head(name, tmp_path, cache_dir):
    model = tiny_classifier()
    source = _save(model, tmp_path / name)
    module = local_saved_model(str(source), cache_dir)
    info = read_info(module)
    # head <- drop <- hidden are the head; "pool" feeds it
    assert info["feature_layer"] == "pool" and info["feature_dim"] == 4
    assert info["pixel_range"] == [0.0, 1.0] and info["pixel_range_from"] == "assumed"
    assert info["input_size"] == 32 and info["any_size"] is True
    expected = _up_to(model, "pool")(IMAGES, training=False)
    got = tf.saved_model.load(module)(IMAGES)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # the module is cached by content: the same file resolves to the same folder
    assert local_saved_model(str(source), cache_dir) == module


def test_nested_models_are_followed_and_feature_layer_chooses(tmp_path, cache_dir):
    model = nested_classifier()
    source = _save(model, tmp_path / "nested.h5")
    module = local_saved_model(str(source), cache_dir)
    assert read_info(module)["feature_layer"] == "pool"
    images = IMAGES
    expected = model.get_layer("features")(images, training=False)
    np.testing.assert_allclose(tf.saved_model.load(module)(images), expected, atol=1e-6)

    chosen = local_saved_model(str(source), cache_dir, KerasOptions(feature_layer="hidden"))
    assert chosen != module and read_info(chosen)["feature_dim"] == 8
    inner = model.get_layer("classifier").get_layer("hidden")
    np.testing.assert_allclose(tf.saved_model.load(chosen)(images), inner(expected), atol=1e-6)


def test_a_network_that_needs_its_size_keeps_it(tmp_path, cache_dir):
    inputs = tf_keras.Input([8, 8, 3])
    x = tf_keras.layers.Flatten(name="flat")(tf_keras.layers.Conv2D(2, 3, name="conv")(inputs))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax")(x))
    module = local_saved_model(str(_save(model, tmp_path / "flat.h5")), cache_dir)
    info = read_info(module)
    assert info["feature_layer"] == "flat" and info["feature_dim"] == 72
    assert info["any_size"] is False and info["input_size"] == 8
    layer = hub.KerasLayer(module)
    from tf_finetune.backbones.loading import fixed_image_size

    assert fixed_image_size(layer) == 8  # so training uses 8x8, and another size is one error


def test_pixel_range_is_read_from_a_rescaling_layer_or_given(tmp_path, cache_dir):
    model = tiny_classifier(rescale=1 / 255)
    source = _save(model, tmp_path / "rescaled.h5")
    module = local_saved_model(str(source), cache_dir)
    info = read_info(module)
    assert info["pixel_range"] == [0.0, 255.0] and "Rescaling" in info["pixel_range_from"]
    # images in [0, 1] go in; the network sees them as 0..255 as in its training
    np.testing.assert_allclose(tf.saved_model.load(module)(IMAGES), _up_to(model, "pool")(IMAGES * 255.0), atol=1e-5)

    plain = _save(tiny_classifier(), tmp_path / "plain.h5")
    given = local_saved_model(str(plain), cache_dir, KerasOptions(pixel_range="-1,1"))
    assert read_info(given)["pixel_range"] == [-1.0, 1.0]
    assert read_info(given)["pixel_range_from"] == "option"
    np.testing.assert_allclose(
        tf.saved_model.load(given)(IMAGES), _up_to(tiny_classifier(), "pool")(IMAGES * 2 - 1), atol=1e-5
    )


def test_batchnorm_trains_when_trainable_and_stays_when_frozen(tmp_path):
    source = _save(tiny_classifier(), tmp_path / "bn.h5")
    import_backbone(source, tmp_path / "module")
    labels = tf.one_hot([0, 1, 0, 1], 2)
    moved = {}
    for trainable in (True, False):
        layer = hub.KerasLayer(str(tmp_path / "module"), trainable=trainable)
        inputs = tf_keras.Input([32, 32, 3])
        model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax")(layer(inputs)))
        model.compile(tf_keras.optimizers.Adam(0.01), "categorical_crossentropy")
        mean = next(v for v in layer.variables if "moving_mean" in v.name)
        kernel = next(v for v in layer.variables if "conv/kernel" in v.name)
        before = (mean.numpy().copy(), kernel.numpy().copy())
        model.fit(IMAGES, labels, epochs=1, batch_size=4, verbose=0)
        moved[trainable] = (not np.allclose(before[0], mean.numpy()), not np.allclose(before[1], kernel.numpy()))
        assert len(layer.trainable_weights) == (4 if trainable else 0)  # conv, bias, gamma, beta
    assert moved[True] == (True, True)  # batch statistics used and moving averages updated
    assert moved[False] == (False, False)  # inference mode: nothing changes
    module = tf.saved_model.load(str(tmp_path / "module"))
    assert not np.allclose(module(IMAGES, training=True), module(IMAGES, training=False))


def test_fine_tuning_a_keras_file_end_to_end(tmp_path, image_data, cache_dir):
    source = _save(tiny_classifier(), tmp_path / "tiny.h5")
    result = run(
        JobConfig(
            data=str(image_data),
            output=str(tmp_path / "out"),
            handle=str(source),
            feature_layer="hidden",
            cache_dir=str(cache_dir),
            hyperparameters={"epochs": 1, "batch_size": 2, "learning_rate": 0.01, "train_only_top_layer": False},
        )
    )
    metrics = result.metrics
    assert metrics["backbone"]["image_size"] == 32  # the size the Keras model declares
    assert metrics["num_train_examples"] + metrics["num_validation_examples"] == 24
    assert (tmp_path / "out" / "output" / "model.tar.gz").is_file()
    # The new head reads the 8 features of "hidden", not the 4 of the default cut ("pool").
    extract(tmp_path / "out" / "output" / "model.tar.gz", tmp_path / "model")
    from tf_finetune.training.classifier import CLASSIFIER_LAYER

    saved = tf.saved_model.load(str(tmp_path / "model" / "1"))
    (kernel,) = [v for v in saved.variables if CLASSIFIER_LAYER in v.name and "kernel" in v.name]
    assert kernel.shape == (8, 2)


# ---- import-backbone ---------------------------------------------------------------------------


def test_import_backbone_command_writes_a_hub_module(tmp_path):
    model = tiny_classifier()
    source = _save(model, tmp_path / "tiny.h5")
    target = tmp_path / "hub_module"
    proc = run_main("import-backbone", str(source), "--output", str(target))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(target)
    assert "assuming [0, 1]" in proc.stderr and "--pixel-range" in proc.stderr  # says what it assumed
    assert json.loads((target / INFO_FILE).read_text())["feature_layer"] == "pool"
    layer = hub.KerasLayer(str(target), trainable=False)
    # the Keras model checks its declared 32x32 on concrete inputs; traced, it takes any size
    expected = tf.function(_up_to(model, "pool"), input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    for size in (32, 48):  # any size the network allows
        images = tf.image.resize(IMAGES, [size, size])
        np.testing.assert_allclose(layer(images), expected(images), atol=1e-5)

    # an archive, to stage on S3 or give as --handle / the model channel
    archive = tmp_path / "staged" / "tiny.tar.gz"
    assert import_to(str(source), str(archive), feature_layer="hidden") == str(archive)
    assert read_info(local_saved_model(str(archive), tmp_path / "cache"))["feature_dim"] == 8


# ---- bad input: one clear error each ----------------------------------------------------------


def test_a_model_with_no_layer_to_cut_at(tmp_path, cache_dir):
    inputs = tf_keras.Input([8, 8, 3])
    head_only = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(BackboneError, match="no layer to cut at"):
        local_saved_model(str(_save(head_only, tmp_path / "head_only.h5")), cache_dir)

    no_head = tf_keras.Model(inputs, tf_keras.layers.GlobalAveragePooling2D(name="gap")(inputs))
    with pytest.raises(BackboneError, match="ends in layer gap .*--feature-layer"):
        local_saved_model(str(_save(no_head, tmp_path / "no_head.h5")), cache_dir)

    with pytest.raises(BackboneError, match="no layer named 'nope'.*pool"):
        local_saved_model(
            str(_save(tiny_classifier(), tmp_path / "t.h5")), cache_dir, KerasOptions(feature_layer="nope")
        )
    with pytest.raises(BackboneError, match=r"layer conv outputs \[None, 30, 30, 4\], not a feature vector"):
        local_saved_model(str(tmp_path / "t.h5"), cache_dir, KerasOptions(feature_layer="conv"))


def test_a_text_model_used_for_images(tmp_path, cache_dir, text_data):
    inputs = tf_keras.Input([12], dtype="int32")
    x = tf_keras.layers.Embedding(50, 8)(inputs)
    x = tf_keras.layers.GlobalAveragePooling1D()(x)
    text_model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax")(x))
    source = _save(text_model, tmp_path / "text.h5")
    with pytest.raises(BackboneError, match=r"text\.h5 is a text model: its input is int32 \[None, 12\]"):
        local_saved_model(str(source), cache_dir)
    # and any Keras file with text data: an image backbone, so the data is checked as images, before it is read
    image_model = _save(tiny_classifier(), tmp_path / "image.h5")
    with pytest.raises(DataError, match=r"holds text data \(a \.csv\) but the model is an image model"):
        run(JobConfig(data=str(text_data), output=None, handle=str(image_model), cache_dir=str(cache_dir)))


def test_an_unreadable_file(tmp_path, cache_dir):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"this is not an HDF5 file" * 10)
    proc = run_main("import-backbone", str(broken), "--output", str(tmp_path / "out"))
    assert proc.returncode == 1
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("tf-finetune: error: cannot read Keras model ")
    assert "broken.h5" in message and "Keras 2 / tf_keras .h5" in message
    assert not (tmp_path / "out").exists()

    weights_only = tmp_path / "weights.h5"
    tiny_classifier().save_weights(weights_only)
    with pytest.raises(BackboneError, match="weights only"):
        local_saved_model(str(weights_only), cache_dir)


# ---- the real Teachable Machine export (../shared) ---------------------------------------------


@pytest.mark.shared
def test_teachable_machine_h5_features_match_the_converted_module(shared, cache_dir):
    h5 = shared / "models" / "source" / "teachable_machine_keras_model.h5"
    # the same options as the ants_bees_h5_run fixture's job, so both use one cached import
    module = local_saved_model(str(h5), cache_dir, KerasOptions(image_size=160))
    info = read_info(module)
    assert info["feature_dim"] == 1280 and info["input_size"] == 224 and info["any_size"]
    assert info["pixel_range"] == [-1.0, 1.0] and "MobileNetV2" in info["pixel_range_from"]
    val = shared / "data" / "hymenoptera" / "val"
    paths = sorted((val / "ants").glob("*.jpg"))[:8] + sorted((val / "bees").glob("*.jpg"))[:8]
    reference = tf.saved_model.load(str(shared / "models" / "mobilenet_v2_035_imagenet"))
    imported = tf.saved_model.load(module)
    for size in (224, 160):
        images = decode_images(paths, size)
        diff = float(np.abs(imported(images) - reference(images)).max())
        print(f"\nteachable machine h5 vs mobilenet_v2_035_imagenet at {size}px: max abs diff {diff:.2e}")
        assert diff < 1e-4


@pytest.mark.shared
@pytest.mark.slow
def test_teachable_machine_h5_as_handle_trains_like_the_hub_module(ants_bees_h5_run, ants_bees_hub_run):
    hub_run = ants_bees_hub_run[1]
    h5 = ants_bees_h5_run[1].metrics["final"]["val_accuracy"]
    reference = hub_run.metrics["final"]["val_accuracy"]
    print(f"\nants/bees val_accuracy: h5 as --handle {h5:.4f}, hub module {reference:.4f}")
    assert abs(h5 - reference) <= 0.02
    # A floor, not a target: over random_seed 1-6 this recipe scored 0.856-0.915 (mean 0.889)
    # and 0.837 at the default seed: the floor is for a broken import, not for seed noise.
    assert h5 >= 0.80
