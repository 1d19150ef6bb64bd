"""One fine-tuning job, from a :class:`JobConfig` to a ``model.tar.gz``.

Both doors (``python -m tf_finetune`` and the SageMaker entry point) build a JobConfig and
call :func:`run`; nothing below this reads the environment.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tf_finetune import hyperparameters
from tf_finetune.backbone import BackboneSpec, check_requirements, resolve_handle
from tf_finetune.data import DataSplit, load_data
from tf_finetune.errors import HyperparameterError
from tf_finetune.registry import load_registry

log = logging.getLogger(__name__)

OUTPUT_SUBDIR = "output"


@dataclass(frozen=True)
class JobConfig:
    """What to fine-tune, on what, and where the result goes.

    Attributes:
        data: training data: a class-folder root (images) or a data.csv / its folder (text).
        output: the model location; the archive goes to ``<output>/output/model.tar.gz``.
        model_id: registry id of the backbone (or give ``handle``).
        handle: a backbone handle instead of a registry id (folder, .tar.gz, URL, builtin:).
        validation_data: separate validation data; else a split of ``data``.
        hyperparameters: user values (any accepted spelling, strings or Python values).
        image_size: input size for handles that do not fix theirs (overrides the registry).
        registry: a registry YAML instead of the packaged one.
        cache_dir: where built-in backbones and extracted archives are kept.
        model_dir: when set, also leave the unpacked model folder here (SageMaker's model dir).
    """

    data: str
    output: str | None
    model_id: str | None = None
    handle: str | None = None
    validation_data: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    registry: str | None = None
    cache_dir: str = str(Path.home() / ".cache" / "tf_finetune")
    model_dir: str | None = None


@dataclass(frozen=True)
class JobResult:
    """What a finished job produced.

    Attributes:
        archive: path of ``model.tar.gz`` (None when only ``model_dir`` was asked for).
        metrics: the content of ``metrics.json``.
        label_map: the class names.
    """

    archive: Path | None
    metrics: dict[str, Any]
    label_map: Any


def plan(config: JobConfig) -> tuple[BackboneSpec, hyperparameters.Hyperparameters]:
    """The backbone and the effective hyperparameters of ``config``, checked, without TensorFlow.

    Raises:
        TfFinetuneError: unknown model, bad hyperparameters, contradictory settings.
    """
    if bool(config.model_id) == bool(config.handle):
        raise HyperparameterError("give exactly one of a registry model id (--model-id) or a "
                                  "backbone handle (--handle)")
    registry = load_registry(config.registry)
    if config.model_id:
        model = registry.get(config.model_id)
        spec = BackboneSpec.from_registry(model, config.image_size)
        overrides = model.hyperparameters
    else:
        task = "text" if _looks_like_text(config.data) else "image"
        spec = BackboneSpec(config.handle, config.handle, task, image_size=config.image_size)
        overrides = {}
    if spec.task == "text" and config.image_size:
        raise HyperparameterError("image_size applies to image models only")
    user = hyperparameters.normalize(config.hyperparameters)
    hp = hyperparameters.resolve(registry.task_defaults.get(spec.task), overrides, user)
    if not spec.fine_tunable and not hp.train_only_top_layer:
        if "train_only_top_layer" in user:
            raise HyperparameterError(f"backbone {spec.name} is not fine-tunable; "
                                      "train_only_top_layer must be True")
        hp = hyperparameters.resolve(hp, {"train_only_top_layer": True})
        log.info("backbone %s is not fine-tunable: training the top layer only", spec.name)
    if hp.early_stopping and not config.validation_data and hp.validation_split_ratio == 0:
        raise HyperparameterError("early_stopping needs validation data: give validation data "
                                  "or set validation_split_ratio above 0")
    return spec, hp


def _looks_like_text(data: str) -> bool:
    path = Path(data)
    return path.suffix.lower() == ".csv" or (path.is_dir() and any(path.glob("*.csv")))


def run(config: JobConfig) -> JobResult:
    """Fine-tune the backbone on the data and write the model.

    Nothing is written unless the whole job succeeds: the archive appears atomically at the end.

    Args:
        config: the job.

    Returns:
        Where the model went and its metrics.

    Raises:
        TfFinetuneError: any problem a user can fix, with what to do.
    """
    started = time.perf_counter()
    spec, hp = plan(config)
    data = load_data(spec.task, config.data, config.validation_data, hp.validation_split_ratio,
                     hp.random_seed)

    import tf_keras

    from tf_finetune import distribute, export, model as model_lib, train
    from tf_finetune.data.pipeline import make_augmenter, make_dataset

    tf_keras.utils.set_random_seed(hp.random_seed)
    check_requirements(spec)
    cache = Path(config.cache_dir)
    backbone_path = resolve_handle(spec.handle, cache)
    preprocessor_path = resolve_handle(spec.preprocessor, cache) if spec.preprocessor else None

    strategy = distribute.create_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = distribute.global_batch_size(strategy, hp.batch_size)
    steps_per_epoch = math.ceil(len(data.train) / global_batch)
    log.info("replicas=%d batch_size=%d global_batch=%d steps_per_epoch=%d train=%d validation=%d",
             replicas, hp.batch_size, global_batch, steps_per_epoch, len(data.train),
             len(data.validation) if data.validation else 0)
    with strategy.scope():
        model, image_size = model_lib.build_classifier(
            spec, backbone_path, preprocessor_path, data.label_map.num_classes, hp)
        model_lib.compile_classifier(model, hp, steps_per_epoch * hp.epochs)

    augmenter = None
    if spec.task == "image" and hp.augmentation:
        augmenter = make_augmenter(hp.augmentation_random_flip, hp.augmentation_random_rotation,
                                   hp.augmentation_random_zoom, hp.random_seed)
    common = dict(task=spec.task, num_classes=data.label_map.num_classes, global_batch=global_batch,
                  image_size=image_size, interpolation=hp.image_resize_interpolation)
    train_ds = make_dataset(data.train, shuffle_seed=hp.random_seed, augmenter=augmenter, **common)
    val_ds = make_dataset(data.validation, **common) if data.validation else None

    fit_started = time.perf_counter()
    history = train.fit(model, train_ds, val_ds, hp)
    train_seconds = time.perf_counter() - fit_started
    final = {"train_" + k: float(v[-1]) for k, v in history.items() if not k.startswith("val_")}
    if val_ds is not None:
        values = model.evaluate(val_ds, verbose=0, return_dict=True)
        final.update({"val_" + k: float(v) for k, v in values.items()})
        log.info("final %s", train.format_metrics({k: v for k, v in final.items() if k.startswith("val_")}))

    metrics = _metrics_record(config, spec, hp, data, final, history, replicas, global_batch,
                              image_size, train_seconds, time.perf_counter() - started)
    archive = None
    if config.model_dir:
        export.write_model_dir(model, data.label_map, metrics, Path(config.model_dir))
    if config.output:
        archive = Path(config.output) / OUTPUT_SUBDIR / export.ARCHIVE_NAME
        export.export_archive(model, data.label_map, metrics, archive)
        log.info("model written to %s", archive)
    return JobResult(archive, metrics, data.label_map)


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
