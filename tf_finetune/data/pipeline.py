"""``tf.data`` input pipelines: streamed, parallel decoding, prefetching."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import tensorflow as tf
import tf_keras

from tf_finetune.data import Examples
from tf_finetune.data.batching import steps_per_epoch as steps_per_epoch  # the steps of training_batches
from tf_finetune.tasks import Task

if TYPE_CHECKING:
    import numpy as np

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class Decoding:
    """How images become model inputs: the square size they are resized to (None for text, which
    is not decoded) and the ``tf.image.resize`` method."""

    image_size: int | None = None
    interpolation: str = "bilinear"


def decode_image(path: tf.Tensor, image_size: int, interpolation: str) -> tf.Tensor:
    """Read a JPEG/PNG file as float32 RGB in [0, 1], resized to ``image_size`` square."""
    return decode_image_bytes(tf.io.read_file(path), image_size, interpolation)


def decode_image_bytes(data: tf.Tensor, image_size: int, interpolation: str) -> tf.Tensor:
    """Decode JPEG/PNG bytes as float32 RGB in [0, 1], resized to ``image_size`` square.

    Training and the exported serving signature both use this, so what is served is
    preprocessed exactly as what was trained on: :func:`decode_image_uint8`, then
    :func:`image_to_float`.
    """
    return image_to_float(decode_image_uint8(data, image_size, interpolation))


def decode_image_uint8(data: tf.Tensor, image_size: int, interpolation: str) -> tf.Tensor:
    """Decode JPEG/PNG bytes as 8-bit RGB, resized to ``image_size`` square and rounded.

    This 8-bit image is what the decoded-image cache keeps (a quarter of float32's size);
    serving rounds the same way, so a cached image and a served one are the same values.
    Grayscale, CMYK, palette and 16-bit images all come out as 3-channel RGB. A JPEG at least
    twice the target size on its short side is decoded at 1/2, 1/4 or 1/8 scale
    (``decode_jpeg``'s ``ratio``: the scaling happens inside the DCT, several times faster
    than decoding every pixel) while staying at or above the target size, then resized as usual.
    """
    # 8 bits per channel until resized: a 10000x10000 PNG takes 300 MB, not 1.2 GB as floats.
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: _decode_jpeg_scaled(data, image_size),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    resized = tf.cast(
        tf.image.resize(image, [image_size, image_size], method=interpolation), tf.float32
    )  # "nearest" keeps uint8; bicubic and lanczos overshoot [0, 255]
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def image_to_float(image: tf.Tensor) -> tf.Tensor:
    """8-bit RGB as float32 in [0, 1], the range image feature vectors take."""
    return tf.cast(image, tf.float32) / 255.0


JPEG_RATIOS = (1, 2, 4, 8)  # the scales libjpeg decodes at


def jpeg_ratio(height: tf.Tensor, width: tf.Tensor, image_size: int) -> tf.Tensor:
    """Index into :data:`JPEG_RATIOS` of the largest scale-down keeping the short side >= ``image_size``."""
    shortest = tf.minimum(height, width)
    return tf.add_n([tf.cast(shortest >= ratio * image_size, tf.int32) for ratio in JPEG_RATIOS[1:]])


def _decode_jpeg_scaled(data: tf.Tensor, image_size: int) -> tf.Tensor:
    shape = tf.io.extract_jpeg_shape(data)
    index = jpeg_ratio(shape[0], shape[1], image_size)
    # ``ratio`` is an attribute, not an input, hence one branch per value.
    branches = [lambda ratio=ratio: tf.io.decode_jpeg(data, channels=3, ratio=ratio) for ratio in JPEG_RATIOS]
    return tf.switch_case(index, branches)


def make_augmenter(flip: str, rotation: float, zoom: float, seed: int) -> tf_keras.Sequential | None:
    """Random flip/rotation/zoom applied to training batches, or None when all are off."""
    layers = []
    if flip != "None":
        layers.append(tf_keras.layers.RandomFlip(flip, seed=seed))
    if rotation:
        layers.append(tf_keras.layers.RandomRotation(abs(rotation), seed=seed))
    if zoom:
        layers.append(tf_keras.layers.RandomZoom(zoom, seed=seed))
    return tf_keras.Sequential(layers) if layers else None


def training_batches(
    examples: Examples,
    task: Task,
    num_classes: int,
    global_batch: int,
    *,
    shuffle_seed: int,
    decoding: Decoding = Decoding(),
    augmenter: tf_keras.Model | None = None,
    cache_file: str | None = None,
    deterministic: bool = True,
    first_step: int = 0,
) -> tf.data.Dataset:
    """An endless, shuffled stream of full batches of (inputs, one-hot labels) for ``fit``.

    Every batch holds exactly ``global_batch`` examples, so every replica gets ``batch_size``
    examples at every step: a distribution strategy splits a short last batch in order, which
    leaves the last replicas empty or short (5 examples over 4 replicas of 2 -> 2, 2, 1, 0).
    Epochs follow one another in one stream: the data is reshuffled at every pass, and a pass
    that ends inside a batch fills it from the next pass, so nothing is dropped. Train for
    :func:`steps_per_epoch` steps per epoch.

    Images are read and decoded in parallel. With ``cache_file`` the decoded images are kept
    in that file after the first pass (later passes read them back instead of decoding again;
    a file rather than memory, so memory use does not grow with the dataset). Shuffling then
    happens twice: a full, seeded shuffle of the file order before the first pass, and a
    window of :data:`SHUFFLE_WINDOW` decoded images reshuffled every pass (see
    :func:`shuffle_for_epochs`; the same with or without the cache, so both give one order).

    Args:
        examples: image paths or texts and their class indices.
        task: ``image`` or ``text``.
        num_classes: width of the one-hot labels.
        global_batch: batch size across all replicas.
        shuffle_seed: the seed of the order.
        decoding: the size images are resized to (image task) and how.
        augmenter: a Keras model applied to image batches in training mode, or None.
        cache_file: keep decoded images in this file (image task); None decodes every pass.
        deterministic: keep the element order fixed across runs; False lets parallel decoding
            hand over whichever image is ready first (faster when file reads vary).
        first_step: start at this batch (a run resumed at step N gets the batches from N on).

    Returns:
        A prefetched, endless dataset of full batches.
    """
    dataset = _labelled_pairs(examples, num_classes)

    def decode(dataset: tf.data.Dataset) -> tf.data.Dataset:
        return _decode_for_training(dataset, task, decoding, cache_file, deterministic)

    dataset = shuffle_for_epochs(dataset, len(examples), shuffle_seed, task, decode, first_step * global_batch)
    dataset = dataset.batch(global_batch, drop_remainder=True)
    if augmenter is not None:
        dataset = dataset.map(
            lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=AUTOTUNE, deterministic=deterministic
        )
    return dataset.with_options(_training_options(deterministic)).prefetch(AUTOTUNE)


def _labelled_pairs(examples: Examples, num_classes: int) -> tf.data.Dataset:
    """The (input, one-hot label) pairs of ``examples``, in their order."""
    inputs = tf.constant(list(examples.inputs), dtype=tf.string)
    labels = tf.one_hot(tf.constant(list(examples.labels), dtype=tf.int32), num_classes)
    return tf.data.Dataset.from_tensor_slices((inputs, labels))


def _decode_for_training(
    dataset: tf.data.Dataset, task: Task, decoding: Decoding, cache_file: str | None, deterministic: bool
) -> tf.data.Dataset:
    """(path, label) pairs as (float32 image, label) for the image task, the 8-bit images kept in
    ``cache_file`` when given; other tasks' pairs unchanged."""
    if task == Task.IMAGE:
        image_size, interpolation = decoding.image_size, decoding.interpolation
        assert image_size is not None, "image inputs need image_size"  # an image model's Decoding has it
        read = lambda p, y: (decode_image_uint8(tf.io.read_file(p), image_size, interpolation), y)  # noqa: E731
        dataset = dataset.map(read, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
        if cache_file is not None:
            dataset = dataset.cache(cache_file)  # 8-bit images: a quarter of float32's size
        dataset = dataset.map(
            lambda x, y: (image_to_float(x), y), num_parallel_calls=AUTOTUNE, deterministic=deterministic
        )
    return dataset


def _training_options(deterministic: bool) -> tf.data.Options:
    """Sharded by example across workers; the element order fixed when ``deterministic``."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = deterministic
    return options


def inference_batches(
    inputs: Sequence[str] | np.ndarray | tf.Tensor,
    task: Task | Literal["index"],
    batch: int,
    *,
    decoding: Decoding = Decoding(),
    cache_file: str | None = None,
) -> tf.data.Dataset:
    """Batches of model inputs in the order given, every batch full, for ``predict``.

    The last batch is padded to ``batch`` by repeating the last input, so that under a
    distribution strategy every replica gets the same number of inputs (none gets an empty
    batch); the outputs of the padding are to be dropped: keep the first ``len(inputs)``
    rows (see :func:`tf_finetune.training.scoring.predict_in_order`). The order is always kept,
    whatever the seed, because outputs are paired with labels by position.

    Args:
        inputs: image paths or texts (a sequence), or a 1-D tensor of example indices.
        task: ``image``, ``text`` or ``index`` (the inputs pass through unchanged).
        batch: batch size across all replicas.
        decoding: the size images are resized to (image task) and how.
        cache_file: keep the decoded images in this file, for data predicted on repeatedly
            (validation every epoch).

    Returns:
        A prefetched dataset of ``ceil(len(inputs) / batch)`` full batches.
    """
    count = int(len(inputs))
    if count == 0:
        raise ValueError("no inputs to predict on")
    pad = -count % batch
    values = tf.constant(inputs if task == "index" else list(inputs), dtype=tf.int64 if task == "index" else tf.string)
    values = tf.concat([values, tf.repeat(values[-1:], pad)], axis=0)
    dataset = tf.data.Dataset.from_tensor_slices(values)
    if task == Task.IMAGE:
        if not decoding.image_size:
            raise ValueError("image inputs need image_size")
        size, interpolation = decoding.image_size, decoding.interpolation
        dataset = dataset.map(
            lambda p: decode_image_uint8(tf.io.read_file(p), size, interpolation),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        if cache_file is not None:
            dataset = dataset.cache(cache_file)
        dataset = dataset.map(image_to_float, num_parallel_calls=AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    # Every host predicts on all of it (see predict_in_order): no sharding across workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.batch(batch, drop_remainder=True).with_options(options).prefetch(AUTOTUNE)


SHUFFLE_WINDOW = 256  # decoded images reshuffled per epoch: bounded memory whatever the dataset


def shuffle_for_epochs(
    dataset: tf.data.Dataset,
    count: int,
    seed: int,
    task: Task,
    between: Callable[[tf.data.Dataset], tf.data.Dataset] = lambda dataset: dataset,
    start: int = 0,
) -> tf.data.Dataset:
    """The training order, endless: one full seeded shuffle, ``between`` (decoding, caching),
    then a reshuffle at every pass over the ``count`` examples.

    The per-pass reshuffle covers all examples for text, and a window of
    :data:`SHUFFLE_WINDOW` for images (its buffer holds decoded images, and cached decoded
    images can only be read back in the order they were written). Pass ``p`` is reshuffled
    with a seed drawn from ``(seed, p)``, so the order depends only on the seed and the count
    (the feature cache shuffles example indices with this same function and trains on the
    same batches), and the stream can begin anywhere: at example ``start`` of the endless
    order (a resumed run; only the part of its first pass before ``start`` is read and skipped).
    """
    window = count if task == Task.TEXT else min(count, SHUFFLE_WINDOW)
    ordered = between(dataset.shuffle(count, seed=seed, reshuffle_each_iteration=False))

    def one_pass(index: tf.Tensor) -> tf.data.Dataset:
        pass_seed = tf.random.stateless_uniform(
            [], tf.stack([tf.constant(seed, tf.int64), index]), minval=None, maxval=None, dtype=tf.int64
        )
        return ordered.shuffle(window, seed=pass_seed)

    first_pass, offset = divmod(start, count)
    passes = tf.data.Dataset.range(first_pass, tf.int64.max)
    return passes.flat_map(one_pass).skip(offset)


def decoded_size(count: int, image_size: int) -> int:
    """Bytes that ``count`` decoded 8-bit RGB images of ``image_size`` square take in the cache."""
    return count * image_size * image_size * 3
