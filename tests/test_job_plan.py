"""Planning a job without TensorFlow (tf_finetune.job_plan): the backbone, the effective
hyperparameters and which the user gave, and every contradiction refused before any work."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from helpers import REPO
from tf_finetune.errors import HyperparameterError
from tf_finetune.job_plan import JobConfig, looks_like_text, plan

ENTRIES = [
    {"id": "img", "task": "image", "handle": "https://tfhub.dev/google/tiny/1", "image_size": 32,
     "fine_tunable": True, "license": "Apache-2.0", "description": "an image backbone",
     "hyperparameters": {"learning_rate": 0.02, "epochs": 7}},
    {"id": "frozen-text", "task": "text", "handle": "https://tfhub.dev/google/tiny-text/1", "fine_tunable": False,
     "license": "MIT", "description": "a text backbone that cannot be fine-tuned"},
]


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"task_defaults": {"image": {"epochs": 3, "batch_size": 8}, "text": {}},
                                    "models": ENTRIES}), encoding="utf-8")
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


@pytest.mark.parametrize("fields, message", [
    ({"model_id": "frozen-text", "image_size": 64}, "image_size applies to image models only"),
    ({"model_id": "frozen-text", "hyperparameters": {"tflite": "int8"}}, "tflite=int8 applies to image models"),
    ({"model_id": "frozen-text", "hyperparameters": {"augmentation": True}}, "augmentation applies to image"),
    ({"model_id": "img", "max_seq_length": 64}, "max_seq_length applies to text models"),
    ({"model_id": "frozen-text", "max_seq_length": 2}, r"max_seq_length=2 is out of range: .*\[3, 512\]"),
    ({"model_id": "img", "checkpoint_steps": 5}, "checkpoint_steps=5 needs a checkpoint folder"),
    ({"model_id": "img", "hyperparameters": {"early_stopping": True, "validation_split_ratio": 0}},
     "early_stopping needs validation data"),
    ({}, r"give a registry model id \(--model-id\) or a backbone handle"),
])
def test_contradictions_are_refused_before_any_work(registry, fields, message):
    with pytest.raises(HyperparameterError, match=message):
        plan(job(registry, **fields))


def test_a_bare_handle_takes_its_task_from_the_data(registry, tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "data.csv").write_text("0,a\n1,b\n", encoding="utf-8")
    (tmp_path / "images" / "cat").mkdir(parents=True)
    assert looks_like_text(str(tmp_path / "texts")) and looks_like_text("s3://b/data.csv")
    assert not looks_like_text(str(tmp_path / "images")) and not looks_like_text("s3://b/images/")
    assert plan(job(registry, handle="m", data=str(tmp_path / "texts"))).spec.task == "text"
    assert plan(job(registry, handle="m", data=str(tmp_path / "images"))).spec.task == "image"


def test_planning_does_not_import_tensorflow(registry):
    code = ("import sys; from tf_finetune.job_plan import JobConfig, plan; "
            f"plan(JobConfig(data='d', output=None, registry={registry!r}, model_id='img')); "
            "print('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
