"""A job's description and its plan: what the user asked for, checked and resolved without TensorFlow.

:class:`JobConfig` is what a door builds from the user's flags or SageMaker's arguments;
:func:`plan` turns it into one frozen :class:`JobPlan` (backbone, effective hyperparameters and
which of them the user set) before anything is downloaded or trained.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf_finetune import hyperparameters, storage
from tf_finetune.data.text import csv_files
from tf_finetune.errors import HyperparameterError
from tf_finetune.registry import ModelSpec, load_registry

log = logging.getLogger("tf_finetune.job")


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


@dataclass(frozen=True)
class JobPlan:
    """A job with everything decided that can be decided without TensorFlow.

    Attributes:
        config: the job as given (with ``s3://`` data localised when :func:`run` planned it).
        spec: the backbone.
        hyperparameters: the effective hyperparameters (schema, registry entry, the user's).
        given: the names the user set: the tool never chooses these.
    """

    config: JobConfig
    spec: ModelSpec
    hyperparameters: hyperparameters.Hyperparameters
    given: frozenset[str]


def plan(config: JobConfig) -> JobPlan:
    """The backbone and the effective hyperparameters of ``config``, checked, without TensorFlow.

    Raises:
        TfFinetuneError: unknown model, bad hyperparameters, contradictory settings.
    """
    require_backbone(config)
    registry = load_registry(config.registry)
    if config.model_id:
        model = registry.get(config.model_id)
        spec = dataclasses.replace(model, image_size=config.image_size or model.image_size,
                                   max_seq_length=config.max_seq_length)
        if config.handle:  # the entry's weights from elsewhere: a fetched copy, the model channel
            spec = dataclasses.replace(spec, handle=config.handle)
        overrides = model.hyperparameters
    else:
        task = "text" if looks_like_text(config.data) else "image"
        assert config.handle is not None  # _require_backbone: a model id or a handle
        spec = ModelSpec(id=config.handle, task=task, handle=config.handle, image_size=config.image_size,
                         max_seq_length=config.max_seq_length)
        overrides = {}
    if config.checkpoint_steps and not config.checkpoint_dir:
        raise HyperparameterError(f"checkpoint_steps={config.checkpoint_steps} needs a checkpoint folder: "
                                  "add --checkpoint-dir DIR (on SageMaker, the estimator's "
                                  "checkpoint_s3_uri, or launch --spot)")
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
            raise HyperparameterError(f"backbone {spec.id} is not fine-tunable; "
                                      "train_only_top_layer must be True")
        hp = hyperparameters.resolve(hp, {"train_only_top_layer": True})
        log.info("backbone %s is not fine-tunable: training the top layer only", spec.id)
    if hp.tflite != "none" and spec.task == "text":
        raise HyperparameterError(f"tflite={hp.tflite} applies to image models: a text model's "
                                  "string ops have no TFLite builtins; leave tflite at none")
    if hp.early_stopping and not config.validation_data and hp.validation_split_ratio == 0:
        raise HyperparameterError("early_stopping needs validation data: give validation data "
                                  "or set validation_split_ratio above 0")
    return JobPlan(config, spec, hp, frozenset(user))


def _check_max_seq_length(spec: ModelSpec) -> None:
    from tf_finetune.backbones.bert_inputs import MAX_SEQ_LENGTH

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


def require_backbone(config: JobConfig) -> None:
    """Raise unless the job names a backbone (a registry id or a handle)."""
    if not config.model_id and not config.handle:
        raise HyperparameterError("give a registry model id (--model-id) or a backbone handle "
                                  "(--handle)")


def looks_like_text(data: str) -> bool:
    """Whether the data is text (a ``.csv``, or a folder holding one) rather than image folders."""
    path = Path(data)
    if storage.is_s3(data):
        return path.suffix.lower() == ".csv"  # a prefix is checked once downloaded
    return path.suffix.lower() == ".csv" or (path.is_dir() and bool(csv_files(path)))
