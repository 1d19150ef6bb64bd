"""Tiny TF-Hub-format SavedModels and sample data that the tests build themselves."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from tf_finetune.backbones.builtin.wordllama import TextEmbedding, save_module


class TinyImageFeatures(tf.train.Checkpoint):
    """Images in [0, 1] -> 7 features: the mean colour and 4 pooled random 3x3 filters."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], seed=[1, 2]), name="kernel")
        self.variables = [self.kernel]
        self.trainable_variables = [self.kernel]
        self.regularization_losses = []

    @tf.function
    def __call__(self, inputs, training=False):
        del training
        conv = tf.nn.relu(tf.nn.conv2d(inputs, self.kernel, 1, "SAME"))
        return tf.concat([tf.reduce_mean(inputs, [1, 2]), tf.reduce_mean(conv, [1, 2])], -1)


class TinyNotAFeatureVector(tf.train.Checkpoint):
    """Images in, a 4-D feature map out: not usable as a backbone."""

    def __init__(self):
        super().__init__()
        self.variables, self.trainable_variables, self.regularization_losses = [], [], []

    @tf.function
    def __call__(self, inputs, training=False):
        del training
        return inputs * 2.0


def save_image_module(path: Path, size: int | None = None, module=None) -> Path:
    """Save a tiny image module; ``size`` fixes its input to size x size."""
    module = module or TinyImageFeatures()
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="inputs")
    for training in (False, True):
        module.__call__.get_concrete_function(spec, training=training)
    tf.saved_model.save(
        module, str(path), signatures={"serving_default": module.__call__.get_concrete_function(spec, training=False)}
    )
    return path


TEXT_WORDS = {
    0: ["rain", "snow", "wind", "cloud", "storm", "cold", "sun", "fog"],
    1: ["goal", "team", "match", "ball", "coach", "score", "race", "win"],
}
FILLER = ["the", "a", "is", "was", "today", "very", "and", "we"]


def save_text_module(path: Path, dim: int = 8, record: Path | None = None) -> Path:
    """Save a tiny mean-of-word-vectors text module over TEXT_WORDS and FILLER; with
    ``record``, one that appends the batch size of every call to that file."""
    words = FILLER + TEXT_WORDS[0] + TEXT_WORDS[1]
    vectors = np.random.default_rng(0).normal(size=(len(words), dim)).astype(np.float32)
    vocab = path.parent / (path.name + ".vocab.txt")
    vocab.write_text("\n".join(words) + "\n", encoding="utf-8")
    module = (
        TextEmbedding(str(vocab), vectors) if record is None else RecordingTextEmbedding(str(vocab), vectors, record)
    )
    save_module(module, path)
    return path


def write_text_csv(path: Path, rows_per_class: int = 24, labels=(0, 1), seed: int = 0) -> Path:
    """A data.csv whose class is given by its topic words; labels as given (e.g. 1 and 2)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for _ in range(rows_per_class):
            for cls, label in enumerate(labels):
                words = rng.sample(TEXT_WORDS[cls % 2], 3) + rng.sample(FILLER, 2)
                rng.shuffle(words)
                writer.writerow([label, " ".join(words)])
    return path


COLOURS = {"blue": (30, 60, 220), "red": (220, 40, 30), "green": (40, 200, 60)}


def write_image(path: Path, colour, size=(40, 30), fmt="JPEG", mode="RGB", seed=0) -> Path:
    """A noisy image of one colour."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt)
    return path


def write_image_folder(root: Path, per_class: int = 12, classes=("blue", "red")) -> Path:
    """One sub-folder per colour class with ``per_class`` noisy JPEGs each."""
    for cls in classes:
        for i in range(per_class):
            write_image(root / cls / f"{cls}_{i:03d}.jpg", COLOURS[cls], seed=i)
    return root


def _record_batch_size(log: str, inputs) -> None:
    """Append the batch size this call sees to ``log`` (one line per call, per replica)."""
    tf.print(tf.shape(inputs)[0], output_stream=f"file://{log}")


class RecordingImageFeatures(TinyImageFeatures):
    """:class:`TinyImageFeatures` that appends every call's batch size to a file: under a
    distribution strategy each replica calls it on its own share of the batch."""

    def __init__(self, log: Path):
        super().__init__()
        self._log = str(log)

    @tf.function
    def __call__(self, inputs, training=False):
        _record_batch_size(self._log, inputs)
        return TinyImageFeatures.__dict__["__call__"].python_function(self, inputs, training)


class RecordingTextEmbedding(TextEmbedding):
    """The tiny text embedding, appending every call's batch size to a file."""

    def __init__(self, vocab_file: str, vectors: np.ndarray, log: Path):
        super().__init__(vocab_file, vectors)
        self._log = str(log)

    @tf.function
    def __call__(self, inputs, training=False):
        _record_batch_size(self._log, inputs)
        return TextEmbedding.__dict__["__call__"].python_function(self, inputs, training)


def recorded_batch_sizes(log: Path) -> list[int]:
    """The batch sizes a recording module has seen, in call order (empty when never called)."""
    return [int(line) for line in log.read_text().split()] if log.exists() else []
