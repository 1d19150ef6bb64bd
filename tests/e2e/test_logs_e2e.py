"""The end-to-end half of tests/unit/test_logs.py: the tests that train a model or run a door."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from tf_finetune import logs
if sys.argv[1] == "quiet":
    logs.hide_tensorflow_start_up()  # an import hook: TensorFlow is imported below, as anywhere
import tensorflow
print("imported", file=sys.stderr)
"""


KERAS_SCRIPT = """
import sys
from tf_finetune import startup
startup.prepare_tensorflow(quiet=False)
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras
hub.KerasLayer(sys.argv[1])
print(tf.keras.layers.Dense is tf_keras.layers.Dense, "keras" in sys.modules)
"""


def test_a_door_builds_hub_models_without_importing_keras_3(image_module):
    proc = subprocess.run(
        [sys.executable, "-c", KERAS_SCRIPT, str(image_module)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]  # tf.keras is the package our models use
