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

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tf_finetune import model_folder
from tf_finetune.errors import BackboneError

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
INFO_FILE = "tf_finetune_backbone.json"
NAMED_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}
DEFAULT_RANGE = (0.0, 1.0)
# Layers that may form a classification head together with the final Dense.
_HEAD_LAYER_TYPES = ("Dense", "Dropout", "SpatialDropout1D", "GaussianDropout", "AlphaDropout",
                     "Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU")
# Keras Applications that expect inputs in [-1, 1] ("tf" preprocessing) and have no
# preprocessing layer inside, recognised by layer names they always have.
_KNOWN_ARCHITECTURES = (
    ("Keras MobileNetV2", {"bn_Conv1", "block_16_project"}, (-1.0, 1.0)),
    ("Keras MobileNet", {"conv_dw_1", "conv_pw_13"}, (-1.0, 1.0)),
    ("Keras InceptionV3", {"mixed10"}, (-1.0, 1.0)),
    ("Keras Xception", {"block14_sepconv2"}, (-1.0, 1.0)),
    ("Keras InceptionResNetV2", {"conv_7b"}, (-1.0, 1.0)),
    ("Keras ResNetV2", {"post_bn", "conv1_conv"}, (-1.0, 1.0)),
)


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
    task: str = "image"


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


def parse_pixel_range(text: str) -> tuple[float, float]:
    """``"0,1"``/``"-1,1"``/``"0,255"``/``"LOW,HIGH"`` as a (low, high) pair.

    Raises:
        BackboneError: not two numbers with low < high.
    """
    key = str(text).replace(" ", "").replace("[", "").replace("]", "")
    if key in NAMED_RANGES:
        return NAMED_RANGES[key]
    try:
        low, high = (float(v) for v in key.split(","))
    except ValueError:
        low = high = float("nan")  # compares False: refused below
    if not low < high:
        raise BackboneError(f"pixel range {text!r} is invalid: give LOW,HIGH with LOW < HIGH, "
                            "e.g. 0,1 or -1,1 or 0,255")
    return low, high


class NoClassificationHead(BackboneError):
    """The Keras model does not end in a Dense classification head (and no layer was named)."""


def resolve(path: Path, cache_dir: Path, options: KerasOptions | None = None) -> Path | None:
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
    if options.task != "image":
        return None
    try:
        return ensure_imported(path, cache_dir, options)
    except NoClassificationHead:
        if options.feature_layer:
            raise
        log.info("%s: a Keras SavedModel without a Dense classification head; loading it as a "
                 "TF-Hub module", path)
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
        log.info("Keras backbone %s: cached module %s (feature layer %s, %d features, pixel "
                 "range %s from %s)", source, target, info["feature_layer"], info["feature_dim"],
                 _range_text(info["pixel_range"]), info["pixel_range_from"])
        return target
    import_backbone(source, target, options, digest=digest)
    return target


def import_backbone(source: str | Path, target: str | Path, options: KerasOptions | None = None,
                    digest: str | None = None) -> BackboneInfo:
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
    input_shape = _image_input_shape(model, source)
    layer = _find_layer(model, options.feature_layer, source) if options.feature_layer \
        else default_feature_layer(model, source)
    network = cut_at(model, layer, source)
    pixel_range, range_from = _pixel_range(model, options.pixel_range, source)
    declared = input_shape[0] if input_shape[0] is not None and input_shape[0] == input_shape[1] \
        else None
    module, any_size, size = _make_module(network, pixel_range, declared, options.image_size,
                                          source)
    info = BackboneInfo(str(source), digest or content_sha256(source), layer.name,
                        int(network.output.shape[-1]), pixel_range, range_from,
                        declared, any_size)
    _save_module(module, target, info, any_size, size)
    log.info("Keras backbone %s cut at layer %s (%d features); pixel range %s (%s); input %s; "
             "saved to %s", source, layer.name, info.feature_dim, _range_text(pixel_range),
             range_from, "any size" if any_size else f"{size}x{size} only", target)
    return info


def with_declared_size(spec, module_dir: str | Path):
    """``spec`` with the image size an imported Keras backbone declares, when none was asked for.

    Args:
        spec: the :class:`~tf_finetune.backbone.BackboneSpec`.
        module_dir: the resolved backbone folder.

    Returns:
        ``spec``, or a copy whose ``image_size`` is the Keras model's declared input size (for
        a module that takes any size; a fixed-size module fixes the size by itself).
    """
    import dataclasses

    info = read_info(module_dir)
    if (info is None or spec.task != "image" or spec.image_size or not info.get("any_size")
            or not info.get("input_size")):
        return spec
    log.info("image size %d, the Keras model's input size (--image-size changes it)",
             info["input_size"])
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


# ---- loading and checking ----------------------------------------------------------------------

