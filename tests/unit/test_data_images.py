"""Image data: class folders, accepted and skipped files, fatal layouts, and the tf.data pipeline.

Every test writes real image files into tmp_path; accepted files are decoded for real.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_finetune.data import Examples, load_data
from tf_finetune.data.images import check_image, list_images
from tf_finetune.data.pipeline import Decoding, decode_image, inference_batches, steps_per_epoch, training_batches
from tf_finetune.errors import DataError
from tiny_modules import COLOURS, write_image, write_image_folder

LOGGER = "tf_finetune.data.images"
SIZE = 16


def good_jpeg(path: Path, colour: str = "blue", seed: int = 0) -> Path:
    return write_image(path, COLOURS[colour], seed=seed)


def two_classes(root: Path, per_class: int = 2) -> Path:
    """blue/ and red/ with ``per_class`` good JPEGs each."""
    return write_image_folder(root, per_class=per_class, classes=("blue", "red"))


def decoded(path: str | Path, size: int = SIZE) -> np.ndarray:
    image = decode_image(tf.constant(str(path)), size, "bilinear")
    assert image.shape == (size, size, 3)
    assert image.dtype == tf.float32
    array = image.numpy()
    assert array.min() >= 0.0 and array.max() <= 1.0
    return array


# --- class folders ------------------------------------------------------------------------------


def test_class_index_is_sorted_folder_names(tmp_path):
    root = tmp_path / "train"
    for name, colour in (("zebra", "blue"), ("apple", "red"), ("Mango", "green")):
        good_jpeg(root / name / "one.jpg", colour)

    files = list_images(root)

    assert files.class_names == ("Mango", "apple", "zebra")  # byte order: upper case first
    assert files.labels == (0, 1, 2)
    assert [Path(p).parent.name for p in files.paths] == ["Mango", "apple", "zebra"]
    assert files.root == root
    assert files.skipped == ()


def test_hidden_nested_and_other_extensions(tmp_path):
    root = tmp_path / "train"
    expected = {
        good_jpeg(root / "cats" / "a.jpg"),
        good_jpeg(root / "cats" / "b.JPG", seed=1),
        good_jpeg(root / "cats" / "indoor" / "c.jpeg", seed=2),
        good_jpeg(root / "cats" / "indoor" / "deeper" / "d.jpg", seed=3),
        write_image(root / "dogs" / "e.png", COLOURS["red"], fmt="PNG"),
        write_image(root / "dogs" / "f.PNG", COLOURS["red"], fmt="PNG", seed=1),
    }
    # ignored: hidden class folder, hidden files, hidden nested folders, other extensions
    good_jpeg(root / ".thumbnails" / "x.jpg")
    good_jpeg(root / "cats" / ".hidden.jpg")
    good_jpeg(root / "cats" / ".cache" / "y.jpg")
    (root / "cats" / "notes.txt").write_text("not an image")
    write_image(root / "dogs" / "anim.gif", COLOURS["red"], fmt="GIF")
    write_image(root / "dogs" / "pic.bmp", COLOURS["red"], fmt="BMP")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")

    files = list_images(root)

    assert files.class_names == ("cats", "dogs")
    assert set(files.paths) == {str(p) for p in expected}
    assert len(files.paths) == len(expected)
    for path, label in zip(files.paths, files.labels):
        assert label == (0 if "/cats/" in path else 1)
    assert files.skipped == ()  # ignored files are not "skipped"


# --- accepted formats ---------------------------------------------------------------------------


def _cmyk(path):
    return write_image(path, COLOURS["red"], mode="CMYK")


def _rgba(path):
    return write_image(path, COLOURS["red"], fmt="PNG", mode="RGBA")


def _palette(path):
    return write_image(path, COLOURS["red"], fmt="PNG", mode="P")


def _png_named_jpg(path):
    return write_image(path, COLOURS["red"], fmt="PNG")


def _jpeg_ext(path):
    return write_image(path, COLOURS["red"])


def _one_pixel(path):
    return write_image(path, COLOURS["red"], size=(1, 1))


def _trailing_bytes(path):
    write_image(path, COLOURS["red"])
    with open(path, "ab") as handle:
        handle.write(b"camera metadata after the end marker " * 5)
    return path


def _grayscale(path):
    return write_image(path, COLOURS["red"], mode="L")


def _gray16(path):
    ramp = (np.arange(30 * 40, dtype=np.uint32).reshape(30, 40) * 54).astype(np.uint16)
    image = Image.fromarray(ramp)  # uint16 -> mode I;16
    assert image.mode == "I;16"
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG")
    assert path.read_bytes()[24] == 16  # IHDR bit depth: really a 16-bit PNG
    return path


COLOUR_CASES = {
    "cmyk.jpg": _cmyk,
    "rgba.png": _rgba,
    "palette.png": _palette,
    "png_named.jpg": _png_named_jpg,
    "photo.jpeg": _jpeg_ext,
    "pixel.jpg": _one_pixel,
    "trailing.jpg": _trailing_bytes,
}
GRAY_CASES = {"gray.jpg": _grayscale, "gray16.png": _gray16}


@pytest.mark.parametrize("name", sorted(COLOUR_CASES) + sorted(GRAY_CASES))
def test_accepted_image_variants_decode_to_rgb(tmp_path, name):
    root = tmp_path / "train"
    good_jpeg(root / "blue" / "b.jpg")
    path = (COLOUR_CASES | GRAY_CASES)[name](root / "red" / name)

    assert check_image(str(path)) is None
    files = list_images(root)
    assert str(path) in files.paths
    assert files.labels[files.paths.index(str(path))] == 1
    assert files.skipped == ()

    pixels = decoded(path)
    means = pixels.mean(axis=(0, 1))
    if name in GRAY_CASES:
        assert np.allclose(pixels[..., 0], pixels[..., 1]) and np.allclose(pixels[..., 1], pixels[..., 2])
        assert pixels.max() > pixels.min()  # real content, not a blank frame
    else:  # the red colour survives the conversion to RGB
        assert means[0] > 0.6 and means[1] < 0.4 and means[2] < 0.4


def test_sixteen_bit_png_is_scaled_to_unit_range(tmp_path):
    path = tmp_path / "g16.png"
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(path, "PNG")
    assert Image.open(path).mode.startswith("I")
    pixels = decoded(path, size=4)
    assert np.allclose(pixels, 1.0)


# --- unusable files are skipped with one warning ------------------------------------------------


def _bad_files(folder: Path) -> dict[str, str]:
    """Write one of each unusable file into ``folder``; name -> expected reason fragment."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is a text file, not a photo\n")
    jpeg = good_jpeg(folder / "src.jpg.tmp").read_bytes()
    (folder / "half.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    png = write_image(folder / "src.png.tmp", COLOURS["red"], fmt="PNG").read_bytes()
    (folder / "half.png").write_bytes(png[: len(png) // 2])
    write_image(folder / "anim.jpg", COLOURS["red"], fmt="GIF")
    return {
        "zero.jpg": "empty file",
        "notes.jpg": "not an image",
        "half.jpg": "cannot be decoded",
        "half.png": "cannot be decoded",
        "anim.jpg": "GIF image, not JPEG or PNG",
    }


def test_bad_files_are_skipped_with_one_warning(tmp_path, caplog):
    root = two_classes(tmp_path / "train", per_class=3)
    bad = _bad_files(root / "red" / "broken")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        files = list_images(root)

    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert message.startswith(f"skipped {len(bad)} unusable image file(s) in {root}")
    for name in bad:
        assert name in message

    reasons = {Path(path).name: why for path, why in files.skipped}
    assert set(reasons) == set(bad)
    for name, fragment in bad.items():
        assert fragment in reasons[name], (name, reasons[name])
    # the run continues with the good files
    assert len(files.paths) == 6
    assert files.labels == (0, 0, 0, 1, 1, 1)
    assert not any(Path(p).name in bad for p in files.paths)


def test_many_bad_files_warning_is_capped(tmp_path, caplog):
    root = two_classes(tmp_path / "train")
    for i in range(13):
        (root / "blue" / f"empty_{i:02d}.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        files = list_images(root)
    assert len(files.skipped) == 13
    [record] = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert "skipped 13 unusable" in record.getMessage()
    assert "(and 3 more)" in record.getMessage()


def test_load_data_skips_bad_images(tmp_path, caplog):
    root = two_classes(tmp_path / "train", per_class=4)
    (root / "red" / "zero.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        split = load_data("image", root, validation_split_ratio=0.25, seed=1)
    assert "zero.jpg" in caplog.text
    everything = split.train.inputs + split.validation.inputs
    assert len(everything) == 8 and not any(p.endswith("zero.jpg") for p in everything)
    assert sorted(split.validation.labels) == [0, 1]
    assert split.label_map.class_names == ("blue", "red")
    assert split.label_map.original_labels is None


# --- fatal layouts ------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DataError, match=rf"{re.escape(str(missing))} does not exist"):
        list_images(missing)
    with pytest.raises(DataError, match="does not exist"):
        load_data("image", missing)


def test_folder_without_class_folders_mentions_loose_images(tmp_path):
    root = tmp_path / "train"
    good_jpeg(root / "a.jpg")
    write_image(root / "b.png", COLOURS["red"], fmt="PNG")
    (root / "readme.txt").write_text("hello")
    with pytest.raises(DataError) as info:
        list_images(root)
    message = str(info.value)
    assert f"{root} has no class sub-folders" in message
    assert "2 image file(s) directly" in message
    assert "move each into a folder named after its class" in message


def test_folder_without_class_folders_and_no_images(tmp_path):
    root = tmp_path / "train"
    (root / ".hidden").mkdir(parents=True)  # hidden folders are not classes
    with pytest.raises(DataError, match=r"has no class sub-folders\. Expected one sub-folder per class") as info:
        list_images(root)
    assert "directly" not in str(info.value)


def test_only_one_class_folder(tmp_path):
    root = tmp_path / "train"
    good_jpeg(root / "cats" / "a.jpg")
    good_jpeg(root / "cats" / "b.jpg", seed=1)
    with pytest.raises(DataError, match=r"has 1 class folder\(s\) \(cats\); at least 2 classes are needed"):
        list_images(root)


def test_a_folder_of_data_sets_is_refused_before_any_image_is_read(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # the command meant is shown in the user's own spelling, quoted for the shell
    for split in ("train", "val"):
        for name in ("ants", "bees"):
            (tmp_path / "my data" / split / name).mkdir(parents=True)
            (tmp_path / "my data" / split / name / "x.jpg").write_bytes(b"not an image")  # skipped, if read
    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(DataError) as raised:
        list_images("my data")
    assert str(raised.value) == (
        "image data folder my data holds data sets, not classes: its folder(s) train, val are data splits holding "
        "class folders (ants, bees), so it would train a train vs val classifier; did you mean "
        "--data 'my data/train' --validation-data 'my data/val'?"
    )
    assert caplog.records == []  # no file was opened: nothing skipped


def test_a_single_split_folder_is_named_rather_than_counted_as_one_class(tmp_path):
    write_image_folder(tmp_path / "dataset" / "train", per_class=1)
    with pytest.raises(
        DataError,
        match=r"would train a classifier of one class \(train\); did you mean --data "
        + re.escape(str(tmp_path / "dataset" / "train"))
        + r"\?$",
    ):
        list_images(tmp_path / "dataset")


def test_class_folder_with_only_bad_images(tmp_path, caplog):
    root = two_classes(tmp_path / "train")
    (root / "green").mkdir()
    (root / "green" / "zero.jpg").write_bytes(b"")
    (root / "green" / "text.png").write_text("nope")
    (root / "green" / "readme.txt").write_text("not counted")
    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(DataError) as info:
        list_images(root)
    assert f"class folder {root / 'green'} has no usable image" in str(info.value)
    assert "add images or remove the folder" in str(info.value)
    assert "zero.jpg" in caplog.text and "text.png" in caplog.text


def test_empty_class_folder(tmp_path):
    root = two_classes(tmp_path / "train")
    (root / "aardvark" / "nested").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"class folder {re.escape(str(root / 'aardvark'))} has no usable image"):
        list_images(root)


def test_validation_class_folder_unknown_to_training(tmp_path):
    train = write_image_folder(tmp_path / "train", per_class=2, classes=("blue", "red"))
    val = write_image_folder(tmp_path / "val", per_class=2, classes=("blue", "green"))
    with pytest.raises(DataError) as info:
        load_data("image", train, val)
    message = str(info.value)
    assert f"{val} has class folder(s) that the training data does not have: ['green']" in message
    assert "(its classes: blue, red); rename or remove them" in message


def test_validation_folders_may_lack_a_class_mapped_by_name(tmp_path, caplog):
    # As with text: held-out data may miss a class (said once); the others keep training's indices.
    train = write_image_folder(tmp_path / "train", per_class=2, classes=("blue", "green", "red"))
    val = write_image_folder(tmp_path / "val", per_class=2, classes=("blue", "red"))
    split = load_data("image", train, val)
    assert split.label_map.class_names == ("blue", "green", "red")
    assert split.validation.labels == (0, 0, 2, 2)
    assert f"{val} has no examples of 1 of the 3 classes (green): their recall is not measured" in caplog.text


def test_validation_folders_used_as_given(tmp_path):
    train = write_image_folder(tmp_path / "train", per_class=3, classes=("blue", "red"))
    val = write_image_folder(tmp_path / "val", per_class=2, classes=("blue", "red"))
    split = load_data("image", train, val, validation_split_ratio=0.5)
    assert len(split.train) == 6
    assert split.validation.labels == (0, 0, 1, 1)
    assert all(p.startswith(str(val)) for p in split.validation.inputs)


def test_symlink_loop_in_class_folder_does_not_hang(tmp_path):
    root = two_classes(tmp_path / "train", per_class=2)
    os.symlink(root, root / "blue" / "loop_to_root")
    os.symlink(root / "red", root / "red" / "loop_to_self")
    os.symlink(root / "red" / "dangling.jpg", root / "red" / "dangling.jpg")  # a link to itself

    result: dict = {}

    def run():
        try:
            result["files"] = list_images(root)
        except BaseException as exc:  # reported below
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "list_images hung on a symlink loop"
    assert "error" not in result, result.get("error")
    files = result["files"]
    assert files.class_names == ("blue", "red")
    assert files.labels == (0, 0, 1, 1)  # nothing counted twice through the links
    assert [Path(p).name for p, _ in files.skipped] == ["dangling.jpg"]


# --- the tf.data pipeline -----------------------------------------------------------------------


def _examples(tmp_path: Path, per_class: int = 5) -> Examples:
    files = list_images(write_image_folder(tmp_path / "train", per_class=per_class, classes=("blue", "green", "red")))
    return Examples(files.paths, files.labels)


def _rows(dataset: tf.data.Dataset, batches: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    sizes, images, labels = [], [], []
    for batch_images, one_hot in dataset.take(batches):
        sizes.append(int(batch_images.shape[0]))
        images.append(batch_images.numpy())
        labels.append(one_hot.numpy())
    return sizes, np.concatenate(images), np.concatenate(labels)


def _key(images: np.ndarray, labels: np.ndarray) -> list[tuple]:
    """Examples as sortable rows (mean colour + label), to compare orders of the same examples."""
    rows = np.concatenate([images.mean(axis=(1, 2)), labels], axis=1).astype(np.float64)
    return sorted(map(tuple, rows.round(4).tolist()))


def test_training_batches_are_full_and_a_pass_continues_into_the_next(tmp_path):
    examples = _examples(tmp_path)  # 15 images
    dataset = training_batches(
        examples, "image", num_classes=3, global_batch=4, shuffle_seed=1, decoding=Decoding(SIZE)
    )
    assert steps_per_epoch(len(examples), 4) == 4
    sizes, images, labels = _rows(dataset, 8)  # two epochs of steps: 32 examples, > two passes

    assert sizes == [4] * 8  # never a short batch, so no replica is ever short or empty
    assert images.dtype == np.float32 and images.shape[1:] == (SIZE, SIZE, 3)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert labels.shape == (32, 3)
    file_images = np.stack([decode_image(tf.constant(p), SIZE, "bilinear").numpy() for p in examples.inputs])
    file_labels = np.eye(3)[list(examples.labels)]
    # each pass is a permutation of all 15 examples with their labels attached
    assert _key(images[:15], labels[:15]) == _key(file_images, file_labels)
    assert _key(images[15:30], labels[15:30]) == _key(file_images, file_labels)
    assert not np.array_equal(images[:15], images[15:30])  # reshuffled per pass


def test_training_batches_decode_each_class_colour(tmp_path):
    examples = _examples(tmp_path, per_class=2)
    dataset = training_batches(
        examples, "image", num_classes=3, global_batch=6, shuffle_seed=3, decoding=Decoding(SIZE)
    )
    images, one_hot = next(iter(dataset))
    channel = images.numpy().mean(axis=(1, 2)).argmax(axis=1)  # dominant colour channel
    # blue -> channel 2, green -> 1, red -> 0
    assert channel.tolist() == [{0: 2, 1: 1, 2: 0}[c] for c in one_hot.numpy().argmax(axis=1)]


@pytest.mark.parametrize("count,batch", [(15, 4), (12, 4), (5, 8), (1, 3)])
def test_inference_batches_are_full_in_file_order_padded_with_the_last(tmp_path, count, batch):
    examples = _examples(tmp_path)
    paths = list(examples.inputs)[:count]
    batches = [b.numpy() for b in inference_batches(paths, "image", batch, decoding=Decoding(SIZE))]

    assert [len(b) for b in batches] == [batch] * -(-count // batch)
    rows = np.concatenate(batches)
    expected = np.stack([decode_image(tf.constant(p), SIZE, "bilinear").numpy() for p in paths])
    np.testing.assert_allclose(rows[:count], expected, atol=1e-6)  # the order given, always
    for padding in rows[count:]:
        np.testing.assert_allclose(padding, expected[-1], atol=1e-6)


def test_inference_batches_text_and_indices_keep_order():
    texts = ["a", "b", "c", "d", "e"]
    assert [t.decode() for b in inference_batches(texts, "text", 4) for t in b.numpy()] == [
        "a",
        "b",
        "c",
        "d",
        "e",
        "e",
        "e",
        "e",
    ]
    indices = tf.range(5, dtype=tf.int64)
    assert [int(i) for b in inference_batches(indices, "index", 2) for i in b.numpy()] == [0, 1, 2, 3, 4, 4]
    with pytest.raises(ValueError, match="no inputs"):
        inference_batches([], "text", 4)


def _passes(examples: Examples, seed: int, passes: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    count = len(examples)
    batches = -(-count * passes // 4)
    _, images, labels = _rows(
        training_batches(examples, "image", num_classes=3, global_batch=4, decoding=Decoding(8), shuffle_seed=seed),
        batches,
    )
    return [(images[i * count : (i + 1) * count], labels[i * count : (i + 1) * count]) for i in range(passes)]


def test_training_batches_shuffle_is_reproducible_per_pass(tmp_path):
    examples = _examples(tmp_path)
    first, again, other = _passes(examples, 7), _passes(examples, 7), _passes(examples, 8)
    in_order = np.stack([decode_image(tf.constant(p), 8, "bilinear").numpy() for p in examples.inputs])
    file_labels = np.eye(3)[list(examples.labels)]

    for (images_a, labels_a), (images_b, labels_b) in zip(first, again):
        assert np.array_equal(images_a, images_b)
        assert np.array_equal(labels_a, labels_b)
    # it does shuffle: not file order, a new order each pass, and the seed matters
    assert not np.array_equal(first[0][0], in_order)
    assert not np.array_equal(first[0][0], first[1][0])
    assert not np.array_equal(first[0][0], other[0][0])
    for images, labels in first + other:
        assert _key(images, labels) == _key(in_order, file_labels)


# --- decoding large JPEGs at a reduced scale ----------------------------------------------------


@pytest.mark.parametrize(
    "height,width,size,ratio",
    [
        (100, 80, 100, 1),
        (200, 300, 100, 2),
        (399, 900, 100, 2),
        (400, 400, 100, 4),
        (1600, 900, 100, 8),
        (5000, 5000, 224, 8),
        (447, 1000, 224, 1),
    ],
)
def test_jpeg_ratio_keeps_the_short_side_at_or_above_the_target(height, width, size, ratio):
    from tf_finetune.data.pipeline import JPEG_RATIOS, jpeg_ratio

    assert JPEG_RATIOS[int(jpeg_ratio(tf.constant(height), tf.constant(width), size))] == ratio


def test_large_jpeg_is_decoded_scaled_and_matches_a_full_decode(tmp_path):
    from tf_finetune.data.pipeline import decode_image_bytes

    # a smooth 1600x1200 photo-like gradient: scaled DCT decoding and a full decode agree closely
    y, x = np.mgrid[0:1200, 0:1600]
    pixels = np.stack([x / 1600, y / 1200, (x + y) / 2800], axis=-1) * 255
    path = tmp_path / "big.jpg"
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)
    data = tf.io.read_file(str(path))

    scaled = decode_image_bytes(data, 100, "area").numpy()
    full = tf.image.resize(tf.io.decode_jpeg(data, channels=3), [100, 100], method="area").numpy() / 255
    assert scaled.shape == (100, 100, 3)
    assert np.abs(scaled - full).mean() < 0.01
    # a PNG of the same picture goes the general way and agrees too
    png = tmp_path / "big.png"
    Image.fromarray(pixels.astype(np.uint8)).save(png)
    assert np.abs(decode_image_bytes(tf.io.read_file(str(png)), 100, "area").numpy() - full).mean() < 0.01


def test_the_decoded_image_cache_keeps_8_bit_images_that_decode_as_served(tmp_path):
    from tf_finetune.data.pipeline import decoded_size

    examples = _examples(tmp_path)  # 15 images
    cache = tmp_path / "cache" / "decoded"
    cache.parent.mkdir()
    dataset = training_batches(
        examples, "image", num_classes=3, global_batch=5, shuffle_seed=2, decoding=Decoding(SIZE), cache_file=str(cache)
    )
    second_pass = _rows(dataset, 6)[1][15:]  # the first pass writes the cache, the second reads it
    on_disk = sum(p.stat().st_size for p in cache.parent.iterdir())
    assert decoded_size(15, SIZE) <= on_disk < 15 * SIZE * SIZE * 3 * 4 / 2  # 8 bits, not float32
    # Read back, they are exactly what serving's decoding gives (no rounding difference).
    served = np.stack([decode_image(tf.constant(p), SIZE, "bilinear").numpy() for p in examples.inputs])
    assert sorted(second_pass.reshape(15, -1).tolist()) == sorted(served.reshape(15, -1).tolist())


def test_augmentation_changes_the_training_images_and_flip_only_mirrors_them(tmp_path):
    from tf_finetune.data.pipeline import make_augmenter

    examples = _examples(tmp_path, per_class=4)  # 12 images
    plain = training_batches(examples, "image", num_classes=3, global_batch=12, shuffle_seed=2, decoding=Decoding(SIZE))
    flipped = training_batches(
        examples,
        "image",
        num_classes=3,
        global_batch=12,
        shuffle_seed=2,
        decoding=Decoding(SIZE),
        augmenter=make_augmenter("horizontal", 0.0, 0.0, seed=2),
    )
    (originals, _), (augmented, _) = next(iter(plain)), next(iter(flipped))  # the same order: same seed
    originals, augmented = originals.numpy(), augmented.numpy()
    mirrored = [np.allclose(a, o[:, ::-1]) for a, o in zip(augmented, originals)]
    kept = [np.allclose(a, o) for a, o in zip(augmented, originals)]
    assert all(m or k for m, k in zip(mirrored, kept))  # a flip changes nothing else
    assert 0 < sum(mirrored) < len(mirrored)  # some images flipped, some not
    assert make_augmenter("None", 0.0, 0.0, seed=2) is None
    zoomed = training_batches(
        examples,
        "image",
        num_classes=3,
        global_batch=12,
        shuffle_seed=2,
        decoding=Decoding(SIZE),
        augmenter=make_augmenter("None", 0.0, 0.3, seed=2),
    )
    assert not np.allclose(next(iter(zoomed))[0].numpy(), originals, atol=0.02)


def test_the_resize_interpolation_is_the_one_asked_for(tmp_path):
    # A 2x2 checkerboard of 8x8 blocks shrunk to 4x4: nearest keeps pure black and white pixels,
    # bilinear (and area) average the blocks into greys.
    board = np.kron(np.array([[0, 255], [255, 0]], np.uint8), np.ones((8, 8), np.uint8))
    path = tmp_path / "board.png"
    Image.fromarray(np.stack([board] * 3, axis=-1)).save(path)
    nearest = decode_image(tf.constant(str(path)), 3, "nearest").numpy()
    bilinear = decode_image(tf.constant(str(path)), 3, "bilinear").numpy()
    assert set(np.unique(nearest)) <= {0.0, 1.0}
    assert np.any((bilinear > 0.05) & (bilinear < 0.95))
