"""Head-only training that runs the frozen backbone once.

With ``train_only_top_layer`` and no augmentation, the backbone's output for an example never
changes between epochs, so running it every epoch is wasted work (it is nearly all of the
work). Here the features are computed once, streamed in batches over the strategy, kept in
memory (or in a file-backed array when large), and the classification head is trained on them
for all epochs. The head shares its layers with the full model, so exporting the full model
afterwards gives the same predictions as training it end to end.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
import tf_keras

from tf_finetune import progress
from tf_finetune.data.pipeline import inference_batches, shuffle_for_epochs, steps_per_epoch
from tf_finetune.hyperparameters import class_weight_map
from tf_finetune.tasks import Task
from tf_finetune.training import eval_metrics, fit_loop, head_search
from tf_finetune.training.eval_metrics import extra_metrics
from tf_finetune.training.feature_store import FeatureStore
from tf_finetune.training.scoring import Scorer, classification_metrics, predict_in_order

if TYPE_CHECKING:
    from tf_finetune.data import DataSplit, Examples
    from tf_finetune.hyperparameters import Hyperparameters
    from tf_finetune.training.classifier import Built

log = logging.getLogger(__name__)

MEMORY_LIMIT_BYTES = 2 << 30  # features larger than this go to a file-backed array


def can_cache(hp: Hyperparameters, task: Task, multi_worker: bool) -> tuple[bool, str]:
    """Whether the backbone's features can be computed once; and why not, when not."""
    if not hp.train_only_top_layer:
        return False, "the backbone is trained"
    if task == Task.IMAGE and hp.augmentation:
        return False, "augmentation is on, so features change every epoch; training through the backbone"
    if multi_worker:
        return False, "training on several workers"
    return True, ""


def extract_features(
    extractor: tf_keras.Model,
    batches: tf.data.Dataset,
    count: int,
    strategy: tf.distribute.Strategy,
    directory: Path,
    description: str = "features",
) -> np.ndarray:
    """The extractor's output for the first ``count`` inputs of ``batches``, in order, as
    float32 ``[count, dim]``.

    ``batches`` are full, padded batches (``inference_batches``): every replica computes its
    share of each. Kept in memory when it fits :data:`MEMORY_LIMIT_BYTES`, else in
    ``directory/features-*.npy`` (memory-mapped), filled batch by batch. On a terminal, a
    progress bar named ``description`` shows the pass.
    """
    dim = int(extractor.output.shape[-1])
    if count * dim * 4 <= MEMORY_LIMIT_BYTES:
        return predict_in_order(extractor, batches, count, strategy, progress=description)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"features-{id(batches)}.npy"
    log.info("features (%d x %d) are kept in a file: %s", count, dim, path)
    features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
    row = 0
    steps = int(batches.cardinality())
    for batch in progress.iterate(batches, steps if steps >= 0 else None, description):
        values = np.asarray(extractor.predict_on_batch(batch))[: count - row]
        features[row : row + len(values)] = values
        row += len(values)
    features.flush()
    return features


def _features(
    compute: Callable[[], np.ndarray], examples: Examples, store: FeatureStore | None, task: Task
) -> tuple[np.ndarray, str]:
    """One split's features, read from ``store`` when it has them; else computed once by
    ``compute`` (:func:`extract_features`) and kept in ``store``. Returns them and where they
    came from, in words."""
    key = store.key(examples.inputs, task) if store is not None else None
    if store is not None and key is not None:
        stored = store.load(key, len(examples))
        if stored is not None:
            return stored, f"read from {store.directory}"
    features = compute()
    if store is not None and key is not None and not isinstance(features, np.memmap):
        path = store.save(key, features)
        if path is not None:
            return features, f"computed once, kept in {store.directory} ({features.nbytes / 2**20:.1f} MiB)"
    return features, "computed once"


