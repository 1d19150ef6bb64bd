"""The command-line door itself: flag spellings, deprecated aliases, one-line errors."""
from __future__ import annotations

import pytest

from tf_finetune import cli


@pytest.mark.parametrize("argv, expected", [
    (["fetch-model", "x", "--to", "d"], ["fetch-model", "x", "--output", "d"]),
    (["import-backbone", "m.h5", "--to=d"], ["import-backbone", "m.h5", "--output=d"]),
    (["--debug", "evaluate", "--output-dir", "e"], ["--debug", "evaluate", "--output", "e"]),
    (["export-tflite", "--output-dir=e"], ["export-tflite", "--output=e"]),
])
def test_old_destination_flags_become_output_with_a_deprecation_line(argv, expected):
    current, notes = cli.with_current_flags(argv)
    assert current == expected
    (old,) = [a.partition("=")[0] for a in argv if a.partition("=")[0] in ("--to", "--output-dir")]
    assert notes == [f"tf-finetune: warning: {old} is deprecated and will be removed in the next release; "
                     "use --output (same meaning)"]


@pytest.mark.parametrize("argv", [
    ["predict", "--model", "m", "--to", "--output-dir"],  # texts to classify, not flags
    ["train", "--data", "d", "--output", "o"],
])
def test_other_commands_are_left_alone(argv):
    assert cli.with_current_flags(argv) == (argv, [])


def test_a_deprecated_flag_still_works_through_the_door(tmp_path, capsys):
    code = cli.main(["evaluate", "--model", str(tmp_path / "missing.tar.gz"), "--data", str(tmp_path),
                     "--output-dir", str(tmp_path / "eval")])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[0].startswith("tf-finetune: warning: --output-dir is deprecated")
    assert err[-1] == f"tf-finetune: error: {tmp_path / 'missing.tar.gz'}: no such model file or folder"


def test_new_and_old_spellings_share_one_required_flag(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["fetch-model", "some-id"])
    assert exited.value.code == 2
    assert "the following arguments are required: --output" in capsys.readouterr().err


@pytest.mark.parametrize("typo, meant", [("--validation", "--validation-data"), ("--learning_rat", "--learning-rate"),
                                         ("--epoch", "--epochs"), ("--model_idd", "--model-id")])
def test_an_unknown_flag_gets_did_you_mean(typo, meant, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--data", "d", "--output", "o", typo, "v"])
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"tf-finetune train: error: unrecognized arguments: {typo} v ({typo}: did you mean {meant}")


def test_debug_works_after_the_command_too():
    assert cli.build_parser().parse_args(["predict", "--model", "m", "x", "--debug"]).debug is True
    assert cli.build_parser().parse_args(["--debug", "predict", "--model", "m", "x"]).debug is True
    assert cli.build_parser().parse_args(["predict", "--model", "m", "x"]).debug is False


def test_checkpoint_steps_without_a_checkpoint_folder(text_data, tmp_path, capsys):
    assert cli.main(["train", "--data", str(text_data), "--handle", "h", "--output", str(tmp_path / "o"),
                     "--cache-dir", str(tmp_path / "c"), "--checkpoint-steps", "5"]) == 1
    assert "checkpoint_steps=5 needs a checkpoint folder: add --checkpoint-dir DIR" in capsys.readouterr().err


def test_version(capsys):
    from tf_finetune import __version__

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"tf_finetune {__version__}\n"
