"""tf_finetune.backbones.loading, called directly: every handle form local_saved_model takes (SavedModel
folder, ``file://``, ``~``, a .tar.gz extracted once into the cache, a folder holding one archive,
``builtin:NAME``, ``s3://`` and hub URLs offline, paths that are missing or hold no SavedModel), the
text preprocessor bundled with a backbone, a backbone's extra packages, and the image size to train at.

Keras model files as handles are tested in test_keras_import.py, concurrent extraction in test_storage.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
import tensorflow as tf

import tiny_modules
from helpers import offline_environment
from tf_finetune.backbones.loading import (
    check_requirements,
    choose_image_size,
    fixed_image_size,
    local_preprocessor,
    local_saved_model,
)
from tf_finetune.backbones.tfhub import hub
from tf_finetune.errors import BackboneError, StorageError
from tf_finetune.registry import ModelSpec

HUB_URL = "https://tfhub.dev/google/imagenet/mobilenet_v2_035_96/feature_vector/5"


def digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder``, by relative path, to its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def tar_gz(folder: Path, archive: Path, top: str | None = None) -> Path:
    """A .tar.gz of ``folder``'s contents, at the archive's root or under one folder ``top``."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for child in sorted(folder.iterdir()):
            tar.add(child, arcname=f"{top}/{child.name}" if top else child.name)
    return archive


def offline(monkeypatch, hub_cache: Path | None) -> None:
    """No network (downloads fail fast on a closed local port), and TFHUB_CACHE_DIR set or unset."""
    for name, value in offline_environment().items():
        monkeypatch.setenv(name, value)
    if hub_cache is None:
        monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("TFHUB_CACHE_DIR", str(hub_cache))


# --- local folders ------------------------------------------------------------------------------


def test_a_saved_model_folder_is_used_where_it_is_as_a_path_a_file_url_or_under_home(
    image_module, tmp_path, monkeypatch
):
    monkeypatch.setenv("HOME", str(image_module.parent))
    cache = tmp_path / "cache"
    for handle in (str(image_module), f"file://{image_module}", f"~/{image_module.name}"):
        assert local_saved_model(handle, cache) == str(image_module), handle
    assert not cache.exists()  # nothing copied or extracted


def test_a_percent_encoded_file_uri_names_the_folder(image_module, tmp_path):
    folder = shutil.copytree(image_module, tmp_path / "my models" / "tiny image")
    assert local_saved_model(folder.as_uri(), tmp_path / "cache") == str(folder)
    assert local_saved_model(f"file://localhost{folder.as_uri()[len('file://') :]}", tmp_path / "cache") == str(folder)


def test_a_folder_whose_one_sub_folder_holds_the_saved_model_resolves_to_it(image_module, tmp_path):
    inner = shutil.copytree(image_module, tmp_path / "download" / "tiny_image")
    (tmp_path / "download" / "README.txt").write_text("unpacked here")
    assert local_saved_model(str(tmp_path / "download"), tmp_path / "cache") == str(inner)


def test_two_saved_models_in_one_folder_are_refused_rather_than_one_picked(image_module, text_module, tmp_path):
    shutil.copytree(image_module, tmp_path / "both" / "image")
    shutil.copytree(text_module, tmp_path / "both" / "text")
    with pytest.raises(BackboneError, match=r"no saved_model\.pb in .*both; a backbone must be a TF2 SavedModel"):
        local_saved_model(str(tmp_path / "both"), tmp_path / "cache")


