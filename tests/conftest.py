"""Shared fixtures. The CPU is split into REPLICAS (helpers.py; 2 unless
TF_FINETUNE_TEST_REPLICAS says otherwise) logical devices before any TensorFlow op, so every
in-process training test runs with several replicas under MirroredStrategy."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite counts replicas on logical CPUs and checks CPU-only messages: hide any GPU, here
# and in every subprocess (they inherit this environment).
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest  # noqa: E402

from helpers import REPLICAS, SHARED, free_port, s3_environment, write_registry  # noqa: E402
from tf_finetune import startup  # noqa: E402

startup.prepare_tensorflow(quiet=False)  # as the doors do, before TensorFlow is imported

from tf_finetune.training.distribute import split_cpu  # noqa: E402

split_cpu(REPLICAS)

import tiny_modules  # noqa: E402

# pytest-xdist hands each worker whole files (--dist loadfile) in collection order
# (--no-loadscope-reorder; its default order is "most tests first", which left the heaviest files,
# with few tests each, for the end, one worker busy and the other idle). So the heaviest files
# go first, measured (seconds of test time on 2 cores, December 2026), and the many light files
# fill in the gaps at the end. test_keras_import and test_tflite share a built_once run: apart.
HEAVIEST_FIRST = [
    "test_bert.py",
    "test_keras_import.py",
    "test_sagemaker.py",
    "test_choices.py",
    "test_serving.py",
    "test_job.py",
    "test_checkpoint.py",
    "test_tflite.py",
    "test_disk_full.py",
    "test_replica_batches.py",
    "test_launch.py",
    "test_shared_models.py",
    "test_all_or_nothing.py",
    "test_multiworker.py",
]


def pytest_collection_modifyitems(config, items):
    e2e = Path(__file__).parent / "e2e"
    for item in items:  # the mark comes from the folder
        if item.path.is_relative_to(e2e):
            item.add_marker(pytest.mark.e2e)
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def shared() -> Path:
    """The real models and data in ../shared; tests that need them skip when it is absent."""
    if not (SHARED / "models").is_dir() or not (SHARED / "data").is_dir():
        pytest.skip(f"needs the real models and data in {SHARED} (set TF_FINETUNE_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def image_module(tmp_path_factory) -> Path:
    """A tiny image feature-vector SavedModel that takes any input size."""
    return tiny_modules.save_image_module(tmp_path_factory.mktemp("hub") / "tiny_image")


@pytest.fixture(scope="session")
def fixed_image_module(tmp_path_factory) -> Path:
    """A tiny image feature-vector SavedModel that takes 32x32 inputs only."""
    return tiny_modules.save_image_module(tmp_path_factory.mktemp("hub") / "tiny_image_32", size=32)


@pytest.fixture(scope="session")
def text_module(tmp_path_factory) -> Path:
    """A tiny string -> 8-d embedding SavedModel."""
    return tiny_modules.save_text_module(tmp_path_factory.mktemp("hub") / "tiny_text")


@pytest.fixture(scope="session")
def bert_pair(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny BERT encoder folder and its preprocessor folder, in TF-Hub's formats."""
    import tiny_bert

    return tiny_bert.save_bert_pair(tmp_path_factory.mktemp("hub") / "tiny_bert", bundle=False)


@pytest.fixture(scope="session")
def bert_archive(bert_pair, tmp_path_factory) -> Path:
    """``fetch-model`` of a registry entry naming the tiny encoder and its preprocessor: one
    .tar.gz with the preprocessor bundled as ``preprocessor/``."""
    from tf_finetune.cli import commands

    encoder, preprocessor = bert_pair
    root = tmp_path_factory.mktemp("fetched-bert")
    registry = write_registry(
        root / "registry.yaml",
        id="tiny-bert",
        task="text",
        handle=encoder.as_uri(),
        preprocessor=preprocessor.as_uri(),
        output_key="pooled_output",
        requires=["tensorflow-text"],
    )
    assert (
        commands.main(
            [
                "fetch-model",
                "tiny-bert",
                "--output",
                str(root),
                "--registry",
                str(registry),
                "--cache-dir",
                str(root / "cache"),
            ]
        )
        == 0
    )
    return root / "tiny-bert.tar.gz"


