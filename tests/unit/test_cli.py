"""The command-line door itself: flag spellings, one-line errors."""

from __future__ import annotations

import pytest

from helpers import run_main
from tf_finetune import __version__
from tf_finetune.cli import commands, parser
from tf_finetune.registry import load_registry


@pytest.mark.parametrize(
    "argv", [["fetch-model", "x", "--to", "d"], ["evaluate", "--model", "m", "--data", "d", "--output-dir", "e"]]
)
def test_the_old_spellings_of_output_are_gone(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        commands.main(argv)
    assert exited.value.code == 2
    assert "unrecognized arguments: " in capsys.readouterr().err


def test_a_missing_output_is_named(capsys):
    with pytest.raises(SystemExit) as exited:
        commands.main(["fetch-model", "some-id"])
    assert exited.value.code == 2
    assert "the following arguments are required: --output" in capsys.readouterr().err


def _help_entries(command: str) -> dict[str, str]:
    """``command --help``: each flag's entry (flags and help on one line) by its first flag."""
    result = run_main(command, "--help", env={"COLUMNS": "1000"})  # wide enough for argparse not to wrap
    assert result.returncode == 0, result.stderr
    entries: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("  -"):
            flag = line.split()[0]
            entries[flag] = line.strip()
        elif line.startswith("   ") and entries:  # the help under a long list of spellings
            entries[flag] += " " + line.strip()
    return entries


@pytest.mark.parametrize("command", ["train", "launch"])
def test_help_shows_each_tasks_default_from_the_registry(command):
    task_defaults = load_registry().task_defaults
    entries = _help_entries(command)
    assert entries["--epochs"].endswith(
        f"default {task_defaults['image']['epochs']} for image models, "
        f"{task_defaults['text']['epochs']} for text models)"
    )
    assert entries["--train-only-top-layer"].endswith(
        f"default {task_defaults['image']['train_only_top_layer']} for image models, False for text models)"
    )
    assert entries["--batch-size"].endswith("; default 32)")  # the same for every task: one value


@pytest.mark.parametrize(
    "command, required",
    [
        ("train", ["--data", "--output"]),
        ("launch", ["--name", "--data", "--output", "--role"]),
        ("fetch-model", ["--output"]),
        ("predict", ["--model"]),
        ("evaluate", ["--model", "--data"]),
        ("import-backbone", ["--output"]),
        ("export-tflite", ["--model"]),
    ],
)
def test_help_says_which_flags_are_required(command, required):
    marked = [flag for flag, entry in _help_entries(command).items() if " required: " in entry]
    assert sorted(marked) == sorted(required)


def test_debug_works_after_the_command_too():
    assert parser.build_parser().parse_args(["predict", "--model", "m", "x", "--debug"]).debug is True
    assert parser.build_parser().parse_args(["--debug", "predict", "--model", "m", "x"]).debug is True
    assert parser.build_parser().parse_args(["predict", "--model", "m", "x"]).debug is False


def test_version(capsys):

    with pytest.raises(SystemExit) as exited:
        commands.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"tf_finetune {__version__}\n"
