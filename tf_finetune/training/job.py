"""One fine-tuning job, from a :class:`JobConfig` to a ``model.tar.gz``.

Both doors (``python -m tf_finetune`` and the SageMaker entry point) build a JobConfig and
call :func:`run`; nothing below this reads the environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tf_finetune import hyperparameters, model_folder, storage
from tf_finetune.backbones import bert_inputs, keras_import
from tf_finetune.backbones.custom_ops import register_ops_for
from tf_finetune.backbones.loading import check_requirements, local_preprocessor, local_saved_model
from tf_finetune.data import DATA_FORMS, DataSplit, Examples, load_data, load_examples
from tf_finetune.data.batching import fit_batch
from tf_finetune.errors import HyperparameterError
from tf_finetune.registry import ModelSpec
from tf_finetune.reports import data_check, image_scan
from tf_finetune.training import checkpoint, head_search, job_outputs, stopping
from tf_finetune.training.eval_metrics import extra_metrics
from tf_finetune.training.feature_store import FeatureStore
from tf_finetune.training.job_plan import (
    JobConfig,
    JobPlan,
    JobResult,
    check_backbone_task,
    check_sources,
    looks_like_text,
    plan,
    plan_local,
    require_backbone,
)

if TYPE_CHECKING:  # TensorFlow's modules: imported when the job needs them
    import tensorflow as tf

    from tf_finetune.backbones.bert_inputs import Preprocessor
    from tf_finetune.tasks import Task
    from tf_finetune.training.classifier import Backbone, Built
    from tf_finetune.training.distribute import Layout
    from tf_finetune.training.fit_loop import BestEpoch, Tracking
    from tf_finetune.training.input_streams import Streams

log = logging.getLogger(__name__)

__all__ = ["JobConfig", "JobPlan", "JobResult", "plan", "run", "looks_like_text"]


def run(config: JobConfig) -> JobResult:
    """Fine-tune the backbone on the data and write the model.

    ``s3://`` data, validation data and handles are downloaded first; an ``s3://`` output is
    uploaded at the end. Nothing is written unless the whole job succeeds: the archive
    appears atomically (locally by rename, on S3 as one complete object).

    Args:
        config: the job.

    Returns:
        Where the model went and its metrics.

    Raises:
        TfFinetuneError: any problem a user can fix, with what to do.
    """
    started = time.perf_counter()
    # Undoes process-wide settings when the job ends, however it ends, so that the next job in
    # this process (a notebook, a service) starts as this one did.
    with contextlib.ExitStack() as job_scope:
        job_scope.callback(stopping.clear_stop_request)  # a stop request is for this job only
        require_backbone(config)  # these before any download or training
        user = hyperparameters.normalize(config.hyperparameters)  # checked once: the plan takes them
        _check_locations(config)
        if config.output and not config.multi_worker:  # a cluster's workers share the output by design
            job_scope.enter_context(storage.output_lock(config.cache_dir, config.output))
        workdir = Path(job_scope.enter_context(tempfile.TemporaryDirectory(prefix="tf_finetune.")))
        job = plan_local(config, workdir, user)  # with the data local: a bare handle's task is the data's
        log.info("the data is read as %s because %s", DATA_FORMS[job.spec.task], job.task_reason)
        job = dataclasses.replace(job, spec=_localize_backbone(job.spec, workdir))
        return _run_local(job, started, workdir, job_scope)


def _check_locations(config: JobConfig) -> None:
    """Destinations that cannot be written, and inputs that cannot be found (misspelt S3 URIs,
    missing local paths), before any work."""
    if config.output:
        storage.check_destination(config.output, "--output")
    storage.check_destination(config.cache_dir, "--cache-dir")
    check_sources(config)


def _localize_backbone(spec: ModelSpec, workdir: Path) -> ModelSpec:
    """The backbone with an ``s3://`` handle downloaded into ``workdir``."""
    if not storage.is_s3(spec.handle):
        return spec
    key = hashlib.sha1(spec.handle.encode("utf-8")).hexdigest()[:12]
    return dataclasses.replace(spec, handle=storage.localize_channel(spec.handle, workdir / f"model-{key}"))


# The job's records: job_outputs.Inputs (the data), classifier.Backbone, distribute.Layout (the
# batch), classifier.Built (the compiled classifier), input_streams.Streams (the model inputs),
# job_outputs.Fitted (what training produced).


