"""A whole Keras classifier as the backbone: find its feature layer, cut it there, save it as
a TF-Hub image feature vector.

Accepted: a Keras 2 / tf_keras ``.h5`` (``.hdf5``) file, a tf_keras ``.keras`` file, or a
SavedModel folder written by Keras (``keras_metadata.pb``). The model is loaded with
``tf_keras.models.load_model(compile=False)``; nested Sequential/Functional models (e.g. a
Teachable Machine export, ``Sequential[backbone, head]``) are followed into.

The feature layer is, by default, the input of the classification head: walking back from
the model's output over the final Dense layer and the Dense/Dropout/activation layers directly
before it (a whole ``Dense(100) -> Dense(N)`` head is cut), the first other layer reached.
``feature_layer`` names it instead. Its output must be a ``[batch, features]`` vector.

The cut network is saved as a reusable SavedModel in TF-Hub format: ``__call__(images,
training=False)`` takes float32 RGB images in [0, 1] (mapped inside to the pixel range the
network was trained on), of any size the network allows; ``training=True`` runs BatchNorm in
batch mode and updates its moving statistics. It has ``variables``, ``trainable_variables``
and ``regularization_losses``, so ``hub.KerasLayer`` loads it frozen or trainable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tf_finetune import model_folder
from tf_finetune.backbones.keras_graph import (
    NoClassificationHead,
    cut_at,
    default_feature_layer,
    find_layer,
    image_input_shape,
    load_keras_model,
)
from tf_finetune.backbones.keras_module import make_module, save_module
from tf_finetune.backbones.keras_pixels import choose_pixel_range, range_text
from tf_finetune.errors import BackboneError
from tf_finetune.tasks import Task

if TYPE_CHECKING:
    from tf_finetune.registry import ModelSpec

__all__ = [
    "KerasOptions",
    "BackboneInfo",
    "NoClassificationHead",
    "is_keras_model",
    "keras_file_in",
    "import_if_keras",
    "ensure_imported",
    "import_backbone",
    "with_declared_size",
    "read_info",
    "content_sha256",
]

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
INFO_FILE = "tf_finetune_backbone.json"


@dataclass(frozen=True)
class KerasOptions:
    """How to turn a Keras model file into a backbone (all optional).

    Attributes:
        feature_layer: name of the layer whose output are the features (default: the input
            of the classification head).
        pixel_range: ``"0,1"``, ``"-1,1"``, ``"0,255"`` or ``"LOW,HIGH"``: the values the
            network was trained on, when it cannot be read from the model.
        image_size: input size for a network without a declared size that cannot take any.
        task: the job's task; a Keras model file is an image backbone only.
    """

    feature_layer: str | None = None
    pixel_range: str | None = None
    image_size: int | None = None
    task: Task = Task.IMAGE


@dataclass(frozen=True)
class BackboneInfo:
    """What :func:`import_backbone` found and decided; saved as ``tf_finetune_backbone.json``.

    Attributes:
        source: the Keras file or folder.
        sha256: its content digest.
        feature_layer: the layer cut at.
        feature_dim: width of the feature vector.
        pixel_range: (low, high) the network's inputs are mapped to.
        pixel_range_from: how it was decided (``option``, ``Rescaling layer …``, a known
            architecture, or ``assumed``).
        input_size: the model's declared square input size, or None.
        any_size: whether the saved module takes any image size.
    """

    source: str
    sha256: str
    feature_layer: str
    feature_dim: int
    pixel_range: tuple[float, float]
    pixel_range_from: str
    input_size: int | None
    any_size: bool


def is_keras_model(path: str | Path) -> bool:
    """Whether ``path`` is a Keras model file or a SavedModel folder written by Keras.

    A folder written by tf_finetune (``labels.json``) is a fine-tuned model, not a backbone.
    """
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in KERAS_SUFFIXES
    return (path / "keras_metadata.pb").is_file() and not (path / model_folder.LABELS_FILE).is_file()


def keras_file_in(folder: Path) -> Path | None:
    """The one Keras model file in ``folder`` (e.g. a SageMaker ``model`` channel), if any."""
    if not folder.is_dir() or (folder / "saved_model.pb").exists():
        return None
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in KERAS_SUFFIXES]
    return files[0] if len(files) == 1 else None


def import_if_keras(path: Path, cache_dir: Path, options: KerasOptions | None = None) -> Path | None:
    """The TF-Hub module to use for ``path`` when it is a Keras classifier, else None.

    A ``.h5``/``.keras`` file is always imported. A SavedModel folder written by Keras is
    imported when it is a whole image classifier (it ends in a Dense head, or
    ``options.feature_layer`` names the layer); otherwise (a feature extractor saved by Keras,
    a text model) it is left to be loaded as a TF-Hub module, as before.

    Args:
        path: a local file or folder.
        cache_dir: tf_finetune's cache.
        options: feature layer, pixel range, image size and task.

    Returns:
        The imported module's folder, or None when ``path`` is not a Keras classifier.

    Raises:
        BackboneError: see :func:`ensure_imported`.
    """
    options = options or KerasOptions()
    if not is_keras_model(path):
        return None
    if path.is_file():
        return ensure_imported(path, cache_dir, options)
    if options.task != Task.IMAGE:
        return None
    try:
        return ensure_imported(path, cache_dir, options)
    except NoClassificationHead:
        if options.feature_layer:
            raise
        log.info("%s: a Keras SavedModel without a Dense classification head; loading it as a TF-Hub module", path)
        return None


def ensure_imported(source: Path, cache_dir: Path, options: KerasOptions | None = None) -> Path:
    """The cut backbone of Keras model ``source`` as a TF-Hub SavedModel, built once and cached.

    The cache key is the file's SHA-256 and the options, so a changed file or another feature
    layer gives a new module.

    Args:
        source: a ``.h5``/``.keras`` file or a Keras SavedModel folder.
        cache_dir: tf_finetune's cache; modules go to ``<cache>/keras_backbones/<key>``.
        options: feature layer, pixel range, image size and task.

    Returns:
        The module folder.

    Raises:
        BackboneError: unreadable file, no layer to cut at, not an image model (one message each).
    """
    options = options or KerasOptions()
    _check_task(source, options)
    digest = content_sha256(source)
    settings = json.dumps([options.feature_layer, options.pixel_range, options.image_size])
    key = digest[:24] + "-" + hashlib.sha256(settings.encode()).hexdigest()[:8]
    target = cache_dir / "keras_backbones" / key
    if (target / "saved_model.pb").is_file() and (target / INFO_FILE).is_file():
        info = read_info(target) or {}
        log.info(
            "Keras backbone %s: cached module %s (feature layer %s, %d features, pixel range %s from %s)",
            source,
            target,
            info["feature_layer"],
            info["feature_dim"],
            range_text(info["pixel_range"]),
            info["pixel_range_from"],
        )
        return target
    import_backbone(source, target, options, digest=digest)
    return target


def import_backbone(
    source: str | Path, target: str | Path, options: KerasOptions | None = None, digest: str | None = None
) -> BackboneInfo:
    """Cut Keras model ``source`` at its feature layer and save it at ``target`` in TF-Hub format.

    The folder appears complete or not at all (written beside it, then renamed).

    Args:
        source: a ``.h5``/``.keras`` file or a Keras SavedModel folder.
        target: the module folder to write; must not exist or be empty.
        options: feature layer, pixel range, image size and task.
        digest: the source's SHA-256 when already known.

    Returns:
        What was found and decided (also written to ``target/tf_finetune_backbone.json``).

    Raises:
        BackboneError: unreadable file, no layer to cut at, not an image model, a feature
            layer that is not a vector, an existing non-empty ``target``.
    """
    source, target = Path(source), Path(target)
    options = options or KerasOptions()
    _check_task(source, options)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackboneError(f"{target} already exists and is not empty: choose a new folder")
    model = load_keras_model(source)
    input_shape = image_input_shape(model, source)
    layer = (
        find_layer(model, options.feature_layer, source)
        if options.feature_layer
        else default_feature_layer(model, source)
    )
    network = cut_at(model, layer, source)
    pixel_range, range_from = choose_pixel_range(model, options.pixel_range, source)
    declared = input_shape[0] if input_shape[0] is not None and input_shape[0] == input_shape[1] else None
    module, any_size, size = make_module(network, pixel_range, declared, options.image_size, source)
    info = BackboneInfo(
        str(source),
        digest or content_sha256(source),
        layer.name,
        int(network.output.shape[-1]),
        pixel_range,
        range_from,
        declared,
        any_size,
    )
    save_module(module, target, any_size, size, {INFO_FILE: json.dumps(asdict(info), indent=2) + "\n"})
    log.info(
        "Keras backbone %s cut at layer %s (%d features); pixel range %s (%s); input %s; saved to %s",
        source,
        layer.name,
        info.feature_dim,
        range_text(pixel_range),
        range_from,
        "any size" if any_size else f"{size}x{size} only",
        target,
    )
    return info


def with_declared_size(spec: ModelSpec, module_dir: str | Path) -> ModelSpec:
    """``spec`` with the image size an imported Keras backbone declares, when none was asked for.

    Args:
        spec: the :class:`~tf_finetune.registry.ModelSpec`.
        module_dir: the resolved backbone folder.

    Returns:
        ``spec``, or a copy whose ``image_size`` is the Keras model's declared input size (for
        a module that takes any size; a fixed-size module fixes the size by itself).
    """
    info = read_info(module_dir)
    if (
        info is None
        or spec.task != Task.IMAGE
        or spec.image_size
        or not info.get("any_size")
        or not info.get("input_size")
    ):
        return spec
    log.info("image size %d, the Keras model's input size (--image-size changes it)", info["input_size"])
    return dataclasses.replace(spec, image_size=int(info["input_size"]))


def read_info(module_dir: str | Path) -> dict | None:
    """The :class:`BackboneInfo` saved with an imported module, as a dict; None for other modules."""
    path = Path(module_dir) / INFO_FILE
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def content_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's relative file names and contents."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _check_task(source: Path, options: KerasOptions) -> None:
    if options.task != Task.IMAGE:
        raise BackboneError(
            f"backbone {source}: a Keras model file is used as an image backbone "
            f"only, and the data is {options.task} data. For text, pass a TF-Hub "
            "text embedding SavedModel as --handle or a registry --model-id"
        )
