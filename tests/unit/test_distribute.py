"""The strategy a process trains under (tf_finetune.training.distribute); conftest split the CPU."""

from __future__ import annotations

import pytest

from helpers import REPLICAS
from tf_finetune.training import distribute


def test_one_mirrored_strategy_over_the_logical_cpus_shared_by_every_job():
    strategy = distribute.create_strategy()
    assert strategy.num_replicas_in_sync == REPLICAS
    assert distribute.create_strategy() is strategy  # a second one would clash (tensorflow#62790)
    assert distribute.worker_count(strategy) == 1 and distribute.is_chief(strategy)


def test_the_cpu_cannot_be_split_again_once_tensorflow_runs():
    distribute.create_strategy()
    with pytest.raises(RuntimeError):
        distribute.split_cpu(3)
