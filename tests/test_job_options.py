"""Job options declared once: the same set, parsing and checks on the command line and SageMaker."""
from __future__ import annotations

import json
import tarfile

import pytest

from tf_finetune import job_options
from tf_finetune.cli import commands
from tf_finetune.errors import HyperparameterError
from tf_finetune.sagemaker.container import SAGEMAKER_OPTIONS, parse_arguments


def _train_args(*extra: str):
    return commands.build_parser().parse_args(["train", "--data", "d", "--output", "o", *extra])


@pytest.mark.parametrize("value", ["7", "0", "-5", "big", "5000"])
def test_a_bad_image_size_is_a_usage_error_naming_the_range(value, capsys):
    with pytest.raises(SystemExit) as exited:
        _train_args("--image-size", value)
    assert exited.value.code == 2
    assert (f"argument --image-size: expected a whole number from 16 to 4096, got '{value}'"
            in capsys.readouterr().err)


def test_flag_defaults_are_the_options_defaults():
    args = _train_args()
    for option in job_options.OPTIONS:
        if option.cli:
            assert getattr(args, option.name) == option.default, option.name
    args = _train_args("--no-feature-cache", "--fresh-start", "--checkpoint-steps", "5", "--image-size", "96")
    assert (args.feature_cache, args.fresh_start, args.checkpoint_steps, args.image_size) == (False, True, 5, 96)


def test_both_doors_take_the_same_options():
    train_flags = {a.dest for a in commands.build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    cli_options = {o.name for o in job_options.OPTIONS if o.cli}
    assert cli_options <= train_flags
    assert {o.name for o in job_options.OPTIONS} == SAGEMAKER_OPTIONS
    assert cli_options == SAGEMAKER_OPTIONS - {"worker_port"}  # TF_CONFIG is given locally
    options, hps = parse_arguments(["--feature_cache", "False", "--epochs", "2", "--image_size", "64"])
    assert options == {"feature_cache": "False", "image_size": "64"} and hps == {"epochs": "2"}


def test_values_are_parsed_with_the_option_named():
    assert job_options.parse_options({"max_seq_length": "64"})["max_seq_length"] == 64
    with pytest.raises(HyperparameterError, match=r"hyperparameter max_seq_length='600': expected a whole "
                                                  r"number from 3 to 512"):
        job_options.parse_options({"max_seq_length": "600"})
    with pytest.raises(HyperparameterError, match="hyperparameter model_id='  ': expected a value"):
        job_options.parse_options({"model_id": "  "})


def test_train_scores_test_data_from_the_command_line(text_module, text_data, cache_dir, tmp_path):
    code = commands.main(["train", "--data", str(text_data), "--test-data", str(text_data), "--handle",
                     str(text_module), "--output", str(tmp_path / "out"), "--cache-dir", str(cache_dir),
                     "--epochs", "1", "--batch-size", "4"])
    assert code == 0
    with tarfile.open(tmp_path / "out" / "output" / "model.tar.gz") as archive:
        metrics = json.loads(archive.extractfile("metrics.json").read())
    assert metrics["num_test_examples"] > 0 and "test_accuracy" in metrics["final"]
