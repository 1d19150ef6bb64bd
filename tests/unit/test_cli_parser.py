"""The command line's parsers (tf_finetune.cli.parser): what each command accepts."""

from __future__ import annotations

import pytest

from tf_finetune import job_options
from tf_finetune.cli import parser
from tf_finetune.hyperparameters import SCHEMA

COMMANDS = {
    "train",
    "launch",
    "check-data",
    "list-models",
    "describe",
    "fetch-model",
    "predict",
    "evaluate",
    "import-backbone",
    "export-tflite",
    "demo",
}
TRAIN = ["train", "--data", "d", "--output", "o"]  # train's required flags


def test_every_command_has_a_parser_and_every_command_that_writes_says_output():
    top, commands = parser.build_parsers()
    assert set(commands) == COMMANDS
    for name in ("train", "launch", "fetch-model", "evaluate", "import-backbone", "export-tflite"):
        assert "--output" in commands[name]._option_string_actions, name


@pytest.mark.parametrize("param", SCHEMA, ids=lambda p: p.name)
def test_every_hyperparameter_is_a_train_flag_in_both_spellings(param):
    train = parser.build_parsers()[1]["train"]
    kebab, snake = f"--{param.name.replace('_', '-')}", f"--{param.name}"
    assert {kebab, snake} <= set(train._option_string_actions)
    args = parser.build_parser().parse_args([*TRAIN, snake, "7"])
    assert getattr(args, f"hp_{param.name}") == "7"  # a string: the schema validates it, once
    assert getattr(parser.build_parser().parse_args(TRAIN), f"hp_{param.name}") is None


def test_predict_top_k_takes_whole_numbers_from_1(capsys):
    parse = parser.build_parser().parse_args
    assert parse(["predict", "--model", "m", "--top-k", "3", "x"]).top_k == 3
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as stopped:
            parse(["predict", "--model", "m", "--top-k", bad, "x"])
        assert stopped.value.code == 2
        assert f"expected a whole number, 1 or more, got '{bad}'" in capsys.readouterr().err


def test_the_cache_folder_comes_from_the_environment_or_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(job_options.CACHE_ENV, str(tmp_path / "c"))
    assert job_options.default_cache_dir() == str(tmp_path / "c")
    assert parser.build_parser().parse_args(TRAIN).cache_dir == str(tmp_path / "c")
    monkeypatch.delenv(job_options.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert job_options.default_cache_dir() == str(tmp_path / "home" / ".cache" / "tf_finetune")
