"""How the global batch covers the training examples: the per-replica batch used and the steps an epoch.

``train`` (before the backbone is loaded) and ``check-data`` both read it from :func:`fit_batch`, so
they report the same batch and steps. No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass


def steps_per_epoch(count: int, global_batch: int) -> int:
    """Training steps per epoch: enough full global batches to cover ``count`` examples."""
    return max(1, -(-count // global_batch))


@dataclass(frozen=True)
class Batches:
    """The batch a job trains with.

    Attributes:
        batch_size: per replica, as used (at most ``asked``).
        asked: per replica, as asked (the ``batch_size`` hyperparameter).
        replicas: replicas training together (across all workers).
        examples: training examples.
    """

    batch_size: int
    asked: int
    replicas: int
    examples: int

    @property
    def global_batch(self) -> int:
        """Examples in one step, across all replicas."""
        return self.batch_size * self.replicas

    @property
    def steps(self) -> int:
        """Steps an epoch (see :func:`steps_per_epoch`)."""
        return steps_per_epoch(self.examples, self.global_batch)

    def warning(self) -> str | None:
        """What was changed and why, when the asked batch was larger than the data; else None."""
        if self.batch_size == self.asked:
            return None
        return (
            f"batch_size={self.asked} x {self.replicas} replica(s) = global batch "
            f"{self.asked * self.replicas} is larger than the {self.examples} training example(s): "
            f"training with batch_size={self.batch_size} (global batch {self.global_batch}, "
            f"{self.steps} step per epoch, one pass over the data); set batch_size to "
            f"{self.batch_size} or less to choose the batch yourself"
        )


def fit_batch(batch_size: int, replicas: int, examples: int) -> Batches:
    """The per-replica batch to train with: ``batch_size``, or less when that is larger than the data.

    A global batch larger than the training set would make each epoch several passes over the
    data (every step is a full global batch), and a huge one exhausts memory, so it is cut to
    the smallest per-replica batch that still covers all ``examples`` in one step.

    Args:
        batch_size: the per-replica batch asked for.
        replicas: replicas training together.
        examples: training examples.

    Returns:
        The batch used, the one asked for, and the steps an epoch that follow.
    """
    largest = max(1, -(-examples // replicas))  # one step covers every example
    return Batches(min(batch_size, largest), batch_size, replicas, examples)
