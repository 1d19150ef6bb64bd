"""``tf-finetune check-data``: real folders and CSVs with planted problems, exact counts, exit status."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image

from helpers import run_main
from tf_finetune.reports.data_check import check_data


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
    report = check_data("image", train, validation=val, image_size=25)
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
    assert (
        f"warning: training: 1 image file(s) cannot be used and will be skipped: {train / 'bees' / 'truncated.jpg'}"
    ) in text
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


def test_check_data_on_the_parent_of_train_and_val_is_an_error_naming_the_command_meant(tmp_path):
    root = tmp_path / "hymenoptera"
    for split, seed in (("train", 0), ("val", 50)):
        for name in ("ants", "bees"):
            for index in range(3):
                noise_image(root / split / name / f"{index}.jpg", seed=seed + index)
    result = run_main("check-data", "--data", str(root))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "findings: 1 error(s), 0 warning(s), 0 note(s)" in result.stdout
    assert (
        f"  error: training: image data folder {root} holds data sets, not classes: its folder(s) train, val are "
        "data splits holding class folders (ants, bees), so it would train a train vs val classifier; did you "
        f"mean --data {root / 'train'} --validation-data {root / 'val'}?"
    ) in result.stdout.splitlines()


def test_check_data_holds_out_what_training_holds_out(tmp_path):
    from tf_finetune.data import load_data

    for name, count in (("ants", 7), ("bees", 7)):  # 20% of each class is 1.4: one each, not round(14 x 0.2) = 3
        for index in range(count):
            noise_image(tmp_path / "train" / name / f"{index}.jpg", seed=len(name) * 100 + index)
    report = check_data("image", tmp_path / "train", batch_size=4)
    held = len(load_data("image", tmp_path / "train").validation)
    assert report.training == {
        "validation": f"0.2 of the training data held out ({held} examples)",
        "global_batch": "4 (4 x 1 replica(s))",
        "steps_per_epoch": 3,
    }  # 12 left
    assert held == 2


def test_check_data_takes_the_train_command_and_refuses_what_train_refuses(text_module, tmp_path):
    from tf_finetune.cli.parser import build_parsers

    commands = build_parsers()[1]
    assert set(commands["train"]._option_string_actions) <= set(commands["check-data"]._option_string_actions)
    data = write_csv(tmp_path / "data.csv", [(i % 2, f"message {i}") for i in range(10)])
    train = [
        "--handle",
        str(text_module),
        "--data",
        str(data),
        "--output",
        str(tmp_path / "out"),
        "--epochs",
        "3",
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
        "--batch-size",
        "2",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    checked = run_main("check-data", *train)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "  global batch: 2 (2 x 1 replica(s))\n  steps per epoch: 4\n" in checked.stdout  # 8 after 2 held out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]  # output, checkpoints, cache: unused
    refused = run_main("check-data", *train, "--learning-rate", "5")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("tf-finetune: error: ") and "learning_rate='5' is out of range" in refused.stderr
    missing = run_main("check-data", *train[2:], "--handle", str(tmp_path / "no_model"))
    assert (missing.returncode, missing.stdout) == (1, "")
    assert f"tf-finetune: error: --handle {tmp_path / 'no_model'}: no such file or folder" in missing.stderr


def write_csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_text_report_finds_duplicates_conflicts_and_case_only_leakage(tmp_path):
    rows = [(0, f"ordinary message number {i}") for i in range(8)] + [(1, f"win a prize now {i}") for i in range(4)]
    rows += [
        (0, "ordinary message number 1"),  # exact duplicate within training
        (0, "call me later"),
        (1, "call  me LATER"),  # a label conflict, case/space only
        (1, "Hello there friend"),
    ]
    train = write_csv(tmp_path / "train" / "data.csv", rows)
    val = write_csv(tmp_path / "val" / "data.csv", [(0, "hello there FRIEND"), (1, "win a prize now 0"), (0, "fresh")])
    report = check_data("text", train.parent, validation=val.parent)
    data = report.to_dict()
    assert data["splits"]["training"]["per_class"] == {"0": 10, "1": 6}
    assert data["duplicates"]["within training"]["count"] == 1
    assert data["duplicates"]["within training, ignoring case and whitespace"]["count"] == 2
    assert data["duplicates"]["across training and validation"]["count"] == 2  # one exact, one case-only
    text = "\n".join(f"{f.level}: {f.message}" for f in report.findings)
    assert (
        "warning: training: 1 text(s) appear with different labels (label conflicts): line 14 label 0 / line 15 label 1"
    ) in text
    assert (
        "2 example(s) of validation also occur in training (training line 9 = validation line 2, training "
        "line 16 ~ validation line 1): they inflate the validation score; remove them from one of the two "
        "files"
    ) in text
    assert report.ok  # nothing here stops training


def texts_by_line(path: Path) -> dict[int, str]:
    """The line each row of a CSV starts on -> its text, read here with the csv module alone."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        reader, found, line = csv.reader(handle), {}, 1
        for row in reader:
            found[line], line = row[1], reader.line_num + 1
    return found


