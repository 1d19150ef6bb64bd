"""``tensorflow_hub``, importable with any setuptools (or none).

tensorflow_hub 0.16.1 runs ``from pkg_resources import parse_version`` when it is imported,
and setuptools 81+ no longer ships ``pkg_resources`` (Python 3.12 venvs have no setuptools
at all). The only thing it uses is ``parse_version``, which ``packaging`` provides, so
while tensorflow_hub is imported a stand-in ``pkg_resources`` with just that is put in
``sys.modules``, then taken out again so nothing else sees it. An already imported real
``pkg_resources`` is left as it is.

Import the library from here: ``from tf_finetune.backbones.tfhub import hub``.
"""

from __future__ import annotations

import sys
import types

_NAME = "pkg_resources"


def _import_hub() -> types.ModuleType:
    if isinstance(sys.modules.get(_NAME), types.ModuleType) and hasattr(sys.modules[_NAME], "parse_version"):
        import tensorflow_hub

        return tensorflow_hub
    from packaging.version import parse

    stand_in = types.ModuleType(_NAME, "parse_version for tensorflow_hub's import (tf_finetune.backbones.tfhub)")
    stand_in.parse_version = parse  # type: ignore[attr-defined]
    missing = object()
    before = sys.modules.get(_NAME, missing)
    sys.modules[_NAME] = stand_in
    try:
        import tensorflow_hub
    finally:
        if before is missing:
            del sys.modules[_NAME]
        else:
            sys.modules[_NAME] = before  # type: ignore[assignment]
    return tensorflow_hub


hub = _import_hub()
