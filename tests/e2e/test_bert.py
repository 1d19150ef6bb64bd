"""The BERT family end to end, on a tiny encoder and preprocessor in TF-Hub's BERT format
(``tests/support/tiny_bert.py``): fetch-model packing, training from a registry BERT entry under the suite's
CPU replicas (helpers.REPLICAS), serving raw strings from plain TensorFlow + tensorflow_text, predict,
evaluate, continued training, the TFLite refusal, sequence length, and a missing
tensorflow-text."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the preprocessor's ops, as a serving process needs them)
import tf_keras

import tiny_bert
from helpers import REPLICAS, REPO, extract, run_cli, run_main
from tf_finetune.backbones.bert_inputs import Preprocessor
from tf_finetune.backbones.tfhub import hub
from tf_finetune.cli import commands
from tf_finetune.errors import HyperparameterError
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import plan

BERT_ID = "small-bert-en-uncased-l4-h512"  # the registry entry: task and defaults
SEQ = 16
TRAIN = ["--epochs", "12", "--batch-size", "8", "--learning-rate", "0.002", "--random-seed", "5"]
TEXTS = [
    "rain and snow today",
    "the team scored a goal",
    "wind and cloud",
    "a match to win",
    " ".join(["storm"] * 30),
]  # longer than SEQ: cut the same way in training and serving

# A fresh interpreter that imports TensorFlow and tensorflow_text only, as a serving image does.
PLAIN_TF_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text
model_dir, *texts = sys.argv[1:]
out = tf.saved_model.load(model_dir).signatures["serving_default"](text=tf.constant(texts))
assert not any(m.split(".")[0] in ("tf_finetune", "tensorflow_hub", "tf_keras") for m in sys.modules)
print(json.dumps({"probabilities": out["probabilities"].numpy().tolist(),
                  "label": [x.decode() for x in out["label"].numpy()]}))
"""

