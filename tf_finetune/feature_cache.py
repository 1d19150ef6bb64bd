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
from tf_finetune.data.pipeline import shuffle_for_epochs
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


def extract_features(extractor: tf_keras.Model, dataset: tf.data.Dataset, count: int,
                     directory: Path) -> np.ndarray:
    """The extractor's output for every example of ``dataset`` (in order), as float32 [count, dim].

    Kept in memory when it fits :data:`MEMORY_LIMIT_BYTES`, else in ``directory/features-*.npy``
    (memory-mapped), filled batch by batch.
    """
    dim = int(extractor.output.shape[-1])
    if count * dim * 4 <= MEMORY_LIMIT_BYTES:
        return extractor.predict(dataset, verbose=0).astype(np.float32, copy=False)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"features-{id(dataset)}.npy"
    log.info("features (%d x %d) are kept in a file: %s", count, dim, path)
    features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
    row = 0
    for batch in dataset:
        values = extractor.predict_on_batch(batch[0] if isinstance(batch, tuple) else batch)
        features[row:row + len(values)] = values
        row += len(values)
    features.flush()
    return features


def _feature_dataset(features: np.ndarray, labels, num_classes: int, global_batch: int,
                     shuffle_seed: int | None, task: str) -> tf.data.Dataset:
    """Batches of (features, one-hot labels), shuffled as the image/text pipeline shuffles.

    Example indices are shuffled and batched, then each batch is gathered: from a tensor when
    the features are in memory, from the file when they are memory-mapped (only the batch is
    read), so both give the same batches in the same order.
    """
    onehot = tf.one_hot(tf.constant(np.asarray(labels, dtype=np.int32)), num_classes)
    dataset = tf.data.Dataset.from_tensor_slices(tf.range(len(features), dtype=tf.int64))
    if shuffle_seed is not None:
        dataset = shuffle_for_epochs(dataset, len(features), shuffle_seed, task)
    dataset = dataset.batch(global_batch)
    if isinstance(features, np.memmap):
        dim = features.shape[1]

        def read(indices):
            rows = tf.numpy_function(lambda i: np.asarray(features[i]), [indices], tf.float32)
            return tf.ensure_shape(rows, [None, dim]), tf.gather(onehot, indices)
    else:
        table = tf.constant(features)

        def read(indices):
            return tf.gather(table, indices), tf.gather(onehot, indices)
    return dataset.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def fit_head(model: tf_keras.Model, strategy: tf.distribute.Strategy, data, datasets: dict,
             hp, global_batch: int, total_steps: int, workdir: Path, task: str,
             tensorboard_dir: str | None = None, checkpoints=None) -> tuple[dict, dict, np.ndarray | None]:
    """Train ``model``'s classification head on cached backbone features.

    Args:
        model: the full classifier (its backbone frozen); its head layers are trained in place.
        strategy: the distribution strategy the model was built under.
        data: the :class:`~tf_finetune.data.DataSplit`.
        datasets: ``train`` and (optional) ``validation`` datasets of the inputs, unshuffled.
        hp: hyperparameters.
        global_batch: batch size across replicas.
        total_steps: steps of the whole run (for the learning-rate schedule).
        workdir: where file-backed features may go.
        task: ``image`` or ``text`` (they shuffle differently: see ``shuffle_for_epochs``).
        tensorboard_dir: TensorBoard logs, when given.
        checkpoints: resume from and save to these checkpoints (of the head), or None.

    Returns:
        (Keras history, final validation metrics ``{"val_loss": …, "val_accuracy": …}`` or {},
        validation probabilities or None).
    """
    from tf_finetune import model as model_lib

    started = time.perf_counter()
    backbone_output = model.get_layer("backbone").output
    extractor = tf_keras.Model(model.inputs, backbone_output, name="feature_extractor")
    train_features = extract_features(extractor, datasets["train"], len(data.train), workdir)
    val_features = None
    if datasets.get("validation") is not None:
        val_features = extract_features(extractor, datasets["validation"], len(data.validation), workdir)
    log.info("features computed once: %d x %d in %.1fs; training the head on them",
             len(train_features) + (len(val_features) if val_features is not None else 0),
             train_features.shape[1], time.perf_counter() - started)

    num_classes = data.label_map.num_classes
    with strategy.scope():
        features_in = tf_keras.Input([train_features.shape[1]], dtype=tf.float32, name="features")
        head_out = model.get_layer(CLASSIFIER_LAYER)(model.get_layer(DROPOUT_LAYER)(features_in))
        head = tf_keras.Model(features_in, head_out, name="head")
        model_lib.compile_classifier(head, hp, total_steps)
    train_ds = _feature_dataset(train_features, data.train.labels, num_classes, global_batch, hp.random_seed,
                                task)
    val_ds = None
    if val_features is not None:
        val_ds = _feature_dataset(val_features, data.validation.labels, num_classes, global_batch, None, task)
    history = train.fit(head, train_ds, val_ds, hp, tensorboard_dir, checkpoints)
    final, probabilities = {}, None
    if val_ds is not None:
        values = head.evaluate(val_ds, verbose=0, return_dict=True)
        final = {"val_" + k: float(v) for k, v in values.items()}
        probabilities = head.predict(val_ds, verbose=0)
    return history, final, probabilities
