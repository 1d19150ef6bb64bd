"""The Task type: one spelling of the two tasks, read and written as the text it always was."""

from __future__ import annotations

import json

import pytest
import yaml

from tf_finetune.registry import load_registry
from tf_finetune.tasks import TASK_NAMES, Task


def test_a_task_is_its_text_in_comparisons_files_and_messages():
    assert Task.IMAGE == "image" and Task.TEXT == "text" and TASK_NAMES == ("image", "text")
    assert json.dumps({"task": Task.TEXT}) == '{"task": "text"}'
    assert f"{Task.IMAGE} model" == "image model"
    assert Task("text") is Task.TEXT
    with pytest.raises(ValueError):
        Task("audio")


@pytest.mark.parametrize("task, inputs, article", [(Task.IMAGE, "images", "an image"), (Task.TEXT, "text", "a text")])
def test_a_task_says_what_its_models_take(task, inputs, article):
    assert (task.inputs, task.with_article) == (inputs, article)


def test_the_registry_hands_out_tasks():
    tasks = {spec.task for spec in load_registry().models}
    assert tasks == set(Task) and all(isinstance(task, Task) for task in tasks)
    assert yaml.safe_load(yaml.safe_dump({"task": str(Task.IMAGE)})) == {"task": "image"}


def test_a_spec_written_with_the_tasks_text_holds_a_task():
    from tf_finetune.registry import ModelSpec

    spec = ModelSpec("tiny", "text", "h")
    assert spec.task is Task.TEXT and spec.task.with_article == "a text"
