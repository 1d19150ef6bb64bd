"""The end-to-end half of tests/unit/test_labels.py: the tests that train a model or run a door."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tiny_modules
from helpers import extract, run_main
from tf_finetune.errors import BackboneError
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import run

NAMES = '{"1": "weather", "2": "sport"}'  # tiny_modules' first topic is weather words, the second sport


FAST = {"epochs": 6, "batch_size": 4, "learning_rate": 0.05, "label_smoothing": 0.0}


@pytest.fixture(scope="module")
def named_model(text_module, cache_dir, tmp_path_factory) -> Path:
    """A text model trained on labels 1 and 2 named by labels.json; its run's folder."""
    root = tmp_path_factory.mktemp("named")
    tiny_modules.write_text_csv(root / "train" / "data.csv", labels=(1, 2))
    (root / "train" / "labels.json").write_text(NAMES, encoding="utf-8")
    run(
        JobConfig(
            data=str(root / "train"),
            output=str(root / "out"),
            handle=str(text_module),
            hyperparameters=FAST,
            cache_dir=str(cache_dir),
        )
    )
    extract(root / "out" / "output" / "model.tar.gz", root / "model")
    return root


def test_named_text_classes_reach_the_model_predict_reports_and_the_endpoint(named_model, tmp_path):
    import tensorflow as tf
    from test_serving import Context, load_handlers, tf_serving_predict

    model = named_model / "model"
    document = json.loads((model / "labels.json").read_text("utf-8"))
    assert document["class_names"] == ["weather", "sport"] and document["original_labels"] == [1, 2]
    assert document["index_to_original_label"] == {"0": 1, "1": 2}

    serve = tf.saved_model.load(str(model / "1")).signatures["serving_default"]
    served = serve(text=tf.constant(["rain and snow today", "the team scored a goal"]))
    assert [x.decode() for x in served["label"].numpy()] == ["weather", "sport"]

    handlers = load_handlers(model)
    context = Context("application/x-text", "application/json;verbose")
    answer = json.loads(
        handlers.output_handler(tf_serving_predict(model, handlers.input_handler(b"a match to win", context)), context)[
            0
        ]
    )
    assert answer["labels"] == ["weather", "sport"] and answer["predicted_label"] == "sport"

    archive = named_model / "out" / "output" / "model.tar.gz"
    proc = run_main("predict", "--model", str(archive), "wind and cloud")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\t")[1].startswith("weather "), proc.stdout

    validation_report = json.loads((named_model / "out" / "output" / "reports" / "evaluation.json").read_text())
    assert list(validation_report["per_class"]) == ["weather", "sport"]
    proc = run_main(
        "evaluate", "--model", str(archive), "--data", str(named_model / "train"), "--output", str(tmp_path / "eval")
    )
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads((tmp_path / "eval" / "evaluation.json").read_text())["per_class"]) == ["weather", "sport"]


def test_evaluate_refuses_data_whose_names_contradict_the_models(named_model, tmp_path):
    data = tiny_modules.write_text_csv(tmp_path / "test" / "data.csv", labels=(1, 2), rows_per_class=3)
    (data.parent / "labels.json").write_text('{"1": "sport", "2": "weather"}', encoding="utf-8")
    proc = run_main(
        "evaluate",
        "--model",
        str(named_model / "out" / "output" / "model.tar.gz"),
        "--data",
        str(data.parent),
        "--output",
        str(tmp_path / "eval"),
    )
    assert proc.returncode == 1
    assert (
        f"tf-finetune: error: {data.parent / 'labels.json'} contradicts the training data's class names "
        "(label 1 is 'sport' here and 'weather' in training; label 2 is 'weather' here and 'sport' "
        f"in training); give this data the training data's labels.json, or none: {NAMES}"
    ) in proc.stderr
    assert not (tmp_path / "eval").exists()


def test_continuing_a_named_model_needs_its_names(named_model, cache_dir, tmp_path):
    previous = named_model / "out" / "output" / "model.tar.gz"
    data = tiny_modules.write_text_csv(tmp_path / "more" / "data.csv", labels=(1, 2), rows_per_class=6, seed=1)
    with pytest.raises(
        BackboneError,
        match=re.escape(
            "its classes are named 'weather', 'sport' (labels 1, 2) and the data names none (no "
            f"labels.json beside data.csv); put the model's names in labels.json beside data.csv: {NAMES}"
        ),
    ):
        run(
            JobConfig(
                data=str(data.parent),
                output=str(tmp_path / "out"),
                handle=str(previous),
                hyperparameters={"epochs": 1},
                cache_dir=str(cache_dir),
            )
        )
    assert not (tmp_path / "out").exists()