def _check_task(source: Path, options: KerasOptions) -> None:
    if options.task != "image":
        raise BackboneError(f"backbone {source}: a Keras model file is used as an image backbone "
                            f"only, and the data is {options.task} data. For text, pass a TF-Hub "
                            "text embedding SavedModel as --handle or a registry --model-id")


def load_keras_model(source: Path):
    """``tf_keras.models.load_model(source, compile=False)`` with one clear error.

    Raises:
        BackboneError: missing, unreadable or Keras 3 file, or a file with no model in it.
    """
    import tf_keras

    if not source.exists():
        raise BackboneError(f"Keras model {source}: no such file or folder")
    if _written_by_keras3(source):
        raise BackboneError(
            f"cannot read Keras model {source}: it was saved by Keras 3, and tf_finetune reads "
            "Keras 2 / tf_keras models (its backbones run in tf_keras). Load it in tf_keras-"
            "compatible code and save it again, or pass a TF-Hub SavedModel as --handle")
    try:
        return tf_keras.models.load_model(str(source), compile=False)
    except Exception as exc:  # h5py, zipfile, json, deserialisation errors
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        hint = ("; it holds weights only, without the architecture: save the whole model "
                "(model.save)" if "No model config" in reason or "No model found" in reason
                else "; expected a Keras 2 / tf_keras .h5 or .keras file, or a SavedModel folder "
                     "written by Keras")
        raise BackboneError(f"cannot read Keras model {source}: {reason}{hint}") from None


def _written_by_keras3(source: Path) -> bool:
    try:
        if source.is_file() and zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                meta = json.loads(archive.read("metadata.json")) if "metadata.json" in \
                    archive.namelist() else {}
            return str(meta.get("keras_version", "")).startswith("3.")
        if source.is_file() and source.suffix.lower() in (".h5", ".hdf5"):
            import h5py

            with h5py.File(source, "r") as handle:
                version = handle.attrs.get("keras_version", "")
            version = version.decode() if isinstance(version, bytes) else str(version)
            return version.startswith("3.")
    except (OSError, ValueError, KeyError):
        return False  # unreadable: load_model says so
    return False


def _image_input_shape(model, source: Path) -> tuple[int | None, int | None]:
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise BackboneError(f"{source} has {len(model.inputs)} inputs; an image backbone takes one "
                            "batch of images")
    tensor = model.inputs[0]
    shape = tuple(tensor.shape)
    if tensor.dtype == tf.string or len(shape) != 4 or shape[-1] != 3:
        kind = "a text model" if tensor.dtype == tf.string or len(shape) in (2, 3) else "not an image model"
        raise BackboneError(
            f"{source} is {kind}: its input is {tensor.dtype.name} {list(shape)}, and an image "
            "backbone takes RGB images [batch, height, width, 3]. Use it with text data through "
            "a TF-Hub text SavedModel, or give an image classifier")
    return shape[1], shape[2]


# ---- finding the feature layer and cutting -----------------------------------------------------

def _single(tensors, where: str, source: Path):
    items = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    if len(items) != 1:
        raise BackboneError(f"{source}: {where} has {len(items)} inputs or outputs; cannot find "
                            "the feature layer automatically: pass --feature-layer NAME")
    return items[0]


def _check_graph(model, source: Path) -> None:
    if not getattr(model, "_is_graph_network", False):
        raise BackboneError(f"{source}: {model.name} is a subclassed Keras model, whose layers "
                            "cannot be cut; save a Functional or Sequential model")


def default_feature_layer(model, source: Path):
    """The layer whose output feeds the classification head.

    Walks back from the output over the head (the final Dense and the Dense, Dropout and
    activation layers directly before it), following nested models in and out.

    Raises:
        BackboneError: the model does not end in a Dense layer, or nothing precedes the head.
    """
    import tf_keras

    _check_graph(model, source)
    stack = [(model, None)]
    tensor = _single(model.outputs, f"model {model.name}", source)
    head: list[str] = []
    seen_dense = False
    while True:
        layer, node_index, _ = tensor._keras_history
        kind = type(layer).__name__
        if isinstance(layer, tf_keras.layers.InputLayer):
            if len(stack) == 1:
                raise BackboneError(
                    f"{source}: no layer to cut at: the model is only a classification head "
                    f"({' <- '.join(head) or 'nothing'}) on its input. Give a classifier with a "
                    "feature extractor before its Dense head, or a TF-Hub SavedModel")
            container, container_node = stack.pop()
            tensor = _single(container._inbound_nodes[container_node].input_tensors,
                             f"layer {container.name}", source)
        elif isinstance(layer, tf_keras.Model):
            _check_graph(layer, source)
            stack.append((layer, node_index))
            tensor = _single(layer.outputs, f"model {layer.name}", source)
        elif kind in _HEAD_LAYER_TYPES:
            head.append(layer.name)
            seen_dense = seen_dense or kind == "Dense"
            tensor = _single(layer._inbound_nodes[node_index].input_tensors,
                             f"layer {layer.name}", source)
        elif not seen_dense:
            raise NoClassificationHead(
                f"{source}: no classification head to cut: the model ends in layer "
                f"{layer.name} ({kind}), not a Dense layer. Pass --feature-layer NAME to choose "
                "the feature layer")
        else:
            log.info("%s: classification head %s; feature layer %s", source,
                     " <- ".join(head), layer.name)
            return layer


