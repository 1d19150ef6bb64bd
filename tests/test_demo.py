"""The README's demo command, run as a user runs it."""
from __future__ import annotations

import re

from helpers import run_cli

EXPECTED = ["cooking", "sport", "weather", "cooking", "sport", "weather"]


def test_demo_trains_offline_and_predicts_unseen_sentences(tmp_path):
    proc = run_cli("demo", "--cache-dir", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
                   env={"TFHUB_CACHE_DIR": str(tmp_path / "no-hub")}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = float(re.search(r"validation accuracy: (\d\.\d+)", proc.stdout).group(1))
    assert accuracy >= 0.85
    predicted = re.findall(r"^\s+(cooking|sport|weather)\s+[\d.]+%", proc.stdout, re.M)
    assert len(predicted) == 6
    assert sum(p == e for p, e in zip(predicted, EXPECTED)) >= 5
    assert (tmp_path / "out" / "output" / "model.tar.gz").is_file()
    assert (tmp_path / "cache" / "builtin" / "wordllama-words256" / "saved_model.pb").is_file()
