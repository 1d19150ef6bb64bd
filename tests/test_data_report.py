"""``tf-finetune check-data``: real folders and CSVs with planted problems, exact counts, exit status."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image

from helpers import run_main
from tf_finetune.data_report import check_data


def noise_image(path: Path, seed: int, size=(40, 30), mode="RGB", image_format="JPEG") -> Path:
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert(mode).save(path, image_format)
    return path


@pytest.fixture
def planted_images(tmp_path) -> tuple[Path, Path]:
    """train/{ants,bees,wasps} and val/{ants,bees} with one of each problem planted."""
    train, val = tmp_path / "train", tmp_path / "val"
    for index in range(6):
        noise_image(train / "ants" / f"a{index}.jpg", seed=index)
        noise_image(train / "bees" / f"b{index}.jpg", seed=100 + index)
        noise_image(val / "ants" / f"va{index}.jpg", seed=200 + index)
        noise_image(val / "bees" / f"vb{index}.jpg", seed=300 + index)
    noise_image(train / "wasps" / "w0.jpg", seed=400)  # a class only in training, with one image
    shutil.copy(train / "ants" / "a0.jpg", train / "ants" / "a0 copy.jpg")  # duplicate within training
    shutil.copy(train / "bees" / "b1.jpg", val / "bees" / "renamed.jpg")  # leaked into validation
    noise_image(train / ".ipynb_checkpoints" / "x.jpg", seed=500)  # a hidden folder
    whole = (train / "bees" / "b2.jpg").read_bytes()
    (train / "bees" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    noise_image(train / "bees" / "really_png.jpg", seed=600, image_format="PNG")
    noise_image(train / "ants" / "gray.jpg", seed=700, mode="L", size=(20, 300))
    (train / "ants" / "notes.txt").write_text("not an image")
    return train, val


def test_image_report_counts_every_planted_problem(planted_images):
    train, val = planted_images
    report = check_data("image", train, val, image_size=25)
    data = report.to_dict()
    assert data["splits"]["training"]["per_class"] == {"ants": 8, "bees": 7, "wasps": 1}
    assert data["splits"]["training"]["skipped"] == 1 and data["splits"]["training"]["ignored_files"] == 1
    assert data["splits"]["training"]["hidden"] == 1
    assert data["splits"]["training"]["non_rgb"] == {"grayscale": 1}
    assert data["splits"]["training"]["smaller_than_25"] == 1  # the 20x300 one
    assert data["splits"]["validation"]["per_class"] == {"ants": 6, "bees": 7}
    assert data["duplicates"]["within training"]["count"] == 1
    assert data["duplicates"]["across training and validation"]["count"] == 1
    text = "\n".join(f"{f.level}: {f.message}" for f in report.findings)
    assert not report.ok
    assert "error: validation: class(es) wasps of the training data are missing here" in text
    assert ("warning: training: 1 image file(s) cannot be used and will be skipped: "
            f"{train / 'bees' / 'truncated.jpg'}") in text
    assert "warning: training: class(es) with fewer than 5 examples: wasps" in text
    assert "renamed.jpg" in text and "inflate the validation score" in text
    assert "really_png.jpg (PNG)" in text and ".ipynb_checkpoints" in text and "notes.txt" in text
    assert all("\n" not in f.message for f in report.findings)  # one line each


def test_check_data_cli_exit_status_and_json(planted_images, tmp_path):
    train, val = planted_images
    failing = run_main("check-data", "--data", str(train), "--validation-data", str(val), "--json")
    assert failing.returncode == 1, failing.stderr
    assert json.loads(failing.stdout)["ok"] is False
    shutil.rmtree(train / "wasps")
    passing = run_main("check-data", "--data", str(train), "--validation-data", str(val))
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "duplicates across training and validation: 1" in passing.stdout


def write_csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_text_report_finds_duplicates_conflicts_and_case_only_leakage(tmp_path):
    rows = [(0, f"ordinary message number {i}") for i in range(8)] + [(1, f"win a prize now {i}") for i in range(4)]
    rows += [(0, "ordinary message number 1"),  # exact duplicate within training
             (0, "call me later"), (1, "call  me LATER"),  # a label conflict, case/space only
             (1, "Hello there friend")]
    train = write_csv(tmp_path / "train" / "data.csv", rows)
    val = write_csv(tmp_path / "val" / "data.csv", [(0, "hello there FRIEND"), (1, "win a prize now 0"), (0, "fresh")])
    report = check_data("text", train.parent, val.parent)
    data = report.to_dict()
    assert data["splits"]["training"]["per_class"] == {"0": 10, "1": 6}
    assert data["duplicates"]["within training"]["count"] == 1
    assert data["duplicates"]["within training, ignoring case and whitespace"]["count"] == 2
    assert data["duplicates"]["across training and validation"]["count"] == 2  # one exact, one case-only
    text = "\n".join(f"{f.level}: {f.message}" for f in report.findings)
    assert ("warning: training: 1 text(s) appear with different labels (label conflicts): "
            "row 14 label 0 / row 15 label 1") in text
    assert report.ok  # nothing here stops training


def test_text_that_training_refuses_is_an_error_naming_the_line(tmp_path):
    train = write_csv(tmp_path / "data.csv", [(0, "fine"), (1, " "), (1, "also fine")])
    result = run_main("check-data", "--data", str(train))
    assert result.returncode == 1
    assert f"error: training: {train} line 2: the text (column 2) is empty" in result.stdout


def test_check_data_imports_no_tensorflow(planted_images):
    import subprocess
    import sys

    from helpers import REPO

    train, val = planted_images
    code = ("import sys; from tf_finetune.cli import main; "
            f"main(['check-data', '--data', {str(train)!r}, '--validation-data', {str(val)!r}]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "data report (image)" in result.stdout


def test_train_prints_the_duplicates_across_splits_and_stores_the_report(text_module, tmp_path):
    rows = [(i % 2, f"{'alpha beta' if i % 2 else 'gamma delta'} message {i}") for i in range(24)]
    train = write_csv(tmp_path / "train" / "data.csv", rows)
    val = write_csv(tmp_path / "val" / "data.csv", rows[:2] + [(0, "gamma delta fresh"), (1, "alpha beta fresh")])
    out = tmp_path / "out"
    # Its words are mostly unknown to the module: on several replicas this once crashed fit
    # (test_model.py::test_sparse_gradients_without_rows_sum_across_replicas).
    result = run_main("train", "--handle", str(text_module), "--data", str(train), "--validation-data", str(val),
                      "--output", str(out), "--epochs", "1", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "data duplicates across training and validation: 2" in result.stderr
    assert "data training: 24 examples, 2 classes, imbalance 1.0x" in result.stderr
    stored = json.loads((out / "output" / "reports" / "data_report.json").read_text())
    assert stored["duplicates"]["across training and validation"]["count"] == 2
    assert stored["splits"]["validation"]["per_class"] == {"0": 2, "1": 2}
