"""How a job's examples become model inputs when training goes through the backbone: the
decoding settings, the decoded-image cache files, the validation batches and the stream of
training batches. (Head-only training on cached features reads its features instead: see
:mod:`tf_finetune.training.head_only`.)"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from tf_finetune.data import DataSplit
from tf_finetune.data.pipeline import Decoding, decoded_size, inference_batches, make_augmenter, training_batches
from tf_finetune.hyperparameters import Hyperparameters
from tf_finetune.tasks import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Streams:
    """How examples become model inputs: decoding settings, decoded-image cache files, and the
    validation batches.

    Attributes:
        task: ``image`` or ``text``.
        global_batch: batch size across all replicas.
        decoding: the size images are resized to (image task) and how.
        decoded: split name (``train``, ``validation``) -> its decoded-image cache file; empty
            when decoded images are not cached.
        validation: full, padded batches of the validation inputs, or None without validation.
    """

    task: Task
    global_batch: int
    decoding: Decoding
    decoded: dict[str, str]
    validation: tf.data.Dataset | None

    def training(self, data: DataSplit, hp: Hyperparameters, given: Collection[str]) -> Callable[..., tf.data.Dataset]:
        """The training batches, as ``fit_loop.fit`` takes them: called with ``first_step=N``,
        the endless stream from step N (a resume), augmented when ``hp`` asks for it.

        Args:
            data: the data (its training split is streamed).
            hp: the seed of the order and the augmentation settings.
            given: the hyperparameters the user gave (an explicit ``random_seed`` keeps the
                order fixed).

        Returns:
            ``training_batches`` with everything but ``first_step`` bound.
        """
        augmenter = None
        if self.task == Task.IMAGE and hp.augmentation:
            augmenter = make_augmenter(
                hp.augmentation_random_flip,
                hp.augmentation_random_rotation,
                hp.augmentation_random_zoom,
                hp.random_seed,
            )
        # An explicit seed asks for a repeatable run; otherwise parallel decoding may reorder the
        # training stream. Everything predicted on keeps its order whatever the seed.
        return functools.partial(
            training_batches,
            data.train,
            self.task,
            data.label_map.num_classes,
            self.global_batch,
            shuffle_seed=hp.random_seed,
            augmenter=augmenter,
            cache_file=self.decoded.get("train"),
            deterministic="random_seed" in given,
            decoding=self.decoding,
        )


def make_streams(
    task: Task,
    data: DataSplit,
    hp: Hyperparameters,
    global_batch: int,
    image_size: int | None,
    workdir: Path,
    *,
    cache_decoded: bool = True,
) -> Streams:
    """The job's :class:`Streams`.

    Args:
        task: ``image`` or ``text``.
        data: the training and validation data.
        hp: how images are resized (``image_resize_interpolation``).
        global_batch: batch size across all replicas.
        image_size: the size images are resized to (None for text).
        workdir: the job's temporary folder, where decoded images may be cached.
        cache_decoded: cache decoded images when the disk has room (off when the backbone
            runs once, on cached features).

    Returns:
        The decoding settings, the cache files and the validation batches.
    """
    decoding = Decoding(image_size, hp.image_resize_interpolation)
    decoded = decoded_image_cache(task, data, image_size, workdir) if cache_decoded else {}
    validation = (
        inference_batches(
            data.validation.inputs, task, global_batch, decoding=decoding, cache_file=decoded.get("validation")
        )
        if data.validation
        else None
    )
    return Streams(task, global_batch, decoding, decoded, validation)


def decoded_image_cache(task: Task, data: DataSplit, image_size: int | None, workdir: Path) -> dict[str, str]:
    """Cache files for decoded training and validation images, when the disk has room for them.

    Decoding is then paid once instead of every epoch; the files live in the job's temporary
    folder and go with it.

    Args:
        task: ``image`` or ``text`` (text has nothing to decode).
        data: the training and validation data.
        image_size: the size images are resized to.
        workdir: the job's temporary folder.

    Returns:
        Split name -> its cache file; empty when nothing is cached.
    """
    if task != Task.IMAGE or not image_size:
        return {}
    splits = {"train": data.train, "validation": data.validation}
    needed = sum(decoded_size(len(examples), image_size) for examples in splits.values() if examples)
    free = shutil.disk_usage(workdir).free
    if needed * 2 > free:  # leave room for the export and everything else
        log.info("decoded images (%.1f GiB) are not cached: %.1f GiB free in %s", needed / 2**30, free / 2**30, workdir)
        return {}
    log.info("decoded images are cached as 8-bit RGB after the first epoch (%.2f GiB in %s)", needed / 2**30, workdir)
    return {name: str(workdir / f"decoded-{name}") for name, examples in splits.items() if examples}
