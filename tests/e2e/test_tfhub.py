"""tensorflow_hub imports without ``pkg_resources`` (setuptools 81+, or no setuptools)."""

import subprocess
import sys

from helpers import REPO

# ``sys.modules[name] = None`` makes ``import name`` raise ImportError, as when it is not installed.
WITHOUT_PKG_RESOURCES = """
import sys
sys.modules["pkg_resources"] = None
from tf_finetune.backbones.tfhub import hub
assert callable(hub.KerasLayer) and callable(hub.load)
assert sys.modules["pkg_resources"] is None, "the stand-in was left in sys.modules"
try:
    import pkg_resources
except ImportError:
    print("ok")
"""


def test_tensorflow_hub_imports_without_pkg_resources():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PKG_RESOURCES], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
