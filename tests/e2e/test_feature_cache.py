"""Head-only training on backbone features computed once gives the model an uncached run gives."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tiny_modules
from helpers import extract
from tf_finetune.data.pipeline import decode_image
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import run

HEAD_ONLY = {
    "train_only_top_layer": True,
    "epochs": 3,
    "batch_size": 4,
    "learning_rate": 0.05,
    "label_smoothing": 0.0,
    "random_seed": 5,
    "regularizers_l2": 0.0001,
}


def served_probabilities(archive, tmp_path, images) -> np.ndarray:
    target = tmp_path / archive.parent.parent.name
    extract(archive, target)
    serve = tf.saved_model.load(str(target / "1")).signatures["serving_images"]
    return serve(image=images)["probabilities"].numpy()


def test_cached_and_uncached_head_only_runs_give_the_same_model(image_module, image_data, cache_dir, tmp_path, caplog):
    caplog.set_level("INFO")
    validation = tiny_modules.write_image_folder(tmp_path / "val", per_class=4)
    results = {}
    for cached in (True, False):
        caplog.clear()
        results[cached] = run(
            JobConfig(
                data=str(image_data),
                validation_data=str(validation),
                output=str(tmp_path / f"c{cached}"),
                handle=str(image_module),
                image_size=24,
                hyperparameters=HEAD_ONLY,
                feature_cache=cached,
                cache_dir=str(cache_dir),
            )
        )
        on_features = "features: train " in caplog.text
        assert on_features == cached, caplog.text
    history = {k: results[k].metrics["history"] for k in results}
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history[True][name], history[False][name], atol=1e-4, err_msg=name)
    paths = sorted(validation.rglob("*.jpg"))
    images = tf.stack([decode_image(tf.constant(str(p)), 24, "bilinear") for p in paths])
    np.testing.assert_allclose(
        served_probabilities(results[True].archive, tmp_path, images),
        served_probabilities(results[False].archive, tmp_path, images),
        atol=1e-4,
    )


def test_augmentation_falls_back_to_the_backbone_every_epoch(image_module, image_data, cache_dir, caplog):
    caplog.set_level("INFO")
    result = run(
        JobConfig(
            data=str(image_data),
            output=None,
            handle=str(image_module),
            image_size=24,
            hyperparameters=dict(HEAD_ONLY, epochs=1, augmentation=True),
            cache_dir=str(cache_dir),
        )
    )
    assert "features: train" not in caplog.text
    assert "augmentation is on, so features change every epoch" in caplog.text
    assert result.metrics["epochs_run"] == 1


def test_large_features_go_to_a_file_backed_array(image_module, image_data, cache_dir, monkeypatch, caplog, tmp_path):
    from tf_finetune.training import head_only

    caplog.set_level("INFO")

    small = run(
        JobConfig(
            data=str(image_data),
            output=None,
            handle=str(image_module),
            image_size=24,
            hyperparameters=HEAD_ONLY,
            cache_dir=str(cache_dir),
        )
    )
    monkeypatch.setattr(head_only, "MEMORY_LIMIT_BYTES", 0)  # the limit, not our results
    big = run(
        JobConfig(
            data=str(image_data),
            output=None,
            handle=str(image_module),
            image_size=24,
            hyperparameters=HEAD_ONLY,
            cache_dir=str(tmp_path / "empty-cache"),
        )
    )
    for name in ("loss", "val_loss"):
        np.testing.assert_allclose(big.metrics["history"][name], small.metrics["history"][name], atol=1e-4)
    assert "are kept in a file" in caplog.text
    assert big.metrics["history"]["loss"] != pytest.approx([0, 0, 0])


def test_mixed_precision_is_undone_when_the_job_ends():
    from tf_finetune.training.classifier import grappler_option

    def option():
        return tf.config.optimizer.get_experimental_options().get("auto_mixed_precision", False)

    before = option()
    with grappler_option("auto_mixed_precision", True):
        assert option() is True
    assert option() == before
    with pytest.raises(RuntimeError), grappler_option("auto_mixed_precision", True):
        raise RuntimeError("training failed")  # a job that fails puts it back too
    assert option() == before


def test_head_on_cached_features_has_the_full_models_loss_scaling(image_module, image_data, tmp_path):
    loss_scaling = True  # as mixed_precision() yields on a GPU
    from tf_finetune.data import load_data
    from tf_finetune.data.pipeline import Decoding, inference_batches, steps_per_epoch
    from tf_finetune.hyperparameters import resolve
    from tf_finetune.registry import ModelSpec
    from tf_finetune.training import classifier, distribute, head_only

    strategy = distribute.create_strategy()
    hp = resolve(dict(HEAD_ONLY, epochs=1))
    data = load_data("image", image_data, validation_split_ratio=0.25)
    spec = ModelSpec(str(image_module), "image", str(image_module), image_size=24)
    with strategy.scope():
        model, size = classifier.build_classifier(spec, str(image_module), None, 2, hp)
        classifier.compile_classifier(model, hp, 10, loss_scaling)
    batch = 4 * strategy.num_replicas_in_sync
    inputs = {
        name: inference_batches(examples.inputs, "image", batch, decoding=Decoding(size))
        for name, examples in (("train", data.train), ("validation", data.validation))
    }
    layout = distribute.Layout(
        strategy, strategy.num_replicas_in_sync, 1, 4, batch, steps_per_epoch(len(data.train), batch)
    )
    built = classifier.Built(model, layout, size, loss_scaling, frozenset({"epochs"}))
    fit = head_only.fit_head(built, data, inputs, hp, tmp_path, "image")
    scaled = lambda m: isinstance(m.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)  # noqa: E731
    assert scaled(model) and scaled(fit.scorer.model)
    assert [c.name for c in fit.choices] == ["regularizers_l2"]  # its candidate heads are scaled too
    assert len(fit.history["loss"]) == 1 and np.isfinite(fit.history["val_loss"][0])
