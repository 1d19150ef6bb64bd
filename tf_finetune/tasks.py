"""The two tasks a backbone is fine-tuned for: what the model classifies, images or texts."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """What a model classifies. A ``StrEnum``: ``Task.IMAGE == "image"``, and it is written as its value
    in YAML, JSON, flags and messages (``f"{task}"``), so files and messages read as they always did."""

    IMAGE = "image"
    TEXT = "text"

    @property
    def inputs(self) -> str:
        """What a model of this task takes: ``images`` or ``text``."""
        return "images" if self is Task.IMAGE else "text"

    @property
    def with_article(self) -> str:
        """``an image`` or ``a text``, for messages."""
        return f"an {self}" if self is Task.IMAGE else f"a {self}"


TASK_NAMES = tuple(task.value for task in Task)  # ("image", "text"), as messages list them
