"""SageMaker training instance types: how many GPUs each has, and what that does to the batch.

``batch_size`` is per replica (one replica per GPU, or one per host without GPUs), so the
global batch of a job is ``batch_size x GPUs x instances``: 32 x 4 = 128 on one
``ml.p3.8xlarge``, as on JumpStart's fine-tuning page.
"""

from __future__ import annotations

from dataclasses import dataclass

from tf_finetune.errors import UsageError

# GPUs per instance (0: CPU only). JumpStart's page names the p3 family; g4dn/g5/p4d are the
# current GPU training families, m5/c5 the CPU ones.
GPUS = {
    "ml.p3.2xlarge": 1,
    "ml.p3.8xlarge": 4,
    "ml.p3.16xlarge": 8,
    "ml.p3dn.24xlarge": 8,
    "ml.g4dn.xlarge": 1,
    "ml.g4dn.2xlarge": 1,
    "ml.g4dn.4xlarge": 1,
    "ml.g4dn.8xlarge": 1,
    "ml.g4dn.16xlarge": 1,
    "ml.g4dn.12xlarge": 4,
    "ml.g4dn.metal": 8,
    "ml.g5.xlarge": 1,
    "ml.g5.2xlarge": 1,
    "ml.g5.4xlarge": 1,
    "ml.g5.8xlarge": 1,
    "ml.g5.16xlarge": 1,
    "ml.g5.12xlarge": 4,
    "ml.g5.24xlarge": 4,
    "ml.g5.48xlarge": 8,
    "ml.p4d.24xlarge": 8,
    "ml.p4de.24xlarge": 8,
    "ml.m5.large": 0,
    "ml.m5.xlarge": 0,
    "ml.m5.2xlarge": 0,
    "ml.m5.4xlarge": 0,
    "ml.m5.12xlarge": 0,
    "ml.m5.24xlarge": 0,
    "ml.c5.xlarge": 0,
    "ml.c5.2xlarge": 0,
    "ml.c5.4xlarge": 0,
    "ml.c5.9xlarge": 0,
    "ml.c5.18xlarge": 0,
}
DEFAULT_INSTANCE_TYPE = "ml.p3.2xlarge"  # JumpStart's default for its TensorFlow classifiers


@dataclass(frozen=True)
class Deployment:
    """Where a job runs and the batch that gives.

    Attributes:
        instance_type: e.g. ``ml.p3.8xlarge``.
        instance_count: hosts.
        gpus: GPUs per host (0: CPU).
        batch_size: the per-replica batch.
    """

    instance_type: str
    instance_count: int
    gpus: int
    batch_size: int

    @property
    def replicas(self) -> int:
        """Replicas over all hosts: one per GPU, or one per host without GPUs."""
        return max(self.gpus, 1) * self.instance_count

    @property
    def global_batch(self) -> int:
        """Examples per training step over all replicas."""
        return self.batch_size * self.replicas

    def describe(self) -> str:
        """The deployment configuration as one block of text."""
        devices = f"{self.gpus} GPU(s)" if self.gpus else "CPU only"
        return (
            f"instance type     {self.instance_type} x {self.instance_count} ({devices} each)\n"
            f"per-replica batch {self.batch_size}\n"
            f"global batch      {self.global_batch} ({self.batch_size} x {self.replicas} replicas)"
        )


def gpus_of(instance_type: str, gpus: int | None = None) -> int:
    """GPUs of one ``instance_type``; ``gpus`` states it for a type not in the table.

    Raises:
        UsageError: an unknown type and no ``gpus``, or a negative ``gpus``.
    """
    if gpus is not None:
        if gpus < 0:
            raise UsageError(f"--gpus {gpus}: expected 0 or more")
        return gpus
    if instance_type in GPUS:
        return GPUS[instance_type]
    known = ", ".join(sorted(GPUS, key=lambda t: (GPUS[t] == 0, t)))
    raise UsageError(
        f"unknown instance type {instance_type!r}: known types are {known}; "
        "for another type pass --gpus N (its GPUs per instance)"
    )
