"""The registry the job-plan tests plan against."""

from __future__ import annotations

ENTRIES = [
    {
        "id": "img",
        "task": "image",
        "handle": "https://tfhub.dev/google/tiny/1",
        "image_size": 32,
        "fine_tunable": True,
        "license": "Apache-2.0",
        "description": "an image backbone",
        "hyperparameters": {"learning_rate": 0.02, "epochs": 7},
    },
    {
        "id": "frozen-text",
        "task": "text",
        "handle": "https://tfhub.dev/google/tiny-text/1",
        "fine_tunable": False,
        "license": "MIT",
        "description": "a text backbone that cannot be fine-tuned",
    },
]