def _run_local(job: JobPlan, started: float, workdir: Path, job_scope: contextlib.ExitStack) -> JobResult:
    """The job's steps: data, backbone, model, training, evaluation, outputs."""
    inputs = _prepare_data(job)
    # TensorFlow is imported only now (bad data fails fast), and the strategy is created before
    # any other op (MultiWorkerMirroredStrategy requires it).
    from tf_finetune.training import distribute

    strategy = distribute.create_strategy(job.config.multi_worker)
    import tf_keras

    tf_keras.utils.set_random_seed(job.hyperparameters.random_seed)
    layout = _layout(strategy, job.hyperparameters, inputs.data)  # a batch too large is cut before any work
    job = dataclasses.replace(
        job, hyperparameters=hyperparameters.resolve(job.hyperparameters, {"batch_size": layout.batch_size})
    )  # what metrics.json records is what ran
    backbone = _load_backbone(job, inputs.data)
    _check_free_space(job, backbone)
    checkpoints = _open_checkpoints(job.config, backbone.spec, job.hyperparameters, inputs.data, layout.global_batch)
    built = _build_model(job, backbone, inputs.data, layout, job_scope)
    from tf_finetune.training.fit_loop import Tracking

    chief = distribute.is_chief(strategy)
    tracking = Tracking(job_outputs.tensorboard_dir(job.config, job_scope) if chief else None, checkpoints)
    fitted = _final_metrics(
        _fit(job, backbone, inputs, built, workdir, tracking), inputs.test, built, backbone.spec.task
    )
    metrics = job_outputs.metrics_record(job.config, backbone, inputs, built, fitted, time.perf_counter() - started)
    result = job_outputs.write_outputs(
        job.config, built, inputs.data, metrics, fitted.hyperparameters, workdir, chief=chief
    )
    if result.chief:
        job_outputs.write_reports(
            job.config, inputs.data, fitted.val_probabilities, fitted.history, workdir, inputs.report
        )
        if checkpoints is not None:
            checkpoints.clear()  # done: a rerun starts afresh
    return JobResult(result.archive, metrics, inputs.data.label_map, chief=result.chief)


def _prepare_data(job: JobPlan) -> job_outputs.Inputs:
    """Read the training, validation and test data once; log the data report's summary."""
    config, spec, hp = job.config, job.spec, job.hyperparameters
    data = load_data(
        spec.task,
        config.data,
        config.validation_data,
        hp.validation_split_ratio,
        hp.random_seed,
        inspect=image_scan.inspect_image,
    )
    test = (
        load_examples(spec.task, config.test_data, data.label_map, image_scan.inspect_image, data.details)
        if config.test_data
        else None
    )
    report = data_check.from_loaded(
        data,
        test,
        0.0 if config.validation_data else hp.validation_split_ratio,
        {"training": config.data, "validation": config.validation_data, "test": config.test_data},
    )
    for line in data_check.summary(report).splitlines():
        log.info("%s", line)
    if hp.binary_mode and data.label_map.num_classes != 2:
        raise HyperparameterError(
            f"binary_mode=True needs exactly two classes; the data has "
            f"{data.label_map.num_classes}: {', '.join(data.label_map.class_names)}"
        )
    class_weight = hyperparameters.class_weight_map(hp.class_weights, data.train.labels, data.label_map.num_classes)
    if class_weight:
        log.info(
            "class weights: %s", ", ".join(f"{data.label_map.class_names[c]}={w:.3g}" for c, w in class_weight.items())
        )
    return job_outputs.Inputs(data, test, report, class_weight)


def _load_backbone(job: JobPlan, data: DataSplit) -> Backbone:
    """The backbone as a local SavedModel (downloaded, built, imported or cut as needed), with
    the ops it needs registered and its BERT-style preprocessor loaded."""
    from tf_finetune.training.classifier import Backbone

    config, spec = job.config, job.spec
    check_requirements(spec)
    cache = Path(config.cache_dir)
    path = local_saved_model(
        spec.handle,
        cache,
        keras_import.KerasOptions(config.feature_layer, config.pixel_range, config.image_size, spec.task),
    )
    check_backbone_task(job, path)
    spec = keras_import.with_declared_size(spec, path)
    continuing = model_folder.is_model_folder(path)  # from a previous model
    register_ops_for(model_folder.saved_model_dir(path) if continuing else path, f"backbone {spec.id}")
    preprocessor_path = None if continuing else local_preprocessor(spec, path, cache)
    preprocessor, text_lengths = _text_preprocessor(spec, path, preprocessor_path, data)
    return Backbone(spec, path, continuing, preprocessor_path, preprocessor, text_lengths)


