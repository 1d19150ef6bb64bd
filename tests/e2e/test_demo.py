"""The README's demo command, run as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from tf_finetune.cli.demo import cli_command

EXPECTED = ["cooking", "sport", "weather", "cooking", "sport", "weather"]
# The console script pip installs beside the interpreter: what ./quickstart.sh demo runs.
SCRIPT = Path(sys.executable).parent / "tf-finetune"


def shell_environment(*, with_script_on_path: bool) -> dict[str, str]:
    """The user's environment, with or without the script's folder on PATH."""
    folders = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != SCRIPT.parent]
    if with_script_on_path:
        folders.insert(0, str(SCRIPT.parent))
    return dict(os.environ, PATH=os.pathsep.join(folders), TF_CPP_MIN_LOG_LEVEL="2")


def run_in_shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``command`` as a user pastes it into a shell."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_demo_trains_offline_and_predicts_unseen_sentences(tmp_path):
    # As ./quickstart.sh demo runs it: the script by its path, not on PATH. No --output: the model
    # stays in ./tf-finetune-demo, where the user can open it.
    env = dict(shell_environment(with_script_on_path=False), TFHUB_CACHE_DIR=str(tmp_path / "no-hub"))
    proc = subprocess.run(
        [str(SCRIPT), "demo", "--cache-dir", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = float(re.search(r"validation accuracy: (\d\.\d+)", proc.stdout).group(1))
    assert accuracy >= 0.85
    predicted = re.findall(r"^\s+(cooking|sport|weather)\s+[\d.]+%", proc.stdout, re.M)
    assert len(predicted) == 6
    assert sum(p == e for p, e in zip(predicted, EXPECTED)) >= 5
    archive = tmp_path / "tf-finetune-demo" / "output" / "model.tar.gz"
    assert archive.is_file()
    with tarfile.open(archive) as tar:  # the model itself knows the topics' names
        labels = json.load(tar.extractfile("labels.json"))
    assert labels["class_names"] == ["cooking", "sport", "weather"] and labels["original_labels"] == [0, 1, 2]
    assert "model: tf-finetune-demo/output/model.tar.gz" in proc.stdout
    # The last line works as printed, from wherever the user's shell is.
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("try it: ")
    tried = run_in_shell(last.removeprefix("try it: "), tmp_path / "elsewhere", env)
    assert tried.returncode == 0, (last, tried.stderr[-3000:])
    assert tried.stdout.startswith("a bowl of soup with fresh bread\tcooking "), tried.stdout
    assert last == f'try it: {SCRIPT} predict --model {archive} "a bowl of soup with fresh bread"'
    # TensorFlow's C++ start-up lines stay out of a user's first run.
    assert "oneDNN" not in proc.stderr and "cuda drivers" not in proc.stderr, proc.stderr[:2000]
    assert (tmp_path / "cache" / "builtin" / "wordllama-words256" / "saved_model.pb").is_file()


def test_the_suggested_command_runs_as_printed_however_tf_finetune_was_started(tmp_path, monkeypatch):
    started = [  # how the process was started (argv[0]), and whether PATH finds tf-finetune
        (str(SCRIPT), False),  # ./quickstart.sh demo: .venv/bin/tf-finetune
        (str(Path(__file__).parents[2] / "tf_finetune" / "__main__.py"), False),  # python -m tf_finetune
        ("", False),  # the Python API in an interactive interpreter
        (str(SCRIPT), True),  # tf-finetune on PATH: an activated venv, or pip install into one
    ]
    for argv0, on_path in started:
        env = shell_environment(with_script_on_path=on_path)
        monkeypatch.setenv("PATH", env["PATH"])
        command = cli_command(argv0)
        assert (command == "tf-finetune") == on_path
        proc = run_in_shell(f"{command} --version", tmp_path / "elsewhere", env)
        assert proc.returncode == 0 and proc.stdout.startswith("tf_finetune "), (command, proc.stderr)
