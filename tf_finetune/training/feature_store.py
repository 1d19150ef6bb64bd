"""Backbone features kept on disk between jobs, so a second run (or a sweep) on the same data
skips the backbone pass.

An entry is keyed by everything its values depend on: the backbone's SavedModel (its
fingerprint, or its files), the text preprocessor, the task, the image size and resize
interpolation, and the content of every input in order (the bytes of each image file, or
each text). Change any of them and the key changes, so a stale entry is never read; it just
stays unused. Entries are written atomically and are plain ``.npy`` files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tf_finetune.tasks import Task

if TYPE_CHECKING:
    from _hashlib import HASH

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def savedmodel_digest(path: str | Path | None) -> str:
    """A digest of a SavedModel folder: its ``fingerprint.pb`` when it has one (TensorFlow
    writes checksums of the graph and the variables there), else all of its files."""
    if path is None:
        return "none"
    path = Path(path)
    digest = hashlib.sha256()
    fingerprint = path / "fingerprint.pb"
    files = [fingerprint] if fingerprint.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
        _update_with_file(digest, file)
    return digest.hexdigest()


def _update_with_file(digest: HASH, file: Path) -> None:
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    digest.update(b"\0")


@dataclass(frozen=True)
class FeatureStore:
    """Features on disk for one backbone and one way of reading the inputs.

    Attributes:
        directory: where entries go (``<cache_dir>/features``).
        identity: what the features depend on besides the inputs (backbone and preprocessor
            digests, task, image size, interpolation), as text.
    """

    directory: Path
    identity: str

    @classmethod
    def open(
        cls,
        cache_dir: str | Path,
        backbone_path: str,
        preprocessor_path: str | None,
        task: Task,
        image_size: int | None,
        interpolation: str,
        seq_length: int | None = None,
    ) -> FeatureStore:
        """The store of features of this backbone, read this way, under ``cache_dir``
        (``seq_length``: what a BERT-style preprocessor packs texts to)."""
        parts = [
            savedmodel_digest(backbone_path),
            savedmodel_digest(preprocessor_path),
            task,
            str(image_size if task == Task.IMAGE else None),
            interpolation if task == Task.IMAGE else "-",
        ]
        identity = "|".join(parts + ([f"seq{seq_length}"] if seq_length else []))
        return cls(Path(cache_dir) / "features", identity)

    def key(self, inputs: Sequence[str], task: Task) -> str:
        """The entry name for the features of ``inputs`` (image paths or texts), in order."""
        digest = hashlib.sha256(self.identity.encode("utf-8") + b"\n")
        for item in inputs:
            if task == Task.IMAGE:
                _update_with_file(digest, Path(item))
            else:
                digest.update(item.encode("utf-8") + b"\0")
        return digest.hexdigest()[:32]

    def load(self, key: str, count: int) -> np.ndarray | None:
        """The stored features of ``key`` (``count`` rows), or None when there are none."""
        path = self.directory / f"{key}.npy"
        try:
            features = np.load(path)
        except (OSError, ValueError):
            return None
        if features.ndim != 2 or len(features) != count or features.dtype != np.float32:
            return None
        return features

    def save(self, key: str, features: np.ndarray) -> Path | None:
        """Store ``features`` under ``key`` (skipped, with a log line, when the disk is short)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.directory).free
        if features.nbytes * 2 > free:
            log.info(
                "features (%.1f MiB) are not kept: %.1f MiB free in %s",
                features.nbytes / 2**20,
                free / 2**20,
                self.directory,
            )
            return None
        path = self.directory / f"{key}.npy"
        staging = self.directory / f".{key}.{os.getpid()}.npy"
        try:
            np.save(staging, np.ascontiguousarray(features, dtype=np.float32))
            os.replace(staging, path)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            log.info("features are not kept in %s: %s", self.directory, exc)
            return None
        return path
