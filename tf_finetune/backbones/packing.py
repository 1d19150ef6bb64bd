"""``fetch-model`` and ``import-backbone``: stage a backbone as a ``.tar.gz`` (or folder, or
``s3://`` object) for network-isolated jobs.

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
from tf_finetune.backbones.keras_import import KerasOptions, import_backbone, is_keras_model
from tf_finetune.backbones.loading import BUNDLED_PREPROCESSOR, local_saved_model
from tf_finetune.errors import BackboneError
from tf_finetune.registry import load_registry

log = logging.getLogger(__name__)


def pack_backbone(backbone: Path, archive: Path, preprocessor: Path | None = None) -> Path:
    """Pack a SavedModel folder (its contents at the archive root) into ``archive``, atomically.

    Args:
        backbone: folder holding ``saved_model.pb``.
        archive: the ``.tar.gz`` to write.
        preprocessor: a text preprocessing SavedModel to bundle under ``preprocessor/``
            (instead of the backbone's own bundled one, if it has one).

    Returns:
        ``archive``.
    """
    members = [(child, child.name) for child in sorted(backbone.iterdir())]
    if preprocessor is not None:  # replaces the one the backbone folder may carry
        members = [m for m in members if m[1] != BUNDLED_PREPROCESSOR] + [(preprocessor, BUNDLED_PREPROCESSOR)]
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
    spec = load_registry(registry).get(model_id)
    cache = Path(cache_dir)
    # The entry's task decides whether a Keras SavedModel is a classifier to cut (image) or a
    # module to pack as it is (a BERT encoder is saved by Keras too).
    backbone = Path(local_saved_model(spec.handle, cache, KerasOptions(task=spec.task)))
    preprocessor = Path(local_saved_model(spec.preprocessor, cache)) if spec.preprocessor else None
    name = to if storage.is_archive(to) else to.rstrip("/") + f"/{model_id}.tar.gz"
    if not storage.is_s3(to):
        archive = pack_backbone(backbone, Path(name), preprocessor)
        log.info("backbone %s packed into %s", model_id, archive)
        return str(archive)
    with tempfile.TemporaryDirectory(prefix="tf_finetune.packing.") as tmp:
        archive = pack_backbone(backbone, Path(tmp) / f"{model_id}.tar.gz", preprocessor)
        return storage.publish(archive, name)


def import_to(
    model_file: str,
    to: str,
    feature_layer: str | None = None,
    pixel_range: str | None = None,
    image_size: int | None = None,
) -> str:
    """``import-backbone``: write the cut backbone of ``model_file`` to a folder, archive or S3.

    Args:
        model_file: a ``.h5``/``.keras`` file or a Keras SavedModel folder (local).
        to: a new folder; a ``….tar.gz`` path; or ``s3://bucket/prefix/`` (uploads
            ``<name>.tar.gz``) or a full ``s3://….tar.gz``.
        feature_layer: layer to cut at (default: the input of the classification head).
        pixel_range: the network's pixel range when the model does not show it.
        image_size: input size for a network that declares none and cannot take any.

    Returns:
        Where the backbone went.

    Raises:
        BackboneError: see :func:`~tf_finetune.backbones.keras_import.import_backbone`.
    """
    source = storage.local_path(model_file)
    if not is_keras_model(source):
        raise BackboneError(
            f"{model_file} is not a Keras model: give a .h5 or .keras file or a "
            "SavedModel folder written by Keras (with keras_metadata.pb)"
        )
    options = KerasOptions(feature_layer, pixel_range, image_size)
    if not storage.is_s3(to) and not storage.is_archive(to):
        import_backbone(source, Path(to), options)
        return to
    name = source.stem if source.is_file() else source.name
    with tempfile.TemporaryDirectory(prefix="tf_finetune.import.") as tmp:
        module = Path(tmp) / "module"
        import_backbone(source, module, options)
        if not storage.is_s3(to):
            return str(pack_backbone(module, Path(to)))
        archive = pack_backbone(module, Path(tmp) / f"{name}.tar.gz")
        uri = to if storage.is_archive(to) else to.rstrip("/") + f"/{name}.tar.gz"
        return storage.publish(archive, uri)