# The TFLite file's size as a share of the float32 weights.
_TFLITE_SHARE = {"none": 0.0, "float16": 0.5, "dynamic": 0.25, "int8": 0.25}


def _check_free_space(job: JobPlan, backbone: Backbone) -> None:
    """Refuse to train when a destination cannot hold the model: a lower bound, the backbone's
    weights once per copy (the archive, the model folder, the checkpoint, the TFLite file)."""
    saved_model = model_folder.saved_model_dir(backbone.path) if backbone.continuing else Path(backbone.path)
    weights = storage.folder_bytes(saved_model / "variables")
    config, copy = job.config, int(weights * (1 + _TFLITE_SHARE[job.hyperparameters.tflite]))
    destinations = [
        (config.output and job_outputs.output_folder(config.output), "--output", copy),
        (config.model_dir, "the model folder (SM_MODEL_DIR)", copy),
        (config.checkpoint_dir, "--checkpoint-dir", weights),
    ]
    storage.check_free_space([(folder, name, size) for folder, name, size in destinations if folder])


def _layout(strategy: tf.distribute.Strategy, hp: hyperparameters.Hyperparameters, data: DataSplit) -> Layout:
    """The replicas, the batch (cut to the training data when ``batch_size`` is larger, with a
    warning) and the steps an epoch."""
    from tf_finetune.training import distribute

    batches = fit_batch(hp.batch_size, strategy.num_replicas_in_sync, len(data.train))
    if batches.warning():
        log.warning("%s", batches.warning())
    layout = distribute.Layout(
        strategy,
        batches.replicas,
        distribute.worker_count(strategy),
        batches.batch_size,
        batches.global_batch,
        batches.steps,
    )
    # Every step is one full global batch (see training_batches): steps x global_batch
    # examples an epoch, with the data reshuffled at every pass and nothing dropped.
    log.info(
        "workers=%d replicas=%d batch_size=%d global_batch=%d steps_per_epoch=%d train=%d "
        "validation=%d examples_per_epoch=%d (full batches: a pass that ends inside a batch "
        "fills it from the next pass)",
        layout.workers,
        layout.replicas,
        layout.batch_size,
        layout.global_batch,
        layout.steps,
        len(data.train),
        len(data.validation) if data.validation else 0,
        layout.steps * layout.global_batch,
    )
    return layout


def _build_model(
    job: JobPlan, backbone: Backbone, data: DataSplit, layout: Layout, job_scope: contextlib.ExitStack
) -> Built:
    """The compiled classifier under ``layout`` and its image size; and the hyperparameters the
    tool may not choose (the user's, and all of them when continuing from a previous model)."""
    from tf_finetune.training import classifier

    hp, given = job.hyperparameters, set(job.given)
    classifier.check_jit_compile(hp, layout.strategy)
    loss_scaling = job_scope.enter_context(classifier.mixed_precision(hp))
    with layout.strategy.scope():
        if backbone.continuing:  # incremental training from a previous model
            if head_search.unset(hp, given):
                # Choices train fresh heads; this run starts from the previous model's.
                log.info("hyperparameters are not chosen when continuing from a previous model")
                given |= set(head_search.CHOOSABLE)
            previous = model_folder.read_labels(backbone.path)
            model, image_size = classifier.load_classifier(backbone.path, backbone.spec, data.label_map, previous, hp)
        else:
            model, image_size = classifier.build_classifier(
                backbone.spec, backbone.path, backbone.preprocessor, data.label_map.num_classes, hp
            )
        classifier.compile_classifier(model, hp, layout.steps * hp.epochs, loss_scaling)
    return classifier.Built(model, layout, image_size, loss_scaling, frozenset(given))


