"""Reading a Keras classifier and cutting it at its feature layer (tf_keras, no TensorFlow at import)."""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tf_finetune.errors import BackboneError

if TYPE_CHECKING:
    import tf_keras
    from tf_keras.src.engine.keras_tensor import KerasTensor

log = logging.getLogger(__name__)

# Layers that may form a classification head together with the final Dense.
_HEAD_LAYER_TYPES = (
    "Dense",
    "Dropout",
    "SpatialDropout1D",
    "GaussianDropout",
    "AlphaDropout",
    "Activation",
    "Softmax",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
)


class NoClassificationHead(BackboneError):
    """The Keras model does not end in a Dense classification head (and no layer was named)."""


def load_keras_model(source: Path) -> tf_keras.Model:
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
            "compatible code and save it again, or pass a TF-Hub SavedModel as --handle"
        )
    try:
        return tf_keras.models.load_model(str(source), compile=False)
    except Exception as exc:  # h5py, zipfile, json, deserialisation errors
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        hint = (
            "; it holds weights only, without the architecture: save the whole model (model.save)"
            if "No model config" in reason or "No model found" in reason
            else "; expected a Keras 2 / tf_keras .h5 or .keras file, or a SavedModel folder written by Keras"
        )
        raise BackboneError(f"cannot read Keras model {source}: {reason}{hint}") from None


def _written_by_keras3(source: Path) -> bool:
    try:
        if source.is_file() and zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                meta = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
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


def image_input_shape(model: tf_keras.Model, source: Path) -> tuple[int | None, int | None]:
    """The (height, width) the model's one image input declares (None where it takes any).

    Raises:
        BackboneError: not one ``[batch, height, width, 3]`` image input.
    """
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise BackboneError(f"{source} has {len(model.inputs)} inputs; an image backbone takes one batch of images")
    tensor = model.inputs[0]
    shape = tuple(tensor.shape)
    if tensor.dtype == tf.string or len(shape) != 4 or shape[-1] != 3:
        kind = "a text model" if tensor.dtype == tf.string or len(shape) in (2, 3) else "not an image model"
        raise BackboneError(
            f"{source} is {kind}: its input is {tensor.dtype.name} {list(shape)}, and an image "
            "backbone takes RGB images [batch, height, width, 3]. Use it with text data through "
            "a TF-Hub text SavedModel, or give an image classifier"
        )
    return shape[1], shape[2]


def _single(tensors: KerasTensor | Sequence[KerasTensor], where: str, source: Path) -> KerasTensor:
    items = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    if len(items) != 1:
        raise BackboneError(
            f"{source}: {where} has {len(items)} inputs or outputs; cannot find "
            "the feature layer automatically: pass --feature-layer NAME"
        )
    return items[0]


def _check_graph(model: tf_keras.Model, source: Path) -> None:
    if not getattr(model, "_is_graph_network", False):
        raise BackboneError(
            f"{source}: {model.name} is a subclassed Keras model, whose layers "
            "cannot be cut; save a Functional or Sequential model"
        )


def default_feature_layer(model: tf_keras.Model, source: Path) -> tf_keras.layers.Layer:
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
                    "feature extractor before its Dense head, or a TF-Hub SavedModel"
                )
            container, container_node = stack.pop()
            tensor = _single(container._inbound_nodes[container_node].input_tensors, f"layer {container.name}", source)
        elif isinstance(layer, tf_keras.Model):
            _check_graph(layer, source)
            stack.append((layer, node_index))
            tensor = _single(layer.outputs, f"model {layer.name}", source)
        elif kind in _HEAD_LAYER_TYPES:
            head.append(layer.name)
            seen_dense = seen_dense or kind == "Dense"
            tensor = _single(layer._inbound_nodes[node_index].input_tensors, f"layer {layer.name}", source)
        elif not seen_dense:
            raise NoClassificationHead(
                f"{source}: no classification head to cut: the model ends in layer "
                f"{layer.name} ({kind}), not a Dense layer. Pass --feature-layer NAME to choose "
                "the feature layer"
            )
        else:
            log.info("%s: classification head %s; feature layer %s", source, " <- ".join(head), layer.name)
            return layer


def all_layers(model: tf_keras.Model) -> list[tf_keras.layers.Layer]:
    """Every layer of ``model``, nested models' layers included (outer first)."""
    import tf_keras

    found, queue = [], list(model.layers)
    while queue:
        layer = queue.pop(0)
        found.append(layer)
        if isinstance(layer, tf_keras.Model):
            queue.extend(layer.layers)
    return found


def find_layer(model: tf_keras.Model, name: str, source: Path) -> tf_keras.layers.Layer:
    """The layer called ``name``, nested models included.

    Raises:
        BackboneError: no such layer (the message lists candidates).
    """
    _check_graph(model, source)
    for layer in all_layers(model):
        if layer.name == name:
            return layer
    vectors = [
        layer.name for layer in all_layers(model) if _rank(layer) == 2 and type(layer).__name__ not in ("InputLayer",)
    ]
    raise BackboneError(
        f"{source} has no layer named {name!r}; layers with a feature-vector "
        f"output: {', '.join(vectors[-12:]) or 'none'}"
    )


def _rank(layer: tf_keras.layers.Layer) -> int | None:
    try:
        return len(layer.output_shape) if isinstance(layer.output_shape, tuple) else None
    except (AttributeError, RuntimeError):
        return None


def _node_in(container: tf_keras.Model, layer: tf_keras.layers.Layer) -> int:
    """Index of ``layer``'s call that belongs to ``container``'s graph."""
    for index in range(len(layer._inbound_nodes)):
        if f"{layer.name}_ib-{index}" in container._network_nodes:
            return index
    raise BackboneError(f"layer {layer.name} is not connected in model {container.name}")


def _contains(model: tf_keras.Model, target: tf_keras.layers.Layer) -> bool:
    return any(layer is target for layer in all_layers(model))


def _output_tensor(container: tf_keras.Model, target: tf_keras.layers.Layer) -> KerasTensor:
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


def cut_at(model: tf_keras.Model, layer: tf_keras.layers.Layer, source: Path) -> tf_keras.Model:
    """``model`` from its input to ``layer``'s output, as a new model sharing its weights.

    Raises:
        BackboneError: the layer's output is not a ``[batch, features]`` vector.
    """
    import tf_keras

    output = _output_tensor(model, layer)
    if len(output.shape) != 2:
        raise BackboneError(
            f"{source}: layer {layer.name} outputs {list(output.shape)}, not a feature vector "
            "[batch, features]; choose a layer after the pooling or flattening (--feature-layer)"
        )
    network = tf_keras.Model(model.inputs, output, name="backbone")
    frozen = [w.name for w in network.weights if not w.trainable and "moving_" not in w.name]
    if frozen:
        log.info(
            "%s: %d frozen weights in the file are made trainable (train_only_top_layer freezes the whole backbone)",
            source,
            len(frozen),
        )
    network.trainable = True
    return network
