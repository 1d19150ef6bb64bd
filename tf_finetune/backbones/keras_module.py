"""The cut Keras network as a TF-Hub image feature-vector module, saved whole or not at all."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tf_finetune import storage
from tf_finetune.backbones.keras_graph import all_layers
from tf_finetune.errors import BackboneError

if TYPE_CHECKING:  # TensorFlow only when a module is made
    import tensorflow as tf
    import tf_keras
    from tensorflow.types.experimental import PolymorphicFunction

log = logging.getLogger(__name__)


def make_module(
    network: tf_keras.Model,
    pixel_range: tuple[float, float],
    declared: int | None,
    image_size: int | None,
    source: Path,
) -> tuple[tf.train.Checkpoint, bool, int | None]:
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
            raise BackboneError(
                f"{source}: the network takes neither any image size nor a declared one; pass --image-size"
            ) from None
        log.info(
            "%s takes %dx%d images only (%s)", source, size, size, (str(exc).strip().splitlines() or [""])[0][:120]
        )
        module = _HubImageModule(network, pixel_range)
        spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="inputs")
        for training in (False, True):
            module.__call__.get_concrete_function(spec, training=training)
        return module, False, size


def save_module(
    module: tf.train.Checkpoint, target: Path, any_size: bool, size: int | None, extra_files: dict[str, str]
) -> None:
    """Save ``module`` at ``target`` with ``extra_files`` (name -> text) beside it, atomically:
    written into a hidden folder next to ``target``, then renamed."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, None if any_size else size, None if any_size else size, 3], tf.float32, name="inputs")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="." + target.name + ".", dir=target.parent))
    try:
        tf.saved_model.save(
            module,
            str(staging),
            signatures={"serving_default": module.__call__.get_concrete_function(spec, training=False)},
        )
        for name, text in extra_files.items():
            (staging / name).write_text(text, "utf-8")
        storage.move_into_place(staging, target)  # or keep another process's finished copy
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _regularizer_functions(network: tf_keras.Model) -> list[PolymorphicFunction]:
    import tensorflow as tf

    functions = []
    for layer in all_layers(network):
        for attribute, regularizer_name in _REGULARIZED.items():
            regularizer = getattr(layer, regularizer_name, None)
            weight = getattr(layer, attribute, None)
            if regularizer is not None and isinstance(weight, tf.Variable):
                functions.append(tf.function(_penalty(regularizer, weight), input_signature=[]))
    return functions


def _penalty(regularizer: tf_keras.regularizers.Regularizer, weight: tf.Variable) -> Callable[[], tf.Tensor]:
    # A closure, not a lambda with default arguments: SavedModel cannot encode those.
    return lambda: regularizer(weight)


_REGULARIZED = {
    "kernel": "kernel_regularizer",
    "bias": "bias_regularizer",
    "depthwise_kernel": "depthwise_regularizer",
    "pointwise_kernel": "pointwise_regularizer",
    "embeddings": "embeddings_regularizer",
    "gamma": "gamma_regularizer",
    "beta": "beta_regularizer",
}


def _tracked_module_class() -> type[tf.train.Checkpoint]:
    import tensorflow as tf

    class HubImageModule(tf.train.Checkpoint):
        """Reusable SavedModel object: images in [0, 1] -> the cut network's features."""

        def __init__(self, network: tf_keras.Model, pixel_range: tuple[float, float]) -> None:
            super().__init__()
            low, high = (float(v) for v in pixel_range)
            # A closure, not a tracked attribute: the SavedModel holds this object's own
            # functions and variables, not a Keras model.
            self._features = lambda x, training: network(low + x * (high - low), training=training)
            self.variables = list(network.variables)
            self.trainable_variables = list(network.trainable_variables)
            self.regularization_losses = _regularizer_functions(network)

        @tf.function
        def __call__(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
            # training=True runs BatchNorm in batch mode and updates its moving statistics;
            # hub.KerasLayer passes it only when the layer is trainable and the model trains.
            return self._features(inputs, training)

    return HubImageModule


def _HubImageModule(network: tf_keras.Model, pixel_range: tuple[float, float]) -> tf.train.Checkpoint:  # noqa: N802 (built lazily: no TensorFlow at import)
    return _tracked_module_class()(network, pixel_range)
