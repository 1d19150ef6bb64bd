"""Backbones that tf_finetune builds locally from pip packages (``builtin:NAME`` handles).

They need no download at run time: the weights ship inside a PyPI package.
"""

from __future__ import annotations

from pathlib import Path

from tf_finetune.errors import BackboneError

BUILTINS = ("wordllama-words256",)


def ensure_builtin(name: str, cache_dir: Path) -> Path:
    """Build the built-in backbone ``name`` into ``cache_dir`` once and return its folder.

    Raises:
        BackboneError: unknown name, or the package it is built from is missing.
    """
    if name not in BUILTINS:
        raise BackboneError(f"unknown built-in backbone {name!r}; known: {', '.join(BUILTINS)}")
    from tf_finetune.backbones.builtin import wordllama

    return wordllama.ensure_module(cache_dir / "builtin" / name)
