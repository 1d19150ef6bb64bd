"""Several hosts: the ``TF_CONFIG`` that MultiWorkerMirroredStrategy reads (no TensorFlow here)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

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
    return {
        "cluster": {"worker": [f"{h}:{port}" for h in ordered]},
        "task": {"type": "worker", "index": ordered.index(current_host)},
    }


def worker_count(tf_config: str | Mapping[str, Any] | None) -> int:
    """How many hosts (workers) train together: the chief and the workers of a cluster.

    The one count of both sides: the doors count ``TF_CONFIG`` before training, the strategy
    its cluster (:func:`tf_finetune.training.distribute.worker_count`).

    Args:
        tf_config: a ``TF_CONFIG`` value (JSON text, or its parsed dict); None or empty: one host.

    Returns:
        The count, 1 or more.
    """
    if not tf_config:
        return 1
    parsed = json.loads(tf_config) if isinstance(tf_config, str) else tf_config
    cluster = parsed.get("cluster", {})
    return max(1, sum(len(cluster.get(role, ())) for role in ("chief", "worker")))
