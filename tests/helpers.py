"""Helpers for tests: where things are, and running the command line as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TF_FINETUNE_SHARED", REPO.parent / "shared"))


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m tf_finetune ARGS`` in a subprocess (4 CPU replicas unless told otherwise)."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, "-m", "tf_finetune", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=REPO)
