"""The Python door, ``tf_finetune.fine_tune``, used as a notebook would: a fresh process that
configured no logging, two jobs, then mistakes; the errors say what the command line says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO, run_main

NOTEBOOK = """
import json, sys
import tf_finetune
from tf_finetune.errors import TfFinetuneError

light = "tensorflow" not in sys.modules  # `import tf_finetune` stays light
module, data, out, cache = sys.argv[1:]
common = dict(handle=module, cache_dir=cache, epochs=1, batch_size=8, train_only_top_layer=True,
              choose_hyperparameters=False)
results = [tf_finetune.fine_tune(data, output=f"{out}/run{i}", **common) for i in (1, 2)]
errors = []
for mistake in (dict(data=f"{out}/no-such-data"), dict(data=data, validaton_data=data)):
    try:
        tf_finetune.fine_tune(**{**mistake}, output=f"{out}/failed", **common)
    except TfFinetuneError as exc:
        errors.append(str(exc))
print(json.dumps({"light": light, "errors": errors, "results": [
    {"archive": str(r.archive), "classes": list(r.label_map.class_names), "epochs_run": r.metrics["epochs_run"],
     "final": sorted(r.metrics["final"])} for r in results]}))
"""


def test_a_notebook_trains_twice_sees_each_line_once_and_gets_the_command_lines_errors(
    text_module, text_data, tmp_path
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(text_module), str(text_data), str(tmp_path), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["light"]
    lines = proc.stderr.splitlines()
    # The job's lines, with no logging configured: each once per job, none doubled by the second call.
    for run in ("run1", "run2"):
        assert lines.count(f"model written to {tmp_path / run / 'output' / 'model.tar.gz'}") == 1, proc.stderr
    assert sum(line.startswith("epoch=1/1 loss=") for line in lines) == 2, proc.stderr
    assert sum(line.startswith("final val_loss=") for line in lines) == 2, proc.stderr
    assert lines.count("training output") == 2
    assert "\r" not in proc.stderr and "%|" not in proc.stderr  # a pipe: no progress bars
    for run, result in zip(("run1", "run2"), answer["results"]):
        archive = tmp_path / run / "output" / "model.tar.gz"
        assert result["archive"] == str(archive) and archive.is_file()
        assert (archive.parent / "training_job.json").is_file()
        assert result["classes"] == ["1", "2"] and result["epochs_run"] == 1
        assert {"train_loss", "val_loss", "val_accuracy"} <= set(result["final"])
    # A mistake is the command line's message, as an exception; nothing is left behind.
    missing, misspelt = answer["errors"]
    cli = run_main(
        "train",
        "--handle",
        str(text_module),
        "--data",
        str(tmp_path / "no-such-data"),
        "--output",
        str(tmp_path / "failed"),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert cli.returncode == 1 and cli.stderr.strip() == f"tf-finetune: error: {missing}"
    assert str(tmp_path / "no-such-data") in missing
    assert misspelt.startswith("unknown option 'validaton_data' (did you mean validation_data?)")
    assert not Path(tmp_path / "failed").exists()
