"""Several hosts: the ``TF_CONFIG`` that MultiWorkerMirroredStrategy reads (no TensorFlow here)."""
from __future__ import annotations

import json
from collections.abc import Sequence

DEFAULT_WORKER_PORT = 8890


def cluster_config(hosts: Sequence[str], current_host: str, port: int = DEFAULT_WORKER_PORT) -> dict:
    """The ``TF_CONFIG`` of ``current_host`` in a cluster of ``hosts``, all workers.

    The first host in sorted order is worker 0, the chief (it alone writes the model).

    Raises:
        ValueError: ``current_host`` is not one of ``hosts``.
    """
    ordered = sorted(hosts)
    if current_host not in ordered:
        raise ValueError(f"current host {current_host!r} is not in the host list {ordered}")
    return {"cluster": {"worker": [f"{h}:{port}" for h in ordered]},
            "task": {"type": "worker", "index": ordered.index(current_host)}}


def num_workers(tf_config: str | None) -> int:
    """How many workers a ``TF_CONFIG`` value describes (1 when unset or empty)."""
    if not tf_config:
        return 1
    cluster = json.loads(tf_config).get("cluster", {})
    return max(1, sum(len(cluster.get(role, ())) for role in ("chief", "worker")))
