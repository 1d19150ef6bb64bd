"""Job options declared once: the same set, parsing and checks on the command line and SageMaker, and
one mapping each way between a door's values and a JobConfig."""

from __future__ import annotations

import dataclasses
import json

import pytest

from option_cases import ALL_FLAGS, ALL_VALUES
from tf_finetune import api, hyperparameters, job_options
from tf_finetune.cli import commands
from tf_finetune.cli import parser as cli_parser
from tf_finetune.errors import HyperparameterError
from tf_finetune.job_options import JobConfig
from tf_finetune.sagemaker import container
from tf_finetune.sagemaker.container import SAGEMAKER_OPTIONS, parse_arguments


def _train_args(*extra: str, command: str = "train"):
    return cli_parser.build_parser().parse_args([command, "--data", "d", "--output", "o", *extra])


def _flags(command: str) -> dict[str, str]:
    """The flags of ``command``: option string -> dest."""
    parser = cli_parser.build_parser()._subparsers._group_actions[0].choices[command]
    return {flag: action.dest for action in parser._actions for flag in action.option_strings}


@pytest.mark.parametrize("value", ["7", "0", "-5", "big", "5000"])
def test_a_bad_image_size_is_a_usage_error_naming_the_range(value, capsys):
    with pytest.raises(SystemExit) as exited:
        _train_args("--image-size", value)
    assert exited.value.code == 2
    assert f"argument --image-size: expected a whole number from 16 to 4096, got '{value}'" in capsys.readouterr().err


def test_flag_defaults_are_the_options_defaults():
    args = _train_args()
    for option in job_options.OPTIONS:
        if option.cli and option.name not in ("data", "output"):  # given above
            assert getattr(args, option.name) == option.default, option.name
    args = _train_args("--no-feature-cache", "--fresh-start", "--checkpoint-steps", "5", "--image-size", "96")
    assert (args.feature_cache, args.fresh_start, args.checkpoint_steps, args.image_size) == (False, True, 5, 96)


def test_both_doors_take_the_same_options():
    train_flags = set(_flags("train").values())
    cli_options = {o.name for o in job_options.OPTIONS if o.cli}
    assert cli_options <= train_flags
    assert {o.name for o in job_options.OPTIONS if o.hyperparameter} == SAGEMAKER_OPTIONS
    assert {o.name for o in job_options.OPTIONS if o.hyperparameter and o.cli} == SAGEMAKER_OPTIONS - {"worker_port"}
    options, hps = parse_arguments(["--feature_cache", "False", "--epochs", "2", "--image_size", "64"])
    assert options == {"feature_cache": "False", "image_size": "64"} and hps == {"epochs": "2"}


def test_every_job_config_field_is_declared_once():
    declared = {o.name for o in job_options.OPTIONS if o.name in job_options.FIELDS}
    assert declared | job_options.FROM_ENVIRONMENT | {"hyperparameters"} == set(job_options.FIELDS)
    assert not declared & job_options.FROM_ENVIRONMENT
    # Each option a user gives reaches SageMaker as a hyperparameter or a channel, except the
    # command line's own places: SageMaker gives the output, checkpoint and cache folders itself.
    local_only = {o.name for o in job_options.OPTIONS if not (o.hyperparameter or o.channel)}
    assert local_only == {"checkpoint_dir", "output", "registry", "cache_dir"}
    assert sorted(job_options.BY_CHANNEL) == ["model", "test", "training", "validation"]


def test_every_command_takes_the_flags_the_declarations_give_it():
    for command in ("train", "check-data"):
        flags = _flags(command)
        for option in job_options.OPTIONS:
            assert (flags.get(option.flag) == option.name) == option.cli, (command, option.name)
    launch = _flags("launch")
    for option in job_options.OPTIONS:
        if option.name == "output":
            continue  # launch's --output is its own: the S3 folder of its jobs, not the job's output
        assert (launch.get(option.flag) == option.name) == bool(option.launch), option.name


def test_values_are_parsed_with_the_option_named():
    assert job_options.parse_options({"max_seq_length": "64"})["max_seq_length"] == 64
    with pytest.raises(
        HyperparameterError,
        match=r"hyperparameter max_seq_length='600': expected a whole "
        r"number from 3 to 512",
    ):
        job_options.parse_options({"max_seq_length": "600"})
    with pytest.raises(HyperparameterError, match="hyperparameter model_id='  ': expected a value"):
        job_options.parse_options({"model_id": "  "})


