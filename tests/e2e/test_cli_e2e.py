"""The end-to-end half of tests/unit/test_cli.py: the tests that train a model or run a door."""

from __future__ import annotations

import pytest

from helpers import REPO, run_cli, run_main
from tf_finetune import __version__
from tf_finetune.cli import commands


@pytest.mark.parametrize(
    "typo, meant",
    [
        ("--validation", "--validation-data"),
        ("--learning_rat", "--learning-rate"),
        ("--epoch", "--epochs"),
        ("--model_idd", "--model-id"),
    ],
)
def test_an_unknown_flag_gets_did_you_mean(typo, meant, capsys):
    with pytest.raises(SystemExit) as exited:
        commands.main(["train", "--data", "d", "--output", "o", typo, "v"])
    assert exited.value.code == 2
    first, hint = capsys.readouterr().err.splitlines()
    assert first.startswith(f"tf-finetune: error: unrecognized arguments: {typo} ({typo}: did you mean {meant}")
    assert hint == "Try 'tf-finetune train --help' for more information."


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--data", "d", "--output", "o", "--epoch", "3"],
            "unrecognized arguments: --epoch (--epoch: did you mean --epochs or --epsilon?)",
        ),
        # A misspelt required flag is named as misspelt, not as missing.
        (
            ["train", "--data", "d", "--outptu", "o"],
            "unrecognized arguments: --outptu (--outptu: did you mean --output?)",
        ),
        (["fetch-model", "some-id"], "the following arguments are required: --output"),
        (
            ["launch", "--name", "n", "--data", "d", "--output", "s3://b/"],
            "the following arguments are required: --role",
        ),
        (["list-models", "--task", "audio"], "argument --task: invalid choice: 'audio' (choose from 'image', 'text')"),
        (
            ["predict", "--model", "m", "--top-k", "two", "x"],
            "argument --top-k: expected a whole number, 1 or more, got 'two'",
        ),
        (
            ["trian"],
            "argument COMMAND: invalid choice: 'trian' (choose from 'train', 'launch', 'check-data', "
            "'list-models', 'describe', 'fetch-model', 'predict', 'evaluate', 'import-backbone', "
            "'export-tflite', 'demo')",
        ),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_a_usage_error_is_its_message_and_where_the_help_is_not_the_usage_block(argv, message):
    result = run_main(*argv)
    command = "tf-finetune" + (f" {argv[0]}" if argv and argv[0] != "trian" else "")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"tf-finetune: error: {message}",
        f"Try '{command} --help' for more information.",
    ]


def test_a_usage_error_from_the_process_is_two_lines_and_exit_2():
    result = run_cli("evaluate", "--model", "m", "--data", "d", "--ouput", "e")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "tf-finetune: error: unrecognized arguments: --ouput (--ouput: did you mean --output?)",
        "Try 'tf-finetune evaluate --help' for more information.",
    ]


def test_train_without_output_is_a_usage_error_and_touches_nothing(text_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_main("train", "--data", str(text_data), "--handle", "h", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "tf-finetune: error: the following arguments are required: --output",
        "Try 'tf-finetune train --help' for more information.",
    ]
    assert list(tmp_path.iterdir()) == []


def test_version_from_the_folder_that_holds_a_clone_named_like_the_package(tmp_path):
    """A clone folder named tf_finetune in the working directory does not shadow the installed package
    (a directory without __init__.py is a namespace package to `python -m`, which looks in "." first)."""
    (tmp_path / "tf_finetune").symlink_to(REPO, target_is_directory=True)
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0, (
        result.stderr[-2000:] + "\nAn install from before pyproject.toml's package-dir? "
        "Run ./quickstart.sh to reinstall."
    )
    assert result.stdout == f"tf_finetune {__version__}\n"


def test_checkpoint_steps_without_a_checkpoint_folder(text_data, text_module, tmp_path, capsys):
    assert (
        commands.main(
            [
                "train",
                "--data",
                str(text_data),
                "--handle",
                str(text_module),
                "--output",
                str(tmp_path / "o"),
                "--cache-dir",
                str(tmp_path / "c"),
                "--checkpoint-steps",
                "5",
            ]
        )
        == 1
    )
    assert "checkpoint_steps=5 needs a checkpoint folder: add --checkpoint-dir DIR" in capsys.readouterr().err
