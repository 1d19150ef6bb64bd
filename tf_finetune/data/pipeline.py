"""``tf.data`` input pipelines: streamed, parallel decoding, prefetching."""
from __future__ import annotations

import tensorflow as tf
import tf_keras

from tf_finetune.data import Examples

AUTOTUNE = tf.data.AUTOTUNE


def decode_image(path: tf.Tensor, image_size: int, interpolation: str) -> tf.Tensor:
    """Read a JPEG/PNG file as float32 RGB in [0, 1], resized to ``image_size`` square."""
    return decode_image_bytes(tf.io.read_file(path), image_size, interpolation)


def decode_image_bytes(data: tf.Tensor, image_size: int, interpolation: str) -> tf.Tensor:
    """Decode JPEG/PNG bytes as float32 RGB in [0, 1], resized to ``image_size`` square.

    Training and the exported serving signature both use this, so what is served is
    preprocessed exactly as what was trained on. Grayscale, CMYK, palette and 16-bit images
    all come out as 3-channel RGB.
    """
    image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.float32)
    image.set_shape([None, None, 3])
    image = tf.image.resize(image, [image_size, image_size], method=interpolation)
    return tf.clip_by_value(image, 0.0, 1.0)


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


def make_dataset(examples: Examples, task: str, num_classes: int, global_batch: int, *,
                 image_size: int | None = None, interpolation: str = "bilinear",
                 shuffle_seed: int | None = None, augmenter=None) -> tf.data.Dataset:
    """Batches of (inputs, one-hot labels) for ``fit``/``evaluate``.

    Args:
        examples: image paths or texts and their class indices.
        task: ``image`` or ``text``.
        num_classes: width of the one-hot labels.
        global_batch: batch size across all replicas.
        image_size: square size images are resized to (image task).
        interpolation: ``tf.image.resize`` method.
        shuffle_seed: shuffle every epoch with this seed; None keeps file order.
        augmenter: a Keras model applied to image batches in training mode, or None.

    Returns:
        A prefetched dataset; the last batch may be smaller than ``global_batch``.
    """
    inputs = tf.constant(list(examples.inputs), dtype=tf.string)
    labels = tf.one_hot(tf.constant(list(examples.labels), dtype=tf.int32), num_classes)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(examples), seed=shuffle_seed, reshuffle_each_iteration=True)
    if task == "image":
        dataset = dataset.map(lambda p, y: (decode_image(p, image_size, interpolation), y),
                              num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(global_batch)
    if augmenter is not None:
        dataset = dataset.map(lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(AUTOTUNE)
