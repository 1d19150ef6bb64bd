"""A full disk, for real: a small tmpfs mounted over the output folder in a private mount
namespace (``unshare --mount``, root only), so writes fail with ENOSPC as they would on a full
disk. The run ends with one message, exit 1, the previous model byte for byte, nothing else."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from helpers import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare(1) to mount a small tmpfs in a mount namespace")

SCRIPT = r"""
set -e
mount -t tmpfs -o size=64k tmpfs "$OUT/output"
printf 'the previous model' > "$OUT/output/model.tar.gz"
set +e
"$PYTHON" -m tf_finetune train --data "$DATA" --handle "$HANDLE" --output "$OUT" --cache-dir "$CACHE" \
    --epochs 1 --batch-size 4 > "$LOGS/stdout" 2> "$LOGS/stderr"
echo "exit=$?"
echo "previous=$(cat "$OUT/output/model.tar.gz")"
echo "left=$(cd "$OUT/output" && find . -mindepth 1 -not -path './tensorboard*' | sort | tr '\n' ' ')"
"""


def test_a_full_output_disk_is_one_message_and_leaves_the_previous_model(text_module, text_data, tmp_path):
    out, logs = tmp_path / "out", tmp_path / "logs"
    (out / "output").mkdir(parents=True)
    logs.mkdir()
    env = dict(os.environ, OUT=str(out), DATA=str(text_data), HANDLE=str(text_module), CACHE=str(tmp_path / "cache"),
               LOGS=str(logs), PYTHON=sys.executable, PYTHONPATH=str(REPO))
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600, cwd=REPO)
    if "mount:" in proc.stderr:
        pytest.skip(f"mount namespaces are not allowed here: {proc.stderr.strip()}")
    report = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    stderr = (logs / "stderr").read_text()
    assert report["exit"] == "1", stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert errors == ["tf-finetune: error: no space left on the device: nothing was published and temporary "
                      "files were removed; free some space, or choose another --output, --cache-dir or TMPDIR, "
                      "and run again"], stderr[-3000:]
    assert "Traceback" not in stderr
    assert report["previous"] == "the previous model"
    assert report["left"].split() == ["./model.tar.gz"]  # no staging folder or half-written archive
