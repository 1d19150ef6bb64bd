"""A backbone handle to a local SavedModel folder, and what the job needs to know to load it.

Handles: a registry id's tfhub.dev/Kaggle URL (through tensorflow_hub and its cache), a
local SavedModel folder, ``file://`` path, a ``.tar.gz`` of a SavedModel, or
``builtin:NAME`` (built from a pip package). ``s3://`` handles are downloaded by the job first.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tf_finetune import model_folder, storage
from tf_finetune.backbones import keras_import
from tf_finetune.backbones.builtin import ensure_builtin
from tf_finetune.errors import BackboneError, install_extra
from tf_finetune.registry import ModelSpec

if TYPE_CHECKING:
    from tensorflow_hub import KerasLayer

log = logging.getLogger(__name__)

DEFAULT_IMAGE_SIZE = 224
_REMOTE = ("http://", "https://", "gs://")


BUNDLED_PREPROCESSOR = "preprocessor"
# The pip extra of tf_finetune that installs a registry entry's requirement.
EXTRAS = {"tensorflow-text": "bert"}


def local_saved_model(handle: str, cache_dir: Path, keras: keras_import.KerasOptions | None = None) -> str:
    """Turn ``handle`` into a local SavedModel folder.

    A Keras model file (``.h5``, ``.keras``, or a Keras SavedModel of a whole classifier, also
    inside a folder or archive) is cut at its feature layer and saved once as a TF-Hub module
    in the cache (:mod:`tf_finetune.backbones.keras_import`).

    Args:
        handle: URL, path, ``file://`` path, archive, Keras model file or ``builtin:NAME``.
        cache_dir: where built-in modules, extracted archives and imported Keras backbones are kept.
        keras: :class:`tf_finetune.backbones.keras_import.KerasOptions` for a Keras model file.

    Returns:
        A local folder holding ``saved_model.pb``.

    Raises:
        BackboneError: what could not be found or fetched, and how to fix it offline.
    """
    if handle.startswith("builtin:"):
        return str(ensure_builtin(handle.split(":", 1)[1], cache_dir))
    if storage.is_s3(handle):
        raise BackboneError(
            f"backbone {handle}: download s3:// handles first (tf_finetune.s3.download_prefix); job.run does this"
        )
    if handle.startswith(_REMOTE):
        return _hub_download(handle)
    path = storage.local_path(handle)
    if not path.exists():
        raise BackboneError(
            f"backbone {handle}: no such file or folder. Pass a TF-Hub SavedModel "
            "folder, a .tar.gz of one, a registry id (--model-id) or a hub URL"
        )
    if path.is_dir() and not (path / "saved_model.pb").exists():
        archives = [p for p in path.iterdir() if p.is_file() and storage.is_archive(p)]
        if len(archives) == 1:  # a channel or folder holding one model.tar.gz
            path = archives[0]
    if path.is_file() and storage.is_archive(path):
        path = _extract_cached(path, cache_dir)
    imported = keras_import.import_if_keras(keras_import.keras_file_in(path) or path, cache_dir, keras)
    if imported is not None:
        return str(imported)
    return str(_saved_model_folder(path, handle))


def local_preprocessor(spec: ModelSpec, backbone_path: str, cache_dir: Path) -> str | None:
    """The local folder of ``spec``'s text preprocessor, if it has one.

    A copy bundled with the backbone (``<backbone>/preprocessor/``, as ``fetch-model`` packs
    it) wins over downloading the entry's preprocessor handle, so network-isolated jobs work;
    it is used for a bare handle (no registry entry) too.
    """
    bundled = Path(backbone_path) / BUNDLED_PREPROCESSOR
    if (bundled / "saved_model.pb").is_file():
        return str(bundled)
    if not spec.preprocessor:
        return None
    return local_saved_model(spec.preprocessor, cache_dir)


def _hub_download(handle: str) -> str:
    from tf_finetune.backbones.tfhub import hub

    try:
        return hub.resolve(handle)
    except Exception as exc:  # urllib, HTTP and tarfile errors all mean "not available"
        cache = os.environ.get("TFHUB_CACHE_DIR") or "(unset: a temporary folder)"
        key = hashlib.sha1(handle.encode("utf-8")).hexdigest()
        raise BackboneError(
            f"cannot download backbone {handle} ({exc.__class__.__name__}: {exc}). "
            "This machine may be offline or in network isolation. Either: fill the TF-Hub "
            f"cache (TFHUB_CACHE_DIR={cache}) by extracting the model into <cache>/{key}/ on a "
            "machine that can download it; or run `tf-finetune fetch-model` on such a machine and "
            "train with the .tar.gz it writes (--handle); or, in SageMaker, give the model as the "
            "'model' channel."
        ) from None


def _extract_cached(archive: Path, cache_dir: Path) -> Path:
    stat = archive.stat()
    key = hashlib.sha1(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_dir / "archives" / key
    if not target.is_dir():
        storage.extract_archive(archive, target)
    return target


def _saved_model_folder(path: Path, handle: str) -> Path:
    if (path / "saved_model.pb").is_file() or model_folder.is_model_folder(path):
        return path
    children = [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []
    if len(children) == 1 and (children[0] / "saved_model.pb").is_file():
        return children[0]  # an archive with one top-level folder
    raise BackboneError(
        f"backbone {handle}: no saved_model.pb in {path}; a backbone must be a TF2 SavedModel in TF-Hub format"
    )


def check_requirements(spec: ModelSpec) -> None:
    """Import what the backbone needs beyond TensorFlow (e.g. tensorflow_text's ops).

    Raises:
        BackboneError: a required package is not installed.
    """
    for requirement in spec.requires:
        try:
            importlib.import_module(requirement.replace("-", "_"))
        except ImportError:
            extra = EXTRAS.get(requirement)
            how = (
                f"{install_extra(extra)}, or pip install {requirement} of your TensorFlow's version"
                if extra
                else f"pip install {requirement}"
            )
            raise BackboneError(
                f"backbone {spec.id} needs the package {requirement}, which is not installed: {how}"
            ) from None


def fixed_image_size(layer: KerasLayer) -> int | None:
    """The square input size a loaded image backbone insists on, or None if any size goes.

    Reads the input shapes of the module's traced call functions.
    """
    func = layer.resolved_object
    shapes = []
    # The restored __call__ itself (not whether it is callable): it lists the traced signatures.
    for concrete in getattr(getattr(func, "__call__", None), "concrete_functions", []):  # noqa: B004
        args = concrete.structured_input_signature[0]
        if args and getattr(args[0], "shape", None) is not None and args[0].shape.rank == 4:
            shapes.append(tuple(args[0].shape[1:3]))
    for height, width in shapes:
        if height is not None and width is not None:
            if height != width:
                raise BackboneError(f"backbone input is {height}x{width}; only square inputs are supported")
            return int(height)
    return None


def choose_image_size(spec: ModelSpec, fixed: int | None) -> int:
    """The image size to train at, given what the module fixes.

    Raises:
        BackboneError: the requested size conflicts with a size the module fixes.
    """
    if fixed and spec.image_size and fixed != spec.image_size:
        raise BackboneError(
            f"backbone {spec.id} takes {fixed}x{fixed} images only; image_size {spec.image_size} cannot be used"
        )
    chosen = spec.image_size or fixed
    if chosen:
        return chosen
    log.info(
        "backbone %s does not fix its input size; using image_size=%d (set --image-size to change)",
        spec.id,
        DEFAULT_IMAGE_SIZE,
    )
    return DEFAULT_IMAGE_SIZE
