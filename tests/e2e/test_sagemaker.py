"""The SageMaker entry point, run by the real sagemaker-training toolkit in a subprocess.

Each test lays out a SageMaker base folder (``input/config/*.json``, ``input/data/<channel>``,
``model/``, ``output/``) as the platform does, points ``SAGEMAKER_BASE_DIR`` at it and runs
``trainer.train()``, which runs ``tf_finetune/sagemaker/entrypoint/train.py`` with the hyperparameters as arguments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from tf_finetune.backbones.packing import pack_backbone
from tf_finetune.errors import HyperparameterError
from tf_finetune.sagemaker.container import main, parse_arguments, parse_job_options
from tf_finetune.sagemaker.launch import metric_definitions
from tf_finetune.training.cluster import cluster_config, worker_count


def estimator_hyperparameters(user: dict, job: str = "tf-finetune-test") -> dict:
    """hyperparameters.json as the SageMaker TensorFlow estimator writes it: JSON-encoded values."""
    values = dict(
        user,
        model_dir=f"s3://bucket/{job}/model",
        sagemaker_program="train.py",
        sagemaker_submit_directory=str(REPO / "tf_finetune" / "sagemaker" / "entrypoint"),
        sagemaker_container_log_level=20,
        sagemaker_job_name=job,
        sagemaker_region="us-east-1",
    )
    return {k: json.dumps(v) for k, v in values.items()}


def sagemaker_base(root: Path, hyperparameters: dict, channels: dict[str, Path]) -> Path:
    """A SageMaker base folder with config files and channel data copied in."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(estimator_hyperparameters(hyperparameters)))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "localhost", "hosts": ["localhost"], "network_interface_name": "lo"})
    )
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                name: {
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for name in channels
            }
        )
    )
    for name, source in channels.items():
        target = root / "input" / "data" / name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.mkdir(parents=True)
            shutil.copy(source, target / source.name)
    (root / "model").mkdir()
    (root / "output").mkdir()
    return root


