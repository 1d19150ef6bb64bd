"""Registry entries and files the registry tests share (tests/unit/test_registry.py and its e2e half)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

IMAGE_ENTRY = {
    "id": "tiny-image",
    "task": "image",
    "handle": "https://tfhub.dev/google/tiny/1",
    "image_size": 32,
    "fine_tunable": True,
    "license": "Apache-2.0",
    "description": "A tiny image backbone.",
}


TEXT_ENTRY = {
    "id": "tiny-text",
    "task": "text",
    "handle": "builtin:tiny-text",
    "fine_tunable": False,
    "license": "MIT",
    "description": "A tiny text backbone.",
}


HUB_OR_KAGGLE = re.compile(r"^https://(tfhub\.dev|www\.kaggle\.com)/\S+$")


def write_registry(tmp_path: Path, models, task_defaults=None, name="registry.yaml") -> Path:
    document = {"models": models}
    if task_defaults is not None:
        document["task_defaults"] = task_defaults
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