# Runs the CLI with tensorflow_text impossible to import, as on a machine without the extra.
NO_TF_TEXT_SCRIPT = """
import sys
class NoTensorflowText:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow_text":
            raise ImportError("No module named 'tensorflow_text'")
sys.meta_path.insert(0, NoTensorflowText())
from tf_finetune.cli import commands
sys.exit(commands.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def bert_run(bert_archive, bert_data, tmp_path_factory):
    """Full fine-tuning (adamw, warmup) of the registry's small BERT entry with the fetched
    archive as its weights, under the suite's REPLICAS CPU replicas; returns (the command's result,
    output folder, model folder)."""
    root = tmp_path_factory.mktemp("bert-run")
    proc = run_main(
        "train",
        "--model-id",
        BERT_ID,
        "--handle",
        str(bert_archive),
        "--data",
        str(bert_data),
        "--output",
        str(root / "out"),
        "--max-seq-length",
        str(SEQ),
        "--cache-dir",
        str(root / "cache"),
        *TRAIN,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    extract(root / "out" / "output" / "model.tar.gz", root / "model")
    return proc, root / "out", root / "model"


def test_tiny_modules_have_the_tfhub_bert_interface(bert_pair):
    encoder_dir, preprocessor_dir = bert_pair
    preprocessor = hub.load(str(preprocessor_dir))
    inputs = preprocessor(tf.constant(TEXTS))
    assert sorted(inputs) == sorted(tiny_bert.INPUT_KEYS)
    for tensor in inputs.values():
        assert tensor.dtype == tf.int32 and tensor.shape == (len(TEXTS), tiny_bert.DEFAULT_SEQ_LENGTH)
    assert inputs["input_word_ids"][0, 0] == tiny_bert.CLS_ID
    tokens = preprocessor.tokenize(tf.constant(TEXTS))
    assert isinstance(tokens, tf.RaggedTensor) and tokens.dtype == tf.int32 and tokens.shape.rank == 3
    packed = preprocessor.bert_pack_inputs([tokens], seq_length=SEQ)
    assert all(t.dtype == tf.int32 and t.shape == (len(TEXTS), SEQ) for t in packed.values())
    assert packed["input_word_ids"][4, SEQ - 1] == tiny_bert.SEP_ID  # cut, then closed

    encoder = hub.load(str(encoder_dir))
    outputs = encoder(packed, training=False)
    assert outputs["pooled_output"].shape == (len(TEXTS), tiny_bert.HIDDEN)
    assert outputs["sequence_output"].shape == (len(TEXTS), SEQ, tiny_bert.HIDDEN)
    assert [o.shape for o in outputs["encoder_outputs"]] == [(len(TEXTS), SEQ, tiny_bert.HIDDEN)] * 2
    np.testing.assert_array_equal(outputs["default"], outputs["pooled_output"])
    assert encoder.trainable_variables
    first, second = (encoder(packed, training=True)["pooled_output"] for _ in range(2))
    assert not np.allclose(first, second)  # dropout in training
    np.testing.assert_array_equal(encoder(packed, training=False)["pooled_output"], outputs["pooled_output"])

    ours = Preprocessor(str(preprocessor_dir), "tiny")
    assert ours.has_steps and ours.default_seq_length() == tiny_bert.DEFAULT_SEQ_LENGTH
    long = ours.count_long(TEXTS, SEQ)
    assert (long.count, long.total, long.longest) == (1, len(TEXTS), 32)


def test_fetch_model_bundles_the_preprocessor(bert_archive, bert_pair):
    with tarfile.open(bert_archive) as tar:
        names = set(tar.getnames())
    assert {"saved_model.pb", "preprocessor/saved_model.pb"} <= names
    vocab = [n for n in names if n.startswith("preprocessor/assets/")]
    assert vocab and bert_pair[1].name + ".vocab.txt" in vocab[0]


def test_bert_entry_trains_with_the_sequence_length_and_counts_cut_texts(bert_run):
    proc, out, model = bert_run
    metrics = json.loads((model / "metrics.json").read_text())
    backbone = metrics["backbone"]
    assert backbone["id"] == BERT_ID and backbone["max_seq_length"] == SEQ
    cut = backbone["train_texts"]["truncated"] + backbone["validation_texts"]["truncated"]
    assert cut == tiny_bert.LONG_TEXTS
    assert backbone["train_texts"]["longest_tokens"] >= tiny_bert.LONG_WORDS + 2
    assert f"sequence length {SEQ}: " in proc.stderr and "are longer and are truncated" in proc.stderr
    hp = metrics["hyperparameters"]
    assert (hp["optimizer"], hp["warmup_steps_fraction"], hp["train_only_top_layer"]) == ("adamw", 0.1, False)
    assert metrics["replicas"] == REPLICAS and metrics["global_batch_size"] == 8 * REPLICAS
    assert metrics["final"]["val_accuracy"] >= 0.9  # the topics are learnt through the encoder


def test_exported_bert_model_serves_raw_strings_in_plain_tensorflow(bert_run):
    model = bert_run[2]
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_TF_SCRIPT, str(model / "1"), *TEXTS],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    keras = tf_keras.models.load_model(str(model / "1"), custom_objects={"KerasLayer": hub.KerasLayer})
    expected = keras.predict(tf.constant(TEXTS), verbose=0)
    assert np.abs(np.array(served["probabilities"]) - expected).max() < 1e-5
    assert served["label"][:4] == ["0", "1", "0", "1"]


def test_predict_and_evaluate_a_bert_model(bert_run, bert_data, tmp_path, capsys):
    archive = bert_run[1] / "output" / "model.tar.gz"
    assert commands.main(["predict", "--model", str(archive), "--json", *TEXTS[:4]]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["predictions"][0]["label"] for row in rows] == ["0", "1", "0", "1"]
    assert (
        commands.main(
            ["evaluate", "--model", str(archive), "--data", str(bert_data), "--output", str(tmp_path / "eval")]
        )
        == 0
    )
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["num_examples"] == 48 + tiny_bert.LONG_TEXTS and report["accuracy"] >= 0.9


def test_training_continues_from_a_bert_model(bert_run, bert_data, tmp_path, capsys):
    archive = bert_run[1] / "output" / "model.tar.gz"
    argv = [
        "train",
        "--handle",
        str(archive),
        "--data",
        str(bert_data),
        "--output",
        str(tmp_path / "next"),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--learning-rate",
        "0.0001",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert commands.main(argv + ["--max-seq-length", "32"]) == 1
    assert "max_seq_length=32 cannot be used: this job continues from a previous model" in capsys.readouterr().err
    # One replica in a process of its own: in this one, REPLICAS logical CPUs would all-reduce every
    # encoder weight at each step.
    proc = run_cli(*argv, "--cpu-devices", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(extract_metrics(tmp_path / "next" / "output" / "model.tar.gz"))
    assert metrics["final"]["val_accuracy"] >= 0.9  # started from the trained model, not afresh


def extract_metrics(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        return tar.extractfile("metrics.json").read().decode()


def test_head_only_bert_trains_on_cached_features(bert_archive, bert_data, tmp_path, capsys):
    argv = [
        "train",
        "--model-id",
        BERT_ID,
        "--handle",
        str(bert_archive),
        "--data",
        str(bert_data),
        "--output",
        str(tmp_path / "out"),
        "--train-only-top-layer",
        "True",
        "--epochs",
        "2",
        "--choose-hyperparameters",
        "False",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert commands.main(argv) == 0
    metrics = json.loads(extract_metrics(tmp_path / "out" / "output" / "model.tar.gz"))
    assert metrics["backbone"]["max_seq_length"] == tiny_bert.DEFAULT_SEQ_LENGTH  # the preprocessor's
    assert metrics["backbone"]["train_texts"]["truncated"] == 0
    # The BERT entries' default batch, 64, is more than these rows: cut to cover them in one step.
    assert metrics["hyperparameters"]["batch_size"] == -(-metrics["num_train_examples"] // REPLICAS) < 64
    assert list((tmp_path / "cache" / "features").iterdir())  # the frozen encoder ran once


def test_tflite_export_refuses_a_bert_model_naming_its_ops(bert_run, tmp_path, capsys):
    assert commands.main(["export-tflite", "--model", str(bert_run[2]), "--output", str(tmp_path / "lite")]) == 1
    err = capsys.readouterr().err
    assert "cannot be exported to TFLite" in err
    assert any(op in err for op in ("CaseFoldUTF8", "RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"))
    assert not (tmp_path / "lite").exists()


def test_without_tensorflow_text_each_door_names_the_extra(bert_run, bert_archive, bert_data, tmp_path):
    def run(*argv):
        return subprocess.run(
            [sys.executable, "-c", NO_TF_TEXT_SCRIPT, *argv],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
        )

    train = run(
        "train",
        "--model-id",
        BERT_ID,
        "--handle",
        str(bert_archive),
        "--data",
        str(bert_data),
        "--output",
        str(tmp_path / "out"),
    )
    assert train.returncode == 1, train.stderr[-2000:]
    assert (
        "needs the package tensorflow-text, which is not installed: pip install '.[bert]' in the tf_finetune clone"
        in train.stderr
    )
    assert not (tmp_path / "out").exists() and "Traceback" not in train.stderr
    predict = run("predict", "--model", str(bert_run[2]), "rain")
    assert predict.returncode == 1
    assert "TensorFlow Text's" in predict.stderr and "pip install '.[bert]' in the tf_finetune clone" in predict.stderr
    assert "CaseFoldUTF8" in predict.stderr and "Traceback" not in predict.stderr


def test_max_seq_length_is_checked_before_anything_runs(text_module, text_data, tmp_path, capsys):
    def planned(**config):
        return plan(JobConfig(data=str(text_data), output=None, **config)).spec

    assert planned(model_id=BERT_ID, max_seq_length=64).max_seq_length == 64
    for config, message in [
        (dict(model_id=BERT_ID, max_seq_length=2), "max_seq_length=2 is out of range"),
        (dict(model_id=BERT_ID, max_seq_length=513), "in [3, 512]"),
        (dict(model_id="mobilenet-v2-100-224", max_seq_length=64), "applies to text models"),
    ]:
        with pytest.raises(HyperparameterError, match=message.replace("[", r"\[")):
            planned(**config)
    # a string -> vector backbone has no sequence to size: refused before training
    assert (
        commands.main(
            [
                "train",
                "--handle",
                str(text_module),
                "--data",
                str(text_data),
                "--output",
                str(tmp_path / "out"),
                "--max-seq-length",
                "64",
            ]
        )
        == 1
    )
    assert "takes whole strings (it has no BERT-style preprocessor)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bert_entries_default_to_the_pages_recipe():
    for model_id, batch in [(BERT_ID, 64), ("electra-small", 64), ("bert-en-uncased-l12-h768", 32)]:
        job = plan(JobConfig(data="data.csv", output=None, model_id=model_id))
        spec, hp = job.spec, job.hyperparameters
        assert spec.requires == ("tensorflow-text",)
        assert (hp.optimizer, hp.learning_rate, hp.batch_size, hp.warmup_steps_fraction) == (
            "adamw",
            5e-5,
            batch,
            0.1,
        ), model_id
