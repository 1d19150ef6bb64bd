"""The README's demo command, run as a user runs it."""
from __future__ import annotations

import re

from helpers import REPO, run_cli

EXPECTED = ["cooking", "sport", "weather", "cooking", "sport", "weather"]


def test_demo_trains_offline_and_predicts_unseen_sentences(tmp_path):
    # No --output: the model stays in ./tf-finetune-demo, where the user can open it.
    proc = run_cli("demo", "--cache-dir", str(tmp_path / "cache"),
                   env={"TFHUB_CACHE_DIR": str(tmp_path / "no-hub"), "PYTHONPATH": str(REPO)},
                   timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = float(re.search(r"validation accuracy: (\d\.\d+)", proc.stdout).group(1))
    assert accuracy >= 0.85
    predicted = re.findall(r"^\s+(cooking|sport|weather)\s+[\d.]+%", proc.stdout, re.M)
    assert len(predicted) == 6
    assert sum(p == e for p, e in zip(predicted, EXPECTED)) >= 5
    archive = tmp_path / "tf-finetune-demo" / "output" / "model.tar.gz"
    assert archive.is_file()
    assert "model: tf-finetune-demo/output/model.tar.gz" in proc.stdout
    assert "try it: tf-finetune predict --model tf-finetune-demo/output/model.tar.gz" in proc.stdout
    # TensorFlow's C++ start-up lines stay out of a user's first run.
    assert "oneDNN" not in proc.stderr and "cuda drivers" not in proc.stderr, proc.stderr[:2000]
    assert (tmp_path / "cache" / "builtin" / "wordllama-words256" / "saved_model.pb").is_file()
