"""``fetch-model``: stage a registry backbone as a ``.tar.gz`` for network-isolated jobs.

SageMaker jobs in network isolation cannot reach tfhub.dev; JumpStart hands them the base
model through a ``model`` channel instead. This resolves an entry through tensorflow_hub's
cache (where the machine can download) and packs it, with its text preprocessor bundled under
``preprocessor/``, into one archive that ``--handle`` and the ``model`` channel accept.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from tf_finetune import storage
from tf_finetune.backbone import BUNDLED_PREPROCESSOR, BackboneSpec, resolve_handle
from tf_finetune.registry import load_registry

log = logging.getLogger(__name__)


def pack_backbone(backbone: Path, archive: Path, preprocessor: Path | None = None) -> Path:
    """Pack a SavedModel folder (its contents at the archive root) into ``archive``, atomically.

    Args:
        backbone: folder holding ``saved_model.pb``.
        archive: the ``.tar.gz`` to write.
        preprocessor: a text preprocessing SavedModel to bundle under ``preprocessor/``.

    Returns:
        ``archive``.
    """
    members = [(child, child.name) for child in sorted(backbone.iterdir())
               if child.name != BUNDLED_PREPROCESSOR]
    if preprocessor is not None:
        members.append((preprocessor, BUNDLED_PREPROCESSOR))
    return storage.pack_archive(members, archive)


def fetch_model(model_id: str, to: str, cache_dir: str, registry: str | None = None) -> str:
    """Resolve registry entry ``model_id`` and store it as ``<to>/<model_id>.tar.gz``.

    Args:
        model_id: registry id.
        to: a local folder or ``s3://bucket/prefix/`` (or a full ``….tar.gz`` name).
        cache_dir: tf_finetune's cache (built-in backbones).
        registry: a registry YAML instead of the packaged one.

    Returns:
        Where the archive went (path or ``s3://`` URI).

    Raises:
        TfFinetuneError: unknown id; offline or unreachable handle (with what to do); S3 errors.
    """
    spec = BackboneSpec.from_registry(load_registry(registry).get(model_id))
    cache = Path(cache_dir)
    backbone = Path(resolve_handle(spec.handle, cache))
    preprocessor = Path(resolve_handle(spec.preprocessor, cache)) if spec.preprocessor else None
    name = to if storage.is_archive(to) else to.rstrip("/") + f"/{model_id}.tar.gz"
    if not storage.is_s3(to):
        archive = pack_backbone(backbone, Path(name), preprocessor)
        log.info("backbone %s packed into %s", model_id, archive)
        return str(archive)
    from tf_finetune import s3

    with tempfile.TemporaryDirectory(prefix="tf_finetune.fetch.") as tmp:
        archive = pack_backbone(backbone, Path(tmp) / f"{model_id}.tar.gz", preprocessor)
        return s3.upload_file(archive, name)
