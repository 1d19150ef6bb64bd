"""The end-to-end half of tests/unit/test_registry.py: the tests that train a model or run a door."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers import REPO, run_cli
from registry_cases import IMAGE_ENTRY, TEXT_ENTRY, write_registry
from tf_finetune.cli import catalog
from tf_finetune.hyperparameters import SCHEMA
from tf_finetune.registry import Registry, load_registry


@pytest.fixture(scope="module")
def packaged() -> Registry:
    return load_registry()


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_cli_list_models(packaged):
    result = run_cli("list-models")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "FINE-TUNABLE" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == [m.id for m in packaged.models]
    _no_traceback(result)


def test_cli_list_models_text_only(packaged):
    result = run_cli("list-models", "--task", "text")
    assert result.returncode == 0, result.stderr
    ids = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert ids == [m.id for m in packaged.models if m.task == "text"]
    assert "mobilenet-v2-100-224" not in result.stdout


def test_cli_list_models_with_another_registry(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY, TEXT_ENTRY])
    result = run_cli("list-models", "--registry", str(path))
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["tiny-image", "tiny-text"]


def test_cli_list_models_bad_registry_is_one_error_line(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY, dict(IMAGE_ENTRY)])
    result = run_cli("list-models", "--registry", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tf-finetune: error:")
    assert str(path) in lines[0] and "models[1]" in lines[0]


def test_cli_describe():
    result = run_cli("describe", "wordllama-words256")
    assert result.returncode == 0, result.stderr
    assert result.stdout == catalog.card(None, "wordllama-words256") + "\n"
    assert "builtin:wordllama-words256" in result.stdout


def test_cli_describe_unknown_id():
    result = run_cli("describe", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tf-finetune: error:")
    assert "'nope'" in lines[0] and "list-models" in lines[0]
    _no_traceback(result)


def test_cli_describe_and_list_models_answer_to_jumpstart_ids(packaged):
    """JumpStart's ids from its docs, through the door a user types them into."""
    for model_id, handle in [
        ("tensorflow-tc-bert-en-uncased-L-12-H-768-A-12-2", "tensorflow/bert_en_uncased_L-12_H-768_A-12/4"),
        ("tensorflow-ic-bit-m-r50x1-imagenet21k-classification-1", "google/bit/m-r50x1/1"),
    ]:
        result = run_cli("describe", model_id)
        assert result.returncode == 0, result.stderr
        assert f"https://tfhub.dev/{handle}\n" in result.stdout and model_id in result.stdout
    gap = run_cli("describe", "tensorflow-ic-efficientnet-lite0-classification-2")
    assert gap.returncode == 1 and "TF1 Hub format" in gap.stderr and "--model-id efficientnet-b0" in gap.stderr
    listing = run_cli("list-models", "--jumpstart")
    assert listing.returncode == 0, listing.stderr
    rows = [line for line in listing.stdout.splitlines()[1:] if line.split()[0] in {m.id for m in packaged.models}]
    assert len(rows) == len(packaged.models)
    shown = {name.strip(",") for row in rows for name in row.split() if name.startswith("tensorflow-")}
    assert shown == {name for m in packaged.models for name in m.jumpstart_ids}


def test_cli_help():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("train", "list-models", "describe"):
        assert command in result.stdout


def test_cli_train_help_mentions_every_hyperparameter_flag():
    result = run_cli("train", "--help")
    assert result.returncode == 0, result.stderr
    flags = set(re.findall(r"--[A-Za-z0-9_-]+", result.stdout))
    for param in SCHEMA:
        for name in (param.name, *param.aliases):
            assert f"--{name}" in flags, name
            assert f"--{name.replace('_', '-')}" in flags, name
    for flag in ("--model-id", "--handle", "--data", "--output"):
        assert flag in flags


@pytest.mark.parametrize(
    "argv", [["list-models"], ["list-models", "--task", "image"], ["describe", "wordllama-words256"]]
)
def test_catalogue_commands_do_not_import_tensorflow(argv):
    code = (
        "import sys; from tf_finetune.cli.commands import main; "
        f"code = main({argv!r}); "
        "assert code == 0, code; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; "
        "assert 'tensorflow_hub' not in sys.modules, 'tensorflow_hub was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_cli_train_rejects_bad_hyperparameter_before_training(tmp_path):
    output = tmp_path / "out"
    result = run_cli(
        "train",
        "--model-id",
        "mobilenet-v2-100-224",
        "--data",
        str(tmp_path / "no-such-data"),
        "--output",
        str(output),
        "--epochs",
        "0",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tf-finetune: error:")
    assert "epochs" in lines[0] and "[1, inf)" in lines[0] and "'0'" in lines[0]
    assert not output.exists()
    _no_traceback(result)


def test_cli_train_rejects_kebab_case_flag_value(tmp_path):
    result = run_cli(
        "train",
        "--model-id",
        "mobilenet-v2-100-224",
        "--data",
        "X",
        "--output",
        str(tmp_path / "out"),
        "--learning-rate",
        "2",
    )
    assert result.returncode == 1
    assert "learning_rate" in result.stderr and "(0, 1]" in result.stderr
    _no_traceback(result)


def test_cli_train_unknown_model_id(tmp_path):
    result = run_cli("train", "--model-id", "mobilenet-v2-100", "--data", "X", "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "mobilenet-v2-100-224" in result.stderr and "list-models" in result.stderr
    _no_traceback(result)


def test_cli_train_unknown_flag_is_a_usage_error(tmp_path):
    result = run_cli(
        "train", "--model-id", "mobilenet-v2-100-224", "--data", "X", "--output", str(tmp_path / "out"), "--bogus", "1"
    )
    assert result.returncode == 2
    assert "--bogus" in result.stderr
    _no_traceback(result)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "/no/such/data.csv", "--handle", "h", "--output", "/tmp/o"],
        ["train", "--data", "d.csv", "--handle", "h", "--output", "/proc/o"],
        ["predict", "--model", "/no/such/model.tar.gz", "x"],
    ],
)
def test_failing_before_any_model_work_does_not_import_tensorflow(argv):
    """Bad data or a bad destination answer at once (TensorFlow takes seconds to import)."""
    code = (
        "import sys; from tf_finetune.cli.commands import main; "
        f"code = main({argv!r}); "
        "assert code == 1, code; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
