"""The end-to-end half of tests/unit/test_job_plan.py: the tests that train a model or run a door."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from helpers import REPO
from plan_cases import ENTRIES


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump({"task_defaults": {"image": {"epochs": 3, "batch_size": 8}, "text": {}}, "models": ENTRIES}),
        encoding="utf-8",
    )
    return str(path)


def test_reading_a_handles_task_imports_no_tensorflow(registry, text_module, tmp_path):
    code = (
        "import sys; from tf_finetune.job_options import JobConfig; "
        "from tf_finetune.training.job_plan import plan; "
        f"p = plan(JobConfig(data={str(tmp_path)!r}, output=None, registry={registry!r}, "
        f"handle={str(text_module)!r})); print(p.spec.task, 'tensorflow' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "text False"


def test_planning_does_not_import_tensorflow(registry):
    code = (
        "import sys; from tf_finetune.job_options import JobConfig; "
        "from tf_finetune.training.job_plan import plan; "
        f"plan(JobConfig(data='d', output=None, registry={registry!r}, model_id='img')); "
        "print('tensorflow' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
