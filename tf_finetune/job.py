"""One fine-tuning job, from a :class:`JobConfig` to a ``model.tar.gz``.

Both doors (``python -m tf_finetune`` and the SageMaker entry point) build a JobConfig and
call :func:`run`; nothing below this reads the environment.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from tf_finetune import checkpoint, choices, hyperparameters, model_folder, storage
from tf_finetune.backbone import BackboneSpec, check_requirements, resolve_handle, resolve_preprocessor
from tf_finetune.custom_ops import register_ops_for
from tf_finetune.data import DataSplit, load_data, load_examples
from tf_finetune.errors import HyperparameterError
from tf_finetune.registry import load_registry

log = logging.getLogger(__name__)

OUTPUT_SUBDIR = "output"


@dataclass(frozen=True)
class JobConfig:
    """What to fine-tune, on what, and where the result goes.

    Attributes:
        data: training data: a class-folder root (images) or a data.csv / its folder (text);
            local or ``s3://``.
        output: the model location, local or ``s3://``; the archive goes to
            ``<output>/output/model.tar.gz``.
        model_id: registry id of the backbone (or give ``handle``).
        handle: a backbone handle (folder, .tar.gz, s3://, URL, builtin:). With ``model_id``
            it says where that entry's SavedModel is (e.g. the SageMaker ``model`` channel).
        validation_data: separate validation data (local or ``s3://``); else a split of ``data``.
        test_data: held-out data evaluated once after training (``test_*`` metrics).
        hyperparameters: user values (any accepted spelling, strings or Python values).
        image_size: input size for handles that do not fix theirs (overrides the registry).
        max_seq_length: text with a BERT-style preprocessor: the sequence length texts are
            packed to (default: the preprocessor's own, 128 for TF-Hub's BERT preprocessors).
        registry: a registry YAML instead of the packaged one.
        cache_dir: where built-in backbones and extracted archives are kept.
        model_dir: when set, also leave the unpacked model folder here (SageMaker's model dir).
        report_dir: where training curves, the validation confusion matrix and evaluation.json
            go; default ``<output>/output/reports`` (uploaded there for ``s3://`` outputs).
        tensorboard_dir: TensorBoard logs; default ``<output>/output/tensorboard`` for a local
            output, none otherwise.
        feature_cache: with a frozen backbone and no augmentation, compute its features once
            and train the head on them (False: run the backbone every epoch).
        multi_worker: train across several hosts (``TF_CONFIG`` describes the cluster); only the
            chief writes outputs.
        checkpoint_dir: save the training state here every epoch (and on SIGTERM, see
            :mod:`tf_finetune.checkpoint`) and resume from it when it holds this job's checkpoint.
        checkpoint_steps: also save every this many steps (0: at epoch ends only).
        fresh_start: discard a checkpoint of another job in ``checkpoint_dir`` instead of
            refusing to start.
        feature_layer: a Keras model file as the backbone: the layer to cut at (default: the
            input of its classification head).
        pixel_range: a Keras model file as the backbone: the pixel range it was trained on
            (``0,1``, ``-1,1``, ``0,255``) when the model does not show it.
    """

    data: str
    output: str | None
    model_id: str | None = None
    handle: str | None = None
    validation_data: str | None = None
    test_data: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    max_seq_length: int | None = None
    registry: str | None = None
    cache_dir: str = str(Path.home() / ".cache" / "tf_finetune")
    model_dir: str | None = None
    report_dir: str | None = None
    tensorboard_dir: str | None = None
    multi_worker: bool = False
    feature_cache: bool = True
    checkpoint_dir: str | None = None
    checkpoint_steps: int = 0
    fresh_start: bool = False
    feature_layer: str | None = None
    pixel_range: str | None = None


@dataclass(frozen=True)
class JobResult:
    """What a finished job produced.

    Attributes:
        archive: where ``model.tar.gz`` went, a path or ``s3://`` URI (None when only
            ``model_dir`` was asked for, or on a worker that is not the chief).
        metrics: the content of ``metrics.json``.
        label_map: the class names.
        chief: whether this process wrote the outputs (False on other workers of a cluster).
    """

    archive: Path | str | None
    metrics: dict[str, Any]
    label_map: Any
    chief: bool = True


def plan(config: JobConfig) -> tuple[BackboneSpec, hyperparameters.Hyperparameters]:
    """The backbone and the effective hyperparameters of ``config``, checked, without TensorFlow.

    Raises:
        TfFinetuneError: unknown model, bad hyperparameters, contradictory settings.
    """
    _require_backbone(config)
    registry = load_registry(config.registry)
    if config.model_id:
        model = registry.get(config.model_id)
        spec = BackboneSpec.from_registry(model, config.image_size, config.max_seq_length)
        if config.handle:  # the entry's weights from elsewhere: a fetched copy, the model channel
            spec = spec.located_at(config.handle)
        overrides = model.hyperparameters
    else:
        task = "text" if looks_like_text(config.data) else "image"
        assert config.handle is not None  # _require_backbone: a model id or a handle
        spec = BackboneSpec(config.handle, config.handle, task, image_size=config.image_size,
                            max_seq_length=config.max_seq_length)
        overrides = {}
    if spec.task == "text" and config.image_size:
        raise HyperparameterError("image_size applies to image models only")
    _check_max_seq_length(spec)
    user = hyperparameters.normalize(config.hyperparameters)
    if spec.task == "text" and user.get("augmentation"):
        raise HyperparameterError("augmentation applies to image models only; remove "
                                  "augmentation=True for this text model")
    hp = hyperparameters.resolve(registry.task_defaults.get(spec.task), overrides, user)
    if not spec.fine_tunable and not hp.train_only_top_layer:
        if "train_only_top_layer" in user:
            raise HyperparameterError(f"backbone {spec.name} is not fine-tunable; "
                                      "train_only_top_layer must be True")
        hp = hyperparameters.resolve(hp, {"train_only_top_layer": True})
        log.info("backbone %s is not fine-tunable: training the top layer only", spec.name)
    if hp.tflite != "none" and spec.task == "text":
        raise HyperparameterError(f"tflite={hp.tflite} applies to image models: a text model's "
                                  "string ops have no TFLite builtins; leave tflite at none")
    if hp.early_stopping and not config.validation_data and hp.validation_split_ratio == 0:
        raise HyperparameterError("early_stopping needs validation data: give validation data "
                                  "or set validation_split_ratio above 0")
    return spec, hp


def _check_max_seq_length(spec: BackboneSpec) -> None:
    from tf_finetune.bert_inputs import MAX_SEQ_LENGTH

    length = spec.max_seq_length
    if length is None:
        return
    if spec.task != "text":
        raise HyperparameterError("max_seq_length applies to text models with a BERT-style "
                                  "preprocessor only; remove it for this image model")
    if not 3 <= length <= MAX_SEQ_LENGTH:
        raise HyperparameterError(f"max_seq_length={length} is out of range: expected an integer "
                                  f"in [3, {MAX_SEQ_LENGTH}] ([CLS], one word piece, [SEP] at least; "
                                  f"BERT encoders have {MAX_SEQ_LENGTH} positions)")


def _require_backbone(config: JobConfig) -> None:
    if not config.model_id and not config.handle:
        raise HyperparameterError("give a registry model id (--model-id) or a backbone handle "
                                  "(--handle)")


def looks_like_text(data: str) -> bool:
    path = Path(data)
    if storage.is_s3(data):
        return path.suffix.lower() == ".csv"  # a prefix is checked once downloaded
    return path.suffix.lower() == ".csv" or (path.is_dir() and any(path.glob("*.csv")))


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
        job_scope.callback(checkpoint.clear_stop_request)  # a stop request is for this job only
        _require_backbone(config)  # these two before any download
        hyperparameters.normalize(config.hyperparameters)
        workdir = Path(job_scope.enter_context(tempfile.TemporaryDirectory(prefix="tf_finetune.")))
        # Data first: a bare handle's task is read from the data, so plan needs it local.
        config = _localize_data(config, workdir)
        spec, hp = plan(config)
        spec = _localize_backbone(spec, workdir)
        return _run_local(config, spec, hp, started, workdir, job_scope)


@overload
def fetch_channel(uri: str, target: Path) -> str: ...
@overload
def fetch_channel(uri: None, target: Path) -> None: ...
def fetch_channel(uri: str | None, target: Path) -> str | None:
    """Download ``uri`` into ``target`` when it is an ``s3://`` URI; other values pass through."""
    if not uri or not storage.is_s3(uri):
        return uri
    from tf_finetune import s3

    return str(s3.download_prefix(uri, target))


def _localize_data(config: JobConfig, workdir: Path) -> JobConfig:
    """The job with its ``s3://`` data, validation and test channels downloaded into ``workdir``."""
    return dataclasses.replace(config, data=fetch_channel(config.data, workdir / "training"),
                               validation_data=fetch_channel(config.validation_data, workdir / "validation"),
                               test_data=fetch_channel(config.test_data, workdir / "test"))


def _localize_backbone(spec: BackboneSpec, workdir: Path) -> BackboneSpec:
    """The backbone with an ``s3://`` handle downloaded into ``workdir``."""
    if not storage.is_s3(spec.handle):
        return spec
    key = hashlib.sha1(spec.handle.encode("utf-8")).hexdigest()[:12]
    return dataclasses.replace(spec, handle=fetch_channel(spec.handle, workdir / f"model-{key}"))


def _run_local(config: JobConfig, spec: BackboneSpec, hp: hyperparameters.Hyperparameters,
               started: float, workdir: Path, job_scope: contextlib.ExitStack) -> JobResult:
    from tf_finetune import data_report

    data = load_data(spec.task, config.data, config.validation_data, hp.validation_split_ratio,
                     hp.random_seed, inspect=data_report.inspect_image)
    test = (load_examples(spec.task, config.test_data, data.label_map, data_report.inspect_image, data.details)
            if config.test_data else None)
    report = data_report.from_loaded(data, test, 0.0 if config.validation_data else hp.validation_split_ratio,
                                     {"training": config.data, "validation": config.validation_data,
                                      "test": config.test_data})
    for line in data_report.summary(report).splitlines():
        log.info("%s", line)
    if hp.binary_mode and data.label_map.num_classes != 2:
        raise HyperparameterError(f"binary_mode=True needs exactly two classes; the data has "
                                  f"{data.label_map.num_classes}: {', '.join(data.label_map.class_names)}")
    class_weight = hyperparameters.class_weight_map(hp.class_weights, data.train.labels,
                                                    data.label_map.num_classes)
    if class_weight:
        log.info("class weights: %s", ", ".join(f"{data.label_map.class_names[c]}={w:.3g}"
                                                for c, w in class_weight.items()))

    # TensorFlow is imported only now, and the strategy is created before any other op
    # (MultiWorkerMirroredStrategy requires it).
    from tf_finetune import distribute

    strategy = distribute.create_strategy(config.multi_worker)
    import tf_keras

    from tf_finetune import export, feature_cache, serving, train
    from tf_finetune import model as model_lib
    from tf_finetune.data.pipeline import inference_batches, make_augmenter, steps_per_epoch, training_batches
    from tf_finetune.eval_metrics import extra_metrics
    from tf_finetune.inference import Scorer

    tf_keras.utils.set_random_seed(hp.random_seed)
    check_requirements(spec)
    cache = Path(config.cache_dir)
    from tf_finetune import keras_backbone

    backbone_path = resolve_handle(spec.handle, cache, keras_backbone.KerasOptions(
        config.feature_layer, config.pixel_range, config.image_size, spec.task))
    spec = keras_backbone.with_declared_size(spec, backbone_path)
    continuing = model_folder.is_model_folder(backbone_path)  # from a previous model
    register_ops_for(model_folder.saved_model_dir(backbone_path) if continuing else backbone_path,
                     f"backbone {spec.name}")
    preprocessor_path = None if continuing else \
        resolve_preprocessor(spec, backbone_path, cache)
    preprocessor, text_lengths = _text_preprocessor(spec, backbone_path, preprocessor_path, data)

    given = set(hyperparameters.normalize(config.hyperparameters))  # never chosen by the tool
    replicas = strategy.num_replicas_in_sync
    global_batch = distribute.global_batch_size(strategy, hp.batch_size)
    checkpoints = _open_checkpoints(config, spec, hp, data, global_batch)
    steps = steps_per_epoch(len(data.train), global_batch)
    workers = distribute.worker_count(strategy)
    # Every step is one full global batch (see training_batches): steps x global_batch
    # examples an epoch, with the data reshuffled at every pass and nothing dropped.
    log.info("workers=%d replicas=%d batch_size=%d global_batch=%d steps_per_epoch=%d train=%d "
             "validation=%d examples_per_epoch=%d (full batches: a pass that ends inside a batch "
             "fills it from the next pass)", workers, replicas, hp.batch_size,
             global_batch, steps, len(data.train), len(data.validation) if data.validation else 0,
             steps * global_batch)
    model_lib.check_jit_compile(hp, strategy)
    loss_scaling = job_scope.enter_context(model_lib.mixed_precision(hp))
    with strategy.scope():
        if continuing:  # incremental training from a previous model
            if choices.unset(hp, given):
                # Choices train fresh heads; this run starts from the previous model's.
                log.info("hyperparameters are not chosen when continuing from a previous model")
                given |= set(choices.CHOOSABLE)
            previous = model_folder.read_labels(backbone_path)
            model, image_size = model_lib.load_classifier(backbone_path, spec, data.label_map,
                                                          previous, hp)
        else:
            model, image_size = model_lib.build_classifier(
                spec, backbone_path, preprocessor, data.label_map.num_classes, hp)
        model_lib.compile_classifier(model, hp, steps * hp.epochs, loss_scaling)

    augmenter = None
    if spec.task == "image" and hp.augmentation:
        augmenter = make_augmenter(hp.augmentation_random_flip, hp.augmentation_random_rotation,
                                   hp.augmentation_random_zoom, hp.random_seed)
    cache, why_not = feature_cache.can_cache(hp, spec.task, config.multi_worker)
    if cache and not config.feature_cache:
        cache, why_not = False, "the feature cache is turned off"
    # An explicit seed asks for a repeatable run; otherwise parallel decoding may reorder the
    # training stream. Everything predicted on keeps its order whatever the seed.
    seeded = "random_seed" in given
    decoding = dict(image_size=image_size, interpolation=hp.image_resize_interpolation)
    decoded = _decoded_image_cache(spec.task, data, image_size, workdir) if not cache else {}
    val_inputs = inference_batches(data.validation.inputs, spec.task, global_batch,
                                   cache_file=decoded.get("validation"),
                                   **decoding) if data.validation else None

    fit_started = time.perf_counter()
    chief = distribute.is_chief(strategy)
    tensorboard_dir = config.tensorboard_dir
    if tensorboard_dir is None and config.output and not storage.is_s3(config.output):
        tensorboard_dir = str(Path(config.output) / OUTPUT_SUBDIR / "tensorboard")
    chosen = []
    if cache:
        from tf_finetune.feature_store import FeatureStore

        train_inputs = inference_batches(data.train.inputs, spec.task, global_batch, **decoding)
        store = FeatureStore.open(config.cache_dir, backbone_path, preprocessor_path, spec.task, image_size,
                                  hp.image_resize_interpolation, text_lengths.get("max_seq_length"))
        head = feature_cache.fit_head(
            model, strategy, data, {"train": train_inputs, "validation": val_inputs}, hp,
            global_batch, workdir, spec.task, given, loss_scaling,
            tensorboard_dir if chief else None, checkpoints, store)
        history, val_scorer, hp, chosen = head.history, head.scorer, head.hyperparameters, head.choices
    else:
        unset = [name for name in choices.unset(hp, given) if name != "epochs"]
        if hp.train_only_top_layer:
            log.info("head-only training through the backbone every epoch: %s", why_not)
            if unset:
                log.info("%s not chosen (that needs cached features): using %s", ", ".join(unset),
                         ", ".join(f"{name}={hp[name]}" for name in unset))
        train_ds = training_batches(data.train, spec.task, data.label_map.num_classes, global_batch,
                                    shuffle_seed=hp.random_seed, augmenter=augmenter,
                                    cache_file=decoded.get("train"), deterministic=seeded, **decoding)
        val_scorer = Scorer(model, val_inputs, data.validation.labels, strategy, hp.label_smoothing,
                            extra_metrics(hp)) if val_inputs is not None and data.validation else None
        keep_best = None
        if "epochs" in choices.unset(hp, given) and val_scorer is not None and not hp.early_stopping:
            keep_best = train.BestEpoch(hp.eval_metric)
        history = train.fit(model, train_ds, steps, val_scorer, hp,
                            tensorboard_dir if chief else None, checkpoints, class_weight, keep_best)
        if keep_best is not None and keep_best.best_epoch is not None:
            choice = choices.kept_epoch(keep_best.best_epoch, keep_best.scores, hp.eval_metric)
            log.info("%s", choice.describe())
            chosen.append(choice)
            hp = hyperparameters.resolve(hp, {"epochs": choice.value})
    train_seconds = time.perf_counter() - fit_started
    final = {"train_" + k: float(v[-1]) for k, v in history.items() if not k.startswith("val_")}
    val_probabilities = None
    if val_scorer is not None:  # one prediction: the final metrics and the report count the same
        val_probabilities = val_scorer.probabilities()
        val_final = {"val_" + k: v for k, v in val_scorer.metrics(val_probabilities).items()}
        final.update(val_final)
        log.info("final %s", train.format_metrics(val_final))
    if test is not None:
        test_scorer = Scorer(model, inference_batches(test.inputs, spec.task, global_batch, **decoding),
                             test.labels, strategy, hp.label_smoothing, extra_metrics(hp))
        final.update({"test_" + k: v for k, v in test_scorer.metrics().items()})
        log.info("%s test_examples=%d", train.format_metrics(
            {k: v for k, v in final.items() if k.startswith("test_")}), len(test))
    log.info("weights_digest=%s", model_lib.weights_digest(model))

    metrics = _metrics_record(config, spec, hp, data, final, history, replicas, global_batch,
                              image_size, train_seconds, time.perf_counter() - started)
    metrics["backbone"].update(text_lengths)
    metrics.update(workers=workers, num_test_examples=len(test) if test is not None else 0,
                   steps_per_epoch=steps, choices=[choice.record() for choice in chosen])
    signatures = serving.make_signatures(model, spec.task, data.label_map.class_names, image_size,
                                         hp.image_resize_interpolation)
    if not chief:
        # Saving runs collective ops, so every worker saves; only the chief keeps the result.
        export.write_model_dir(model, data.label_map, metrics, workdir / "worker-model", signatures)
        return JobResult(None, metrics, data.label_map, chief=False)
    archive = None
    if config.model_dir:
        export.write_model_dir(model, data.label_map, metrics, Path(config.model_dir), signatures)
    if hp.tflite != "none":  # model.tflite next to model.tar.gz and in the model dir
        from tf_finetune import tflite

        source = Path(config.model_dir) if config.model_dir else export.write_model_dir(
            model, data.label_map, metrics, workdir / "tflite-model", signatures)
        targets = [t for t in (config.model_dir, config.output
                               and f"{config.output.rstrip('/')}/{OUTPUT_SUBDIR}") if t]
        tflite.export_after_training(hp.tflite, source, data, workdir, targets)
    if config.output:
        archive = _write_archive(model, data.label_map, metrics, signatures, config.output, workdir)
    _write_reports(config, data, val_probabilities, history, workdir, report)
    if checkpoints is not None:
        checkpoints.clear()  # done: a rerun starts afresh
    return JobResult(archive, metrics, data.label_map)


def _text_preprocessor(spec: BackboneSpec, backbone_path: str, preprocessor_path: str | None,
                       data: DataSplit):
    """The loaded BERT-style preprocessor (or None), and the sequence length with how many
    training and validation texts it cuts (for ``metrics.json``'s backbone record).

    Raises:
        HyperparameterError: ``max_seq_length`` is set for a backbone without such a preprocessor.
    """
    from tf_finetune import bert_inputs

    if spec.max_seq_length and not preprocessor_path:
        why = ("this job continues from a previous model, whose text preprocessing is part of it"
               if model_folder.is_model_folder(backbone_path) else
               f"{spec.name} takes whole strings (it has no BERT-style preprocessor)")
        raise HyperparameterError(f"max_seq_length={spec.max_seq_length} cannot be used: {why}; "
                                  "remove it")
    if not preprocessor_path:
        return None, {}
    preprocessor = bert_inputs.Preprocessor(preprocessor_path, spec.name)
    seq_length = preprocessor.seq_length(spec.max_seq_length)
    record: dict[str, Any] = {"max_seq_length": seq_length}
    for split, examples in (("train", data.train), ("validation", data.validation)):
        long = preprocessor.count_long(list(examples.inputs), seq_length) if examples and seq_length else None
        if long is not None:
            log.info("%s", bert_inputs.describe_long(split, long))
            record[f"{split}_texts"] = long.record()
    return preprocessor, record


def _open_checkpoints(config: JobConfig, spec: BackboneSpec, hp, data: DataSplit, global_batch: int):
    """The job's checkpoints, when ``checkpoint_dir`` is set (checked against what it holds)."""
    if not config.checkpoint_dir:
        return None

    identity = {
        "backbone": config.model_id or config.handle, "handle": config.handle if config.model_id else None,
        "task": spec.task, "image_size": config.image_size, "hyperparameters": dict(hp),
        **({"max_seq_length": spec.max_seq_length} if spec.max_seq_length else {}),
        "global_batch": global_batch, "feature_cache": config.feature_cache,
        "train": checkpoint.fingerprint_examples(data.train, config.data),
        "validation": checkpoint.fingerprint_examples(data.validation, config.validation_data or config.data)
        if data.validation else None,
        "classes": list(data.label_map.class_names)}
    checkpoints, resuming = checkpoint.open_checkpoints(config.checkpoint_dir, identity,
                                                        config.checkpoint_steps, config.fresh_start)
    log.info("checkpoints: %s (%s)", checkpoints.directory,
             "resuming this job" if resuming else "new job")
    return checkpoints


def _decoded_image_cache(task: str, data: DataSplit, image_size: int | None,
                         workdir: Path) -> dict[str, str]:
    """Cache files for decoded training and validation images, when the disk has room for them.

    Decoding is then paid once instead of every epoch; the files live in the job's temporary
    folder and go with it.
    """
    from tf_finetune.data.pipeline import decoded_size

    if task != "image" or not image_size:
        return {}
    splits = {"train": data.train, "validation": data.validation}
    needed = sum(decoded_size(len(examples), image_size) for examples in splits.values() if examples)
    free = shutil.disk_usage(workdir).free
    if needed * 2 > free:  # leave room for the export and everything else
        log.info("decoded images (%.1f GiB) are not cached: %.1f GiB free in %s", needed / 2**30,
                 free / 2**30, workdir)
        return {}
    log.info("decoded images are cached as 8-bit RGB after the first epoch (%.2f GiB in %s)",
             needed / 2**30, workdir)
    return {name: str(workdir / f"decoded-{name}") for name, examples in splits.items() if examples}


def _write_reports(config: JobConfig, data: DataSplit, val_probabilities, history: dict,
                   workdir: Path, report) -> None:
    """The data report, training curves, and the validation confusion matrix with per-class
    metrics and the misclassified examples (from the same predictions as the final validation
    metrics)."""
    from tf_finetune import evaluation, plots

    s3_output = config.output is not None and storage.is_s3(config.output)
    if config.report_dir:
        directory = Path(config.report_dir)
    elif config.output:
        directory = workdir / "reports" if s3_output else Path(config.output) / OUTPUT_SUBDIR / "reports"
    else:
        return
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    plots.training_curves(history, directory / "training_curves.png")
    if val_probabilities is not None and data.validation is not None:
        from tf_finetune import gallery

        predicted = val_probabilities.argmax(axis=1)
        names = data.label_map.class_names
        report = evaluation.classification_report(data.validation.labels, predicted, names)
        evaluation.write_report(report, directory, f"validation: accuracy {report['accuracy']:.3f}")
        found = gallery.mistakes(data.validation.inputs, data.validation.labels, val_probabilities, names)
        gallery.write_gallery(data.task, found, evaluation.format_report(report), directory)
    if config.output is not None and s3_output and not config.report_dir:
        from tf_finetune import s3

        prefix = s3.S3Uri.parse(config.output).join(OUTPUT_SUBDIR, "reports")
        for path in sorted(directory.iterdir()):
            s3.upload_file(path, str(prefix.join(path.name)))
    log.info("reports written to %s", directory)


def _write_archive(model, label_map, metrics: dict, signatures: dict, output: str,
                   workdir: Path) -> Path | str:
    from tf_finetune import export

    if not storage.is_s3(output):
        archive = Path(output) / OUTPUT_SUBDIR / model_folder.ARCHIVE_NAME
        export.export_archive(model, label_map, metrics, archive, signatures)
        log.info("model written to %s", archive)
        return archive
    from tf_finetune import s3

    local = export.export_archive(model, label_map, metrics, workdir / model_folder.ARCHIVE_NAME, signatures)
    uri = str(s3.S3Uri.parse(output).join(OUTPUT_SUBDIR, model_folder.ARCHIVE_NAME))
    s3.upload_file(local, uri)
    log.info("model written to %s", uri)
    return uri


def _metrics_record(config: JobConfig, spec: BackboneSpec, hp, data: DataSplit, final: dict,
                    history: dict, replicas: int, global_batch: int, image_size: int | None,
                    train_seconds: float, total_seconds: float) -> dict[str, Any]:
    return {
        "backbone": {"id": config.model_id, "handle": spec.handle, "task": spec.task,
                     "image_size": image_size, "preprocessor": spec.preprocessor},
        "final": final,
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "epochs_run": len(next(iter(history.values()), [])),
        "replicas": replicas,
        "global_batch_size": global_batch,
        "num_train_examples": len(data.train),
        "num_validation_examples": len(data.validation) if data.validation else 0,
        "num_classes": data.label_map.num_classes,
        "hyperparameters": dict(hp),
        "train_seconds": round(train_seconds, 2),
        "total_seconds": round(total_seconds, 2),
    }
