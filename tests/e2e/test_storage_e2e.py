"""The end-to-end half of tests/unit/test_storage.py: the tests that train a model or run a door."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

RACE_SCRIPT = """
import os, sys, time
from pathlib import Path
from tf_finetune.backbones import loading
archive, cache, go = sys.argv[1:]
while not os.path.exists(go):
    time.sleep(0.001)
print(loading.local_saved_model(archive, Path(cache)))
"""


def test_processes_extracting_one_archive_at_once_leave_one_complete_entry(tmp_path):
    files = {f"variables/part-{i:02d}": os.urandom(64 * 1024) for i in range(24)}
    files["saved_model.pb"] = b"not parsed here"
    archive = tmp_path / "backbone.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for round_ in range(12):  # the race is lost only sometimes: repeat it
        cache, go = tmp_path / f"cache{round_}", tmp_path / f"go{round_}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RACE_SCRIPT, str(archive), str(cache), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        go.touch()
        results = [(p.wait(timeout=120), p.stdout.read().strip(), p.stderr.read()) for p in procs]
        assert all(rc == 0 for rc, _, _ in results), [err[-800:] for _, _, err in results]
        paths = {out for _, out, _ in results}
        assert len(paths) == 1  # every process uses the same entry
        entries = list((cache / "archives").iterdir())
        assert entries == [Path(paths.pop())]  # and nothing else: no staging folder is left
        found = {
            str(p.relative_to(entries[0])): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in entries[0].rglob("*")
            if p.is_file()
        }
        assert found == digest