def _feature_lookup(features: np.ndarray) -> Callable[[tf.Tensor], tf.Tensor]:
    """A function from a batch of example indices to their feature rows: gathered from a
    tensor when the features are in memory, read from the file when they are memory-mapped
    (only the batch is read), so both give the same values."""
    if isinstance(features, np.memmap):
        dim = features.shape[1]

        def read(indices: tf.Tensor) -> tf.Tensor:
            rows = tf.numpy_function(lambda i: np.asarray(features[i]), [indices], tf.float32)
            return tf.ensure_shape(rows, [None, dim])

        return read
    table = tf.constant(features)
    return lambda indices: tf.gather(table, indices)


def _training_batches(
    features: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    num_classes: int,
    global_batch: int,
    shuffle_seed: int,
    task: Task,
    first_step: int = 0,
) -> tf.data.Dataset:
    """The endless stream of full batches of (features, one-hot labels) from batch
    ``first_step``, in the order :func:`~tf_finetune.data.pipeline.training_batches` gives the
    inputs (example indices are shuffled with the same function, then batched the same way)."""
    onehot = tf.one_hot(tf.constant(np.asarray(labels, dtype=np.int32)), num_classes)
    lookup = _feature_lookup(features)
    dataset = tf.data.Dataset.from_tensor_slices(tf.range(len(features), dtype=tf.int64))
    dataset = shuffle_for_epochs(dataset, len(features), shuffle_seed, task, start=first_step * global_batch)
    dataset = dataset.batch(global_batch, drop_remainder=True)
    return dataset.map(
        lambda i: (lookup(i), tf.gather(onehot, i)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).prefetch(tf.data.AUTOTUNE)


def _inference_batches(features: np.ndarray, global_batch: int) -> tf.data.Dataset:
    """Full, padded batches of feature rows in example order (see ``inference_batches``)."""
    lookup = _feature_lookup(features)
    indices = inference_batches(np.arange(len(features), dtype=np.int64), "index", global_batch)
    return indices.map(lookup, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@dataclass(frozen=True)
class HeadFit:
    """What :func:`fit_head` did.

    Attributes:
        history: Keras history of the final run.
        scorer: scores the trained head on the validation features (None without validation).
        hyperparameters: the hyperparameters the final run used (with the chosen values).
        choices: what was chosen (:class:`~tf_finetune.training.head_search.Choice`), in order.
    """

    history: dict[str, list[float]]
    scorer: Scorer | None
    hyperparameters: Hyperparameters
    choices: list[head_search.Choice]


def fit_head(
    built: Built,
    data: DataSplit,
    inputs: Mapping[str, tf.data.Dataset | None],
    hp: Hyperparameters,
    workdir: Path,
    task: Task,
    *,
    tracking: fit_loop.Tracking | None = None,
    store: FeatureStore | None = None,
) -> HeadFit:
    """Train the classifier's head on cached backbone features.

    The hyperparameters of :data:`~tf_finetune.training.head_search.CHOOSABLE` that are not in ``built.given``
    are chosen first (see :mod:`tf_finetune.training.head_search`), on the same features.

    Args:
        built: the full classifier (its backbone frozen; its head layers are trained in place),
            its layout (the strategy it was built under, the global batch), its loss scaling
            (the head's is the same) and the hyperparameters the user gave (never chosen).
        data: the :class:`~tf_finetune.data.DataSplit`.
        inputs: ``train`` and (optional) ``validation`` inputs from ``inference_batches``.
        hp: hyperparameters.
        workdir: where file-backed features may go.
        task: ``image`` or ``text`` (they shuffle differently: see ``shuffle_for_epochs``).
        tracking: TensorBoard logs and checkpoints (of the head) to resume from and save to, or None.
        store: read the features from, and keep them in, this store (None: compute them).

    Returns:
        The history, validation scorer, effective hyperparameters and head_search.
    """
    global_batch = built.layout.global_batch
    train_features, val_features = _all_features(built, data, inputs, workdir, store, task)
    num_classes = data.label_map.num_classes
    steps = steps_per_epoch(len(data.train), global_batch)
    search = _Search(data, train_features, val_features, hp, built, task)
    hp, chosen = head_search.choose_head(
        search.run, data.train.labels, val_features is not None, hp, head_search.unset(hp, set(built.given)), steps
    )
    head = _final_head(built, hp, train_features.shape[1], steps)
    train_batches = functools.partial(
        _training_batches, train_features, data.train.labels, num_classes, global_batch, hp.random_seed, task
    )
    scorer = _head_scorer(head, built, data, val_features, hp)
    class_weight = class_weight_map(hp.class_weights, data.train.labels, num_classes)
    history = fit_loop.fit(head, train_batches, steps, scorer, hp, tracking=tracking, class_weight=class_weight)
    return HeadFit(history, scorer, hp, chosen)


def _final_head(built: Built, hp: Hyperparameters, dim: int, steps: int) -> tf_keras.Model:
    """The compiled head of ``built``'s classifier, on ``dim`` features, with ``hp``'s L2 factor:
    it shares its layers with the classifier, so training it trains them."""
    from tf_finetune.training import classifier

    model = built.model
    classifier.set_head_l2(model, hp.regularizers_l2)
    with built.layout.strategy.scope():
        features_in = tf_keras.Input([dim], dtype=tf.float32, name="features")
        head_out = classifier.apply_layers(classifier.head_of(model), features_in)
        head = tf_keras.Model(features_in, head_out, name="head")
        classifier.compile_classifier(head, hp, steps * hp.epochs, built.loss_scaling)
    return head


def _head_scorer(
    head: tf_keras.Model, built: Built, data: DataSplit, val_features: np.ndarray | None, hp: Hyperparameters
) -> Scorer | None:
    """Scores ``head`` on the validation features (None without validation)."""
    if val_features is None:
        return None
    assert data.validation is not None  # validation features are only computed for a validation split
    return _FeatureScorer(
        head,
        _inference_batches(val_features, built.layout.global_batch),
        data.validation.labels,
        built.layout.strategy,
        hp.label_smoothing,
        extra_metrics(hp),
        val_features,
    )


def _all_features(
    built: Built,
    data: DataSplit,
    inputs: Mapping[str, tf.data.Dataset | None],
    workdir: Path,
    store: FeatureStore | None,
    task: Task,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The backbone's features of the training and (when given) validation examples."""
    started = time.perf_counter()
    model, strategy = built.model, built.layout.strategy
    with strategy.scope():  # so that predict spreads the batches over the replicas
        extractor = tf_keras.Model(model.inputs, model.get_layer("backbone").output, name="feature_extractor")
    splits = {"train": data.train, "validation": data.validation if inputs.get("validation") is not None else None}
    features, sources = {}, {}
    for name, examples in splits.items():
        if examples is not None:
            compute = functools.partial(
                extract_features, extractor, inputs[name], len(examples), strategy, workdir, f"features ({name})"
            )
            features[name], sources[name] = _features(compute, examples, store, task)
    log.info(
        "features: %s (%d x %d, %.1fs); training the head on them",
        ", ".join(f"{name} {source}" for name, source in sources.items()),
        sum(len(f) for f in features.values()),
        features["train"].shape[1],
        time.perf_counter() - started,
    )
    return features["train"], features.get("validation")


@dataclass
class _FeatureScorer(Scorer):
    """A :class:`Scorer` of the head on in-memory features: it calls the head directly
    (a dense layer on a few thousand rows), which saves ``predict``'s set-up at every epoch;
    features in a file go through ``predict`` in batches."""

    features: Any = None

    def probabilities(self) -> np.ndarray:
        if isinstance(self.features, np.memmap):
            return super().probabilities()
        return _call_in_chunks(self.model, self.features)


def _call_in_chunks(model: tf_keras.Model, features: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``model``'s outputs (inference mode) for in-memory ``features``, in order."""
    return np.concatenate(
        [np.asarray(model(features[i : i + chunk], training=False), np.float32) for i in range(0, len(features), chunk)]
    )


class _Search:
    """Trains candidate heads for :func:`~tf_finetune.training.head_search.choose_head`: fresh, seeded as
    the final head, on the same batches, on one device (a head is small), scored on the
    validation features after every epoch and stopped early."""

    def __init__(
        self,
        data: DataSplit,
        features: np.ndarray,
        val_features: np.ndarray | None,
        hp: Hyperparameters,
        built: Built,
        task: Task,
    ) -> None:
        """Candidates on ``features`` (and ``val_features``, None without validation) of ``data``'s
        splits, with ``built``'s global batch and loss scaling."""
        self.features, self.labels = features, np.asarray(data.train.labels)
        self.val_features = val_features
        self.val_labels: np.ndarray | None = None
        if val_features is not None:
            assert data.validation is not None  # validation features are only computed for a validation split
            self.val_labels = np.asarray(data.validation.labels)
        self.num_classes, self.hp, self.task = data.label_map.num_classes, hp, task
        self.global_batch = built.layout.global_batch
        self.loss_scaling = built.loss_scaling  # mixed precision rewrites these graphs too

    def run(
        self, l2: float, epochs: int, train_rows: Sequence[int] | None = None, holdout_rows: Sequence[int] | None = None
    ) -> list[float]:
        """The validation ``eval_metric`` after each epoch of a head with L2 factor ``l2``
        (fewer than ``epochs`` when it stopped early)."""
        from tf_finetune.training import classifier

        features, labels = self.features, self.labels
        val_features, val_labels = self.val_features, self.val_labels
        if train_rows is not None:
            features, labels = np.asarray(self.features[train_rows]), self.labels[train_rows]
            val_features, val_labels = np.asarray(self.features[holdout_rows]), self.labels[holdout_rows]
        # choose_head holds training rows out whenever there is no validation split
        assert val_features is not None and val_labels is not None
        steps = steps_per_epoch(len(features), self.global_batch)
        tf_keras.utils.set_random_seed(self.hp.random_seed)
        features_in = tf_keras.Input([features.shape[1]], dtype=tf.float32)
        head = tf_keras.Model(
            features_in, classifier.apply_layers(classifier.head_layers(self.num_classes, self.hp, l2), features_in)
        )
        classifier.compile_classifier(head, self.hp, steps * epochs, self.loss_scaling)
        metric = self.hp.eval_metric
        scoring = _ValidationScore(val_features, val_labels, metric)
        stop = tf_keras.callbacks.EarlyStopping(
            monitor="val_score", mode=eval_metrics.mode(metric), patience=head_search.PATIENCE
        )
        batches = _training_batches(
            features, labels, self.num_classes, self.global_batch, self.hp.random_seed, self.task
        )
        head.fit(
            batches,
            epochs=epochs,
            steps_per_epoch=steps,
            verbose=0,
            callbacks=[scoring, stop],
            class_weight=class_weight_map(self.hp.class_weights, labels, self.num_classes),
        )
        return scoring.scores


class _ValidationScore(tf_keras.callbacks.Callback):
    """``val_score`` after every epoch: the head's ``metric`` on the validation features; for
    ``loss``, the plain cross-entropy (no label smoothing and no L2 term, so that L2 strengths
    are compared on how well they predict, not on their own penalty)."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, metric: str) -> None:
        super().__init__()
        self.features, self.labels, self.metric = features, labels, metric
        self.scores: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        probabilities = _call_in_chunks(self.model, self.features)
        if self.metric in ("loss", "accuracy"):
            value = classification_metrics(probabilities, self.labels, 0.0)[self.metric]
        else:
            value = eval_metrics.score(self.metric, probabilities, self.labels)
        self.scores.append(value)
        if logs is not None:
            logs["val_score"] = value
