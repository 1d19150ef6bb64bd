"""End-to-end jobs on tiny hub modules, in-process, with 4 CPU replicas."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

import tiny_modules
from helpers import REPLICAS, decode_images, extract, offline_environment, run_cli
from tf_finetune.errors import BackboneError, DataError, HyperparameterError
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import run

FAST = {"epochs": 4, "batch_size": 4, "learning_rate": 0.05, "label_smoothing": 0.0}


@pytest.fixture(scope="module")
def image_validation(tmp_path_factory):
    return tiny_modules.write_image_folder(tmp_path_factory.mktemp("val") / "images", per_class=5)


def test_image_job_writes_a_model_that_reloads_with_the_reported_accuracy(
    image_module, image_data, image_validation, cache_dir, tmp_path, caplog
):
    caplog.set_level("INFO")
    result = run(
        JobConfig(
            data=str(image_data),
            validation_data=str(image_validation),
            output=str(tmp_path / "out"),
            handle=str(image_module),
            image_size=24,
            hyperparameters=FAST,
            cache_dir=str(cache_dir),
        )
    )

    assert result.archive == tmp_path / "out" / "output" / "model.tar.gz"
    names = extract(result.archive, tmp_path / "x")
    assert {"1/saved_model.pb", "labels.json", "metrics.json"} <= set(names)
    assert any(n.startswith("1/variables/") for n in names)
    assert not list((tmp_path / "out" / "output").glob(".*")), "temporary files left behind"

    labels = json.loads((tmp_path / "x" / "labels.json").read_text())
    assert labels["class_names"] == ["blue", "red"]
    metrics = json.loads((tmp_path / "x" / "metrics.json").read_text())
    assert metrics["replicas"] == REPLICAS
    assert metrics["global_batch_size"] == 4 * REPLICAS
    assert metrics["epochs_run"] == 4 and metrics["num_validation_examples"] == 10
    assert metrics["backbone"]["handle"] == str(image_module)
    assert f"replicas={REPLICAS} batch_size=4 global_batch={4 * REPLICAS}" in caplog.text
    assert "val_accuracy=" in caplog.text and "epoch=4/4" in caplog.text

    # Reload with plain TensorFlow and score the validation images independently.
    serve = tf.saved_model.load(str(tmp_path / "x" / "1")).signatures["serving_images"]
    paths, truth = [], []
    for index, name in enumerate(labels["class_names"]):
        for path in sorted((image_validation / name).iterdir()):
            paths.append(path)
            truth.append(index)
    probabilities = serve(image=decode_images(paths, 24))["probabilities"].numpy()
    accuracy = float(np.mean(probabilities.argmax(axis=1) == np.array(truth)))
    assert accuracy == pytest.approx(metrics["final"]["val_accuracy"], abs=1e-6)
    assert accuracy >= 0.9, "two colour classes must be learnt"


def test_text_job_keeps_original_labels_and_reloads(text_module, text_data, cache_dir, tmp_path):
    result = run(
        JobConfig(
            data=str(text_data),
            output=str(tmp_path / "out"),
            handle=str(text_module),
            hyperparameters=dict(FAST, epochs=8),
            cache_dir=str(cache_dir),
        )
    )
    extract(result.archive, tmp_path / "x")
    labels = json.loads((tmp_path / "x" / "labels.json").read_text())
    assert labels["original_labels"] == [1, 2] and labels["class_names"] == ["1", "2"]
    assert result.metrics["final"]["val_accuracy"] >= 0.9

    serve = tf.saved_model.load(str(tmp_path / "x" / "1")).signatures["serving_default"]
    texts = tf.constant(["rain and snow today", "the team scored a goal"])
    probabilities = serve(text=texts)["probabilities"].numpy()
    assert [labels["original_labels"][i] for i in probabilities.argmax(axis=1)] == [1, 2]


def test_tiny_dataset_still_trains_one_step_per_epoch(text_module, cache_dir, tmp_path):
    data = tiny_modules.write_text_csv(tmp_path / "data.csv", rows_per_class=2)
    result = run(
        JobConfig(
            data=str(data),
            output=None,
            handle=str(text_module),
            hyperparameters={"epochs": 2, "batch_size": 32},
            cache_dir=str(cache_dir),
        )
    )
    assert result.metrics["epochs_run"] == 2
    assert result.metrics["num_train_examples"] == 2 and result.metrics["num_validation_examples"] == 2
    assert len(result.metrics["history"]["loss"]) == 2


def test_failed_run_keeps_the_previous_model_and_writes_nothing(text_module, text_data, cache_dir, tmp_path):
    out = tmp_path / "out"
    first = run(
        JobConfig(
            data=str(text_data),
            output=str(out),
            handle=str(text_module),
            hyperparameters={"epochs": 1},
            cache_dir=str(cache_dir),
        )
    )
    before = hashlib.sha256(first.archive.read_bytes()).hexdigest()
    listing = sorted(p.relative_to(out) for p in out.rglob("*"))
    bad = tmp_path / "bad.csv"
    bad.write_text("label,text\n0,hello\n")
    with pytest.raises(DataError, match="header"):
        run(JobConfig(data=str(bad), output=str(out), handle=str(text_module), cache_dir=str(cache_dir)))
    assert hashlib.sha256(first.archive.read_bytes()).hexdigest() == before
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == listing

    fresh = tmp_path / "fresh"
    with pytest.raises(BackboneError):
        run(
            JobConfig(
                data=str(text_data), output=str(fresh), handle=str(tmp_path / "missing"), cache_dir=str(cache_dir)
            )
        )
    assert not fresh.exists()


def test_only_the_top_layer_trains_when_asked(image_module, image_data, cache_dir, tmp_path):
    original = tf.saved_model.load(str(image_module)).kernel.numpy()
    kernels = {}
    for frozen in (True, False):
        out = tmp_path / str(frozen)
        run(
            JobConfig(
                data=str(image_data),
                output=str(out),
                handle=str(image_module),
                image_size=16,
                hyperparameters=dict(FAST, epochs=1, train_only_top_layer=frozen),
                cache_dir=str(cache_dir),
            )
        )
        extract(out / "output" / "model.tar.gz", out / "x")
        model = tf.saved_model.load(str(out / "x" / "1"))
        (kernel,) = [v.numpy() for v in model.variables if v.shape == original.shape]
        kernels[frozen] = kernel
    np.testing.assert_array_equal(kernels[True], original)
    assert np.abs(kernels[False] - original).max() > 1e-4


def test_early_stopping_stops_when_validation_loss_stalls(text_module, text_data, cache_dir):
    result = run(
        JobConfig(
            data=str(text_data),
            output=None,
            handle=str(text_module),
            hyperparameters={
                "epochs": 20,
                "learning_rate": 1e-12,
                "early_stopping": "True",
                "early_stopping_patience": 2,
                "early_stopping_min_delta": 0.001,
            },
            cache_dir=str(cache_dir),
        )
    )
    assert result.metrics["epochs_run"] == 3


def test_early_stopping_without_validation_is_refused(text_module, text_data, cache_dir):
    with pytest.raises(HyperparameterError, match="early_stopping needs validation data"):
        run(
            JobConfig(
                data=str(text_data),
                output=None,
                handle=str(text_module),
                hyperparameters={"early_stopping": True, "validation_split_ratio": 0},
                cache_dir=str(cache_dir),
            )
        )


def test_augmentation_runs_on_images(image_module, image_data, cache_dir):
    result = run(
        JobConfig(
            data=str(image_data),
            output=None,
            handle=str(image_module),
            image_size=16,
            hyperparameters=dict(FAST, epochs=1, augmentation=True, augmentation_random_flip="horizontal"),
            cache_dir=str(cache_dir),
        )
    )
    assert result.metrics["epochs_run"] == 1


def test_fixed_size_module_sets_the_size_and_refuses_another(fixed_image_module, image_data, cache_dir):
    result = run(
        JobConfig(
            data=str(image_data),
            output=None,
            handle=str(fixed_image_module),
            hyperparameters={"epochs": 1},
            cache_dir=str(cache_dir),
        )
    )
    assert result.metrics["backbone"]["image_size"] == 32
    with pytest.raises(BackboneError, match="takes 32x32 images only; image_size 64"):
        run(
            JobConfig(
                data=str(image_data),
                output=None,
                handle=str(fixed_image_module),
                image_size=64,
                cache_dir=str(cache_dir),
            )
        )


def test_dynamic_module_defaults_to_224(image_module, image_data, cache_dir):
    result = run(
        JobConfig(
            data=str(image_data),
            output=None,
            handle=str(image_module),
            hyperparameters={"epochs": 1},
            cache_dir=str(cache_dir),
        )
    )
    assert result.metrics["backbone"]["image_size"] == 224


def test_text_module_on_images_is_one_clear_error(text_module, image_data, cache_dir):
    # The handle's SavedModel says it takes text: the data is checked as text, before it is read.
    with pytest.raises(DataError, match="holds no data.csv but the model is a text model"):
        run(JobConfig(data=str(image_data), output=None, handle=str(text_module), cache_dir=str(cache_dir)))


def test_image_module_on_text_is_one_clear_error(image_module, text_data, cache_dir):
    with pytest.raises(DataError, match=r"holds text data \(a \.csv\) but the model is an image model"):
        run(JobConfig(data=str(text_data), output=None, handle=str(image_module), cache_dir=str(cache_dir)))


def test_module_that_is_not_a_feature_vector_is_refused(image_data, cache_dir, tmp_path):
    module = tiny_modules.save_image_module(tmp_path / "map", module=tiny_modules.TinyNotAFeatureVector())
    with pytest.raises(BackboneError, match=r"does not return a feature vector"):
        run(JobConfig(data=str(image_data), output=None, handle=str(module), image_size=16, cache_dir=str(cache_dir)))


def test_registry_url_offline_says_what_to_do(image_data, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty-cache"))
    for name, value in offline_environment().items():
        monkeypatch.setenv(name, value)
    with pytest.raises(BackboneError) as error:
        run(
            JobConfig(
                data=str(image_data),
                output=str(tmp_path / "out"),
                model_id="mobilenet-v2-035-96",
                cache_dir=str(cache_dir),
            )
        )
    message = str(error.value)
    for needle in (
        "https://tfhub.dev/google/imagenet/mobilenet_v2_035_96/feature_vector/5",
        "TFHUB_CACHE_DIR",
        "--handle",
        "'model' channel",
        "offline",
    ):
        assert needle in message
    assert not (tmp_path / "out").exists()


def test_registry_url_resolves_offline_from_a_filled_tfhub_cache(
    image_module, image_data, cache_dir, tmp_path, monkeypatch
):
    handle = "https://tfhub.dev/google/imagenet/mobilenet_v2_035_96/feature_vector/5"
    hub_cache = tmp_path / "hub-cache"
    shutil.copytree(image_module, hub_cache / hashlib.sha1(handle.encode()).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(hub_cache))
    result = run(
        JobConfig(
            data=str(image_data),
            output=None,
            model_id="mobilenet-v2-035-96",
            hyperparameters={"epochs": 1},
            cache_dir=str(cache_dir),
        )
    )
    assert result.metrics["backbone"]["image_size"] == 96
    assert result.metrics["backbone"]["id"] == "mobilenet-v2-035-96"


def test_archive_and_file_url_handles(image_module, image_data, cache_dir, tmp_path):
    archive = tmp_path / "backbone.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for child in image_module.iterdir():
            tar.add(child, arcname=child.name)
    for handle in (str(archive), f"file://{image_module}"):
        result = run(
            JobConfig(
                data=str(image_data),
                output=None,
                handle=handle,
                image_size=16,
                hyperparameters={"epochs": 1},
                cache_dir=str(cache_dir),
            )
        )
        assert result.metrics["epochs_run"] == 1


def test_image_size_is_refused_for_text(text_module, text_data, cache_dir):
    with pytest.raises(HyperparameterError, match="image_size applies to image models only"):
        run(
            JobConfig(
                data=str(text_data), output=None, handle=str(text_module), image_size=64, cache_dir=str(cache_dir)
            )
        )


def test_full_fine_tune_with_decoded_image_cache_and_mixed_precision_on_cpu(
    image_module, image_data, image_validation, cache_dir, caplog
):
    caplog.set_level("INFO")
    hp = dict(FAST, epochs=2, mixed_precision=True, random_seed=3, train_only_top_layer=False)
    result = run(
        JobConfig(
            data=str(image_data),
            validation_data=str(image_validation),
            output=None,
            handle=str(image_module),
            image_size=24,
            hyperparameters=hp,
            cache_dir=str(cache_dir),
        )
    )

    assert "mixed_precision=True is ignored: no GPU" in caplog.text
    assert "decoded images are cached as 8-bit RGB after the first epoch" in caplog.text
    assert result.metrics["epochs_run"] == 2
    assert np.isfinite(result.metrics["history"]["loss"]).all()
    assert result.metrics["final"]["val_accuracy"] >= 0.8


def test_jit_compile_trains_on_one_device_and_is_refused_on_split_cpus(image_module, image_data, cache_dir, tmp_path):
    with pytest.raises(HyperparameterError, match=f"jit_compile=True cannot run on {REPLICAS} logical CPU"):
        run(
            JobConfig(
                data=str(image_data),
                output=None,
                handle=str(image_module),
                image_size=24,
                hyperparameters=dict(FAST, jit_compile=True),
                cache_dir=str(cache_dir),
            )
        )
    done = run_cli(
        "train",
        "--handle",
        str(image_module),
        "--data",
        str(image_data),
        "--image-size",
        "24",
        "--output",
        str(tmp_path / "out"),
        "--cache-dir",
        str(cache_dir),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--learning-rate",
        "0.05",
        "--jit-compile",
        "True",
        "--train-only-top-layer",
        "False",
    )
    assert done.returncode == 0, done.stderr
    with tarfile.open(tmp_path / "out" / "output" / "model.tar.gz") as archive:
        metrics = json.loads(archive.extractfile("metrics.json").read())
    assert metrics["hyperparameters"]["jit_compile"] is True and metrics["replicas"] == 1
    assert np.isfinite(metrics["history"]["loss"]).all()