@pytest.fixture(scope="session")
def bert_data(tmp_path_factory) -> Path:
    """Topic texts (labels 0 and 1) and LONG_TEXTS rows of 20 words, which 16 word pieces cut."""
    import tiny_bert

    return tiny_bert.write_bert_csv(tmp_path_factory.mktemp("data") / "bert" / "data.csv")


@pytest.fixture(scope="session")
def image_data(tmp_path_factory) -> Path:
    """Two colour classes, 12 JPEGs each."""
    return tiny_modules.write_image_folder(tmp_path_factory.mktemp("data") / "images")


@pytest.fixture(scope="session")
def text_data(tmp_path_factory) -> Path:
    """A data.csv with labels 1 and 2 (mapped to indices 0 and 1)."""
    return tiny_modules.write_text_csv(tmp_path_factory.mktemp("data") / "text" / "data.csv", labels=(1, 2))


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 protocol server (moto) on 127.0.0.1; yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """boto3 (ours and the test's) pointed at the test server with dummy credentials.

    Yields a client; the same variables reach subprocesses through os.environ.
    """
    import boto3

    for name, value in s3_environment(s3_server).items():
        monkeypatch.setenv(name, value)
    yield boto3.client("s3")


def built_once(tmp_path_factory, name: str, build):
    """``build(folder)``'s result, built by ONE pytest-xdist worker and read by the others.

    A session fixture is per worker, so two workers whose test files use the same real-model run
    would each train it. The first takes a lock in the run's shared temporary folder and builds;
    the other waits for the lock and reads the pickled result (paths in it are shared too).
    """
    import fcntl
    import pickle

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    shared_root = tmp_path_factory.getbasetemp().parent  # one per pytest run, above the workers'
    with open(shared_root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even if build fails
        done = shared_root / name / "result.pickle"
        if done.is_file():
            return pickle.loads(done.read_bytes())
        folder = shared_root / name / f"by-{os.environ['PYTEST_XDIST_WORKER']}"
        folder.mkdir(parents=True, exist_ok=True)  # exists if this worker's earlier try failed
        result = build(folder)
        done.write_bytes(pickle.dumps(result))
        return result


@pytest.fixture(scope="session")
def ants_bees_h5_run(shared, cache_dir, tmp_path_factory):
    """ONE real run shared by the Keras-backbone and TFLite tests: the Teachable Machine .h5 as
    ``--handle``, head-only on ants/bees at 160 px (test_shared_models.py's settings), with
    ``tflite=int8`` at the end. Returns (the output folder, the JobResult)."""
    return built_once(tmp_path_factory, "ants_bees_h5", lambda output: _ants_bees_h5_run(shared, cache_dir, output))


def _ants_bees_h5_run(shared, cache_dir, output):
    from tf_finetune.job_options import JobConfig
    from tf_finetune.training.job import run

    data = shared / "data" / "hymenoptera"
    result = run(
        JobConfig(
            data=str(data / "train"),
            validation_data=str(data / "val"),
            output=str(output),
            handle=str(shared / "models" / "source" / "teachable_machine_keras_model.h5"),
            image_size=160,
            cache_dir=str(cache_dir),
            hyperparameters={
                "train_only_top_layer": True,
                "epochs": 5,
                "learning_rate": 0.003,
                "batch_size": 32 // REPLICAS,
                "tflite": "int8",
            },
        )
    )
    return output, result


@pytest.fixture(scope="session")
def ants_bees_hub_run(shared, cache_dir, tmp_path_factory):
    """ONE real run of the converted hub module with ants_bees_h5_run's recipe (head-only on
    ants/bees at 160 px), shared by the real-model tests. Returns (the output folder, the JobResult)."""
    return built_once(tmp_path_factory, "ants_bees_hub", lambda output: _ants_bees_hub_run(shared, cache_dir, output))


def _ants_bees_hub_run(shared, cache_dir, output):
    from tf_finetune.job_options import JobConfig
    from tf_finetune.training.job import run

    data = shared / "data" / "hymenoptera"
    result = run(
        JobConfig(
            data=str(data / "train"),
            validation_data=str(data / "val"),
            output=str(output),
            handle=str(shared / "models" / "mobilenet_v2_035_imagenet"),
            image_size=160,
            cache_dir=str(cache_dir),
            hyperparameters={
                "train_only_top_layer": True,
                "epochs": 5,
                "learning_rate": 0.003,
                "batch_size": 32 // REPLICAS,
            },
        )
    )
    return output, result
