"""The outputs of a trained job (tf_finetune.training.job_outputs), written from a real tiny image
classifier and real data splits: where the archive, the model folder and the reports go, what
``metrics.json``'s record counts, and that a worker other than the chief keeps nothing.

``s3://`` outputs (the archive and the uploaded reports) are covered end to end in test_s3.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tiny_modules
from helpers import extract
from tf_finetune import model_folder
from tf_finetune.data import DataSplit, Examples, LabelMap
from tf_finetune.hyperparameters import resolve
from tf_finetune.job_options import JobConfig
from tf_finetune.registry import ModelSpec
from tf_finetune.reports import data_check
from tf_finetune.training import classifier, distribute, job_outputs

SIZE = 8
IMAGES = DataSplit(
    "image",
    Examples(("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"), (0, 1, 0, 1, 1)),
    Examples(("f.jpg", "g.jpg"), (1, 0)),
    LabelMap(("blue", "red")),
)
TEXTS = DataSplit(
    "text",
    Examples(("sun today", "rain today", "snow and wind"), (0, 1, 1)),
    Examples(("sun and sun", "cold rain", "fog today", 'wind, "very" cold', "snow"), (0, 1, 1, 0, 1)),
    LabelMap(("0", "1"), (0, 1)),
)
METRICS = {"final": {"val_accuracy": 0.5}, "epochs_run": 2}
LAYOUT = distribute.Layout(strategy=None, replicas=2, workers=1, batch_size=3, global_batch=6, steps=2)


def built(model) -> classifier.Built:
    """``model`` as the job hands it over once built: SIZE x SIZE inputs, LAYOUT."""
    return classifier.Built(model, LAYOUT, SIZE, loss_scaling=False, given=frozenset())


@pytest.fixture(scope="module")
def model() -> tf_keras.Model:
    """An image classifier on SIZE x SIZE inputs: channel means -> Dense -> softmax."""
    model = tf_keras.Sequential(
        [
            tf_keras.Input([SIZE, SIZE, 3]),
            tf_keras.layers.GlobalAveragePooling2D(),
            tf_keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.set_weights([np.array([[-4.0, 4.0], [0.0, 0.0], [4.0, -4.0]], "float32"), np.zeros(2, "float32")])
    return model


def config(tmp_path: Path, **values) -> JobConfig:
    return JobConfig(data=str(tmp_path / "data"), **values)


def test_the_output_folder_is_output_under_the_location_with_or_without_a_trailing_slash():
    assert job_outputs.output_folder("/tmp/runs/a") == "/tmp/runs/a/output"
    assert job_outputs.output_folder("/tmp/runs/a/") == "/tmp/runs/a/output"
    assert job_outputs.output_folder("s3://bucket/job/") == "s3://bucket/job/output"


@pytest.fixture(scope="module")
def chief_outputs(model, tmp_path_factory):
    """write_outputs on the chief with an output and a model folder. Returns (root, Written)."""
    root = tmp_path_factory.mktemp("chief")
    written = job_outputs.write_outputs(
        config(root, output=str(root / "out"), model_dir=str(root / "model")),
        built(model),
        IMAGES,
        METRICS,
        resolve({}),
        root / "work",
        chief=True,
    )
    return root, written


def test_the_chief_puts_the_archive_under_output_and_also_fills_the_model_folder(chief_outputs):
    root, written = chief_outputs
    assert written == job_outputs.Written(root / "out" / "output" / "model.tar.gz", chief=True)
    extract(written.archive, root / "unpacked")
    for folder in (root / "model", root / "unpacked"):
        assert model_folder.is_model_folder(folder)
        assert model_folder.read_labels(folder) == IMAGES.label_map
        assert model_folder.read_metrics(folder) == METRICS


def test_the_written_model_serves_images_with_the_class_names(model, chief_outputs):
    root, _ = chief_outputs
    images = np.random.default_rng(2).uniform(size=(5, SIZE, SIZE, 3)).astype("float32")
    images[0, ..., 0], images[1, ..., 2] = 1.0, 1.0  # one clearly red, one clearly blue
    expected = model(images).numpy()
    for folder in (root / "model", root / "unpacked"):
        loaded = tf.saved_model.load(str(folder / "1"))
        assert {"serving_default", "serving_images"} <= set(loaded.signatures)
        answer = loaded.signatures["serving_images"](image=tf.constant(images))
        np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-6)
        names = [IMAGES.label_map.class_names[i] for i in expected.argmax(axis=1)]
        assert [label.decode() for label in answer["label"].numpy()] == names


def test_a_worker_that_is_not_the_chief_saves_too_but_keeps_nothing_at_the_destinations(model, tmp_path):
    workdir = tmp_path / "work"
    written = job_outputs.write_outputs(
        config(tmp_path, output=str(tmp_path / "out"), model_dir=str(tmp_path / "model")),
        built(model),
        IMAGES,
        METRICS,
        resolve({}),
        workdir,
        chief=False,
    )
    assert written == job_outputs.Written(None, chief=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "model").exists()
    # Saving runs collective ops in a cluster: the worker saves where nothing is published.
    assert [model_folder.is_model_folder(p) for p in workdir.iterdir()] == [True]


def test_without_an_output_only_the_model_folder_is_written_and_there_is_no_archive(model, tmp_path):
    written = job_outputs.write_outputs(
        config(tmp_path, output=None, model_dir=str(tmp_path / "model")),
        built(model),
        IMAGES,
        METRICS,
        resolve({}),
        tmp_path / "work",
        chief=True,
    )
    assert written == job_outputs.Written(None, chief=True)
    assert model_folder.is_model_folder(tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def record(
    data: DataSplit, history: dict, test: Examples | None = None, text_lengths: dict | None = None, choices: tuple = ()
) -> dict:
    """metrics_record of a run on ``data`` (and ``test``) that trained 12.3456 s of 20.004 s, under LAYOUT."""
    spec = ModelSpec("tiny-image", "image", "/models/tiny")
    backbone = classifier.Backbone(spec, "/models/tiny", continuing=False, text_lengths=text_lengths or {})
    fitted = job_outputs.Fitted(
        history, None, resolve({"epochs": 4, "batch_size": 3}), list(choices), 12.3456, final={"val_loss": 0.25}
    )
    return job_outputs.metrics_record(
        JobConfig(data="d", output="o", model_id="tiny-image"),
        backbone,
        job_outputs.Inputs(data, test, None, None),
        built(None),
        fitted,
        20.004,
    )


def test_metrics_record_counts_the_data_and_the_epochs_run_as_plain_json():
    history = {"loss": [np.float32(0.75), np.float32(0.5), np.float32(0.25)], "val_loss": [0.8, 0.6, 0.7]}
    found = record(IMAGES, history)
    assert json.loads(json.dumps(found)) == found  # JSON-ready: numpy values became floats
    assert found["history"] == {"loss": [0.75, 0.5, 0.25], "val_loss": [0.8, 0.6, 0.7]}
    assert found["backbone"] == {
        "id": "tiny-image",
        "handle": "/models/tiny",
        "task": "image",
        "image_size": SIZE,
        "preprocessor": None,
    }
    assert (
        found["epochs_run"],
        found["num_train_examples"],
        found["num_validation_examples"],
        found["num_classes"],
    ) == (3, len(IMAGES.train), len(IMAGES.validation), 2)
    assert (found["replicas"], found["global_batch_size"], found["final"]) == (2, 6, {"val_loss": 0.25})
    assert found["hyperparameters"] == dict(resolve({"epochs": 4, "batch_size": 3}))
    assert (found["train_seconds"], found["total_seconds"]) == (12.35, 20.0)


def test_metrics_record_is_the_whole_record_in_its_order_with_the_text_lengths_and_the_choices():
    from tf_finetune.training.head_search import kept_epoch

    choice = kept_epoch(2, {1: 0.5, 2: 0.25}, "loss")
    found = record(
        IMAGES,
        {"loss": [0.5, 0.25]},
        test=IMAGES.validation,
        choices=(choice,),
        text_lengths={"max_seq_length": 16, "train_texts": {"truncated": 1}},
    )
    assert list(found) == [
        "backbone",
        "final",
        "history",
        "epochs_run",
        "replicas",
        "global_batch_size",
        "num_train_examples",
        "num_validation_examples",
        "num_classes",
        "hyperparameters",
        "train_seconds",
        "total_seconds",
        "workers",
        "num_test_examples",
        "steps_per_epoch",
        "choices",
    ]
    assert list(found["backbone"]) == [
        "id",
        "handle",
        "task",
        "image_size",
        "preprocessor",
        "max_seq_length",
        "train_texts",
    ]
    assert (found["workers"], found["num_test_examples"], found["steps_per_epoch"]) == (1, 2, 2)
    assert found["choices"] == [choice.record()] and json.loads(json.dumps(found)) == found


def test_metrics_record_without_validation_or_epochs_counts_zero():
    no_validation = DataSplit("text", TEXTS.train, None, TEXTS.label_map)
    found = record(no_validation, {})
    assert (found["epochs_run"], found["num_validation_examples"], found["num_train_examples"]) == (0, 0, 3)


def test_write_archive_packs_the_model_as_output_model_tar_gz(model, tmp_path):
    archive = job_outputs.write_archive(
        model, IMAGES.label_map, METRICS, None, str(tmp_path / "job"), tmp_path / "work"
    )
    assert archive == tmp_path / "job" / "output" / "model.tar.gz"
    assert sorted(p.name for p in archive.parent.iterdir()) == ["model.tar.gz"]
    extract(archive, tmp_path / "unpacked")
    assert model_folder.read_labels(tmp_path / "unpacked") == IMAGES.label_map


# Validation probabilities of TEXTS: rows 0, 1 and 4 right, 2 and 3 wrong (most confident first: 3, then 2);
# the confusion matrix is not symmetric, so it shows which way each mistake went.
VAL_PROBABILITIES = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.35, 0.65]], "float32")
HISTORY = {"loss": [0.7, 0.4], "accuracy": [0.5, 0.75], "val_loss": [0.8, 0.6], "val_accuracy": [0.25, 0.5]}


def test_reports_go_to_the_report_dir_with_the_validation_confusion_matrix_and_mistakes(tmp_path):
    reports, report = tmp_path / "reports", data_check.from_loaded(TEXTS)
    job_outputs.write_reports(
        config(tmp_path, output=str(tmp_path / "out"), report_dir=str(reports)),
        TEXTS,
        VAL_PROBABILITIES,
        HISTORY,
        tmp_path / "work",
        report,
    )
    assert not (tmp_path / "out").exists()  # the report dir replaces <output>/output/reports
    assert sorted(p.name for p in reports.iterdir()) == [
        "confusion_matrix.png",
        "data_report.json",
        "evaluation.json",
        "misclassified.csv",
        "per_class.txt",
        "training_curves.png",
    ]
    assert json.loads((reports / "data_report.json").read_text("utf-8")) == json.loads(json.dumps(report.to_dict()))
    for png in ("confusion_matrix.png", "training_curves.png"):
        assert (reports / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    truth, predicted = np.array(TEXTS.validation.labels), VAL_PROBABILITIES.argmax(axis=1)
    matrix = [[int(np.sum((truth == t) & (predicted == p))) for p in range(2)] for t in range(2)]
    evaluation = json.loads((reports / "evaluation.json").read_text("utf-8"))
    assert evaluation["confusion_matrix"] == matrix and evaluation["accuracy"] == np.mean(truth == predicted)
    with open(reports / "misclassified.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    assert [row[:3] for row in rows] == [[TEXTS.validation.inputs[i], str(truth[i]), str(predicted[i])] for i in (3, 2)]


def test_reports_default_to_the_output_folder_and_hold_no_evaluation_without_validation_predictions(tmp_path):
    job_outputs.write_reports(
        config(tmp_path, output=str(tmp_path / "out")),
        TEXTS,
        None,
        HISTORY,
        tmp_path / "work",
        data_check.from_loaded(TEXTS),
    )
    reports = tmp_path / "out" / "output" / "reports"
    assert sorted(p.name for p in reports.iterdir()) == ["data_report.json", "training_curves.png"]


def test_without_an_output_or_a_report_dir_no_report_is_written(tmp_path):
    (tmp_path / "work").mkdir()
    job_outputs.write_reports(
        config(tmp_path, output=None),
        TEXTS,
        VAL_PROBABILITIES,
        HISTORY,
        tmp_path / "work",
        data_check.from_loaded(TEXTS),
    )
    assert [p.name for p in tmp_path.iterdir()] == ["work"] and not any((tmp_path / "work").iterdir())


def test_a_rerun_into_the_same_output_replaces_the_reports_folder_as_a_whole(tmp_path):
    """An image run's gallery must not stay beside the next (text) run's reports: reports/ holds one run's files."""
    paths = [
        str(tiny_modules.write_image(tmp_path / "val" / name / f"{name}.jpg", tiny_modules.COLOURS[name]))
        for name in ("blue", "red")
    ]
    images = DataSplit("image", IMAGES.train, Examples(tuple(paths), (1, 0)), IMAGES.label_map)
    out = config(tmp_path, output=str(tmp_path / "out"))
    job_outputs.write_reports(
        out, images, np.array([[0.9, 0.1], [0.2, 0.8]]), HISTORY, tmp_path / "work1", data_check.from_loaded(TEXTS)
    )
    reports = tmp_path / "out" / "output" / "reports"
    assert {"misclassified.png", "misclassified.csv"} <= {p.name for p in reports.iterdir()}
    job_outputs.write_reports(out, TEXTS, VAL_PROBABILITIES, HISTORY, tmp_path / "work2", data_check.from_loaded(TEXTS))
    assert sorted(p.name for p in reports.iterdir()) == [
        "confusion_matrix.png",
        "data_report.json",
        "evaluation.json",
        "misclassified.csv",
        "per_class.txt",
        "training_curves.png",
    ]
    with open(reports / "misclassified.csv", newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == ["text", "true", "predicted", "probability"]  # the second run's
    assert [p.name for p in reports.parent.iterdir()] == ["reports"]  # no staging folder left beside it


def test_a_rerun_into_an_s3_output_deletes_the_report_objects_it_did_not_write(s3, tmp_path):
    s3.create_bucket(Bucket="runs")
    for key in (
        "job/output/reports/misclassified.png",
        "job/output/reports/training_curves.png",  # a previous run's
        "job/output/model.tar.gz",
        "job/output/reports-2025/notes.txt",
    ):  # not in reports/: kept
        s3.put_object(Bucket="runs", Key=key, Body=b"previous")
    job_outputs.write_reports(
        config(tmp_path, output="s3://runs/job"), TEXTS, None, HISTORY, tmp_path / "work", data_check.from_loaded(TEXTS)
    )
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="runs")["Contents"])
    assert keys == [
        "job/output/model.tar.gz",
        "job/output/reports-2025/notes.txt",
        "job/output/reports/data_report.json",
        "job/output/reports/training_curves.png",
    ]
    curves = s3.get_object(Bucket="runs", Key="job/output/reports/training_curves.png")["Body"].read()
    assert curves == (tmp_path / "work" / "reports" / "training_curves.png").read_bytes()  # this run's