def _fit(
    job: JobPlan, backbone: Backbone, inputs: job_outputs.Inputs, built: Built, workdir: Path, tracking: Tracking
) -> job_outputs.Fitted:
    """Train: the head on cached features when the backbone is frozen and that is allowed,
    else the whole model through the backbone every epoch."""
    from tf_finetune.data.pipeline import inference_batches
    from tf_finetune.training import head_only, input_streams

    config, hp, task, data = job.config, job.hyperparameters, backbone.spec.task, inputs.data
    layout, image_size = built.layout, built.image_size
    cache, why_not = head_only.can_cache(hp, task, config.multi_worker)
    if cache and not config.feature_cache:
        cache, why_not = False, "the feature cache is turned off"
    streams = input_streams.make_streams(
        task, data, hp, layout.global_batch, image_size, workdir, cache_decoded=not cache
    )
    if cache:
        started = time.perf_counter()
        train_inputs = inference_batches(data.train.inputs, task, layout.global_batch, decoding=streams.decoding)
        store = FeatureStore.open(
            config.cache_dir,
            backbone.path,
            backbone.preprocessor_path,
            task,
            image_size,
            hp.image_resize_interpolation,
            backbone.text_lengths.get("max_seq_length"),
        )
        head = head_only.fit_head(
            built,
            data,
            {"train": train_inputs, "validation": streams.validation},
            hp,
            workdir,
            task,
            tracking=tracking,
            store=store,
        )
        return job_outputs.Fitted(
            head.history, head.scorer, head.hyperparameters, head.choices, time.perf_counter() - started
        )
    return _fit_through_backbone(job, inputs, built, streams, why_not, tracking)


def _fit_through_backbone(
    job: JobPlan, inputs: job_outputs.Inputs, built: Built, streams: Streams, why_not: str, tracking: Tracking
) -> job_outputs.Fitted:
    """Train the whole model (the backbone every epoch), on ``streams``; ``why_not`` says why
    not on cached features when only the head trains."""
    from tf_finetune.training import fit_loop
    from tf_finetune.training.scoring import Scorer

    started = time.perf_counter()
    hp, data, given, model, layout = job.hyperparameters, inputs.data, built.given, built.model, built.layout
    if hp.train_only_top_layer:
        _log_head_only_through_backbone(hp, given, why_not)
    train_batches = streams.training(data, hp, given)  # fit_loop.fit picks the first step (a resume)
    val_scorer = (
        Scorer(
            model, streams.validation, data.validation.labels, layout.strategy, hp.label_smoothing, extra_metrics(hp)
        )
        if streams.validation is not None and data.validation
        else None
    )
    keep_best = None
    if "epochs" in head_search.unset(hp, given) and val_scorer is not None and not hp.early_stopping:
        keep_best = fit_loop.BestEpoch(hp.eval_metric)
    history = fit_loop.fit(
        model,
        train_batches,
        layout.steps,
        val_scorer,
        hp,
        tracking=tracking,
        class_weight=inputs.class_weight,
        keep_best=keep_best,
    )
    hp, chosen = _kept_epochs(keep_best, hp)
    return job_outputs.Fitted(history, val_scorer, hp, chosen, time.perf_counter() - started)


def _log_head_only_through_backbone(hp: hyperparameters.Hyperparameters, given: Collection[str], why_not: str) -> None:
    """Say why only the head trains but through the backbone every epoch (``why_not``), and
    which of the hyperparameters the tool would choose are used as they are."""
    unset = [name for name in head_search.unset(hp, given) if name != "epochs"]
    log.info("head-only training through the backbone every epoch: %s", why_not)
    if unset:
        log.info(
            "%s not chosen (that needs cached features): using %s",
            ", ".join(unset),
            ", ".join(f"{name}={hp[name]}" for name in unset),
        )


def _kept_epochs(
    keep_best: BestEpoch | None, hp: hyperparameters.Hyperparameters
) -> tuple[hyperparameters.Hyperparameters, list[head_search.Choice]]:
    """``hp`` with the epochs whose weights ``keep_best`` kept, and that choice (logged); ``hp``
    and no choice when the epochs were not left to the tool."""
    if keep_best is None or keep_best.best_epoch is None:
        return hp, []
    choice = head_search.kept_epoch(keep_best.best_epoch, keep_best.scores, hp.eval_metric)
    log.info("%s", choice.describe())
    return hyperparameters.resolve(hp, {"epochs": choice.value}), [choice]


