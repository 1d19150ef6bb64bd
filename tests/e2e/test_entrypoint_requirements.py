"""``tf_finetune/sagemaker/entrypoint/requirements.txt`` covers every import the entry point makes beyond the training
image's TensorFlow: a fresh venv with only ``tensorflow`` and that file runs one tiny job from
the code folder ``launch`` sends (``train.py`` + ``requirements.txt`` + the package).

It builds a venv with TensorFlow (about a minute from the local package cache), so it runs
only when ``TF_FINETUNE_IMAGE_VENV_TEST=1``; ``.ci/py312`` sets it, on the image's Python 3.12.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tf_finetune.sagemaker.sdk import REQUIREMENTS, source_folder


@pytest.mark.skipif(
    os.environ.get("TF_FINETUNE_IMAGE_VENV_TEST") != "1",
    reason="builds a venv with TensorFlow; set TF_FINETUNE_IMAGE_VENV_TEST=1 (.ci/py312 does)",
)
def test_a_venv_with_only_tensorflow_and_the_requirements_runs_the_entry_point(text_module, text_data, tmp_path):
    import tensorflow as tf

    image = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", str(image)], check=True)
    pip = [str(image / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"tensorflow=={tf.__version__}"], check=True, timeout=900)  # the image's TensorFlow
    code = source_folder(tmp_path / "code")
    subprocess.run([*pip, "-r", str(code / REQUIREMENTS)], check=True, timeout=900)
    base = tmp_path / "opt_ml"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "SAGEMAKER_BASE_DIR": str(base),
        "SM_CHANNEL_TRAINING": str(text_data.parent),
        "SM_CHANNEL_MODEL": str(text_module),
        "SM_MODEL_DIR": str(base / "model"),
        "SM_OUTPUT_DATA_DIR": str(base / "output" / "data"),
        "SM_OUTPUT_DIR": str(base / "output"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_FINETUNE_CACHE": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        [str(image / "bin" / "python"), "train.py", "--epochs", "1"],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (base / "model" / "1" / "saved_model.pb").is_file()
    assert not (base / "output" / "failure").exists()
