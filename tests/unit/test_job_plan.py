"""Planning a job without TensorFlow (tf_finetune.training.job_plan): the backbone, the effective
hyperparameters and which the user gave, and every contradiction refused before any work."""

from __future__ import annotations

import pytest
import yaml

from helpers import SHARED
from plan_cases import ENTRIES
from tf_finetune.errors import BackboneError, DataError, HyperparameterError, StorageError
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job_plan import check_sources, data_task, looks_like_text, plan


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump({"task_defaults": {"image": {"epochs": 3, "batch_size": 8}, "text": {}}, "models": ENTRIES}),
        encoding="utf-8",
    )
    return str(path)


def job(registry, **fields) -> JobConfig:
    return JobConfig(**{"data": "data", "output": None, "registry": registry, **fields})


def test_the_users_values_win_over_the_entry_and_the_entry_over_the_task_default(registry):
    planned = plan(job(registry, model_id="img", hyperparameters={"epochs": "2"}))
    hp = planned.hyperparameters
    assert (hp.epochs, hp.learning_rate, hp.batch_size) == (2, 0.02, 8)  # user, entry, task default
    assert planned.given == frozenset({"epochs"})  # only these are never chosen by the tool
    assert planned.spec.task == "image" and planned.spec.image_size == 32


def test_a_backbone_that_cannot_be_fine_tuned_trains_its_head_only(registry):
    assert plan(job(registry, model_id="frozen-text")).hyperparameters.train_only_top_layer is True
    with pytest.raises(HyperparameterError, match="frozen-text is not fine-tunable; train_only_top_layer must"):
        plan(job(registry, model_id="frozen-text", hyperparameters={"train_only_top_layer": False}))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model_id": "frozen-text", "image_size": 64}, "image_size applies to image models only"),
        ({"model_id": "frozen-text", "hyperparameters": {"tflite": "int8"}}, "tflite=int8 applies to image models"),
        ({"model_id": "frozen-text", "hyperparameters": {"augmentation": True}}, "augmentation applies to image"),
        ({"model_id": "img", "max_seq_length": 64}, "max_seq_length applies to text models"),
        ({"model_id": "frozen-text", "max_seq_length": 2}, r"max_seq_length=2 is out of range: .*\[3, 512\]"),
        ({"model_id": "img", "checkpoint_steps": 5}, "checkpoint_steps=5 needs a checkpoint folder"),
        (
            {"model_id": "img", "hyperparameters": {"early_stopping": True, "validation_split_ratio": 0}},
            "early_stopping needs validation data",
        ),
        ({}, r"give a registry model id \(--model-id\) or a backbone handle"),
    ],
)
def test_contradictions_are_refused_before_any_work(registry, fields, message):
    with pytest.raises(HyperparameterError, match=message):
        plan(job(registry, **fields))


def test_a_bare_handle_takes_its_task_from_the_data(registry, tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "data.csv").write_text("0,a\n1,b\n", encoding="utf-8")
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "sms.txt").write_text("0,a\n1,b\n", encoding="utf-8")
    assert looks_like_text(str(tmp_path / "texts")) and looks_like_text("s3://b/data.csv")
    assert not looks_like_text(str(tmp_path / "images")) and not looks_like_text("s3://b/images/")
    assert plan(job(registry, handle="m", data=str(tmp_path / "texts"))).spec.task == "text"
    assert plan(job(registry, handle="m", data=str(tmp_path / "images"))).spec.task == "image"
    # A file is text whatever its name: a data.csv saved as sms.txt is not "an image folder that does not exist".
    planned = plan(job(registry, handle="m", data=str(tmp_path / "sms.txt")))
    assert (planned.spec.task, planned.task_reason) == ("text", f"{tmp_path / 'sms.txt'} is a file")
    assert data_task(str(tmp_path / "images")) == ("image", f"{tmp_path / 'images'} is a folder without a .csv")


def test_a_local_handle_says_its_task_before_the_data_is_looked_at(registry, text_module, image_module, tmp_path):
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    for handle, task, takes in ((text_module, "text", "text"), (image_module, "image", "images")):
        for data in (images, tmp_path / "sms.txt"):  # whatever the data looks like
            planned = plan(job(registry, handle=str(handle), data=str(data)))
            assert (planned.spec.task, planned.task_reason) == (task, f"backbone {handle} takes {takes}")
    keras_file = SHARED / "models" / "source" / "teachable_machine_keras_model.h5"
    if keras_file.is_file():  # a Keras model file is imported as an image backbone
        assert plan(job(registry, handle=str(keras_file), data=str(tmp_path / "sms.txt"))).spec.task == "image"
    assert (
        plan(job(registry, model_id="frozen-text", data=str(images))).task_reason == "model frozen-text is a text model"
    )


@pytest.mark.parametrize(
    "field, flag, error",
    [
        ("data", "--data", DataError),
        ("validation_data", "--validation-data", DataError),
        ("test_data", "--test-data", DataError),
        ("handle", "--handle", BackboneError),
    ],
)
def test_every_local_input_is_found_before_anything_is_read(field, flag, error, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("0,a\n1,b\n", encoding="utf-8")
    given = {"data": str(data), "handle": str(data), field: str(tmp_path / "missing")}
    with pytest.raises(error) as raised:
        check_sources(JobConfig(output=None, **given))
    assert str(raised.value).startswith(f"{flag} {tmp_path / 'missing'}: no such file or folder; pass ")


def test_remote_inputs_are_left_to_their_download_and_file_uris_are_local_paths(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("0,a\n1,b\n", encoding="utf-8")
    check_sources(JobConfig(data=str(data), output=None, handle=data.as_uri(), test_data="s3://b/test/"))
    check_sources(JobConfig(data=str(data), output=None, handle="https://tfhub.dev/google/x/1"))
    with pytest.raises(BackboneError, match="no such file or folder"):
        check_sources(JobConfig(data=str(data), output=None, handle=(tmp_path / "missing").as_uri()))
    with pytest.raises(StorageError, match="s3://"):
        check_sources(JobConfig(data="s3:/bucket/data", output=None, handle=str(data)))


def test_the_hyperparameters_are_checked_once_per_job(text_data, text_module, tmp_path, monkeypatch):
    from tf_finetune import hyperparameters
    from tf_finetune.training import job as job_module
    from tf_finetune.training.job_plan import check_job

    given = {"epochs": "1"}
    config = JobConfig(
        data=str(text_data), output=None, handle=str(text_module), cache_dir=str(tmp_path / "c"), hyperparameters=given
    )
    checked = []
    normalize = hyperparameters.normalize
    monkeypatch.setattr(
        hyperparameters, "normalize", lambda values: checked.append(values is given) or normalize(values)
    )
    check_job(config)
    assert checked.count(True) == 1  # check-data
    monkeypatch.setattr(job_module, "_run_local", lambda job, *rest: job)  # stop once planned
    assert job_module.run(config).hyperparameters.epochs == 1
    assert checked.count(True) == 2  # and train, once each
