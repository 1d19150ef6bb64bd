"""Staging a backbone as a .tar.gz for network-isolated jobs (tf_finetune/backbones/packing.py), to local destinations:
pack_backbone's archive (the folder at its root, a preprocessor bundled under preprocessor/, written whole
or not at all), fetch_model of a registry entry into a folder or a named archive (a Keras classifier cut
for an image entry, packed as it is for a text entry; one clear error and nothing written for a bad id or
a Keras file given for text), and import_to a folder or an archive. S3 destinations are in test_s3.py."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
import yaml

from helpers import extract, write_registry
from tf_finetune.backbones.keras_import import INFO_FILE
from tf_finetune.backbones.packing import fetch_model, import_to, pack_backbone
from tf_finetune.backbones.tfhub import hub
from tf_finetune.errors import BackboneError, RegistryError

IMAGES = tf.random.stateless_uniform([3, 16, 16, 3], seed=[5, 6])


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``: relative name -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def unpacked(archive: Path, into: Path) -> dict[str, bytes]:
    names = extract(archive, into)
    assert len(names) == len(set(names)), "no member twice"
    return tree(into)


def under(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    return {name[len(prefix) :]: data for name, data in files.items() if name.startswith(prefix)}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """(the model, its .h5 file, its Keras SavedModel folder): conv -> "pool" (4) -> "hidden" (8) -> "head" (2)."""
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input([16, 16, 3])
    x = tf_keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = tf_keras.layers.Dense(8, activation="relu", name="hidden")(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax", name="head")(x))
    root = tmp_path_factory.mktemp("keras")
    model.save(root / "tiny.h5")
    model.save(root / "tiny_savedmodel", save_format="tf")
    return model, root / "tiny.h5", root / "tiny_savedmodel"


def features(model, layer: str, images):
    return tf_keras.Model(model.inputs, model.get_layer(layer).output)(images, training=False)


# ---- pack_backbone -----------------------------------------------------------------------------


def test_pack_backbone_puts_the_folder_at_the_archive_root_and_round_trips(text_module, tmp_path):
    archive = tmp_path / "new" / "staged" / "tiny-text.tar.gz"
    assert pack_backbone(text_module, archive) == archive
    with tarfile.open(archive, "r:gz") as tar:
        assert "saved_model.pb" in tar.getnames()
    assert unpacked(archive, tmp_path / "x") == tree(text_module)
    assert [p.name for p in archive.parent.iterdir()] == ["tiny-text.tar.gz"]


def test_a_bundled_preprocessor_replaces_the_one_the_backbone_folder_carries(text_module, image_module, tmp_path):
    backbone = shutil.copytree(text_module, tmp_path / "backbone")
    shutil.copytree(image_module, backbone / "preprocessor")  # an older bundle
    archive = pack_backbone(backbone, tmp_path / "bert.tar.gz", preprocessor=text_module)
    files = unpacked(archive, tmp_path / "x")
    assert under(files, "preprocessor/") == tree(text_module)
    assert {name: data for name, data in files.items() if not name.startswith("preprocessor/")} == tree(text_module)


def test_a_pack_that_fails_keeps_the_previous_archive_and_leaves_no_partial_file(text_module, tmp_path):
    archive = tmp_path / "staged" / "tiny-text.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"the previous archive")
    with pytest.raises(FileNotFoundError):  # after the backbone's files went in
        pack_backbone(text_module, archive, preprocessor=tmp_path / "no-such-preprocessor")
    assert archive.read_bytes() == b"the previous archive"
    assert [p.name for p in archive.parent.iterdir()] == ["tiny-text.tar.gz"]


# ---- fetch_model -------------------------------------------------------------------------------


def test_fetch_model_stores_an_entry_and_its_preprocessor_as_id_tar_gz_in_a_folder(text_module, image_module, tmp_path):
    registry = write_registry(
        tmp_path / "registry.yaml",
        id="tiny-text",
        task="text",
        handle=text_module.as_uri(),
        preprocessor=image_module.as_uri(),
    )
    staged = tmp_path / "staged"
    where = fetch_model("tiny-text", str(staged) + "/", str(tmp_path / "cache"), str(registry))
    assert where == str(staged / "tiny-text.tar.gz")
    files = unpacked(Path(where), tmp_path / "x")
    assert under(files, "preprocessor/") == tree(image_module)
    assert {name: data for name, data in files.items() if not name.startswith("preprocessor/")} == tree(text_module)
    # a full archive name is used as it is
    named = staged / "elsewhere" / "my-backbone.tar.gz"
    assert fetch_model("tiny-text", str(named), str(tmp_path / "cache"), str(registry)) == str(named)
    assert unpacked(named, tmp_path / "y") == files


def test_fetch_model_cuts_a_keras_classifier_for_an_image_entry_and_packs_it_as_it_is_for_a_text_entry(
    classifier, tmp_path
):
    model, _, folder = classifier
    common = {"handle": folder.as_uri(), "fine_tunable": True, "license": "MIT", "description": "tiny"}
    registry = tmp_path / "registry.yaml"
    registry.write_text(
        yaml.safe_dump(
            {
                "models": [
                    dict(common, id="keras-image", task="image", image_size=16),
                    dict(common, id="keras-text", task="text"),
                ]
            }
        ),
        "utf-8",
    )
    cache = str(tmp_path / "cache")
    image = fetch_model("keras-image", str(tmp_path / "staged"), cache, str(registry))
    extract(image, tmp_path / "image")
    assert (tmp_path / "image" / INFO_FILE).is_file() and not (tmp_path / "image" / "keras_metadata.pb").exists()
    layer = hub.KerasLayer(str(tmp_path / "image"))
    np.testing.assert_allclose(layer(IMAGES), features(model, "pool", IMAGES), atol=1e-5)

    text = fetch_model("keras-text", str(tmp_path / "staged"), cache, str(registry))
    assert unpacked(Path(text), tmp_path / "text") == tree(folder)


def test_fetch_model_errors_name_the_problem_and_write_nothing(classifier, tmp_path):
    registry = write_registry(
        tmp_path / "registry.yaml", id="keras-for-text", task="text", handle=classifier[1].as_uri()
    )
    staged = tmp_path / "staged"
    with pytest.raises(RegistryError, match="unknown model id 'keras-for-txt'.*Did you mean: keras-for-text"):
        fetch_model("keras-for-txt", str(staged), str(tmp_path / "cache"), str(registry))
    keras_for_text = f"{classifier[1]}: a Keras model file is used as an image backbone only"
    with pytest.raises(BackboneError, match=re.escape(keras_for_text)):
        fetch_model("keras-for-text", str(staged), str(tmp_path / "cache"), str(registry))
    assert not staged.exists()


def test_fetching_an_archive_with_a_bundled_preprocessor_keeps_it(text_module, image_module, tmp_path):
    first = pack_backbone(text_module, tmp_path / "first" / "bert.tar.gz", preprocessor=image_module)
    registry = write_registry(tmp_path / "registry.yaml", id="bert-again", task="text", handle=first.as_uri())
    again = fetch_model("bert-again", str(tmp_path / "again"), str(tmp_path / "cache"), str(registry))
    assert unpacked(Path(again), tmp_path / "x") == unpacked(first, tmp_path / "y")


# ---- import_to ---------------------------------------------------------------------------------


def test_import_to_an_archive_packs_the_cut_module_at_its_root(classifier, tmp_path):
    model, h5, _ = classifier
    archive = tmp_path / "staged" / "tiny.tar.gz"
    assert import_to(h5.as_uri(), str(archive), pixel_range="-1,1") == str(archive)
    assert [p.name for p in archive.parent.iterdir()] == ["tiny.tar.gz"]
    files = unpacked(archive, tmp_path / "module")
    assert {"saved_model.pb", INFO_FILE} <= set(files)
    module = tf.saved_model.load(str(tmp_path / "module"))
    # images in [0, 1] go in; the network sees them in -1..1
    np.testing.assert_allclose(module(IMAGES), features(model, "pool", IMAGES * 2 - 1), atol=1e-5)


def test_import_to_a_folder_writes_the_module_cut_at_the_layer_asked_for(classifier, tmp_path):
    model, h5, _ = classifier
    target = tmp_path / "modules" / "tiny"
    assert import_to(str(h5), str(target), feature_layer="hidden") == str(target)
    layer = hub.KerasLayer(str(target))
    np.testing.assert_allclose(layer(IMAGES), features(model, "hidden", IMAGES), atol=1e-5)


@pytest.mark.parametrize("to", ["out", "out.tar.gz"])
def test_import_to_refuses_a_model_that_keras_did_not_write_and_writes_nothing(image_module, tmp_path, to):
    refusal = f"{image_module} is not a Keras model: give a .h5 or .keras file"
    with pytest.raises(BackboneError, match="^" + re.escape(refusal)):
        import_to(str(image_module), str(tmp_path / to))
    assert list(tmp_path.iterdir()) == []
