"""Choosing the distribution strategy, and the replica count and global batch that follow."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import tensorflow as tf

from tf_finetune.training import cluster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """How a job's global batch is split: replicas, workers, and steps an epoch.

    Attributes:
        strategy: the distribution strategy (:func:`create_strategy`).
        replicas: replicas training together, over all workers.
        workers: hosts training together (:func:`worker_count`).
        batch_size: per replica, as used (:func:`tf_finetune.data.batching.fit_batch`).
        global_batch: batch size across all replicas.
        steps: steps an epoch.
    """

    strategy: tf.distribute.Strategy
    replicas: int
    workers: int
    batch_size: int
    global_batch: int
    steps: int


def split_cpu(num_devices: int) -> None:
    """Split the CPU into ``num_devices`` logical devices, so one machine has that many replicas.

    For testing distribution without GPUs. Must run before TensorFlow initialises its devices
    (before any op); afterwards it raises RuntimeError.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )


def create_strategy(multi_worker: bool = False) -> tf.distribute.Strategy:
    """The strategy of this process: one host or several.

    With ``multi_worker`` (``TF_CONFIG`` names more than one worker), a
    ``MultiWorkerMirroredStrategy`` over every worker's devices; else a ``MirroredStrategy``
    over all local GPUs, or over the CPU device(s) when there is none.

    One strategy per process and device set: a second MirroredStrategy in the same process
    reuses collective-op keys and aborts with "Shape mismatch in the collective instance"
    (tensorflow#62790), so jobs run one after another share the first one.
    """
    if multi_worker:
        return _multi_worker()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return _mirrored(tuple(d.name for d in devices))


@functools.cache
def _multi_worker() -> tf.distribute.Strategy:
    # Reads TF_CONFIG (TensorFlow's own contract); the door sets it from the host list.
    return tf.distribute.MultiWorkerMirroredStrategy()


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """How many hosts (workers) train together: 1 unless multi-worker (counted as
    :func:`tf_finetune.training.cluster.worker_count` counts ``TF_CONFIG``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    return cluster.worker_count({"cluster": resolver.cluster_spec().as_dict()})


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the outputs: always on one host; worker 0 (or the chief) on several."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


@functools.cache
def _mirrored(devices: tuple[str, ...]) -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy(devices=list(devices))
