"""Writing the trained model (tf_finetune.serving.export): the model folder's layout and contents, the
archive of it, and ``export_archive``'s all-or-nothing write, on a tiny Dense classifier over
4 features saved for real.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import extract
from tf_finetune import model_folder, storage
from tf_finetune.data import LabelMap
from tf_finetune.serving import export

LABELS = LabelMap(("cold", "mild", "café"), (3, 7, 9))  # text data's form: original labels kept, non-ASCII
METRICS = {"final": {"val_accuracy": 0.75}, "history": {"loss": [0.9, 0.5]}, "replicas": 2}
INPUTS = np.random.default_rng(5).normal(size=(6, 4)).astype("float32")


def softmax_of(model: tf_keras.Model, features: np.ndarray) -> np.ndarray:
    kernel, bias = model.get_weights()
    logits = features.astype("float64") @ kernel + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def model() -> tf_keras.Model:
    """A compiled Dense + softmax whose optimizer has its state (Adam's slots), to be left out."""
    model = tf_keras.Sequential([tf_keras.Input([4]), tf_keras.layers.Dense(3, activation="softmax")])
    model.set_weights([np.random.default_rng(6).normal(size=(4, 3)), np.array([0.1, 0.0, -0.1])])
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    return model


def signatures_of(model: tf_keras.Model) -> dict:
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def serve(features):
        probabilities = model(features, training=False)
        return {"probabilities": probabilities, "class_index": tf.argmax(probabilities, -1, output_type=tf.int32)}

    return {"serving_default": serve.get_concrete_function(), "features_in": serve.get_concrete_function()}


@pytest.fixture(scope="module")
def folder(model, tmp_path_factory) -> Path:
    """write_model_folder of the model with our own signatures, into a new folder."""
    target = tmp_path_factory.mktemp("written") / "model"
    assert export.write_model_folder(model, LABELS, METRICS, target, signatures_of(model)) == target
    return target


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_model_folder_holds_the_versioned_saved_model_the_label_and_metrics_files_and_the_handlers(folder):
    assert sorted(p.name for p in folder.iterdir()) == ["1", "code", "labels.json", "metrics.json"]
    assert (folder / "1" / "saved_model.pb").is_file() and model_folder.is_model_folder(folder)
    shipped = Path(export.__file__).parents[1] / "sagemaker" / "inference.py"
    assert (folder / "code" / "inference.py").read_bytes() == shipped.read_bytes()
    assert [p.name for p in (folder / "code").iterdir()] == ["inference.py"]


def test_labels_json_round_trips_the_label_map_and_metrics_json_holds_the_metrics(folder):
    assert model_folder.read_labels(folder) == LABELS
    assert json.loads((folder / "metrics.json").read_text("utf-8")) == METRICS


def test_the_saved_model_serves_the_given_signatures_with_the_models_outputs(model, folder):
    loaded = tf.saved_model.load(str(folder / "1"))
    assert set(loaded.signatures) == {"serving_default", "features_in"}
    answer = loaded.signatures["serving_default"](features=tf.constant(INPUTS))
    expected = softmax_of(model, INPUTS)
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(answer["class_index"].numpy(), expected.argmax(axis=1))


def test_without_signatures_keras_serves_the_model_and_the_optimizer_state_is_left_out(model, tmp_path):
    target = export.write_model_folder(model, LABELS, METRICS, tmp_path / "model")
    reloaded = tf_keras.models.load_model(str(target / "1"), compile=False)
    np.testing.assert_allclose(reloaded.predict(INPUTS, verbose=0), softmax_of(model, INPUTS), atol=1e-6)
    assert "serving_default" in tf.saved_model.load(str(target / "1")).signatures
    saved = [name for name, _ in tf.train.list_variables(str(target / "1" / "variables" / "variables"))]
    assert any("kernel" in name for name in saved)
    assert not [name for name in saved if "optimizer" in name.lower()], saved


def test_the_archive_unpacks_to_the_folders_contents_at_its_root_byte_for_byte(folder, tmp_path):
    archive = export.pack_archive(folder, tmp_path / "model.tar.gz")
    assert archive == tmp_path / "model.tar.gz"
    with tarfile.open(archive, "r:gz") as tar:
        top = [name for name in tar.getnames() if "/" not in name]
    assert top == ["1", "code", "labels.json", "metrics.json"]  # no enclosing folder, in name order
    extract(archive, tmp_path / "unpacked")
    assert files_under(tmp_path / "unpacked") == files_under(folder)


def test_packing_again_replaces_the_archive_whole_and_leaves_no_temporary_file(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for root, names in ((first, ["a.txt", "old.txt"]), (second, ["a.txt", "b.txt"])):
        root.mkdir()
        for name in names:
            (root / name).write_text(f"{root.name} {name}")
    archive = tmp_path / "out" / "model.tar.gz"
    archive.parent.mkdir()
    export.pack_archive(first, archive)
    export.pack_archive(second, archive)
    extract(archive, tmp_path / "unpacked")
    assert files_under(tmp_path / "unpacked") == files_under(second)
    assert list(archive.parent.iterdir()) == [archive]


def test_export_archive_creates_its_folder_and_leaves_only_the_archive_of_the_model_folder(model, tmp_path):
    archive = tmp_path / "new" / "output" / "model.tar.gz"
    assert export.export_archive(model, LABELS, METRICS, archive, signatures_of(model)) == archive
    assert list(archive.parent.iterdir()) == [archive]  # the temporary model folder is gone
    extract(archive, tmp_path / "unpacked")
    unpacked = tmp_path / "unpacked"
    assert model_folder.is_model_folder(unpacked) and model_folder.read_labels(unpacked) == LABELS
    assert model_folder.read_metrics(unpacked) == METRICS
    serve = tf.saved_model.load(str(unpacked / "1")).signatures["serving_default"]
    np.testing.assert_allclose(
        serve(features=tf.constant(INPUTS))["probabilities"].numpy(), softmax_of(model, INPUTS), atol=1e-6
    )


def test_export_archive_removes_what_dead_runs_left_and_keeps_a_live_runs_staging(model, tmp_path):
    out = tmp_path / "output"
    out.mkdir()
    with open("/proc/sys/kernel/pid_max") as handle:
        dead = int(handle.read()) + 1  # above the highest process id: never running
    stale_folder = out / f"{storage.STAGING_PREFIX}{dead}-abc"
    stale_folder.mkdir()
    (stale_folder / "saved_model.pb").write_bytes(b"half")
    stale_file = out / f"{storage.STAGING_PREFIX}{dead}-x.tar.gz"
    stale_file.write_bytes(b"half")
    live = out / f"{storage.STAGING_PREFIX}{os.getpid()}-writing"
    live.mkdir()
    export.export_archive(model, LABELS, METRICS, out / "model.tar.gz")
    assert sorted(p.name for p in out.iterdir()) == sorted(["model.tar.gz", live.name])


def test_a_failed_export_leaves_the_previous_archive_as_it_was_and_nothing_else(model, folder, tmp_path):
    archive = export.pack_archive(folder, tmp_path / "output" / "model.tar.gz")
    before = archive.read_bytes()
    with pytest.raises(TypeError):  # metrics.json cannot hold it: fails after the SavedModel is written
        export.export_archive(model, LABELS, {"not json": object()}, archive)
    assert archive.read_bytes() == before
    assert list(archive.parent.iterdir()) == [archive]
