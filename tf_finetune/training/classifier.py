"""The classifier: backbone, dropout and a dense softmax layer; optimizer and loss."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tensorflow as tf
import tf_keras

from tf_finetune import model_folder
from tf_finetune.backbones.bert_inputs import Preprocessor
from tf_finetune.backbones.loading import choose_image_size, fixed_image_size
from tf_finetune.backbones.tfhub import hub
from tf_finetune.errors import BackboneError, HyperparameterError, first_line
from tf_finetune.hyperparameters import Hyperparameters
from tf_finetune.registry import ModelSpec
from tf_finetune.tasks import Task
from tf_finetune.training.distribute import Layout

if TYPE_CHECKING:
    from tf_finetune.data.labels import LabelMap

log = logging.getLogger(__name__)

CLASSIFIER_LAYER = "classifier"
DROPOUT_LAYER = "dropout"
BINARY_LAYER = "binary_probabilities"  # binary_mode: one sigmoid output shown as two columns


@dataclass(frozen=True)
class Backbone:
    """A job's backbone as a local SavedModel, with its text preprocessor when it has one.

    Attributes:
        spec: the backbone as the job uses it (its handle local).
        path: the local SavedModel, or the previous model's folder when continuing.
        continuing: the backbone is a previous fine-tuned model: incremental training.
        preprocessor_path: the local BERT-style text preprocessor, or None.
        preprocessor: that preprocessor, loaded, or None.
        text_lengths: the sequence length and how many texts it cuts (``metrics.json``'s backbone record).
    """

    spec: ModelSpec
    path: str
    continuing: bool
    preprocessor_path: str | None = None
    preprocessor: Preprocessor | None = None
    text_lengths: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Built:
    """A job's compiled classifier, the layout it trains under, and what was decided building it.

    Attributes:
        model: the compiled classifier.
        layout: the strategy it was built under, its batch and its steps an epoch.
        image_size: its input size (image task), else None.
        loss_scaling: dynamic loss scaling, under mixed precision (:func:`mixed_precision`).
        given: the hyperparameters the tool may not choose.
    """

    model: tf_keras.Model
    layout: Layout
    image_size: int | None
    loss_scaling: bool
    given: frozenset[str]


def _cannot_take(spec: ModelSpec, image_size: int | None, exc: Exception) -> BackboneError:
    """The error for a backbone that fails on the model's inputs: too small an image, or the
    wrong task (naming the input the backbone takes)."""
    if image_size and "Negative dimension size" in str(exc):  # pooling/strides shrink it below 1
        return BackboneError(
            f"image_size {image_size} is too small for backbone {spec.id}: its strides "
            "and pooling shrink the image below one pixel; use a larger --image-size "
            "(224 is usual)"
        )
    expected = (
        f"float32 images [batch, {image_size}, {image_size}, 3] in [0, 1]"
        if spec.task == Task.IMAGE
        else "a batch of strings"
    )
    takes = re.search(r"Option 1:\s+Positional arguments \(\d+ total\):\s+\* (TensorSpec\(.*\))", str(exc))
    cause = f"it takes {takes.group(1)}" if takes else first_line(exc)
    return BackboneError(
        f"backbone {spec.id} cannot take {expected} ({spec.task.with_article} feature extractor is needed): {cause}"
    )


def build_classifier(
    spec: ModelSpec, backbone_path: str, preprocessor: Preprocessor | None, num_classes: int, hp: Hyperparameters
) -> tuple[tf_keras.Model, int | None]:
    """Backbone -> Dropout -> Dense(num_classes, L2, softmax) (see :func:`head_layers`). Call
    inside ``strategy.scope()``.

    Args:
        spec: the backbone description (task, output key, requested image size).
        backbone_path: local SavedModel folder of the backbone.
        preprocessor: the loaded text preprocessing model (its sequence length from
            ``spec.max_seq_length``), or None.
        num_classes: width of the output.
        hp: hyperparameters (dropout_rate, regularizers_l2, train_only_top_layer, random_seed).

    Returns:
        (the model, the image size used or None for text).

    Raises:
        BackboneError: the SavedModel does not fit the task (wrong input type or size, or an
            output that is not a feature vector).
    """
    trainable = spec.fine_tunable and not hp.train_only_top_layer
    try:
        layer = hub.KerasLayer(backbone_path, trainable=trainable, output_key=spec.output_key, name="backbone")
    except (ValueError, TypeError) as exc:  # e.g. a SavedModel with signatures but no __call__
        raise BackboneError(
            f"backbone {spec.id} is not a TF-Hub reusable SavedModel (no callable "
            f"model: {first_line(exc)}); export it with tf.saved_model.save of a "
            "Keras model or tf.Module that has __call__"
        ) from None
    image_size = None
    if spec.task == Task.IMAGE:
        image_size = choose_image_size(spec, fixed_image_size(layer))
        inputs = tf_keras.Input([image_size, image_size, 3], dtype=tf.float32, name="image")
    else:
        inputs = tf_keras.Input([], dtype=tf.string, name="text")
    try:
        x = inputs
        if preprocessor is not None:
            x = preprocessor.keras_layers(spec.max_seq_length)(x)
        features = layer(x)
    except (ValueError, TypeError, tf.errors.OpError) as exc:
        raise _cannot_take(spec, image_size, exc) from None
    if isinstance(features, dict) or len(features.shape) != 2:
        shape = sorted(features) if isinstance(features, dict) else features.shape
        raise BackboneError(
            f"backbone {spec.id} does not return a feature vector "
            f"[batch, dim] (got {shape}); is it a TF-Hub feature-vector model?"
        )
    model = tf_keras.Model(inputs, apply_layers(head_layers(num_classes, hp), features), name="tf_finetune_classifier")
    log.info(
        "model: backbone %s (%s, %d features) -> dropout %.2f -> dense %s",
        spec.id,
        "trainable" if trainable else "frozen",
        features.shape[-1],
        hp.dropout_rate,
        "1 (sigmoid, binary_mode)" if hp.binary_mode else num_classes,
    )
    return model, image_size


def head_layers(
    num_classes: int, hp: Hyperparameters, regularizers_l2: float | None = None
) -> list[tf_keras.layers.Layer]:
    """The new classification head, seeded: Dropout, then Dense(num_classes, L2, softmax).

    With ``binary_mode`` (two classes) the dense layer has one output ``z`` instead, and a
    fixed layer turns it into the two columns ``[1 - sigmoid(z), sigmoid(z)]`` (a softmax of
    ``[0, z]``), so the loss is the binary cross-entropy, class 1 wins at 0.5, and serving
    still returns one probability per class.

    Args:
        num_classes: width of the output.
        hp: dropout_rate, regularizers_l2, binary_mode and random_seed.
        regularizers_l2: this L2 factor instead of ``hp.regularizers_l2``.

    Returns:
        The layers, in order, not yet called (see :func:`apply_layers`).
    """
    l2 = hp.regularizers_l2 if regularizers_l2 is None else regularizers_l2
    # A tf.random.Generator ("stateful"), which train.DropoutSeeds seeds at every step (a resumed run
    # draws the masks of the uninterrupted one); Keras's default kernel-held state cannot be set.
    dropout = tf_keras.layers.Dropout(hp.dropout_rate, seed=hp.random_seed, name=DROPOUT_LAYER, rng_type="stateful")
    classifier = tf_keras.layers.Dense(
        1 if hp.binary_mode else num_classes,
        activation=None if hp.binary_mode else "softmax",
        name=CLASSIFIER_LAYER,
        kernel_regularizer=tf_keras.regularizers.l2(l2),
        kernel_initializer=tf_keras.initializers.GlorotUniform(seed=hp.random_seed),
    )
    if not hp.binary_mode:
        return [dropout, classifier]
    two_columns = tf_keras.layers.Dense(
        2,
        activation="softmax",
        name=BINARY_LAYER,
        trainable=False,
        kernel_initializer=tf_keras.initializers.Constant([[0.0, 1.0]]),
        bias_initializer="zeros",
    )
    return [dropout, classifier, two_columns]


def head_of(model: tf_keras.Model) -> list[tf_keras.layers.Layer]:
    """The head layers of a built classifier, in order (as :func:`head_layers` made them)."""
    names = [DROPOUT_LAYER, CLASSIFIER_LAYER] + ([BINARY_LAYER] if has_binary_head(model) else [])
    return [model.get_layer(name) for name in names]


def has_binary_head(model: tf_keras.Model) -> bool:
    """Whether ``model`` was built with ``binary_mode``."""
    return any(layer.name == BINARY_LAYER for layer in model.layers)


def apply_layers(layers: list[tf_keras.layers.Layer], x: tf.Tensor) -> tf.Tensor:
    """``x`` through ``layers`` in order."""
    for layer in layers:
        x = layer(x)
    return x


def set_head_l2(model: tf_keras.Model, factor: float) -> None:
    """Change the L2 factor of ``model``'s classification layer before it is trained.

    The layer's regularization loss reads the regularizer object it was built with, so
    changing the factor there changes the loss (at the next trace) and the saved config.
    """
    model.get_layer(CLASSIFIER_LAYER).kernel_regularizer.l2 = tf_keras.backend.cast_to_floatx(factor)


def load_classifier(
    previous_model: str, spec: ModelSpec, label_map: LabelMap, previous_labels: LabelMap, hp: Hyperparameters
) -> tuple[tf_keras.Model, int | None]:
    """A previously fine-tuned model (incremental training). Call inside ``strategy.scope()``.

    ``reinitialize_top_layer`` Auto or False keeps its trained classification layer; True draws
    new weights. ``train_only_top_layer`` freezes or unfreezes its backbone as for a new model.

    Args:
        previous_model: the previous model folder (``1/``, ``labels.json``).
        spec: the backbone description (task, fine-tunable).
        label_map: the classes of the new training data.
        previous_labels: the previous model's classes.
        hp: hyperparameters.

    Returns:
        (the model, its image size or None for text).

    Raises:
        BackboneError: the classes differ (listed) or are named otherwise, or the model does not fit the task.
    """
    model = tf_keras.models.load_model(
        str(model_folder.saved_model_dir(previous_model)), compile=False, custom_objects={"KerasLayer": hub.KerasLayer}
    )
    task = Task.TEXT if model.inputs[0].dtype == tf.string else Task.IMAGE
    if task != spec.task:
        raise BackboneError(
            f"cannot continue training {spec.id}: it is a {task} model and the data is {spec.task} data"
        )
    mismatch = label_map.mismatch(previous_labels)
    if mismatch:
        raise BackboneError(f"cannot continue training {spec.id}: {mismatch}")
    if has_binary_head(model) != hp.binary_mode:
        raise HyperparameterError(
            f"binary_mode={hp.binary_mode} does not match the previous model {spec.id}, which was "
            f"trained with binary_mode={not hp.binary_mode}; pass binary_mode={not hp.binary_mode}"
        )
    model.get_layer("backbone").trainable = spec.fine_tunable and not hp.train_only_top_layer
    head = model.get_layer(CLASSIFIER_LAYER)
    if hp.reinitialize_top_layer == "True":
        initializer = tf_keras.initializers.GlorotUniform(seed=hp.random_seed)
        head.kernel.assign(initializer(head.kernel.shape))
        head.bias.assign(tf.zeros_like(head.bias))
    image_size = int(model.inputs[0].shape[1]) if task == Task.IMAGE else None
    log.info(
        "continuing from %s (%s classification layer, backbone %s)",
        spec.id,
        "new" if hp.reinitialize_top_layer == "True" else "trained",
        "trainable" if model.get_layer("backbone").trainable else "frozen",
    )
    return model, image_size


class WarmupLinearDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate rising linearly from 0 over ``warmup_steps``, then falling linearly to 0."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int) -> None:
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step: tf.Tensor | int) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        warmup = tf.constant(float(max(self.warmup_steps, 1)))
        rise = self.peak * step / warmup
        fall = self.peak * tf.maximum(
            0.0, (self.total_steps - step) / float(max(self.total_steps - self.warmup_steps, 1))
        )
        return tf.where(step < self.warmup_steps, rise, fall)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def make_optimizer(hp: Hyperparameters, total_steps: int) -> tf_keras.optimizers.Optimizer:
    """The optimizer named by ``hp.optimizer`` with its hyperparameters.

    ``adamw`` follows the BERT recipe: warmup over ``warmup_steps_fraction`` of all steps,
    then linear decay to 0.
    """
    opt = tf_keras.optimizers
    name, lr = hp.optimizer, hp.learning_rate
    if name == "adam":
        optimizer, kwargs = opt.Adam, {"beta_1": hp.beta_1, "beta_2": hp.beta_2, "epsilon": hp.epsilon}
    elif name == "adamw":
        lr = WarmupLinearDecay(lr, math.ceil(hp.warmup_steps_fraction * total_steps), total_steps)
        optimizer, kwargs = opt.AdamW, {"beta_1": hp.beta_1, "beta_2": hp.beta_2, "epsilon": hp.epsilon}
    elif name in ("sgd", "nesterov"):
        optimizer, kwargs = opt.SGD, {"momentum": hp.momentum, "nesterov": name == "nesterov"}
    elif name == "rmsprop":
        optimizer, kwargs = opt.RMSprop, {"rho": hp.rho, "momentum": hp.momentum, "epsilon": hp.epsilon}
    elif name == "adagrad":
        optimizer, kwargs = (
            opt.Adagrad,
            {"initial_accumulator_value": hp.initial_accumulator_value, "epsilon": hp.epsilon},
        )
    elif name == "adadelta":
        optimizer, kwargs = opt.Adadelta, {"rho": hp.rho, "epsilon": hp.epsilon}
    else:
        raise HyperparameterError(f"optimizer {name!r} is not supported")
    return _padding(optimizer)(lr, **kwargs)


if TYPE_CHECKING:  # the mixin is only ever combined with a Keras optimizer (see _padding)
    from tf_keras.optimizers import Optimizer as _Optimizer
else:
    _Optimizer = object


class _NeverEmptySparseGradients(_Optimizer):
    """Optimizer mixin: every sparse gradient reaches the cross-replica sum with a row.

    A backbone that gathers rows of an embedding (a text module) has a sparse gradient with
    one row per word it found; a batch without a known word has none. TensorFlow's collective
    all-gather of IndexedSlices crashes the process (segmentation fault in
    ``CollectiveRemoteAccessLocal::MemCpyAsync``) when every replica's share is empty, so
    each replica adds one zero row for row 0: the sum, and so every optimizer's update, is
    unchanged (a scatter-add of zeros).
    """

    def aggregate_gradients(
        self, grads_and_vars: list[tuple[tf.Tensor | tf.IndexedSlices, tf.Variable]]
    ) -> list[tuple[tf.Tensor | tf.IndexedSlices, tf.Variable]]:
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            grads_and_vars = [(_with_zero_row(g), v) for g, v in grads_and_vars]
        return super().aggregate_gradients(grads_and_vars)


def _with_zero_row(gradient: tf.Tensor | tf.IndexedSlices) -> tf.Tensor | tf.IndexedSlices:
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    values = gradient.values
    zero_row = tf.zeros(tf.concat([[1], tf.shape(values)[1:]], 0), values.dtype)
    return tf.IndexedSlices(
        tf.concat([values, zero_row], 0),
        tf.concat([gradient.indices, tf.zeros([1], gradient.indices.dtype)], 0),
        gradient.dense_shape,
    )


@functools.cache
def _padding(optimizer_class: type) -> type:
    """``optimizer_class`` with :class:`_NeverEmptySparseGradients` (same name in configs)."""
    return type(optimizer_class.__name__, (_NeverEmptySparseGradients, optimizer_class), {})


@contextlib.contextmanager
def mixed_precision(hp: Hyperparameters) -> Iterator[bool]:
    """Automatic mixed precision for one job, when ``hp.mixed_precision`` asks and a GPU is present.

    A hub backbone is a fixed float32 graph, so a Keras dtype policy would not reach inside
    it; Grappler's automatic mixed precision rewrites the whole training graph instead,
    keeping float32 where float16 is unsafe. The setting is process-wide, so it is put back
    as it was when the job ends, however it ends (the next job in the process, a notebook
    or a service, starts as it would have).

    Yields:
        Whether it is on (then every optimizer needs loss scaling: see :func:`compile_classifier`).
    """
    if not hp.mixed_precision:
        yield False
        return
    if not tf.config.list_logical_devices("GPU"):
        log.warning("mixed_precision=True is ignored: no GPU (float16 on CPUs is slower)")
        yield False
        return
    log.info("automatic mixed precision (float16) with dynamic loss scaling")
    with grappler_option("auto_mixed_precision", True):
        yield True


@contextlib.contextmanager
def grappler_option(name: str, value: bool | int) -> Iterator[None]:
    """Set one of ``tf.config.optimizer``'s experimental options, and restore it on exit."""
    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({name: value})
    try:
        yield
    finally:
        # The getter lists only options that were set; an unset boolean option is off.
        tf.config.optimizer.set_experimental_options({name: before.get(name, False)})


def check_jit_compile(hp: Hyperparameters, strategy: tf.distribute.Strategy) -> None:
    """Refuse XLA on a CPU split into several logical devices, which XLA cannot run.

    Raises:
        HyperparameterError: ``jit_compile`` with more than one CPU replica.
    """
    if hp.jit_compile and strategy.num_replicas_in_sync > 1 and not tf.config.list_logical_devices("GPU"):
        raise HyperparameterError(
            f"jit_compile=True cannot run on {strategy.num_replicas_in_sync} logical CPU devices "
            "(XLA cannot reach variables placed on another CPU device): drop --cpu-devices or "
            "jit_compile"
        )


def compile_classifier(
    model: tf_keras.Model, hp: Hyperparameters, total_steps: int, loss_scaling: bool = False
) -> None:
    """Attach optimizer, label-smoothed cross-entropy and accuracy. Call inside the strategy scope.

    Args:
        model: the classifier (or the head alone).
        hp: optimizer settings and ``jit_compile``.
        total_steps: steps of the whole run, for learning-rate schedules.
        loss_scaling: wrap the optimizer in dynamic loss scaling (for float16 training).
    """
    optimizer = make_optimizer(hp, total_steps)
    if loss_scaling:
        optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
        metrics=[tf_keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=hp.jit_compile,
    )
    # The optimizer's slots exist before fit: otherwise the first call of the train function
    # creates them, tf.function traces it twice, and each trace takes the seeded dropout's next
    # seed, so a run would differ with and without a checkpoint (whose restore builds them).
    optimizer.build(model.trainable_variables)


def weights_digest(model: tf_keras.Model) -> str:
    """A short SHA-256 of all the model's weights, to compare replicas, workers and runs."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()[:16]