@pytest.mark.parametrize("command", ["train", "check-data"])
def test_every_flag_reaches_the_job(command, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    config = commands._job_config(_train_args(*ALL_FLAGS, command=command))
    assert config == JobConfig(**ALL_VALUES, hyperparameters={"epochs": "3", "learning_rate": "0.1"})
    # the Python door maps the same values to the same job
    assert api.job_config(**{**ALL_VALUES, "epochs": "3"}, hyperparameters={"learning_rate": "0.1"}) == config


def test_the_cluster_makes_a_command_line_job_multi_worker(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"index": 0}}))
    assert commands._job_config(_train_args()).multi_worker is True
    monkeypatch.delenv("TF_CONFIG")
    assert commands._job_config(_train_args()).multi_worker is False


def _container_env(channels: dict[str, str]) -> container.SageMakerEnv:
    return container.SageMakerEnv(
        channels=channels,
        model_dir="/ml/model",
        output_data_dir="/ml/output/data",
        output_dir="/ml/output",
        hosts=("localhost",),
        current_host="localhost",
        num_gpus=0,
    )


def _through_sagemaker(job: JobConfig) -> JobConfig:
    """``job`` sent as launch sends it, read back as the SageMaker container reads it."""
    argv = [word for name, value in job_options.hyperparameters_of(job).items() for word in (f"--{name}", value)]
    options, hps = parse_arguments(argv)
    env = _container_env(job_options.channels_of(job))
    return container.job_config(env, container.parse_job_options(options), hps, "/cache", False)


@pytest.mark.parametrize(
    "job",
    [
        JobConfig(data="s3://b/train/", output=None, model_id="mobilenet-v2-100-224"),
        JobConfig(
            data="s3://b/train/",
            output=None,
            model_id="m",
            handle="s3://b/model/",
            validation_data="s3://b/v/",
            test_data="s3://b/t/",
            hyperparameters={"epochs": "5", "class_weights": [1, 2]},
            image_size=96,
            max_seq_length=64,
            feature_cache=False,
            checkpoint_steps=7,
            fresh_start=True,
            feature_layer="pool",
            pixel_range="-1,1",
        ),
    ],
    ids=["defaults", "every-option"],
)
def test_a_job_round_trips_through_launch_and_the_container(job):
    back = _through_sagemaker(job)
    for option in job_options.OPTIONS:
        if (option.hyperparameter or option.channel) and option.name in job_options.FIELDS:
            assert getattr(back, option.name) == getattr(job, option.name), option.name
    assert hyperparameters.normalize(back.hyperparameters) == hyperparameters.normalize(job.hyperparameters)
    assert (back.output, back.model_dir, back.report_dir, back.tensorboard_dir, back.cache_dir) == (
        None,
        "/ml/model",
        "/ml/output/data",
        "/ml/output/tensorboard",
        "/cache",
    )


def test_launch_sends_only_what_differs_from_the_defaults():
    job = JobConfig(data="d", output=None, model_id="m", hyperparameters={"epochs": 5})
    assert job_options.hyperparameters_of(job) == {"epochs": "5", "model_id": "m"}
    assert job_options.hyperparameters_of(dataclasses.replace(job, feature_cache=False, image_size=96)) == {
        "epochs": "5",
        "model_id": "m",
        "feature_cache": "False",
        "image_size": "96",
    }
    assert list(job_options.channels_of(dataclasses.replace(job, handle="h", test_data="t"))) == [
        "training",
        "test",
        "model",
    ]


def test_one_cache_folder_default_for_every_door(monkeypatch, tmp_path):
    monkeypatch.setenv(job_options.CACHE_ENV, str(tmp_path / "c"))
    assert JobConfig(data="d", output=None).cache_dir == str(tmp_path / "c")
    assert _train_args().cache_dir == str(tmp_path / "c")
    assert api.job_config("d", output=None).cache_dir == str(tmp_path / "c")
    # the container reads the environment it is given
    assert job_options.default_cache_dir({job_options.CACHE_ENV: "/x"}) == "/x"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert job_options.default_cache_dir({}) == str(tmp_path / "home" / ".cache" / "tf_finetune")


def test_a_command_line_flag_is_not_mistaken_for_a_job_field():
    config = job_options.job_config(
        {"data": "d", "command": "train", "debug": True, "worker_port": 9000, "image_size": None}, {}
    )
    assert config == JobConfig(data="d", output=None)
