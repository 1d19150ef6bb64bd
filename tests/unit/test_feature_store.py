"""Backbone features kept on disk between runs: read back when nothing they depend on has
changed, computed again when anything has."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import tiny_modules
from tf_finetune.job_options import JobConfig
from tf_finetune.training.feature_store import FeatureStore, savedmodel_digest
from tf_finetune.training.job import run

HP = {
    "train_only_top_layer": True,
    "epochs": 2,
    "batch_size": 4,
    "learning_rate": 0.05,
    "regularizers_l2": 0.001,
    "random_seed": 4,
}


@pytest.fixture
def job(image_module, tmp_path, caplog):
    """Runs a head-only job with a cache of its own; returns (metrics, where each split's
    features came from: 'computed' or 'read')."""
    caplog.set_level("INFO")
    data = tiny_modules.write_image_folder(tmp_path / "train", per_class=6)
    validation = tiny_modules.write_image_folder(tmp_path / "val", per_class=3)

    def train(module=image_module, image_size=24, **hp):
        caplog.clear()
        result = run(
            JobConfig(
                data=str(data),
                validation_data=str(validation),
                output=None,
                handle=str(module),
                image_size=image_size,
                hyperparameters=dict(HP, **hp),
                cache_dir=str(tmp_path / "cache"),
            )
        )
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("features: "))
        sources = {split: "read" if f"{split} read from" in line else "computed" for split in ("train", "validation")}
        return result.metrics, sources

    return train, data, tmp_path / "cache" / "features"


def test_a_second_run_reads_the_features_and_trains_the_same_model(job):
    train, _, store = job
    first, sources = train()
    assert sources == {"train": "computed", "validation": "computed"}
    assert len(list(store.glob("*.npy"))) == 2
    second, sources = train()
    assert sources == {"train": "read", "validation": "read"}
    assert second["history"] == first["history"] and second["final"] == first["final"]


def test_any_change_to_what_the_features_depend_on_computes_them_again(job, fixed_image_module):
    train, data, _ = job
    train()
    assert train(image_size=16)[1] == {"train": "computed", "validation": "computed"}
    assert train(image_resize_interpolation="nearest")[1] == {"train": "computed", "validation": "computed"}
    assert train(module=fixed_image_module, image_size=32)[1] == {"train": "computed", "validation": "computed"}
    # One training image with other bytes under the same name: the training features only.
    image = sorted((data / "red").iterdir())[0]
    tiny_modules.write_image(image, tiny_modules.COLOURS["blue"], seed=99)
    assert train()[1] == {"train": "computed", "validation": "read"}
    # Nothing changed since: both read.
    assert train()[1] == {"train": "read", "validation": "read"}


def test_a_damaged_entry_is_computed_again(job):
    train, _, store = job
    first, _ = train()
    for entry in store.glob("*.npy"):
        entry.write_bytes(entry.read_bytes()[:50])
    again, sources = train()
    assert sources == {"train": "computed", "validation": "computed"}
    assert again["history"] == first["history"]


def test_the_key_follows_the_backbone_and_every_input(image_module, tmp_path):
    copy = shutil.copytree(image_module, tmp_path / "copy")
    assert savedmodel_digest(copy) == savedmodel_digest(image_module)
    other = tiny_modules.save_image_module(tmp_path / "other", size=32)
    assert savedmodel_digest(other) != savedmodel_digest(image_module)

    store = FeatureStore.open(tmp_path / "cache", str(image_module), None, "text", None, "bilinear")
    assert store.key(["a", "b"], "text") != store.key(["b", "a"], "text")
    assert store.key(["a", "b"], "text") == store.key(["a", "b"], "text")
    assert store.load("missing", 2) is None
    features = np.arange(6, dtype=np.float32).reshape(3, 2)
    store.save("k", features)
    np.testing.assert_array_equal(store.load("k", 3), features)
    assert store.load("k", 4) is None  # another count: not this entry