def run_toolkit(base: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "TF_CONFIG"))}
    env.update(SAGEMAKER_BASE_DIR=str(base), TF_CPP_MIN_LOG_LEVEL="2", TF_FINETUNE_CACHE=str(base / "cache"))
    return subprocess.run(
        [sys.executable, "-c", "from sagemaker_training import trainer; trainer.train()"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=base,
    )


@pytest.fixture
def model_channel(text_module, tmp_path) -> Path:
    """A 'model' channel as JumpStart gives it: a folder holding one .tar.gz of the backbone."""
    return pack_backbone(text_module, tmp_path / "channel-src" / "tiny-text.tar.gz")


def test_training_job_writes_the_model_and_outputs(text_data, model_channel, tmp_path):
    validation = tmp_path / "val" / "data.csv"
    validation.parent.mkdir()
    validation.write_text(text_data.read_text().split("\n", 8)[-1], encoding="utf-8")
    # model_id picks the registry entry (task, defaults); the model channel supplies its weights
    base = sagemaker_base(
        tmp_path / "ml",
        {
            "model_id": "wordllama-words256",
            "epochs": 2,
            "batch_size": 4,
            "learning_rate": 0.01,
            "train_only_top_layer": False,
            "label_smoothing": 0.0,
        },
        {"training": text_data, "validation": validation, "test": validation, "model": model_channel},
    )
    (base / "checkpoints").mkdir()  # as SageMaker makes it when checkpoint_s3_uri is set
    proc = run_toolkit(base)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"checkpoints: {base / 'checkpoints'} (new job)" in proc.stdout + proc.stderr
    assert "checkpoint saved: epoch 2" in proc.stdout + proc.stderr
    assert list((base / "checkpoints").iterdir()) == []  # done: removed after the model is written
    assert not (base / "output" / "failure").exists()
    assert (base / "output" / "success").exists()
    model = base / "model"
    assert (model / "1" / "saved_model.pb").is_file()
    labels = json.loads((model / "labels.json").read_text())
    assert labels["class_names"] == ["1", "2"]
    metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    for report in ("training_curves.png", "confusion_matrix.png", "evaluation.json"):
        assert (base / "output" / "data" / report).is_file(), report
    assert list((base / "output" / "tensorboard").rglob("events.out.tfevents.*"))
    assert metrics["backbone"]["id"] == "wordllama-words256"
    assert metrics["backbone"]["handle"].endswith("input/data/model")
    assert metrics["hyperparameters"]["train_only_top_layer"] is False
    assert metrics["hyperparameters"]["learning_rate"] == 0.01
    assert metrics["num_test_examples"] == metrics["num_validation_examples"] > 0
    assert metrics["final"]["test_accuracy"] == pytest.approx(metrics["final"]["val_accuracy"])
    # the toolkit passed the estimator's own argument, which the entry point accepted
    logs = proc.stdout + proc.stderr
    assert "--model_dir s3://bucket/tf-finetune-test/model" in logs
    # the metric definitions launch sets (and the README shows) find the values in the job's log
    found = {d["Name"]: [float(v) for v in re.findall(d["Regex"], logs, re.M)] for d in metric_definitions()}
    assert found["validation:accuracy"][-1] == pytest.approx(metrics["history"]["val_accuracy"][-1], abs=1e-4)
    assert found["validation:loss"][-1] == pytest.approx(metrics["history"]["val_loss"][-1], abs=1e-4)
    assert found["train:accuracy"] == pytest.approx(metrics["history"]["accuracy"], abs=1e-4)
    assert found["train:loss"] == pytest.approx(metrics["history"]["loss"], abs=1e-4)
    assert found["test:accuracy"] == [pytest.approx(metrics["final"]["test_accuracy"], abs=1e-4)]


def test_bert_entry_with_a_fetched_archive_as_the_model_channel(bert_archive, bert_data, tmp_path):
    # JumpStart's shape for the BERT family: model_id names the entry, the model channel holds
    # its weights with the preprocessor bundled (fetch-model), nothing is downloaded
    channel = tmp_path / "channel"
    channel.mkdir()
    shutil.copy(bert_archive, channel / "model.tar.gz")
    base = sagemaker_base(
        tmp_path / "ml",
        {"model_id": "small-bert-en-uncased-l4-h512", "epochs": 1, "batch_size": 8, "max_seq_length": 16},
        {"training": bert_data, "model": channel},
    )
    proc = run_toolkit(base)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
    assert metrics["backbone"]["max_seq_length"] == 16
    assert metrics["backbone"]["train_texts"]["truncated"] > 0
    assert metrics["hyperparameters"]["optimizer"] == "adamw"
    assert (base / "model" / "1" / "saved_model.pb").is_file()


def test_unknown_hyperparameter_fails_with_the_reason_in_the_failure_file(text_data, model_channel, tmp_path):
    base = sagemaker_base(
        tmp_path / "ml", {"epochs": 1, "learning_rat": 0.01}, {"training": text_data, "model": model_channel}
    )
    proc = run_toolkit(base)
    assert proc.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert reason.startswith("unknown hyperparameter 'learning_rat'"), reason
    assert "(did you mean learning_rate?)" in reason.splitlines()[0]
    assert not (base / "model" / "1").exists()


def test_bad_data_fails_naming_the_file_and_line(model_channel, tmp_path):
    data = tmp_path / "d" / "data.csv"
    data.parent.mkdir()
    data.write_text("label,text\n0,a\n1,b\n", encoding="utf-8")
    base = sagemaker_base(tmp_path / "ml", {"epochs": 1}, {"training": data, "model": model_channel})
    proc = run_toolkit(base)
    assert proc.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert "input/data/training/data.csv line 1" in reason and "header" in reason, reason
    assert "Traceback" not in reason
    assert list((base / "model").iterdir()) == []


def test_no_backbone_is_one_clear_failure(text_data, tmp_path):
    base = sagemaker_base(tmp_path / "ml", {"epochs": 1}, {"training": text_data})
    proc = run_toolkit(base)
    assert proc.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert "model_id" in reason and "'model' channel" in reason, reason


def test_arguments_as_the_toolkit_passes_them():
    options, hps = parse_arguments(
        [
            "--batch_size",
            "8",
            "--model_dir",
            "s3://b/j/model",
            "--model_id",
            "mobilenet-v2-100-224",
            "-x",
            "1",
            "--train-only-top-layer=True",
            "--image_size",
            "160",
        ]
    )
    assert options == {"model_id": "mobilenet-v2-100-224", "image_size": "160"}
    assert hps == {"batch_size": "8", "x": "1", "train_only_top_layer": "True"}
    with pytest.raises(HyperparameterError, match="'epochs' has no value"):
        parse_arguments(["--epochs"])
    with pytest.raises(HyperparameterError, match="unexpected argument '3'"):
        parse_arguments(["3"])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"worker_port": "abc"}, "worker_port='abc': expected a whole number from 1 to 65535"),
        ({"worker_port": "0"}, "worker_port='0': expected a whole number from 1 to 65535"),
        ({"worker_port": "70000"}, "worker_port='70000': expected a whole number from 1 to 65535"),
        ({"image_size": "big"}, "image_size='big': expected a whole number from 16 to 4096"),
        ({"image_size": "7"}, "image_size='7': expected a whole number from 16 to 4096"),
        ({"fresh_start": "maybe"}, "fresh_start='maybe': expected True or False"),
        ({"feature_cache": "perhaps"}, "feature_cache='perhaps': expected True or False"),
    ],
)
def test_job_options_are_checked_before_use(options, message):
    with pytest.raises(HyperparameterError, match=re.escape(f"hyperparameter {message}")):
        parse_job_options(options)


def test_job_options_parse_to_their_types_with_defaults():
    parsed = parse_job_options(
        {"worker_port": "9000", "fresh_start": "True", "model_id": "m", "image_size": "160", "feature_cache": "False"}
    )
    assert parsed["worker_port"] == 9000 and parsed["image_size"] == 160 and parsed["model_id"] == "m"
    assert parsed["fresh_start"] is True and parsed["feature_cache"] is False
    assert parse_job_options({})["feature_cache"] is True and parse_job_options({})["checkpoint_steps"] == 0


def test_bad_worker_port_on_two_hosts_is_one_message(tmp_path, capsys):
    environ = {
        "SAGEMAKER_BASE_DIR": str(tmp_path),
        "SM_CHANNEL_TRAINING": str(tmp_path),
        "SM_HOSTS": json.dumps(["algo-1", "algo-2"]),
        "SM_CURRENT_HOST": "algo-1",
    }
    assert main(["--worker_port", "abc", "--model_id", "x"], environ) == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert failure == "hyperparameter worker_port='abc': expected a whole number from 1 to 65535\n"
    assert "TF_CONFIG" not in environ and "Traceback" not in capsys.readouterr().err


def test_cluster_config_from_the_host_list():
    hosts = ["algo-2", "algo-1", "algo-3"]
    config = cluster_config(hosts, "algo-2", port=7777)
    assert config == {
        "cluster": {"worker": ["algo-1:7777", "algo-2:7777", "algo-3:7777"]},
        "task": {"type": "worker", "index": 1},
    }
    assert worker_count(json.dumps(config)) == 3
    assert worker_count(None) == 1
    with pytest.raises(ValueError, match="algo-9"):
        cluster_config(hosts, "algo-9")