@pytest.mark.parametrize("form", ["path", "file-url", "home"])
def test_a_missing_handle_is_named_as_given_with_what_to_pass_instead(form, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    handle = {"path": str(tmp_path / "nowhere"), "file-url": f"file://{tmp_path}/nowhere", "home": "~/nowhere"}[form]
    with pytest.raises(BackboneError) as error:
        local_saved_model(handle, tmp_path / "cache")
    assert str(error.value) == (
        f"backbone {handle}: no such file or folder. Pass a TF-Hub SavedModel folder, "
        "a .tar.gz of one, a registry id (--model-id) or a hub URL"
    )
    assert not (tmp_path / "cache").exists()


# --- archives -----------------------------------------------------------------------------------


@pytest.mark.parametrize("top", [None, "tiny_image"], ids=["flat", "one-top-folder"])
def test_an_archive_is_extracted_once_into_the_cache_and_reused(top, image_module, tmp_path):
    archive = tar_gz(image_module, tmp_path / "backbone.tar.gz", top)
    cache = tmp_path / "cache"
    first = Path(local_saved_model(str(archive), cache))
    assert digests(first) == digests(image_module)  # byte for byte what was packed
    entries = list((cache / "archives").iterdir())
    assert entries == [first.parent if top else first]  # one complete entry, no staging folder left
    # The entry is keyed by the archive's path, size and modification time: same-sized garbage (not zeros:
    # they read as an empty tar) with the same time stamp would fail to extract, so it must not be read.
    stat = archive.stat()
    archive.write_bytes(b"x" * stat.st_size)
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert local_saved_model(str(archive), cache) == str(first)
    assert local_saved_model(f"file://{archive}", cache) == str(first)
    assert list((cache / "archives").iterdir()) == entries


def test_an_archive_replaced_by_another_model_is_extracted_again(image_module, text_module, tmp_path):
    archive = tar_gz(image_module, tmp_path / "backbone.tar.gz")
    cache = tmp_path / "cache"
    first = local_saved_model(str(archive), cache)
    tar_gz(text_module, archive)
    second = local_saved_model(str(archive), cache)
    assert second != first
    assert digests(Path(second)) == digests(text_module)
    assert digests(Path(first)) == digests(image_module)  # the earlier entry is left as it was


def test_a_broken_archive_leaves_no_cache_entry_and_its_repaired_copy_is_used(image_module, tmp_path):
    archive = tmp_path / "backbone.tar.gz"
    archive.write_text("<html>502 Bad Gateway</html>")
    cache = tmp_path / "cache"
    with pytest.raises(StorageError, match="not a readable tar archive"):
        local_saved_model(str(archive), cache)
    assert list((cache / "archives").iterdir()) == []
    tar_gz(image_module, archive)
    assert digests(Path(local_saved_model(str(archive), cache))) == digests(image_module)


def test_a_folder_holding_one_archive_uses_the_archive(image_module, tmp_path):
    channel = tmp_path / "channel"
    archive = tar_gz(image_module, channel / "model.tar.gz")
    (channel / "manifest.json").write_text("{}")  # other files beside it do not matter
    cache = tmp_path / "cache"
    from_folder = local_saved_model(str(channel), cache)
    assert digests(Path(from_folder)) == digests(image_module)
    assert local_saved_model(str(archive), cache) == from_folder  # the same cache entry


def test_a_folder_holding_two_archives_is_refused_rather_than_one_picked(image_module, text_module, tmp_path):
    tar_gz(image_module, tmp_path / "channel" / "image.tar.gz")
    tar_gz(text_module, tmp_path / "channel" / "text.tgz")
    with pytest.raises(BackboneError, match=r"no saved_model\.pb in .*channel"):
        local_saved_model(str(tmp_path / "channel"), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


# --- built-in, S3 and hub handles ---------------------------------------------------------------


def test_a_built_in_backbone_already_in_the_cache_is_used_without_building(text_module, tmp_path):
    # Building wordllama-words256 takes seconds; a finished entry in the cache must be taken as it is.
    cache = tmp_path / "cache"
    entry = shutil.copytree(text_module, cache / "builtin" / "wordllama-words256")
    assert local_saved_model("builtin:wordllama-words256", cache) == str(entry)
    assert digests(entry) == digests(text_module)


def test_an_unknown_built_in_name_lists_the_known_ones(tmp_path):
    with pytest.raises(BackboneError, match=r"^unknown built-in backbone 'wordllama'; known: wordllama-words256$"):
        local_saved_model("builtin:wordllama", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_an_s3_handle_is_refused_with_how_to_download_it_first(tmp_path):
    with pytest.raises(BackboneError) as error:
        local_saved_model("s3://bucket/backbones/model.tar.gz", tmp_path / "cache")
    assert str(error.value) == (
        "backbone s3://bucket/backbones/model.tar.gz: download s3:// handles first "
        "(tf_finetune.s3.download_prefix); job.run does this"
    )


def test_a_hub_url_offline_names_the_cache_folder_to_fill_and_filling_it_works(image_module, tmp_path, monkeypatch):
    hub_cache = tmp_path / "hub-cache"
    offline(monkeypatch, hub_cache)
    with pytest.raises(BackboneError) as error:
        local_saved_model(HUB_URL, tmp_path / "cache")
    message = str(error.value)
    key = hashlib.sha1(HUB_URL.encode("utf-8")).hexdigest()
    assert message.startswith(f"cannot download backbone {HUB_URL} (")
    for needle in (
        f"TFHUB_CACHE_DIR={hub_cache}",
        f"<cache>/{key}/",
        "tf-finetune fetch-model",
        "--handle",
        "'model' channel",
    ):
        assert needle in message
    assert "\n" not in message and error.value.__cause__ is None  # one line, no chained traceback
    # Doing what it says, still offline:
    shutil.copytree(image_module, hub_cache / key)
    assert Path(local_saved_model(HUB_URL, tmp_path / "cache")) == hub_cache / key


def test_a_hub_url_offline_without_a_tfhub_cache_says_it_is_unset(tmp_path, monkeypatch):
    offline(monkeypatch, None)
    with pytest.raises(BackboneError, match=r"TFHUB_CACHE_DIR=\(unset: a temporary folder\)"):
        local_saved_model(HUB_URL, tmp_path / "cache")


# --- the text preprocessor ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "preprocessor",
    ["https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3", None],
    ids=["entry-names-one", "bare-handle"],
)
def test_a_bundled_preprocessor_wins_without_any_download(
    preprocessor, image_module, text_module, tmp_path, monkeypatch
):
    offline(monkeypatch, tmp_path / "empty-hub-cache")  # a download would fail
    backbone = shutil.copytree(image_module, tmp_path / "backbone")
    shutil.copytree(text_module, backbone / "preprocessor")
    spec = ModelSpec("bert", "text", str(backbone), preprocessor=preprocessor)
    assert local_preprocessor(spec, str(backbone), tmp_path / "cache") == str(backbone / "preprocessor")


def test_a_preprocessor_folder_without_a_saved_model_is_not_taken(image_module, text_module, tmp_path):
    backbone = shutil.copytree(image_module, tmp_path / "backbone")
    (backbone / "preprocessor").mkdir()
    (backbone / "preprocessor" / "vocab.txt").write_text("the\n")
    with_entry = ModelSpec("bert", "text", str(backbone), preprocessor=str(text_module))
    assert local_preprocessor(with_entry, str(backbone), tmp_path / "cache") == str(text_module)
    bare = ModelSpec(str(backbone), "text", str(backbone))
    assert local_preprocessor(bare, str(backbone), tmp_path / "cache") is None


def test_an_entrys_preprocessor_handle_is_resolved_like_a_backbone(image_module, text_module, tmp_path):
    archive = tar_gz(text_module, tmp_path / "preprocess.tar.gz")
    spec = ModelSpec("bert", "text", str(image_module), preprocessor=f"file://{archive}")
    found = local_preprocessor(spec, str(image_module), tmp_path / "cache")
    assert Path(found).parent == tmp_path / "cache" / "archives"
    assert digests(Path(found)) == digests(text_module)


def test_no_bundled_and_no_named_preprocessor_is_none(image_module, tmp_path):
    spec = ModelSpec("tiny", "image", str(image_module))
    assert local_preprocessor(spec, str(image_module), tmp_path / "cache") is None


# --- requirements -------------------------------------------------------------------------------


def test_installed_requirements_pass_with_dashes_read_as_underscores():
    check_requirements(ModelSpec("tiny", "text", "h"))
    check_requirements(ModelSpec("tiny", "text", "h", requires=("numpy", "typing-extensions")))


@pytest.mark.parametrize(
    ("requirement", "how"),
    [
        ("tf-finetune-no-such-package", "pip install tf-finetune-no-such-package"),
        (
            "tensorflow-text",
            "pip install '.[bert]' in the tf_finetune clone (or a wheel built from it), "
            "or pip install tensorflow-text of your TensorFlow's version",
        ),
    ],
)
def test_a_missing_requirement_names_the_package_and_how_to_install_it(requirement, how, monkeypatch):
    # None in sys.modules makes an import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, requirement.replace("-", "_"), None)
    spec = ModelSpec("tiny-bert", "text", "h", requires=("numpy", requirement))
    with pytest.raises(BackboneError) as error:
        check_requirements(spec)
    assert str(error.value) == f"backbone tiny-bert needs the package {requirement}, which is not installed: {how}"


# --- image size ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "expected"), [("fixed_image_module", 32), ("image_module", None), ("text_module", None)]
)
def test_the_fixed_image_size_is_read_from_the_module(module, expected, request):
    layer = hub.KerasLayer(str(request.getfixturevalue(module)))
    assert fixed_image_size(layer) == expected


def test_a_module_with_non_square_inputs_is_refused(tmp_path):
    module = tiny_modules.TinyImageFeatures()
    spec = tf.TensorSpec([None, 16, 24, 3], tf.float32)
    module.__call__.get_concrete_function(spec)
    tf.saved_model.save(module, str(tmp_path / "wide"))
    with pytest.raises(BackboneError, match=r"^backbone input is 16x24; only square inputs are supported$"):
        fixed_image_size(hub.KerasLayer(str(tmp_path / "wide")))


@pytest.mark.parametrize(
    ("requested", "fixed", "expected"), [(None, None, 224), (None, 32, 32), (96, None, 96), (32, 32, 32)]
)
def test_the_image_size_is_the_requested_one_else_the_modules_else_224(requested, fixed, expected, caplog):
    spec = ModelSpec("tiny", "image", "h", image_size=requested)
    with caplog.at_level(logging.INFO, logger="tf_finetune"):
        assert choose_image_size(spec, fixed) == expected
    said = [r.getMessage() for r in caplog.records if "does not fix its input size" in r.getMessage()]
    assert said == (
        ["backbone tiny does not fix its input size; using image_size=224 (set --image-size to change)"]
        if expected == 224
        else []
    )
