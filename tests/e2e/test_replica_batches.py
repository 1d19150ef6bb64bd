"""No replica ever gets an empty batch, and every validation example is scored exactly once.

The backbones here record the batch size of every call they get (one line per replica per
step) into a file, so the tests see what each replica was handed, whatever the CPU's
kernels do with empty tensors.
"""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

import pytest

import tiny_modules
from helpers import REPLICAS, run_cli, run_main
from tf_finetune.cli import commands
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import run
from tiny_modules import COLOURS, recorded_batch_sizes, write_image

BATCH_SIZE = 2  # per replica


@pytest.fixture(scope="module")
def recording_image(tmp_path_factory) -> tuple[Path, Path]:
    """(module, its log) for a recording tiny image backbone."""
    root = tmp_path_factory.mktemp("recording")
    log = root / "image-batches.log"
    module = tiny_modules.save_image_module(root / "image", module=tiny_modules.RecordingImageFeatures(log))
    return module, log


@pytest.fixture(scope="module")
def recording_text(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("recording")
    log = root / "text-batches.log"
    return tiny_modules.save_text_module(root / "text", record=log), log


def image_folder(root: Path, count: int, varied_sizes: bool = False) -> Path:
    """``count`` images, blue and red in turn; with ``varied_sizes`` from 16 to ~700 pixels
    wide, so that parallel decoding finishes them out of order."""
    for i in range(count):
        cls = ("blue", "red")[i % 2]
        size = (16 + (i * 97) % 700, 12 + (i * 53) % 500) if varied_sizes else (20, 16)
        write_image(root / cls / f"{i:03d}.jpg", COLOURS[cls], size=size, seed=i)
    return root


def text_csv(path: Path, count: int, seed: int = 0) -> Path:
    """``count`` rows of data.csv, labels 0 and 1 in turn."""
    import random

    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for i in range(count):
            words = rng.sample(tiny_modules.TEXT_WORDS[i % 2], 3) + rng.sample(tiny_modules.FILLER, 2)
            writer.writerow([i % 2, " ".join(words)])
    return path


def make_data(task: str, root: Path, count: int) -> Path:
    return image_folder(root, count) if task == "image" else text_csv(root / "data.csv", count)


def last_batch(count: int, replicas: int) -> int:
    """Examples in the last global batch of a plain ``batch()`` over ``count``."""
    return count % (BATCH_SIZE * replicas) or BATCH_SIZE * replicas


# Sizes whose last global batch (BATCH_SIZE x REPLICAS examples when full) is 1 (fewer than the
# replicas: some get none), 3 (a replica's share cut short) and exactly full, with 2 replicas (the
# suite's default) or 4. Each case has both a short training and a short validation last batch.
CASES = [
    ("image", False, 9, 11),  # full fine-tune
    ("image", True, 11, 16),  # head-only on cached features
    ("text", False, 16, 9),
    ("text", True, 9, 11),
]


@pytest.mark.parametrize("task,head_only,train_count,val_count", CASES)
def test_every_replica_gets_a_full_share_of_every_batch(
    task, head_only, train_count, val_count, recording_image, recording_text, tmp_path, cache_dir
):
    assert {last_batch(c, REPLICAS) for _, _, t, v in CASES for c in (t, v)} == {1, 3, BATCH_SIZE * REPLICAS}
    module, log = recording_image if task == "image" else recording_text
    train = make_data(task, tmp_path / "train", train_count)
    validation = make_data(task, tmp_path / "validation", val_count)
    log.unlink(missing_ok=True)

    result = run(
        JobConfig(
            data=str(train),
            validation_data=str(validation),
            output=None,
            handle=str(module),
            image_size=16 if task == "image" else None,
            cache_dir=str(cache_dir),
            hyperparameters={"epochs": 2, "batch_size": BATCH_SIZE, "train_only_top_layer": head_only},
        )
    )

    sizes = recorded_batch_sizes(log)
    assert sizes, "the recording backbone was never called"
    assert set(sizes) == {BATCH_SIZE}, f"per-replica batch sizes seen: {sorted(set(sizes))}"
    metrics = result.metrics
    assert metrics["steps_per_epoch"] == -(-train_count // (BATCH_SIZE * REPLICAS))
    assert metrics["final"]["val_accuracy"] * val_count == pytest.approx(
        round(metrics["final"]["val_accuracy"] * val_count), abs=1e-6
    )  # a whole number of examples
    if head_only:  # features once: the training and validation inputs, each padded to full batches
        global_batch = BATCH_SIZE * REPLICAS
        assert len(sizes) == REPLICAS * (-(-train_count // global_batch) + -(-val_count // global_batch))


@pytest.mark.parametrize(
    "task,head_only,replicas,train_count,val_count",
    [
        ("image", True, 2, 5, 4),  # global batch 4: last batches of 1 and exactly full
        ("text", False, 3, 8, 7),  # global batch 6: last batches of 2 = replicas - 1 and 1
    ],
)
def test_cli_with_2_and_3_cpu_devices(
    task, head_only, replicas, train_count, val_count, recording_image, recording_text, tmp_path
):
    module, log = recording_image if task == "image" else recording_text
    train = make_data(task, tmp_path / "train", train_count)
    validation = make_data(task, tmp_path / "validation", val_count)
    log.unlink(missing_ok=True)
    size = ["--image-size", "16"] if task == "image" else []
    proc = run_cli(
        "train",
        "--cpu-devices",
        str(replicas),
        "--handle",
        str(module),
        "--data",
        str(train),
        "--validation-data",
        str(validation),
        *size,
        "--epochs",
        "2",
        "--batch-size",
        str(BATCH_SIZE),
        "--train-only-top-layer",
        str(head_only).lower(),
        "--output",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert proc.returncode == 0, proc.stderr
    global_batch = BATCH_SIZE * replicas
    steps = -(-train_count // global_batch)
    assert (
        f"replicas={replicas} batch_size={BATCH_SIZE} global_batch={global_batch} "
        f"steps_per_epoch={steps} train={train_count} validation={val_count} "
        f"examples_per_epoch={steps * global_batch}"
    ) in proc.stderr
    assert set(recorded_batch_sizes(log)) == {BATCH_SIZE}


@pytest.fixture(scope="module")
def image_archive(recording_image, tmp_path_factory, cache_dir) -> Path:
    module, _ = recording_image
    root = tmp_path_factory.mktemp("archive")
    result = run(
        JobConfig(
            data=str(image_folder(root / "train", 8)),
            output=str(root / "out"),
            handle=str(module),
            image_size=16,
            cache_dir=str(cache_dir),
            hyperparameters={"epochs": 1, "batch_size": BATCH_SIZE},
        )
    )
    return Path(result.archive)


def test_predict_and_evaluate_on_5_examples_with_several_devices(image_archive, recording_image, tmp_path, capsys):
    # In this process the CPU is REPLICAS logical devices; predict and evaluate run the serving
    # signature on one of them, in order, in batches of up to 64.
    _, log = recording_image
    data = image_folder(tmp_path / "five", 5)
    paths = sorted(str(p) for p in data.rglob("*.jpg"))

    log.unlink(missing_ok=True)
    assert commands.main(["predict", "--model", str(image_archive), "--json", *paths]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["input"] for row in rows] == paths
    assert recorded_batch_sizes(log) == [5]

    log.unlink(missing_ok=True)
    assert (
        commands.main(
            ["evaluate", "--model", str(image_archive), "--data", str(data), "--output", str(tmp_path / "eval")]
        )
        == 0
    )
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["num_examples"] == 5 and sum(map(sum, report["confusion_matrix"])) == 5
    assert recorded_batch_sizes(log) == [5]


@pytest.mark.parametrize("head_only", [False, True])
def test_training_metrics_report_and_evaluate_count_the_same_examples(head_only, image_module, tmp_path, cache_dir):
    # No random_seed: the training stream may be reordered by parallel decoding, but what is
    # scored must not be. Images of varied sizes decode in varied times.
    train = image_folder(tmp_path / "train", 14, varied_sizes=True)
    validation = image_folder(tmp_path / "validation", 13, varied_sizes=True)
    out = tmp_path / "out"
    result = run(
        JobConfig(
            data=str(train),
            validation_data=str(validation),
            output=str(out),
            handle=str(image_module),
            image_size=16,
            cache_dir=str(cache_dir),
            hyperparameters={
                "epochs": 1,
                "batch_size": BATCH_SIZE,
                "learning_rate": 0.02,
                "train_only_top_layer": head_only,
            },
        )
    )

    stored = json.loads(Path(out / "output" / "reports" / "evaluation.json").read_text())
    assert (
        commands.main(
            ["evaluate", "--model", str(result.archive), "--data", str(validation), "--output", str(tmp_path / "eval")]
        )
        == 0
    )
    evaluated = json.loads((tmp_path / "eval" / "evaluation.json").read_text())

    correct = lambda report: sum(report["confusion_matrix"][i][i] for i in range(2))  # noqa: E731
    trained = result.metrics["final"]["val_accuracy"] * 13
    assert stored["num_examples"] == evaluated["num_examples"] == 13
    assert trained == pytest.approx(correct(stored), abs=1e-6)
    assert stored["confusion_matrix"] == evaluated["confusion_matrix"]


def test_a_batch_larger_than_the_data_is_cut_to_it_before_any_work_and_check_data_says_the_same(
    recording_image, tmp_path
):
    # Head-only, as image models train by default: --batch-size 100000 on 195 images padded the feature
    # extraction to 100000 images per replica for minutes and died in TensorFlow (exit 139). 64 on 6
    # images shows the same without the memory: without the cut, the backbone is handed 64 per call.
    module, log = recording_image
    data = image_folder(tmp_path / "train", 8)  # 4 per class: 3 train and 1 held out each
    used = -(-6 // REPLICAS)  # per replica: the smallest batch that covers the 6 training images in one step
    log.unlink(missing_ok=True)
    out = tmp_path / "out"
    result = run_main(
        "train",
        "--handle",
        str(module),
        "--data",
        str(data),
        "--image-size",
        "16",
        "--batch-size",
        "64",
        "--epochs",
        "2",
        "--regularizers-l2",
        "0.001",
        "--train-only-top-layer",
        "true",
        "--output",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
    )

    assert result.returncode == 0, result.stderr[-2000:]
    said = (
        f"batch_size=64 x {REPLICAS} replica(s) = global batch {64 * REPLICAS} is larger than the 6 training "
        f"example(s): training with batch_size={used} (global batch {used * REPLICAS}, 1 step per epoch, one "
        f"pass over the data); set batch_size to {used} or less to choose the batch yourself"
    )
    lines = result.stderr.splitlines()
    assert lines.count(said) == 1, result.stderr
    assert lines.index(said) < next(i for i, line in enumerate(lines) if line.startswith("model: backbone"))
    assert set(recorded_batch_sizes(log)) == {used}  # the training and validation features
    with tarfile.open(out / "output" / "model.tar.gz") as tar:
        metrics = json.load(tar.extractfile("metrics.json"))
    assert metrics["hyperparameters"]["batch_size"] == used  # what ran, not what was asked
    assert (metrics["global_batch_size"], metrics["steps_per_epoch"]) == (used * REPLICAS, 1)

    checked = run_main("check-data", "--data", str(data), "--batch-size", "64")
    assert checked.returncode == 0, checked.stdout
    assert "  global batch: 6 (6 x 1 replica(s))\n  steps per epoch: 1\n" in checked.stdout
    assert (
        "warning: training: batch_size=64 x 1 replica(s) = global batch 64 is larger than the 6 training "
        "example(s): training with batch_size=6 (global batch 6, 1 step per epoch"
    ) in checked.stdout
