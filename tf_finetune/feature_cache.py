"""Head-only training that runs the frozen backbone once.

With ``train_only_top_layer`` and no augmentation, the backbone's output for an example never
changes between epochs, so running it every epoch is wasted work (it is nearly all of the
work). Here the features are computed once, streamed in batches over the strategy, kept in
memory (or in a file-backed array when large), and the classification head is trained on them
for all epochs. The head shares its layers with the full model, so exporting the full model
afterwards gives the same predictions as training it end to end.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tf_finetune import train
from tf_finetune.data.pipeline import inference_batches, shuffle_for_epochs
from tf_finetune.inference import Scorer, predict_in_order
from tf_finetune.model import CLASSIFIER_LAYER, DROPOUT_LAYER

log = logging.getLogger(__name__)

MEMORY_LIMIT_BYTES = 2 << 30  # features larger than this go to a file-backed array


def can_cache(hp, task: str, multi_worker: bool) -> tuple[bool, str]:
    """Whether the backbone's features can be computed once; and why not, when not."""
    if not hp.train_only_top_layer:
        return False, "the backbone is trained"
    if task == "image" and hp.augmentation:
        return False, "augmentation is on, so features change every epoch; training through the backbone"
    if multi_worker:
        return False, "training on several workers"
    return True, ""


def extract_features(extractor: tf_keras.Model, batches: tf.data.Dataset, count: int,
                     strategy: tf.distribute.Strategy, directory: Path) -> np.ndarray:
    """The extractor's output for the first ``count`` inputs of ``batches``, in order, as
    float32 ``[count, dim]``.

    ``batches`` are full, padded batches (``inference_batches``): every replica computes its
    share of each. Kept in memory when it fits :data:`MEMORY_LIMIT_BYTES`, else in
    ``directory/features-*.npy`` (memory-mapped), filled batch by batch.
    """
    dim = int(extractor.output.shape[-1])
    if count * dim * 4 <= MEMORY_LIMIT_BYTES:
        return predict_in_order(extractor, batches, count, strategy)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"features-{id(batches)}.npy"
    log.info("features (%d x %d) are kept in a file: %s", count, dim, path)
    features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
    row = 0
    for batch in batches:
        values = np.asarray(extractor.predict_on_batch(batch))[:count - row]
        features[row:row + len(values)] = values
        row += len(values)
    features.flush()
    return features


def _feature_lookup(features: np.ndarray):
    """A function from a batch of example indices to their feature rows: gathered from a
    tensor when the features are in memory, read from the file when they are memory-mapped
    (only the batch is read), so both give the same values."""
    if isinstance(features, np.memmap):
        dim = features.shape[1]

        def read(indices):
            rows = tf.numpy_function(lambda i: np.asarray(features[i]), [indices], tf.float32)
            return tf.ensure_shape(rows, [None, dim])
        return read
    table = tf.constant(features)
    return lambda indices: tf.gather(table, indices)


def _training_batches(features: np.ndarray, labels, num_classes: int, global_batch: int,
                      shuffle_seed: int, task: str) -> tf.data.Dataset:
    """The endless stream of full batches of (features, one-hot labels), in the order
    :func:`~tf_finetune.data.pipeline.training_batches` gives the inputs (example indices
    are shuffled with the same function, then batched the same way)."""
    onehot = tf.one_hot(tf.constant(np.asarray(labels, dtype=np.int32)), num_classes)
    lookup = _feature_lookup(features)
    dataset = tf.data.Dataset.from_tensor_slices(tf.range(len(features), dtype=tf.int64))
    dataset = shuffle_for_epochs(dataset, len(features), shuffle_seed, task)
    dataset = dataset.repeat().batch(global_batch, drop_remainder=True)
    return dataset.map(lambda i: (lookup(i), tf.gather(onehot, i)), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True).prefetch(tf.data.AUTOTUNE)


def _inference_batches(features: np.ndarray, global_batch: int) -> tf.data.Dataset:
    """Full, padded batches of feature rows in example order (see ``inference_batches``)."""
    lookup = _feature_lookup(features)
    indices = inference_batches(np.arange(len(features), dtype=np.int64), "index", global_batch)
    return indices.map(lookup, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def fit_head(model: tf_keras.Model, strategy: tf.distribute.Strategy, data, inputs: dict,
             hp, global_batch: int, steps_per_epoch: int, workdir: Path, task: str,
             loss_scaling: bool = False, tensorboard_dir: str | None = None,
             checkpoints=None) -> tuple[dict, Scorer | None]:
    """Train ``model``'s classification head on cached backbone features.

    Args:
        model: the full classifier (its backbone frozen); its head layers are trained in place.
        strategy: the distribution strategy the model was built under.
        data: the :class:`~tf_finetune.data.DataSplit`.
        inputs: ``train`` and (optional) ``validation`` inputs from ``inference_batches``.
        hp: hyperparameters.
        global_batch: batch size across replicas.
        steps_per_epoch: training steps per epoch.
        workdir: where file-backed features may go.
        task: ``image`` or ``text`` (they shuffle differently: see ``shuffle_for_epochs``).
        loss_scaling: dynamic loss scaling, as the full model has under mixed precision.
        tensorboard_dir: TensorBoard logs, when given.
        checkpoints: resume from and save to these checkpoints (of the head), or None.

    Returns:
        (Keras history, a scorer of the trained head on the validation features, or None
        without validation data).
    """
    from tf_finetune import model as model_lib

    started = time.perf_counter()
    with strategy.scope():  # so that predict spreads the batches over the replicas
        extractor = tf_keras.Model(model.inputs, model.get_layer("backbone").output,
                                   name="feature_extractor")
    train_features = extract_features(extractor, inputs["train"], len(data.train), strategy, workdir)
    val_features = None
    if inputs.get("validation") is not None:
        val_features = extract_features(extractor, inputs["validation"], len(data.validation),
                                        strategy, workdir)
    log.info("features computed once: %d x %d in %.1fs; training the head on them",
             len(train_features) + (len(val_features) if val_features is not None else 0),
             train_features.shape[1], time.perf_counter() - started)

    num_classes = data.label_map.num_classes
    with strategy.scope():
        features_in = tf_keras.Input([train_features.shape[1]], dtype=tf.float32, name="features")
        head_out = model.get_layer(CLASSIFIER_LAYER)(model.get_layer(DROPOUT_LAYER)(features_in))
        head = tf_keras.Model(features_in, head_out, name="head")
        model_lib.compile_classifier(head, hp, steps_per_epoch * hp.epochs, loss_scaling)
    train_ds = _training_batches(train_features, data.train.labels, num_classes, global_batch,
                                 hp.random_seed, task)
    scorer = None
    if val_features is not None:
        scorer = Scorer(head, _inference_batches(val_features, global_batch), data.validation.labels,
                        strategy, hp.label_smoothing)
    history = train.fit(head, train_ds, steps_per_epoch, scorer, hp, tensorboard_dir, checkpoints)
    return history, scorer