def _final_metrics(fitted: job_outputs.Fitted, test: Examples | None, built: Built, task: Task) -> job_outputs.Fitted:
    """``fitted`` with the final training, validation and test metrics, and the validation
    probabilities they came from (one prediction: the metrics and the reports count the same)."""
    from tf_finetune.data.pipeline import Decoding, inference_batches
    from tf_finetune.training import classifier, fit_loop
    from tf_finetune.training.scoring import Scorer

    hp, model, layout = fitted.hyperparameters, built.model, built.layout
    final = {"train_" + k: float(v[-1]) for k, v in fitted.history.items() if not k.startswith("val_")}
    val_probabilities = None
    if fitted.val_scorer is not None:
        val_probabilities = fitted.val_scorer.probabilities()
        val_final = {"val_" + k: v for k, v in fitted.val_scorer.metrics(val_probabilities).items()}
        final.update(val_final)
        log.info("final %s", fit_loop.format_metrics(val_final))
    if test is not None:
        batches = inference_batches(
            test.inputs, task, layout.global_batch, decoding=Decoding(built.image_size, hp.image_resize_interpolation)
        )
        test_scorer = Scorer(model, batches, test.labels, layout.strategy, hp.label_smoothing, extra_metrics(hp))
        final.update({"test_" + k: v for k, v in test_scorer.metrics().items()})
        log.info(
            "%s test_examples=%d",
            fit_loop.format_metrics({k: v for k, v in final.items() if k.startswith("test_")}),
            len(test),
        )
    log.info("weights_digest=%s", classifier.weights_digest(model))
    return dataclasses.replace(fitted, final=final, val_probabilities=val_probabilities)


def _text_preprocessor(
    spec: ModelSpec, backbone_path: str, preprocessor_path: str | None, data: DataSplit
) -> tuple[Preprocessor | None, dict[str, Any]]:
    """The loaded BERT-style preprocessor (or None), and the sequence length with how many
    training and validation texts it cuts (for ``metrics.json``'s backbone record).

    Raises:
        HyperparameterError: ``max_seq_length`` is set for a backbone without such a preprocessor.
    """
    if spec.max_seq_length and not preprocessor_path:
        why = (
            "this job continues from a previous model, whose text preprocessing is part of it"
            if model_folder.is_model_folder(backbone_path)
            else f"{spec.id} takes whole strings (it has no BERT-style preprocessor)"
        )
        raise HyperparameterError(f"max_seq_length={spec.max_seq_length} cannot be used: {why}; remove it")
    if not preprocessor_path:
        return None, {}
    preprocessor = bert_inputs.Preprocessor(preprocessor_path, spec.id)
    seq_length = preprocessor.seq_length(spec.max_seq_length)
    record: dict[str, Any] = {"max_seq_length": seq_length}
    for split, examples in (("train", data.train), ("validation", data.validation)):
        long = preprocessor.count_long(list(examples.inputs), seq_length) if examples and seq_length else None
        if long is not None:
            log.info("%s", bert_inputs.describe_long(split, long))
            record[f"{split}_texts"] = long.record()
    return preprocessor, record


def _open_checkpoints(
    config: JobConfig, spec: ModelSpec, hp: hyperparameters.Hyperparameters, data: DataSplit, global_batch: int
) -> checkpoint.Checkpoints | None:
    """The job's checkpoints, when ``checkpoint_dir`` is set (checked against what it holds)."""
    if not config.checkpoint_dir:
        return None

    identity = {
        "backbone": config.model_id or config.handle,
        "handle": config.handle if config.model_id else None,
        "task": spec.task,
        "image_size": config.image_size,
        "hyperparameters": dict(hp),
        **({"max_seq_length": spec.max_seq_length} if spec.max_seq_length else {}),
        "global_batch": global_batch,
        "feature_cache": config.feature_cache,
        "train": checkpoint.fingerprint_examples(data.train, config.data),
        "validation": checkpoint.fingerprint_examples(data.validation, config.validation_data or config.data)
        if data.validation
        else None,
        "classes": list(data.label_map.class_names),
    }
    checkpoints, resuming = checkpoint.open_checkpoints(
        config.checkpoint_dir, identity, config.checkpoint_steps, config.fresh_start
    )
    log.info("checkpoints: %s (%s)", checkpoints.directory, "resuming this job" if resuming else "new job")
    return checkpoints
