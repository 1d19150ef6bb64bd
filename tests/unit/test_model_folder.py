"""The model folder's owner: layout, checks and readers, on real SavedModels written here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tensorflow as tf

from tf_finetune import model_folder
from tf_finetune.backbones.peek import task_of_model
from tf_finetune.data import LabelMap
from tf_finetune.errors import TfFinetuneError


def _save_signature(folder: Path, input_name: str) -> None:
    """A SavedModel whose serving_default takes one string input called ``input_name``."""
    module = tf.Module()
    module.serve = tf.function(
        lambda x: {"n": tf.strings.length(x)}, input_signature=[tf.TensorSpec([None], tf.string, name=input_name)]
    )
    tf.saved_model.save(
        module,
        str(model_folder.saved_model_dir(folder)),
        signatures={"serving_default": module.serve.get_concrete_function()},
    )


@pytest.fixture(scope="module", params=["image_bytes", "text"])
def written(request, tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp(f"model_{request.param}")
    _save_signature(folder, request.param)
    labels = LabelMap.from_integer_labels([3, 1, 3])
    (folder / model_folder.LABELS_FILE).write_text(labels.to_json(), "utf-8")
    return folder, "image" if request.param == "image_bytes" else "text"


def test_a_written_folder_is_recognised_and_read(written):
    folder, task = written
    assert model_folder.is_model_folder(folder)
    model_folder.check(folder, "m")  # no error
    assert model_folder.read_labels(folder) == LabelMap(("1", "3"), (1, 3))
    assert task_of_model(folder) == task  # read from its saved_model.pb, no metrics.json here
    assert model_folder.read_metrics(folder) == {}


@pytest.mark.parametrize("missing", [model_folder.LABELS_FILE, "1/saved_model.pb"])
def test_what_is_missing_is_named(written, missing, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(written[0], folder)
    (folder / missing).unlink()
    assert not model_folder.is_model_folder(folder)
    with pytest.raises(TfFinetuneError, match=f"my-model is not a tf_finetune model: no {missing} in it"):
        model_folder.check(folder, "my-model")


def test_metrics_are_read_when_present(tmp_path):
    (tmp_path / model_folder.METRICS_FILE).write_text(json.dumps({"backbone": {"task": "text"}}))
    assert model_folder.read_metrics(tmp_path) == {"backbone": {"task": "text"}}
