"""The end-to-end half of tests/unit/test_custom_ops.py: the tests that train a model or run a door."""

from __future__ import annotations

import json
import subprocess
import sys

import tensorflow as tf

from helpers import REPO

MADE_UP = [f"TfFinetuneTestOp{letter}" for letter in "GFEDCBA"]


CASE_FOLD = "Rain AND Snow ÄÖ"


FRESH_PROCESS = """
import json, sys
import tensorflow as tf
from tf_finetune.backbones.custom_ops import register_ops_for, unknown_ops
model = sys.argv[1]
before = unknown_ops(model), "tensorflow_text" in sys.modules
register_ops_for(model, "the model " + model)
folded = tf.saved_model.load(model)(tf.constant([sys.argv[2]]))[0].numpy().decode()
print(json.dumps({"before": before, "after": unknown_ops(model), "folded": folded}))
"""


def test_tensorflow_text_ops_are_registered_by_importing_it_so_the_model_loads(tmp_path):
    import tensorflow_text

    class CaseFold(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            return tensorflow_text.case_fold_utf8(texts)

    tf.saved_model.save(CaseFold(), str(tmp_path / "case_fold"))
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(tmp_path / "case_fold"), CASE_FOLD],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": "",
            "TF_USE_LEGACY_KERAS": "1",
        },
    )  # TensorFlow without Keras 3: 2 s less
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["before"] == [["CaseFoldUTF8"], False]
    assert result["after"] == []
    assert result["folded"] == CASE_FOLD.casefold()
