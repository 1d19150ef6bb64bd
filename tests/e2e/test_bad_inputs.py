"""The bad-input corpus: every kind of bad input a user can give, generated here, with its outcome.

Each case writes real artefacts (CSV bytes, image files, SavedModels, tar archives) into its
tmp_path, calls the library door that reads them, and checks one of three outcomes:

* FATAL: one TfFinetuneError subclass whose one-line message names the file / line / value
  and says what to do (the CLI prints it as ``tf-finetune: error: …`` and exits 1);
* WARNED: the run goes on, with exactly one warning naming what was left out;
* ACCEPTED: the input is valid as it is (no warning) and reads back exactly.

Decisions recorded here: BOM, CRLF, quoted commas/newlines, negative labels, 1x1 images,
CMYK/grayscale/16-bit/PNG-named-.jpg images are accepted. A 10000x10000 JPEG is accepted
without a warning (check_image reads only its header and end; the pipeline decodes it at 1/8
scale). A header row is fatal and names line 1. Words in the label column (ham, spam) are fatal
with the mapping to use, not called a header; a tab- or semicolon-separated file is told so
whatever its labels. A field longer than the csv module's limit
(131072 characters) is fatal and names the line. Undecodable images are skipped with one
warning; hidden files are ignored; symbolic-link loops never hang, and a class folder that
links back to the data root is fatal.

A few cases at the end run ``python -m tf_finetune train`` as a subprocess to check the
whole door: exit code, one message without a traceback, and nothing left in ``--output``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import tiny_modules
from helpers import REPLICAS, offline_environment, run_cli, run_main
from tf_finetune import hyperparameters
from tf_finetune.backbones.loading import choose_image_size, local_saved_model
from tf_finetune.data import load_data
from tf_finetune.errors import (
    BackboneError,
    DataError,
    HyperparameterError,
    RegistryError,
    StorageError,
    TfFinetuneError,
)
from tf_finetune.job_options import JobConfig
from tf_finetune.registry import ModelSpec
from tf_finetune.storage import extract_archive
from tf_finetune.training.job import plan
from tiny_modules import COLOURS, write_image, write_image_folder

FATAL, WARNED, ACCEPTED = "fatal", "warned", "accepted"
SIZE = 16  # decode size for accepted images


@dataclass
class Ctx:
    """What a case's builder gets: its own folder and the session's tiny SavedModels."""

    tmp: Path
    modules: dict[str, Path]
    monkeypatch: Any


@dataclass(frozen=True)
class Case:
    """One bad input and its exact expected outcome.

    ``build`` writes the artefacts and returns the library call to make. ``says`` are fragments
    (``{tmp}`` is the case folder) the error message (FATAL) or the one warning (WARNED) must
    contain; ``never`` must not appear. ``check`` inspects the result (WARNED, ACCEPTED) or the
    folder after the error (FATAL).
    """

    id: str
    build: Callable[[Ctx], Callable[[], Any]]
    outcome: str
    error: type[TfFinetuneError] | None = None
    says: tuple[str, ...] = ()
    never: tuple[str, ...] = ()
    check: Callable[[Any, Ctx], None] | None = None
    marks: tuple = field(default=())


def write(path: Path, content: bytes | str) -> Path:
    """``content`` byte for byte (str as UTF-8, no newline translation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# --- CSV ----------------------------------------------------------------------------------------


def csv_case(
    id: str, content: bytes | str | None, outcome: str, *says: str, never=(), check=None, validation: str | None = None
) -> Case:
    """Text data: ``content`` as {tmp}/data.csv (None: no file), read by load_data."""

    def build(ctx: Ctx):
        path = ctx.tmp / "data.csv"
        if content is not None:
            write(path, content)
        val = write(ctx.tmp / "val" / "data.csv", validation) if validation else None
        return lambda: load_data("text", path, val, validation_split_ratio=0)

    return Case(id, build, outcome, DataError if outcome == FATAL else None, says, tuple(never), check)


def texts_are(*texts: str, labels=None, original=None):
    def check(split, ctx):
        assert split.train.inputs == texts
        if labels is not None:
            assert split.train.labels == labels
        if original is not None:
            assert split.label_map.original_labels == original

    return check


def only_the_csv(_, ctx: Ctx) -> None:
    """Reading refused the file and wrote nothing beside it."""
    assert [p.name for p in ctx.tmp.rglob("*")] == ["data.csv"]


def _device_as_data(ctx: Ctx):
    return lambda: load_data("text", Path("/dev/null"), None, validation_split_ratio=0)


def _upper_case_csv_folder(ctx: Ctx):
    write(ctx.tmp / "texts" / "DATA.CSV", "0,rain\n1,goal\n")
    return lambda: load_data("text", ctx.tmp / "texts", None, validation_split_ratio=0)


def _two_rows_split(ctx: Ctx):
    path = write(ctx.tmp / "data.csv", "0,rain\n1,goal\n")
    return lambda: load_data("text", path, None, validation_split_ratio=0.2)


CSV_CASES = [
    Case(
        "csv-too-few-rows-to-hold-out-validation",
        _two_rows_split,
        WARNED,
        None,
        ("validation_split_ratio=0.2 holds out no example of {tmp}/data.csv (2 examples", "give validation data"),
        check=lambda split, ctx: split.validation is None,
    ),
    # A comma inside tab-separated text splits the line in two: still "a tab", not "a header row".
    csv_case(
        "csv-tab-separated-text-with-commas",
        "0\train, then sun\n1\tgoal\n",
        FATAL,
        "{tmp}/data.csv line 1",
        "uses a tab",
        "comma-separated",
        never=("header",),
    ),
    Case(
        "csv-device-as-data",
        _device_as_data,
        FATAL,
        DataError,
        ("text data /dev/null is not a regular file (a device or a pipe)",),
        ("does not exist",),
    ),
    Case(
        "csv-upper-case-file-name-in-folder",
        _upper_case_csv_folder,
        ACCEPTED,
        check=texts_are("rain", "goal", labels=(0, 1)),
    ),
    csv_case(
        "csv-header-row",
        "label,text\n0,rain\n1,goal\n",
        FATAL,
        "{tmp}/data.csv line 1:",
        "'label'",
        "header row",
        "delete the first line",
    ),
    csv_case("csv-header-only", "label,text\n", FATAL, "{tmp}/data.csv line 1:", "header row"),
    # Words as labels: deleting line 1 would not help, so they are not called a header row.
    csv_case(
        "csv-word-labels",
        'ham,"Go until jurong point, crazy.."\nham,Ok lar\nspam,Free entry\n',
        FATAL,
        "{tmp}/data.csv line 1: label 'ham' is not an integer; column 1 holds words, not integer labels: ham "
        "on 2 rows, spam on 1 row",
        "replace each word with a number, e.g. ham=0, spam=1",
        never=("header",),
        check=only_the_csv,
    ),
    csv_case(
        "csv-word-labels-under-a-header",
        "label,text\nham,a\nham,b\nspam,c\n",
        FATAL,
        "{tmp}/data.csv line 1: label 'label' is not an integer; column 1 holds words",
        "ham=0, spam=1",
        "and delete line 1 ('label'), which looks like a header row",
        check=only_the_csv,
    ),
    csv_case(
        "csv-tab-separated-word-labels",
        "ham\tGo until jurong point, crazy..\nham\tOk lar\nspam\tFree\n",
        FATAL,
        "{tmp}/data.csv line 1 uses a tab between label and text",
        "save the file as comma-separated",
        "column 1 also holds words",
        "ham=0, spam=1",
        never=("header",),
        check=only_the_csv,
    ),
    csv_case(
        "csv-semicolon-separated",
        "0;rain\n1;goal\n",
        FATAL,
        "{tmp}/data.csv line 1 uses a semicolon between label and text",
        "save the file as comma-separated",
        never=("header", "words"),
        check=only_the_csv,
    ),
    csv_case(
        "csv-non-integer-label",
        "0,rain\n1,goal\nabc,snow\n",
        FATAL,
        "{tmp}/data.csv line 3:",
        "'abc' is not an integer",
        never=("header",),
    ),
    csv_case(
        "csv-float-label",
        "0,rain\n1.5,goal\n",
        FATAL,
        "{tmp}/data.csv line 2:",
        "'1.5'",
        "must be an integer class label",
    ),
    csv_case(
        "csv-float-label-on-line-1",
        "1.0,rain\n0,goal\n",
        FATAL,
        "{tmp}/data.csv line 1:",
        "'1.0' is not an integer",
        never=("header", "delete"),
    ),
    csv_case("csv-underscore-label", "10,rain\n1_0,goal\n", FATAL, "{tmp}/data.csv line 2:", "'1_0' is not an integer"),
    csv_case(
        "csv-negative-labels",
        "-1,rain\n0,goal\n-1,snow\n",
        ACCEPTED,
        check=texts_are("rain", "goal", "snow", labels=(0, 1, 0), original=(-1, 0)),
    ),
    csv_case(
        "csv-empty-text",
        "0,rain\n1,\n",
        FATAL,
        "{tmp}/data.csv line 2:",
        "text (column 2) is empty",
        "remove the row or add its text",
    ),
    csv_case("csv-blank-text", '0,rain\n1,"   "\n', FATAL, "{tmp}/data.csv line 2:", "text (column 2) is empty"),
    csv_case(
        "csv-missing-column", "0,rain\n1\n", FATAL, "{tmp}/data.csv line 2 has 1 column(s)", "expected 2 (label,text)"
    ),
    csv_case(
        "csv-extra-columns",
        "0,rain\n1,goal, again\n",
        FATAL,
        "{tmp}/data.csv line 2 has 3 column(s)",
        "in double quotes",
    ),
    csv_case(
        "csv-tab-separated", "0\train\n1\tgoal\n", FATAL, "{tmp}/data.csv line 1", "uses a tab", "comma-separated"
    ),
    csv_case(
        "csv-only-one-class",
        "1,rain\n1,snow\n",
        FATAL,
        "{tmp}/data.csv has only one class (label 1)",
        "at least 2 classes",
    ),
    csv_case(
        "csv-bom",
        b"\xef\xbb\xbf0,rain\n1,goal\n",
        ACCEPTED,
        check=texts_are("rain", "goal", labels=(0, 1), original=(0, 1)),
    ),
    csv_case("csv-crlf", "0,rain today\r\n1,goal\r\n", ACCEPTED, check=texts_are("rain today", "goal", labels=(0, 1))),
    csv_case(
        "csv-quoted-newlines-commas-quotes",
        '0,"rain, snow\nand wind"\r\n1,"he said ""goal"""\n0,plain\n',
        ACCEPTED,
        check=texts_are("rain, snow\nand wind", 'he said "goal"', "plain", labels=(0, 1, 0)),
    ),
    csv_case(
        "csv-invalid-utf8",
        b"0,rain\n1,caf\xe9\n",
        FATAL,
        "{tmp}/data.csv line 2:",
        "not valid UTF-8 (byte 0xe9)",
        "save the file as UTF-8",
    ),
    csv_case(
        "csv-utf16",
        "0,rain\n1,goal\n".encode("utf-16"),
        FATAL,
        "{tmp}/data.csv line 1:",
        "UTF-16",
        "save the file as UTF-8",
    ),
    csv_case("csv-empty-file", b"", FATAL, "{tmp}/data.csv is empty", "label,text"),
    csv_case(
        "csv-huge-line",
        "0,rain\n1,goal\n0," + "x" * 200_000 + "\n1,win\n",
        FATAL,
        "{tmp}/data.csv line 3:",
        "field limit of 131072 characters",
        "shorten",
        never=("Traceback",),
    ),
    csv_case(
        "csv-unclosed-quote",
        '0,rain\n1,"goal\n0,snow\n',
        FATAL,
        "{tmp}/data.csv line 2:",
        "malformed CSV",
        "close every quoted field",
    ),
    csv_case("csv-missing-file", None, FATAL, "{tmp}/data.csv does not exist"),
    csv_case(
        "csv-validation-label-unseen",
        "0,rain\n1,goal\n",
        FATAL,
        "{tmp}/val/data.csv has labels that the training data does not have: [7]",
        validation="0,snow\n7,win\n",
    ),
]


# --- images -------------------------------------------------------------------------------------


def image_case(
    id: str,
    extra: Callable[[Path], Any] | None,
    outcome: str,
    *says: str,
    never=(),
    check=None,
    error=DataError,
    base: bool = True,
) -> Case:
    """Image data: {tmp}/train with blue/ and red/ (3 good JPEGs each) plus what ``extra`` adds."""

    def build(ctx: Ctx):
        root = ctx.tmp / "train"
        if base:
            write_image_folder(root, per_class=3, classes=("blue", "red"))
        root.mkdir(parents=True, exist_ok=True)
        if extra:
            extra(root)
        return lambda: load_data("image", root, validation_split_ratio=0)

    return Case(id, build, outcome, error if outcome == FATAL else None, says, tuple(never), check)


def good_jpeg(path: Path, colour="red", size=(40, 30)) -> Path:
    return write_image(path, COLOURS[colour], size=size)


def truncated(path: Path, fmt="JPEG") -> None:
    """The first half of a good image, as an interrupted copy leaves it."""
    source = write_image(path.with_suffix(".src"), COLOURS["red"], fmt=fmt)
    data = source.read_bytes()
    source.unlink()
    write(path, data[: len(data) // 2])


def cmyk(root):
    write_image(root / "red" / "cmyk.jpg", COLOURS["red"], mode="CMYK")


def sixteen_bit_png(root):
    path = root / "red" / "deep.jpg.png"
    Image.fromarray(np.full((12, 10), 40000, np.uint16)).save(path, "PNG")
    assert path.read_bytes()[24] == 16  # IHDR bit depth: really 16-bit


def huge_jpeg(root):
    # 10000x10000 flat grey: ~100 MB while PIL encodes it, ~1 MB on disk.
    Image.new("L", (10000, 10000), 200).save(root / "red" / "huge.jpg", "JPEG", quality=50)


def hidden_files(root):
    write(root / "red" / ".DS_Store", b"\0\0\0\1Bud1")
    write(root / "red" / "._red_000.jpg", b"\0\5\26\7AppleDouble")  # macOS resource fork
    write(root / "blue" / ".thumbs" / "broken.jpg", b"not a picture")
    (root / ".git").mkdir()  # a hidden folder is not a class
    good_jpeg(root / ".git" / "x.jpg")


def symlink_loops(root):
    os.symlink(root, root / "blue" / "loop_to_root")
    os.symlink(root / "red", root / "red" / "loop_to_self")
    os.symlink("self.jpg", root / "red" / "self.jpg")  # a link to itself


def class_link_to_root(root):
    os.symlink(root, root / "everything")


def data_sets(*names: str, per_class: int = 3, stray: int = 0):
    """{tmp}/hymenoptera holding data sets ``names``, each with blue/ and red/ (``per_class`` JPEGs
    each), and ``stray`` images directly in the first."""

    def build(ctx: Ctx):
        root = ctx.tmp / "hymenoptera"
        for name in names:
            write_image_folder(root / name, per_class=per_class, classes=("blue", "red"))
        for index in range(stray):
            good_jpeg(root / names[0] / f"stray{index}.jpg")
        return lambda: load_data("image", root, validation_split_ratio=0)

    return build


def only_images(count: int):
    """Nothing was written beside the case's ``count`` images."""

    def check(_, ctx: Ctx):
        assert sorted(p.suffix for p in ctx.tmp.rglob("*") if p.is_file()) == [".jpg"] * count

    return check


def decoded(path: str):
    import tensorflow as tf

    from tf_finetune.data.pipeline import decode_image

    image = decode_image(tf.constant(path), SIZE, "bilinear").numpy()
    assert image.shape == (SIZE, SIZE, 3) and image.min() >= 0.0 and image.max() <= 1.0
    return image


def accepted_as_red(name: str, colour=True, value=None):
    """The file ``red/NAME`` is a training example of class red and decodes to RGB."""

    def check(split, ctx):
        path = str(ctx.tmp / "train" / "red" / name)
        assert path in split.train.inputs, split.train.inputs
        assert split.train.labels[split.train.inputs.index(path)] == 1
        assert len(split.train) == 7
        pixels = decoded(path)
        if colour:
            r, g, b = pixels.mean(axis=(0, 1))
            assert r > 0.6 and g < 0.4 and b < 0.4, (r, g, b)
        else:
            assert np.allclose(pixels[..., 0], pixels[..., 1], atol=1e-6)
            assert np.allclose(pixels[..., 1], pixels[..., 2], atol=1e-6)
        if value is not None:
            assert np.allclose(pixels, value, atol=0.02), pixels.mean()

    return check


def skipped(name: str):
    """The file ``red/NAME`` is left out; the six good images remain."""

    def check(split, ctx):
        assert all(not p.endswith(name) for p in split.train.inputs)
        assert split.train.labels == (0, 0, 0, 1, 1, 1)

    return check


def only_the_good_six(split, ctx):
    root = ctx.tmp / "train"
    assert split.label_map.class_names == ("blue", "red")
    assert split.train.labels == (0, 0, 0, 1, 1, 1)
    assert all(
        Path(p).parent.parent == root and Path(p).name.startswith(Path(p).parent.name) for p in split.train.inputs
    ), split.train.inputs


def nested_counted(split, ctx):
    nested = str(ctx.tmp / "train" / "red" / "2019" / "summer" / "deep.jpg")
    assert split.train.labels[split.train.inputs.index(nested)] == 1
    assert len(split.train) == 7


IMAGE_CASES = [
    image_case(
        "img-truncated-jpeg",
        lambda r: truncated(r / "red" / "half.jpg"),
        WARNED,
        "skipped 1 unusable image file(s) in {tmp}/train",
        "{tmp}/train/red/half.jpg",
        "cannot be decoded",
        check=skipped("half.jpg"),
    ),
    image_case(
        "img-truncated-png",
        lambda r: truncated(r / "red" / "half.png", "PNG"),
        WARNED,
        "skipped 1 unusable",
        "{tmp}/train/red/half.png",
        "cannot be decoded",
        check=skipped("half.png"),
    ),
    image_case(
        "img-zero-byte",
        lambda r: write(r / "red" / "zero.jpg", b""),
        WARNED,
        "skipped 1 unusable",
        "{tmp}/train/red/zero.jpg: empty file",
        check=skipped("zero.jpg"),
    ),
    image_case(
        "img-text-named-jpg",
        lambda r: write(r / "red" / "notes.jpg", "shopping list\n"),
        WARNED,
        "{tmp}/train/red/notes.jpg: not an image",
        check=skipped("notes.jpg"),
    ),
    image_case(
        "img-gif-named-jpg",
        lambda r: write_image(r / "red" / "anim.jpg", COLOURS["red"], fmt="GIF"),
        WARNED,
        "{tmp}/train/red/anim.jpg: a GIF image, not JPEG or PNG",
        check=skipped("anim.jpg"),
    ),
    image_case(
        "img-png-named-jpg",
        lambda r: write_image(r / "red" / "really_png.jpg", COLOURS["red"], fmt="PNG"),
        ACCEPTED,
        check=accepted_as_red("really_png.jpg"),
    ),
    image_case("img-cmyk-jpeg", cmyk, ACCEPTED, check=accepted_as_red("cmyk.jpg")),
    image_case(
        "img-grayscale-jpeg",
        lambda r: write_image(r / "red" / "gray.jpg", COLOURS["red"], mode="L"),
        ACCEPTED,
        check=accepted_as_red("gray.jpg", colour=False),
    ),
    image_case(
        "img-16-bit-png",
        sixteen_bit_png,
        ACCEPTED,
        check=accepted_as_red("deep.jpg.png", colour=False, value=40000 / 65535),
    ),
    image_case(
        "img-1x1",
        lambda r: good_jpeg(r / "red" / "pixel.jpg", size=(1, 1)),
        ACCEPTED,
        check=accepted_as_red("pixel.jpg"),
    ),
    image_case(
        "img-10000x10000-jpeg", huge_jpeg, ACCEPTED, check=accepted_as_red("huge.jpg", colour=False, value=200 / 255)
    ),
    image_case(
        "img-nested-folders",
        lambda r: good_jpeg(r / "red" / "2019" / "summer" / "deep.jpg"),
        ACCEPTED,
        check=nested_counted,
    ),
    image_case("img-hidden-files-and-folders", hidden_files, ACCEPTED, check=only_the_good_six),
    image_case(
        "img-symlink-loops",
        symlink_loops,
        WARNED,
        "skipped 1 unusable",
        "{tmp}/train/red/self.jpg",
        check=only_the_good_six,
    ),
    image_case(
        "img-class-folder-links-to-root",
        class_link_to_root,
        FATAL,
        "class folder {tmp}/train/everything is a symbolic link to",
        "(a loop)",
        "remove the link",
    ),
    image_case(
        "img-empty-class-folder",
        lambda r: (r / "aardvark" / "nested").mkdir(parents=True),
        FATAL,
        "class folder {tmp}/train/aardvark has no usable image",
        "add images or remove the folder",
    ),
    image_case(
        "img-class-of-only-bad-files",
        lambda r: (write(r / "green" / "zero.jpg", b""), write(r / "green" / "a.png", "x")),
        FATAL,
        "class folder {tmp}/train/green has no usable image",
    ),
    image_case(
        "img-one-class-folder",
        lambda r: good_jpeg(r / "cats" / "a.jpg"),
        FATAL,
        "image data folder {tmp}/train has 1 class folder(s) (cats)",
        "at least 2 classes",
        base=False,
    ),
    image_case(
        "img-loose-images-no-class-folders",
        lambda r: (good_jpeg(r / "a.jpg"), good_jpeg(r / "b.jpg")),
        FATAL,
        "image data folder {tmp}/train has no class sub-folders",
        "2 image file(s) directly",
        "move each into a folder named after its class",
        base=False,
    ),
    image_case(
        "img-csv-given-to-image-model",
        lambda r: write(r / "data.csv", "0,a\n1,b\n"),
        FATAL,
        "{tmp}/train holds text data",
        "choose a text model",
        base=False,
    ),
    Case(
        "img-text-file-given-to-image-model",
        lambda ctx: (
            lambda: load_data("image", write(ctx.tmp / "sms.txt", "0,rain\n1,goal\n"), validation_split_ratio=0)
        ),
        FATAL,
        DataError,
        ("{tmp}/sms.txt is a file, but the model is an image model", "one sub-folder per class", "choose a text model"),
        ("does not exist",),
    ),
    Case(
        "img-data-is-the-parent-of-train-and-val",
        data_sets("train", "val"),
        FATAL,
        DataError,
        (
            "image data folder {tmp}/hymenoptera holds data sets, not classes: its folder(s) train, val are data "
            "splits holding class folders (blue, red), so it would train a train vs val classifier; did you mean "
            "--data {tmp}/hymenoptera/train --validation-data {tmp}/hymenoptera/val?",
        ),
        check=only_images(12),
    ),
    # One image in ten directly in a split folder (a stray) does not make it a class.
    Case(
        "img-data-is-the-parent-of-splits-one-stray-image",
        data_sets("test", "train", "valid", per_class=5, stray=1),
        FATAL,
        DataError,
        (
            "did you mean --data {tmp}/hymenoptera/train --validation-data {tmp}/hymenoptera/valid "
            "--test-data {tmp}/hymenoptera/test?",
        ),
        check=only_images(31),
    ),
    Case(
        "img-data-sets-by-year",
        data_sets("2019", "2020"),
        FATAL,
        DataError,
        (
            "image data folder {tmp}/hymenoptera holds data sets, not classes: each of its folders (2019, 2020) holds "
            "the same class folders (blue, red)",
            "--data {tmp}/hymenoptera/2019",
        ),
        check=only_images(12),
    ),
    # A class may be named like a split (trains, buses) and may sort its images into sub-folders.
    image_case(
        "img-class-named-like-a-split",
        lambda r: good_jpeg(r / "train" / "a.jpg"),
        ACCEPTED,
        check=lambda split, ctx: split.label_map.class_names == ("blue", "red", "train"),
    ),
    image_case(
        "img-every-class-in-its-own-sub-folders",
        lambda r: [
            good_jpeg(r / colour / f"{colour}-{i}" / "a.jpg", colour) for colour in ("blue", "red") for i in range(2)
        ],
        ACCEPTED,
        base=False,
        check=lambda split, ctx: split.train.labels == (0, 0, 1, 1),
    ),
]


# --- hyperparameters ----------------------------------------------------------------------------


def hp_case(id: str, values: dict, *says: str) -> Case:
    return Case(id, lambda ctx: lambda: hyperparameters.normalize(values), FATAL, HyperparameterError, says)


def plan_case(id: str, error, *says: str, registry: list | None = None, **config) -> Case:
    """A job configuration checked by job.plan (no TensorFlow, no download)."""

    def build(ctx: Ctx):
        data = write(ctx.tmp / "data.csv", "0,rain\n1,goal\n")
        path = None
        if registry is not None:
            import yaml

            path = write(ctx.tmp / "registry.yaml", yaml.safe_dump({"models": registry}))
        return lambda: plan(JobConfig(data=str(data), output=None, registry=path and str(path), **config))

    return Case(id, build, FATAL, error, says)


def jit_on_split_cpu(ctx: Ctx):
    from tf_finetune.training import distribute
    from tf_finetune.training.classifier import check_jit_compile

    hp = hyperparameters.resolve({"jit_compile": "True"})
    return lambda: check_jit_compile(hp, distribute.create_strategy())


FROZEN_TEXT = {
    "id": "frozen-text",
    "task": "text",
    "handle": "builtin:wordllama-words256",
    "fine_tunable": False,
    "license": "MIT",
    "description": "A frozen text backbone.",
}

HP_CASES = [
    hp_case("hp-epochs-not-a-number", {"epochs": "three"}, "epochs='three' is invalid", "an integer in [1, inf)"),
    hp_case("hp-batch-size-fraction", {"batch_size": "2.5"}, "batch_size='2.5' is invalid", "an integer"),
    hp_case("hp-bool-maybe", {"train_only_top_layer": "maybe"}, "train_only_top_layer='maybe'", "True or False"),
    hp_case("hp-learning-rate-nan", {"learning_rate": "nan"}, "learning_rate='nan' is invalid", "a number in (0, 1]"),
    hp_case("hp-learning-rate-too-high", {"learning-rate": "2"}, "learning_rate='2' is out of range", "(0, 1]"),
    hp_case("hp-learning-rate-zero", {"learning_rate": 0}, "learning_rate=0 is out of range", "(0, 1]"),
    hp_case("hp-dropout-one", {"dropout_rate": 1}, "dropout_rate=1 is out of range", "[0, 1)"),
    hp_case("hp-epochs-zero", {"epochs": 0}, "epochs=0 is out of range", "[1, inf)"),
    hp_case(
        "hp-seed-beyond-numpy", {"random_seed": 2**32}, "random_seed=4294967296 is out of range", "[0, 4294967295]"
    ),
    hp_case(
        "hp-unknown-name",
        {"learning_rat": "0.1"},
        "unknown hyperparameter 'learning_rat'",
        "did you mean learning_rate?",
    ),
    hp_case(
        "hp-unknown-optimizer", {"optimizer": "adamax"}, "optimizer='adamax' is invalid", "one of adam, adamw, sgd"
    ),
    hp_case(
        "hp-given-twice",
        {"batch_size": 8, "batch-size": 16},
        "batch_size is given twice",
        "'batch_size'",
        "'batch-size'",
    ),
    plan_case(
        "hp-augmentation-for-text-model",
        HyperparameterError,
        "augmentation applies to image models only",
        model_id="nnlm-en-dim128",
        hyperparameters={"augmentation": "True"},
    ),
    plan_case(
        "hp-early-stopping-without-validation",
        HyperparameterError,
        "early_stopping needs validation data",
        "validation_split_ratio above 0",
        model_id="nnlm-en-dim128",
        hyperparameters={"early_stopping": "True", "validation_split_ratio": "0"},
    ),
    plan_case(
        "hp-image-size-for-text-model",
        HyperparameterError,
        "image_size applies to image models only",
        model_id="nnlm-en-dim128",
        image_size=224,
    ),
    plan_case(
        "hp-train-all-of-a-frozen-backbone",
        HyperparameterError,
        "backbone frozen-text is not fine-tunable",
        "train_only_top_layer must be True",
        registry=[FROZEN_TEXT],
        model_id="frozen-text",
        hyperparameters={"train_only_top_layer": "False"},
    ),
    Case(
        "hp-jit-compile-on-split-cpu",
        jit_on_split_cpu,
        FATAL,
        HyperparameterError,
        (f"jit_compile=True cannot run on {REPLICAS} logical CPU devices", "drop --cpu-devices or jit_compile"),
    ),
]


# --- models -------------------------------------------------------------------------------------


def build_with(module: str, task: str, image_size: int | None = None):
    """build_classifier on the session's module ``module`` for ``task``."""

    def build(ctx: Ctx):
        from tf_finetune.training.classifier import build_classifier

        handle = str(ctx.modules[module])
        spec = ModelSpec(module, task, handle, image_size=image_size)
        hp = hyperparameters.resolve()
        return lambda: build_classifier(spec, local_saved_model(handle, ctx.tmp / "cache"), None, 2, hp)

    return build


def offline_hub(ctx: Ctx):
    ctx.monkeypatch.setenv("TFHUB_CACHE_DIR", str(ctx.tmp / "hub"))
    for name, value in offline_environment().items():
        ctx.monkeypatch.setenv(name, value)
    return lambda: local_saved_model(HUB_URL, ctx.tmp / "cache")


def fixed_size_mismatch(ctx: Ctx):
    from tf_finetune.backbones.loading import fixed_image_size
    from tf_finetune.backbones.tfhub import hub

    layer = hub.KerasLayer(str(ctx.modules["fixed32"]))
    spec = ModelSpec("fixed32", "image", str(ctx.modules["fixed32"]), image_size=64)
    return lambda: choose_image_size(spec, fixed_image_size(layer))


def handle_path(make: Callable[[Path], Path]):
    def build(ctx: Ctx):
        handle = make(ctx.tmp)
        return lambda: local_saved_model(str(handle), ctx.tmp / "cache")

    return build


HUB_URL = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"

MODEL_CASES = [
    plan_case(
        "model-unknown-id",
        RegistryError,
        "unknown model id 'mobilenet-v2-100-22'",
        "Did you mean: mobilenet-v2-100-224",
        "tf-finetune list-models",
        model_id="mobilenet-v2-100-22",
    ),
    Case(
        "model-hub-handle-offline",
        offline_hub,
        FATAL,
        BackboneError,
        (f"cannot download backbone {HUB_URL}", "TFHUB_CACHE_DIR={tmp}/hub", "--handle", "'model' channel"),
    ),
    Case(
        "model-handle-does-not-exist",
        handle_path(lambda t: t / "no_such_model"),
        FATAL,
        BackboneError,
        ("backbone {tmp}/no_such_model: no such file or folder",),
    ),
    Case(
        "model-folder-without-saved-model",
        handle_path(lambda t: write(t / "weights" / "README.txt", "weights go here").parent),
        FATAL,
        BackboneError,
        ("no saved_model.pb in {tmp}/weights", "TF2 SavedModel"),
    ),
    Case(
        "model-not-a-feature-extractor",
        build_with("feature_map", "image"),
        FATAL,
        BackboneError,
        ("backbone feature_map does not return a feature vector [batch, dim]", "(None, 224, 224, 3)"),
    ),
    Case(
        "model-signature-only-saved-model",
        build_with("signature_only", "image"),
        FATAL,
        BackboneError,
        ("backbone signature_only", "not a TF-Hub reusable SavedModel"),
    ),
    Case(
        "model-text-backbone-for-images",
        build_with("text", "image"),
        FATAL,
        BackboneError,
        (
            "backbone text cannot take float32 images [batch, 224, 224, 3]",
            "(an image feature extractor is needed): it takes TensorSpec(shape=(None,), dtype=tf.string",
        ),
        never=("in user code",),
    ),
    Case(
        "model-image-backbone-for-text",
        build_with("image", "text"),
        FATAL,
        BackboneError,
        (
            "backbone image cannot take a batch of strings",
            "(a text feature extractor is needed): it takes TensorSpec(shape=(None, None, None, 3)",
        ),
        never=("in user code",),
    ),
    Case(
        "model-image-size-the-module-refuses",
        fixed_size_mismatch,
        FATAL,
        BackboneError,
        ("backbone fixed32 takes 32x32 images only", "image_size 64 cannot be used"),
    ),
    Case(
        "model-handle-archive-not-a-tar",
        handle_path(lambda t: write(t / "model.tar.gz", "<html>404 Not Found</html>")),
        FATAL,
        StorageError,
        ("cannot extract {tmp}/model.tar.gz", "not a readable tar archive"),
    ),
]


# --- archives -----------------------------------------------------------------------------------


def tar_of(members: list[tuple[str, str, str | None]]) -> Callable[[Path], bytes]:
    """A .tar.gz of (name, kind, link target) members; kind is file, symlink or hardlink."""

    def make() -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, kind, target in members:
                info = tarfile.TarInfo(name)
                if kind == "file":
                    info.size = 1
                    tar.addfile(info, io.BytesIO(b"x"))
                else:
                    info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                    info.linkname = target
                    tar.addfile(info)
        return buffer.getvalue()

    return make


def archive_case(id: str, content: Callable[[], bytes], *says: str) -> Case:
    """extract_archive of {tmp}/model.tar.gz into {tmp}/out/target: refused, nothing left."""

    def build(ctx: Ctx):
        archive = write(ctx.tmp / "model.tar.gz", content())
        return lambda: extract_archive(archive, ctx.tmp / "out" / "target")

    def nothing_left(_, ctx: Ctx):
        assert not (ctx.tmp / "out" / "target").exists()
        assert list((ctx.tmp / "out").iterdir()) == []  # no staging folder either
        assert sorted(p.name for p in ctx.tmp.iterdir()) == ["model.tar.gz", "out"]
        assert not Path("/tmp/tf_finetune_escape").exists()

    return Case(id, build, FATAL, StorageError, says, check=nothing_left)


SAVED_MODEL = ("m/saved_model.pb", "file", None)
ARCHIVE_CASES = [
    archive_case(
        "tar-path-traversal",
        tar_of([SAVED_MODEL, ("m/../../escape.txt", "file", None)]),
        "refusing to extract {tmp}/model.tar.gz",
        "unsafe member 'm/../../escape.txt'",
        "re-create the archive with relative paths",
    ),
    archive_case(
        "tar-absolute-path",
        tar_of([SAVED_MODEL, ("/tmp/tf_finetune_escape", "file", None)]),
        "refusing to extract {tmp}/model.tar.gz",
        "'/tmp/tf_finetune_escape'",
        "an absolute path",
    ),
    archive_case(
        "tar-symlink-escaping",
        tar_of([SAVED_MODEL, ("m/variables", "symlink", "../../..")]),
        "refusing to extract {tmp}/model.tar.gz",
        "unsafe member 'm/variables'",
        "a link to '../../..', outside the archive",
        "re-create the archive",
    ),
    archive_case(
        "tar-symlink-absolute",
        tar_of([SAVED_MODEL, ("m/passwd", "symlink", "/etc/passwd")]),
        "unsafe member 'm/passwd'",
        "a link to the absolute path '/etc/passwd'",
    ),
    archive_case(
        "tar-hardlink-escaping",
        tar_of([SAVED_MODEL, ("m/h", "hardlink", "../../etc/passwd")]),
        "unsafe member 'm/h'",
        "a link to '../../etc/passwd', outside the archive",
    ),
    archive_case(
        "tar-not-a-tar",
        lambda: b"PK\x03\x04 this is a zip, not a tar",
        "cannot extract",
        "{tmp}/model.tar.gz",
        "not a tar, .tar.gz, .tar.bz2 or .tar.xz file",
        "download it again",
    ),
    archive_case("tar-empty-file", lambda: b"", "{tmp}/model.tar.gz: not a readable tar archive (an empty file)"),
    archive_case(
        "tar-truncated-download",
        lambda: tar_of([SAVED_MODEL] + [(f"m/variables/v{i}", "file", None) for i in range(200)])()[:300],
        "{tmp}/model.tar.gz",
        "not a readable tar archive",
    ),
]

CASES = CSV_CASES + IMAGE_CASES + HP_CASES + MODEL_CASES + ARCHIVE_CASES


def test_the_corpus_is_complete():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    for prefix in ("csv-", "img-", "hp-", "model-", "tar-"):
        assert sum(i.startswith(prefix) for i in ids) >= 4, prefix


# --- running a case -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modules(image_module, text_module, fixed_image_module, tmp_path_factory) -> dict[str, Path]:
    """The session's tiny SavedModels, and two that are not feature extractors."""
    import tensorflow as tf

    class SignatureOnly(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def features(self, images):
            return {"features": tf.reduce_mean(images, [1, 2])}

    folder = tmp_path_factory.mktemp("bad_models")
    feature_map = tiny_modules.save_image_module(folder / "feature_map", module=tiny_modules.TinyNotAFeatureVector())
    signature_only = SignatureOnly()
    tf.saved_model.save(
        signature_only, str(folder / "signature_only"), signatures={"serving_default": signature_only.features}
    )
    return {
        "image": image_module,
        "text": text_module,
        "fixed32": fixed_image_module,
        "feature_map": feature_map,
        "signature_only": folder / "signature_only",
    }


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``, failing the test if it has not returned after ``seconds`` (a hang)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds}s: a hang"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def our_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("tf_finetune") and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input(case: Case, tmp_path, modules, monkeypatch, caplog):
    ctx = Ctx(tmp_path, modules, monkeypatch)
    call = case.build(ctx)
    says = [s.format(tmp=tmp_path) for s in case.says]
    caplog.set_level(logging.INFO, logger="tf_finetune")
    with warnings.catch_warnings(record=True) as python_warnings:
        warnings.simplefilter("always")
        if case.outcome == FATAL:
            with pytest.raises(TfFinetuneError) as info:
                within(60, call)
            assert type(info.value) is case.error, repr(info.value)
            text = str(info.value)
            assert "\n" not in text.strip(), f"not one line: {text!r}"
            result = None
        else:
            result = within(60, call)
            found = our_warnings(caplog)
            if case.outcome == WARNED:
                assert len(found) == 1, found
                text = found[0]
            else:
                assert found == [], found
                text = ""
    for fragment in says:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    for fragment in case.never:
        assert fragment not in text, f"{fragment!r} in {text!r}"
    noisy = [
        str(w.message)
        for w in python_warnings
        if "tf_finetune" in (w.filename or "") or issubclass(w.category, Image.DecompressionBombWarning)
    ]
    assert noisy == [], noisy
    if case.check:
        case.check(result, ctx)


# --- the command line, end to end ---------------------------------------------------------------


def _cli_header_row(tmp: Path, m: dict) -> tuple[list[str], Path]:
    data = write(tmp / "data.csv", "label,text\n0,rain today\n1,goal scored\n")
    return ["--handle", str(m["text"]), "--data", str(data)], data


def _cli_out_of_range(tmp: Path, m: dict):
    data = tiny_modules.write_text_csv(tmp / "data.csv", rows_per_class=4)
    return ["--handle", str(m["text"]), "--data", str(data), "--learning-rate", "5"], data


def _cli_not_a_feature_extractor(tmp: Path, m: dict):
    data = write_image_folder(tmp / "train", per_class=3)
    return ["--handle", str(m["feature_map"]), "--data", str(data)], data


def _cli_one_class(tmp: Path, m: dict):
    data = write_image_folder(tmp / "train", per_class=3, classes=("red",))
    return ["--handle", str(m["image"]), "--data", str(data)], data


def _cli_truncated_jpeg(tmp: Path, m: dict):
    data = write_image_folder(tmp / "train", per_class=6)
    truncated(data / "red" / "half.jpg")
    return [
        "--handle",
        str(m["image"]),
        "--data",
        str(data),
        "--image-size",
        "16",
        "--batch-size",
        "4",
        "--train-only-top-layer",
        "True",
    ], data


def _cli_parent_of_train_and_val(tmp: Path, m: dict):
    data = tmp / "hymenoptera"
    for split in ("train", "val"):
        write_image_folder(data / split, per_class=3)
    return ["--handle", str(m["image"]), "--data", str(data)], data


def _cli_missing_handle_and_bad_data(tmp: Path, m: dict):
    # The data would be refused too (a header row), but only once read: the handle is checked first.
    data = write(tmp / "data.csv", "label,text\n0,rain today\n1,goal scored\n")
    return ["--handle", str(tmp / "no_such_model"), "--data", str(data)], data


def _cli_missing_validation_and_bad_data(tmp: Path, m: dict):
    data = write(tmp / "data.csv", "label,text\n0,rain today\n1,goal scored\n")
    return ["--handle", str(m["text"]), "--data", str(data), "--validation-data", str(tmp / "val.csv")], data


CLI_CASES = {  # id -> (arguments, fragments of the one error line); two start TensorFlow
    "cli-header-row": (_cli_header_row, ["{data} line 1:", "'label'", "delete the first line"]),
    "cli-hyperparameter-out-of-range": (_cli_out_of_range, ["learning_rate='5' is out of range", "(0, 1]"]),
    "cli-not-a-feature-extractor": (_cli_not_a_feature_extractor, ["does not return a feature vector"]),
    "cli-image-data-with-one-class": (_cli_one_class, ["image data folder {data} has 1 class folder(s) (red)"]),
    "cli-data-is-the-parent-of-train-and-val": (
        _cli_parent_of_train_and_val,
        [
            "image data folder {data} holds data sets, not classes",
            "train vs val classifier",
            "did you mean --data {data}/train --validation-data {data}/val?",
        ],
    ),
    "cli-missing-handle-before-the-data-is-read": (
        _cli_missing_handle_and_bad_data,
        ["--handle", "/no_such_model: no such file or folder; pass a TF-Hub SavedModel folder"],
    ),
    "cli-missing-validation-data-before-the-data-is-read": (
        _cli_missing_validation_and_bad_data,
        ["--validation-data", "/val.csv: no such file or folder"],
    ),
}


@pytest.fixture(scope="module")
def cli_runs(modules, tmp_path_factory) -> dict:
    """Every CLI case run once, in parallel subprocesses: id -> (process, folder, data)."""

    def one(name, make):
        tmp = tmp_path_factory.mktemp(name)
        args, data = make(tmp, modules)
        proc = run_cli("train", *args, "--output", str(tmp / "out"), "--epochs", "1", "--cache-dir", str(tmp / "cache"))
        return name, (proc, tmp, data)

    jobs = {name: make for name, (make, _) in CLI_CASES.items()}
    jobs["cli-truncated-jpeg-recovers"] = _cli_truncated_jpeg
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return dict(pool.map(lambda item: one(*item), jobs.items()))


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_fails_with_one_message_and_leaves_nothing(name, cli_runs):
    proc, tmp, data = cli_runs[name]
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in CLI_CASES[name][1]:
        assert fragment.format(data=data) in errors[0], errors[0]
    assert proc.stdout == ""
    out = tmp / "out"
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == [], list(out.rglob("*"))


def test_cli_truncated_jpeg_is_skipped_with_a_warning_and_the_run_completes(cli_runs):
    proc, tmp, data = cli_runs["cli-truncated-jpeg-recovers"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "tf-finetune: error" not in proc.stderr
    skipped_lines = [line for line in proc.stderr.splitlines() if "unusable image" in line]
    assert len(skipped_lines) == 1, proc.stderr
    assert f"skipped 1 unusable image file(s) in {data}" in skipped_lines[0]
    assert str(data / "red" / "half.jpg") in skipped_lines[0]
    archive = tmp / "out" / "output" / "model.tar.gz"
    assert proc.stdout.strip() == str(archive)
    with tarfile.open(archive) as tar:
        metrics = json.load(tar.extractfile("metrics.json"))
    assert metrics["num_train_examples"] + metrics["num_validation_examples"] == 12  # 13 files - 1
    assert [p.name for p in archive.parent.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_a_text_csv_under_another_name_is_text_for_a_text_handle_and_check_data_predicts_the_split(modules, tmp_path):
    data = tiny_modules.write_text_csv(tmp_path / "sms.txt", rows_per_class=7)  # 20% of 7 is 1.4: 1 held out each
    out = tmp_path / "out"
    argv = [
        "--handle",
        str(modules["text"]),
        "--data",
        str(data),
        "--output",
        str(out),
        "--epochs",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    # train's own command; --cpu-devices: this process trains on REPLICAS logical devices.
    checked = run_main("check-data", *argv, "--cpu-devices", str(REPLICAS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        f"data report (text): read as a label,text CSV because backbone {modules['text']} takes text" in checked.stdout
    )
    assert "0.2 of the training data held out (2 examples)" in checked.stdout  # not round(14 x 0.2) = 3
    assert not out.exists()  # --output is accepted and unused

    trained = run_main("train", *argv)
    assert trained.returncode == 0, trained.stderr[-2000:]
    with tarfile.open(out / "output" / "model.tar.gz") as tar:
        metrics = json.load(tar.extractfile("metrics.json"))
    assert (metrics["num_train_examples"], metrics["num_validation_examples"]) == (12, 2)
    assert f"global batch: {metrics['global_batch_size']} (" in checked.stdout
    assert f"steps per epoch: {metrics['steps_per_epoch']}\n" in checked.stdout


@pytest.mark.parametrize("name", ["sms", "sms.dat"])
def test_a_file_is_text_data_whatever_its_name(name, modules, tmp_path):
    data = tiny_modules.write_text_csv(tmp_path / name, rows_per_class=3)
    # The backbone says text; without one, the data (a file) says so.
    for backbone, why in (
        (["--handle", str(modules["text"])], f"backbone {modules['text']} takes text"),
        ([], f"{data} is a file"),
    ):
        checked = run_main("check-data", "--data", str(data), *backbone)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.startswith(f"data report (text): read as a label,text CSV because {why}\n")
        assert "  training: 6 examples, 2 classes" in checked.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_bare_handle_whose_task_shows_once_fetched_stops_data_of_the_other_task_with_one_message(modules, tmp_path):
    archive = tmp_path / "text_model.tar.gz"  # an archive's task is known once extracted, after the data is read
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(modules["text"], arcname="text_model")
    data = write_image_folder(tmp_path / "images", per_class=3)
    out = tmp_path / "out"
    result = run_main(
        "train",
        "--handle",
        str(archive),
        "--data",
        str(data),
        "--output",
        str(out),
        "--epochs",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert errors == [
        f"tf-finetune: error: backbone {archive} takes text, but the data was read as image class "
        f"folders because {data} is a folder without a .csv; give a label,text CSV as --data, or a "
        "backbone that takes images"
    ], result.stderr
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []
