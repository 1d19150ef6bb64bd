"""Two hosts: two worker processes on 127.0.0.1 train together under MultiWorkerMirroredStrategy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from helpers import REPO, free_port, run_cli


def start_worker(index: int, ports: list[int], args: list[str], log_path) -> subprocess.Popen:
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2")
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tf_finetune", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO,
        )


def test_two_workers_end_with_the_same_weights_and_one_artifact(text_module, text_data, tmp_path):
    ports = [free_port(), free_port()]
    outputs = [tmp_path / "host-0", tmp_path / "host-1"]
    args = [
        "train",
        "--handle",
        str(text_module),
        "--data",
        str(text_data),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--learning-rate",
        "0.05",
    ]
    procs = [
        start_worker(
            i,
            ports,
            [*args, "--output", str(outputs[i]), "--cache-dir", str(tmp_path / f"c{i}")],
            tmp_path / f"worker-{i}.log",
        )
        for i in range(2)
    ]
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    logs = [(tmp_path / f"worker-{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n\n".join(log[-3000:] for log in logs)
    for log in logs:
        assert "workers=2 replicas=2 batch_size=4 global_batch=8" in log
        assert len(re.findall(r"^epoch=\d/2 ", log, re.M)) == 2
    digests = [re.search(r"^weights_digest=(\w+)$", log, re.M).group(1) for log in logs]
    assert digests[0] == digests[1]
    # ... and they trained together: one process alone (global batch 4, not 8) ends elsewhere
    alone = run_cli(*args, "--output", str(tmp_path / "alone"), "--cache-dir", str(tmp_path / "c2"))
    assert alone.returncode == 0, alone.stderr
    assert "workers=1 replicas=1 batch_size=4 global_batch=4" in alone.stderr
    assert re.search(r"^weights_digest=(\w+)$", alone.stderr, re.M).group(1) != digests[0]
    # only the chief (worker 0) writes the model
    assert (outputs[0] / "output" / "model.tar.gz").is_file()
    assert not outputs[1].exists()