def _all_layers(model) -> list:
    """Every layer of ``model``, nested models' layers included (outer first)."""
    import tf_keras

    found, queue = [], list(model.layers)
    while queue:
        layer = queue.pop(0)
        found.append(layer)
        if isinstance(layer, tf_keras.Model):
            queue.extend(layer.layers)
    return found


def _find_layer(model, name: str, source: Path):
    _check_graph(model, source)
    for layer in _all_layers(model):
        if layer.name == name:
            return layer
    vectors = [layer.name for layer in _all_layers(model)
               if _rank(layer) == 2 and type(layer).__name__ not in ("InputLayer",)]
    raise BackboneError(f"{source} has no layer named {name!r}; layers with a feature-vector "
                        f"output: {', '.join(vectors[-12:]) or 'none'}")


def _rank(layer) -> int | None:
    try:
        return len(layer.output_shape) if isinstance(layer.output_shape, tuple) else None
    except (AttributeError, RuntimeError):
        return None


def _node_in(container, layer) -> int:
    """Index of ``layer``'s call that belongs to ``container``'s graph."""
    for index in range(len(layer._inbound_nodes)):
        if f"{layer.name}_ib-{index}" in container._network_nodes:
            return index
    raise BackboneError(f"layer {layer.name} is not connected in model {container.name}")


def _contains(model, target) -> bool:
    return any(layer is target for layer in _all_layers(model))


def _output_tensor(container, target):
    """The output of ``target`` (a layer somewhere inside ``container``) in ``container``'s graph."""
    import tf_keras

    for layer in container.layers:
        if layer is target:
            return layer.get_output_at(_node_in(container, layer))
    for layer in container.layers:
        if isinstance(layer, tf_keras.Model) and _contains(layer, target):
            inner = tf_keras.Model(layer.inputs, _output_tensor(layer, target), name=layer.name)
            return inner(layer.get_input_at(_node_in(container, layer)))
    raise BackboneError(f"layer {target.name} is not in model {container.name}")


def cut_at(model, layer, source: Path):
    """``model`` from its input to ``layer``'s output, as a new model sharing its weights.

    Raises:
        BackboneError: the layer's output is not a ``[batch, features]`` vector.
    """
    import tf_keras

    output = _output_tensor(model, layer)
    if len(output.shape) != 2:
        raise BackboneError(
            f"{source}: layer {layer.name} outputs {list(output.shape)}, not a feature vector "
            "[batch, features]; choose a layer after the pooling or flattening (--feature-layer)")
    network = tf_keras.Model(model.inputs, output, name="backbone")
    frozen = [w.name for w in network.weights if not w.trainable and "moving_" not in w.name]
    if frozen:
        log.info("%s: %d frozen weights in the file are made trainable (train_only_top_layer "
                 "freezes the whole backbone)", source, len(frozen))
    network.trainable = True
    return network


# ---- pixel range -------------------------------------------------------------------------------

def _pixel_range(model, option: str | None, source: Path) -> tuple[tuple[float, float], str]:
    detected = _detect_pixel_range(model)
    if option:
        chosen = parse_pixel_range(option)
        if detected and detected[0] != chosen:
            log.warning("%s: pixel range %s given, although the model suggests %s (%s)", source,
                        _range_text(chosen), _range_text(detected[0]), detected[1])
        return chosen, "option"
    if detected:
        return detected
    log.warning("%s: the pixel range the network was trained on cannot be read from the model: "
                "assuming %s; pass --pixel-range (e.g. -1,1 or 0,255) if it was trained on other "
                "values", source, _range_text(DEFAULT_RANGE))
    return DEFAULT_RANGE, "assumed"


