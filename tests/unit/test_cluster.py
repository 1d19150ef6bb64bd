"""TF_CONFIG for several hosts (tf_finetune.training.cluster)."""

from __future__ import annotations

import json

import pytest

from tf_finetune.training.cluster import DEFAULT_WORKER_PORT, cluster_config, worker_count


def test_hosts_are_ordered_so_every_host_agrees_on_the_chief():
    hosts = ["algo-2", "algo-1", "algo-3"]
    configs = [cluster_config(hosts, host) for host in hosts]
    workers = [f"algo-{i}:{DEFAULT_WORKER_PORT}" for i in (1, 2, 3)]
    assert all(config["cluster"] == {"worker": workers} for config in configs)
    assert [config["task"] for config in configs] == [{"type": "worker", "index": i} for i in (1, 0, 2)]
    assert cluster_config(["a"], "a", port=9000)["cluster"]["worker"] == ["a:9000"]


def test_a_host_outside_the_list_is_refused():
    with pytest.raises(ValueError, match="'algo-9' is not in the host list"):
        cluster_config(["algo-1"], "algo-9")


def test_worker_count_counts_chief_and_workers():
    assert worker_count(None) == worker_count("") == 1
    assert worker_count(json.dumps(cluster_config(["a", "b", "c"], "b"))) == 3
    assert worker_count(json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"], "ps": ["c:1"]}})) == 2
    assert worker_count(json.dumps({"cluster": {}})) == 1
    # a strategy's cluster spec, as training.distribute.worker_count passes it: the same count
    assert worker_count({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}}) == 3