def named_pairs(message: str, path: Path, pattern: str) -> list[tuple[int, int]]:
    """The (line, line) pairs ``message`` names, each checked to hold the same text in ``path``."""
    import re

    pairs = [(int(a), int(b)) for a, b in re.findall(pattern, message)]
    texts = texts_by_line(path)
    assert pairs and all(texts[a] == texts[b] for a, b in pairs), (pairs, message)
    return pairs


def test_duplicates_name_the_csv_lines_and_to_deduplicate_the_file_when_validation_is_held_out(tmp_path):
    # A quoted line break makes row numbers and line numbers differ: the lines are the file's.
    rows = [(0, "first line\nsecond line")] + [(i % 2, f"message {i}") for i in range(10)] + [(1, "message 3")]
    path = write_csv(tmp_path / "data.csv", rows)
    held_out = (
        f"validation is held out of this data at random, so copies land on both sides and inflate the "
        f"validation score: deduplicate the training data {path} (keep one row per text) or give "
        "separate --validation-data"
    )
    result = run_main("check-data", "--data", str(path))
    assert result.returncode == 0, result.stdout
    assert f"  warning: training: 1 exact duplicate(s) (line 6 = line 13); {held_out}\n" in result.stdout
    assert named_pairs(result.stdout, path, r"line (\d+) = line (\d+)") == [(6, 13)]

    # train's report (from the data it has read) names the same lines, on either side of the split.
    from tf_finetune.data import load_data
    from tf_finetune.reports.data_check import from_loaded, summary

    rows += [(1, "message 3")] * 7  # copies land on both sides
    write_csv(path, rows)
    logged = summary(from_loaded(load_data("text", path, None, 0.2, seed=0), None, 0.2, {"training": str(path)}))
    [warning] = [line for line in logged.splitlines() if line.startswith("data warning: ")]
    assert named_pairs(warning, path, r"training line (\d+) = validation line (\d+)") == [(6, 18)]
    assert warning.endswith(
        "they inflate the validation score; validation is held out of the training data at "
        f"random, so copies land on both sides: deduplicate the training data {path} (keep "
        "one row per text) or give separate --validation-data"
    )


def test_the_duplicates_of_sms_spam_are_named_by_their_lines_in_data_csv(shared):
    from tf_finetune.data import load_data
    from tf_finetune.reports.data_check import from_loaded, summary

    path = shared / "data" / "sms_spam" / "data.csv"
    [checked] = [f.message for f in check_data("text", path).findings if "exact duplicate" in f.message]
    assert checked.startswith("training: 403 exact duplicate(s) (line 3 = line 1164, line 8 = line 104")
    assert len(named_pairs(checked, path, r"line (\d+) = line (\d+)")) == 5
    logged = summary(from_loaded(load_data("text", path, None, 0.2, seed=0), None, 0.2, {"training": str(path)}))
    assert len(named_pairs(logged, path, r"training line (\d+) = validation line (\d+)")) == 5
    assert f"deduplicate the training data {path} (keep one row per text)" in logged


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
    code = (
        "import sys; from tf_finetune.cli.commands import main; "
        f"main(['check-data', '--data', {str(train)!r}, '--validation-data', {str(val)!r}]); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
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
    result = run_main(
        "train",
        "--handle",
        str(text_module),
        "--data",
        str(train),
        "--validation-data",
        str(val),
        "--output",
        str(out),
        "--epochs",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "data duplicates across training and validation: 2" in result.stderr
    assert (
        "data warning: 2 example(s) of validation also occur in training (training line 1 = validation line 1, "
        "training line 2 = validation line 2): they inflate the validation score; remove them from one of the "
        "two files"
    ) in result.stderr
    assert "data training: 24 examples, 2 classes, imbalance 1.0x" in result.stderr
    stored = json.loads((out / "output" / "reports" / "data_report.json").read_text())
    assert stored["duplicates"]["across training and validation"]["count"] == 2
    assert stored["splits"]["validation"]["per_class"] == {"0": 2, "1": 2}