def _detect_pixel_range(model) -> tuple[tuple[float, float], str] | None:
    """From a Rescaling layer at the input, or from a known Keras Application's layer names."""
    import numpy as np

    layers = _all_layers(model)
    for layer in _leading_layers(model):
        if type(layer).__name__ == "Rescaling":
            scale = np.asarray(layer.scale, dtype=np.float64).reshape(-1)[0]
            offset = np.asarray(layer.offset, dtype=np.float64).reshape(-1)[0]
            low_target = -1.0 if offset < 0 else 0.0  # the network's internal range
            low, high = (low_target - offset) / scale, (1.0 - offset) / scale
            low, high = (round(float(low), 4), round(float(high), 4))
            return (min(low, high), max(low, high)), f"Rescaling layer {layer.name}"
        if type(layer).__name__ in ("Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D"):
            break
    names = {layer.name for layer in layers}
    for architecture, required, value in _KNOWN_ARCHITECTURES:
        if required <= names:
            return value, f"{architecture} (recognised by its layer names)"
    return None


def _leading_layers(model, limit: int = 8) -> list:
    """The first layers the input flows through, nested models followed in (depth first)."""
    import tf_keras

    found: list = []

    def walk(container):
        for layer in container.layers:
            if len(found) >= limit:
                return
            if isinstance(layer, tf_keras.Model):
                walk(layer)
            elif not isinstance(layer, tf_keras.layers.InputLayer):
                found.append(layer)

    walk(model)
    return found


def _range_text(value) -> str:
    low, high = value
    return f"[{low:g}, {high:g}]"


# ---- the TF-Hub module -------------------------------------------------------------------------

def _make_module(network, pixel_range, declared: int | None, image_size: int | None, source: Path):
    """The module object and the input size it takes (any size when the network allows)."""
    import tensorflow as tf

    module = _HubImageModule(network, pixel_range)
    try:
        spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="inputs")
        for training in (False, True):
            traced = module.__call__.get_concrete_function(spec, training=training)
            if traced.structured_outputs.shape[-1] is None:  # e.g. Flatten: width depends on size
                raise ValueError("the feature width depends on the image size")
        size = image_size or declared or 224
        module(tf.zeros([1, size, size, 3]))
        return module, True, None
    except (ValueError, TypeError, tf.errors.OpError) as exc:
        size = declared or image_size
        if size is None:
            raise BackboneError(f"{source}: the network takes neither any image size nor a "
                                "declared one; pass --image-size") from None
        log.info("%s takes %dx%d images only (%s)", source, size, size,
                 (str(exc).strip().splitlines() or [""])[0][:120])
        module = _HubImageModule(network, pixel_range)
        spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="inputs")
        for training in (False, True):
            module.__call__.get_concrete_function(spec, training=training)
        return module, False, size


def _save_module(module, target: Path, info: BackboneInfo, any_size: bool, size: int | None) -> None:
    import tensorflow as tf

    spec = tf.TensorSpec([None, None if any_size else size, None if any_size else size, 3],
                         tf.float32, name="inputs")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="." + target.name + ".", dir=target.parent))
    try:
        tf.saved_model.save(module, str(staging), signatures={
            "serving_default": module.__call__.get_concrete_function(spec, training=False)})
        (staging / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n", "utf-8")
        if target.exists():
            target.rmdir()  # checked empty by the caller
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _regularizer_functions(network) -> list:
    import tensorflow as tf

    functions = []
    for layer in _all_layers(network):
        for attribute, regularizer_name in _REGULARIZED.items():
            regularizer = getattr(layer, regularizer_name, None)
            weight = getattr(layer, attribute, None)
            if regularizer is not None and isinstance(weight, tf.Variable):
                functions.append(tf.function(lambda r=regularizer, w=weight: r(w),
                                             input_signature=[]))
    return functions


_REGULARIZED = {"kernel": "kernel_regularizer", "bias": "bias_regularizer",
                "depthwise_kernel": "depthwise_regularizer",
                "pointwise_kernel": "pointwise_regularizer",
                "embeddings": "embeddings_regularizer", "gamma": "gamma_regularizer",
                "beta": "beta_regularizer"}


def _tracked_module_class():
    import tensorflow as tf

    class HubImageModule(tf.train.Checkpoint):
        """Reusable SavedModel object: images in [0, 1] -> the cut network's features."""

        def __init__(self, network, pixel_range):
            super().__init__()
            low, high = (float(v) for v in pixel_range)
            # A closure, not a tracked attribute: the SavedModel holds this object's own
            # functions and variables, not a Keras model.
            self._features = lambda x, training: network(low + x * (high - low),
                                                         training=training)
            self.variables = list(network.variables)
            self.trainable_variables = list(network.trainable_variables)
            self.regularization_losses = _regularizer_functions(network)

        @tf.function
        def __call__(self, inputs, training=False):
            # training=True runs BatchNorm in batch mode and updates its moving statistics;
            # hub.KerasLayer passes it only when the layer is trainable and the model trains.
            return self._features(inputs, training)

    return HubImageModule


def _HubImageModule(network, pixel_range):  # noqa: N802 (built lazily: no TensorFlow at import)
    return _tracked_module_class()(network, pixel_range)
