"""The signatures the exported SavedModel serves: what users send in, what they get back.

``serving_default`` takes what clients actually have: raw JPEG/PNG bytes (image models) or raw
strings (text models), preprocesses them with the training code's own functions, and returns
``probabilities``, the predicted class name (``label``) and its index (``class_index``).
Image models also keep ``serving_images`` for batches of already-decoded float images.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tf_keras

from tf_finetune.data.pipeline import decode_image_bytes
from tf_finetune.tasks import Task

DEFAULT_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "serving_images"


def make_signatures(
    model: tf_keras.Model,
    task: Task,
    class_names: Sequence[str],
    image_size: int | None = None,
    interpolation: str = "bilinear",
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """Concrete functions to save with ``model`` as its signatures.

    Args:
        model: the trained classifier (image input ``[batch, size, size, 3]`` or string input).
        task: ``image`` or ``text``.
        class_names: class names in index order.
        image_size: the model's input size (image task).
        interpolation: the resize method used in training.

    Returns:
        signature name -> concrete function.
    """
    names = tf.constant(list(class_names), dtype=tf.string)

    def answer(probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "label": tf.gather(names, index), "class_index": index}

    if task == Task.TEXT:

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(text: tf.Tensor) -> dict[str, tf.Tensor]:
            return answer(model(text, training=False))

        return {DEFAULT_SIGNATURE: serve_text.get_concrete_function()}

    assert image_size is not None, "image models need image_size"
    decoded = tf.TensorSpec([image_size, image_size, 3], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(
            lambda data: decode_image_bytes(data, image_size, interpolation), image_bytes, fn_output_signature=decoded
        )
        return answer(model(images, training=False))

    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="image")])
    def serve_images(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return answer(model(image, training=False))

    return {
        DEFAULT_SIGNATURE: serve_bytes.get_concrete_function(),
        IMAGES_SIGNATURE: serve_images.get_concrete_function(),
    }
