"""Instance types, their GPUs, and the global batch (tf_finetune.sagemaker.instances)."""

from __future__ import annotations

import pytest

from tf_finetune.errors import UsageError
from tf_finetune.sagemaker.instances import Deployment, gpus_of


def test_jumpstarts_example_4_gpus_give_a_global_batch_of_128():
    deployment = Deployment("ml.p3.8xlarge", 1, gpus_of("ml.p3.8xlarge"), 32)
    assert (deployment.replicas, deployment.global_batch) == (4, 128)
    assert "global batch      128 (32 x 4 replicas)" in deployment.describe()


@pytest.mark.parametrize(
    "instance_type, count, replicas",
    [
        ("ml.m5.xlarge", 1, 1),  # a CPU host is one replica
        ("ml.m5.xlarge", 3, 3),
        ("ml.g5.12xlarge", 2, 8),
        ("ml.p4d.24xlarge", 1, 8),
    ],
)
def test_replicas_are_gpus_times_hosts_or_one_per_cpu_host(instance_type, count, replicas):
    deployment = Deployment(instance_type, count, gpus_of(instance_type), 16)
    assert deployment.replicas == replicas and deployment.global_batch == 16 * replicas
    assert ("CPU only" in deployment.describe()) == (gpus_of(instance_type) == 0)


def test_an_unknown_type_needs_gpus_and_gpus_are_checked():
    with pytest.raises(UsageError, match=r"unknown instance type 'ml\.x9\.huge'.*pass --gpus N"):
        gpus_of("ml.x9.huge")
    assert gpus_of("ml.x9.huge", 2) == 2
    assert gpus_of("ml.p3.2xlarge", 0) == 0  # stated GPUs win over the table
    with pytest.raises(UsageError, match="--gpus -1: expected 0 or more"):
        gpus_of("ml.p3.2xlarge", -1)
