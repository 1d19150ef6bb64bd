"""A job's description and its plan: what the user asked for, checked and resolved without TensorFlow.

:class:`JobConfig` is what a door builds from the user's flags or SageMaker's arguments
(:func:`tf_finetune.job_options.job_config`); :func:`plan` turns it into one frozen :class:`JobPlan`
(backbone, effective hyperparameters and which of them the user set) before anything is downloaded
or trained, and :func:`plan_local` does so once its ``s3://`` data is downloaded (``train`` and
``check-data`` alike).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tf_finetune import hyperparameters, job_options, model_folder, storage
from tf_finetune.backbones.bert_inputs import MAX_SEQ_LENGTH
from tf_finetune.backbones.loading import DEFAULT_IMAGE_SIZE
from tf_finetune.backbones.peek import local_handle, task_of_model
from tf_finetune.data import DATA_FORMS
from tf_finetune.data.text import csv_files
from tf_finetune.errors import BackboneError, DataError, HyperparameterError
from tf_finetune.job_options import JobConfig
from tf_finetune.registry import ModelSpec, load_registry
from tf_finetune.reports import data_check
from tf_finetune.tasks import Task

if TYPE_CHECKING:
    from tf_finetune.reports import data_check

log = logging.getLogger(__name__)

__all__ = [
    "JobConfig",
    "JobPlan",
    "JobResult",
    "plan",
    "plan_local",
    "check_job",
    "check_sources",
    "require_backbone",
    "data_task",
    "check_backbone_task",
    "looks_like_text",
]


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
        task_reason: why the data is read as ``spec.task`` data (the backbone says so, or the data).
    """

    config: JobConfig
    spec: ModelSpec
    hyperparameters: hyperparameters.Hyperparameters
    given: frozenset[str]
    task_reason: str = ""


def plan(config: JobConfig, backbone_required: bool = True) -> JobPlan:
    """The backbone and the effective hyperparameters of ``config``, checked, without TensorFlow.

    The data is read as the backbone's task's format: a registry entry's task, or what a local
    ``handle`` takes (:func:`~tf_finetune.backbones.peek.task_of_model`); when neither tells, the
    data's own form (:func:`data_task`).

    Args:
        config: the job.
        backbone_required: False to plan the data alone when no backbone is named (``check-data``):
            the spec is then a placeholder whose task comes from the data.

    Returns:
        The plan.

    Raises:
        TfFinetuneError: unknown model, bad hyperparameters, contradictory settings.
    """
    if backbone_required:
        require_backbone(config)
    return _plan(config, hyperparameters.normalize(config.hyperparameters))


def plan_local(config: JobConfig, workdir: Path, user: Mapping[str, Any]) -> JobPlan:
    """The plan of a checked job once its ``s3://`` data is local: what ``train``
    (:func:`~tf_finetune.training.job.run`) and ``check-data`` (:func:`check_job`) both plan. A bare
    handle's task is read from the data, so the data is downloaded first.

    Args:
        config: the job, its backbone required already where it is (:func:`require_backbone`) and its
            inputs found (:func:`check_sources`).
        workdir: where ``s3://`` data, validation and test channels are downloaded.
        user: the user's hyperparameters as :func:`~tf_finetune.hyperparameters.normalize` returned them:
            they are checked once, before any download.

    Returns:
        The plan, its config's data local.

    Raises:
        TfFinetuneError: as :func:`plan`; a download that fails.
    """
    channels = {
        option.name: option.channel for option in job_options.OPTIONS if option.channel and option.name != "handle"
    }  # the backbone is localised once planned
    local = dataclasses.replace(
        config,
        **{
            name: storage.localize_channel(getattr(config, name), workdir / str(channel))
            for name, channel in channels.items()
        },
    )
    return _plan(local, user)


def _plan(config: JobConfig, user: Mapping[str, Any]) -> JobPlan:
    """:func:`plan` of ``config`` whose hyperparameters ``user`` were normalized."""
    registry = load_registry(config.registry)
    if config.model_id:
        model = registry.get(config.model_id)
        spec = dataclasses.replace(
            model, image_size=config.image_size or model.image_size, max_seq_length=config.max_seq_length
        )
        if config.handle:  # the entry's weights from elsewhere: a fetched copy, the model channel
            spec = dataclasses.replace(spec, handle=config.handle)
        overrides = model.hyperparameters
        reason = f"model {model.id} is {model.task.with_article} model"
    else:
        handle = config.handle or ""  # no backbone: check-data's plan of the data alone
        known = task_of_model(handle) if handle else None
        task, reason = (known, f"backbone {handle} takes {known.inputs}") if known else data_task(config.data)
        spec = ModelSpec(
            id=handle, task=task, handle=handle, image_size=config.image_size, max_seq_length=config.max_seq_length
        )
        overrides = {}
    if config.checkpoint_steps and not config.checkpoint_dir:
        raise HyperparameterError(
            f"checkpoint_steps={config.checkpoint_steps} needs a checkpoint folder: "
            "add --checkpoint-dir DIR (on SageMaker, the estimator's "
            "checkpoint_s3_uri, or launch --spot)"
        )
    if spec.task == Task.TEXT and config.image_size:
        raise HyperparameterError("image_size applies to image models only")
    _check_max_seq_length(spec)
    if spec.task == Task.TEXT and user.get("augmentation"):
        raise HyperparameterError(
            "augmentation applies to image models only; remove augmentation=True for this text model"
        )
    hp = hyperparameters.resolve(registry.task_defaults.get(spec.task), overrides, user)
    if not spec.fine_tunable and not hp.train_only_top_layer:
        if "train_only_top_layer" in user:
            raise HyperparameterError(f"backbone {spec.id} is not fine-tunable; train_only_top_layer must be True")
        hp = hyperparameters.resolve(hp, {"train_only_top_layer": True})
        log.info("backbone %s is not fine-tunable: training the top layer only", spec.id)
    if hp.tflite != "none" and spec.task == Task.TEXT:
        raise HyperparameterError(
            f"tflite={hp.tflite} applies to image models: a text model's "
            "string ops have no TFLite builtins; leave tflite at none"
        )
    if hp.early_stopping and not config.validation_data and hp.validation_split_ratio == 0:
        raise HyperparameterError(
            "early_stopping needs validation data: give validation data or set validation_split_ratio above 0"
        )
    return JobPlan(config, spec, hp, frozenset(user), reason)


def _check_max_seq_length(spec: ModelSpec) -> None:
    length = spec.max_seq_length
    if length is None:
        return
    if spec.task != Task.TEXT:
        raise HyperparameterError(
            "max_seq_length applies to text models with a BERT-style preprocessor only; remove it for this image model"
        )
    if not 3 <= length <= MAX_SEQ_LENGTH:
        raise HyperparameterError(
            f"max_seq_length={length} is out of range: expected an integer "
            f"in [3, {MAX_SEQ_LENGTH}] ([CLS], one word piece, [SEP] at least; "
            f"BERT encoders have {MAX_SEQ_LENGTH} positions)"
        )


def require_backbone(config: JobConfig) -> None:
    """Raise unless the job names a backbone: a registry id the registry has, or a handle."""
    if not config.model_id and not config.handle:
        raise HyperparameterError("give a registry model id (--model-id) or a backbone handle (--handle)")
    if config.model_id:
        load_registry(config.registry).get(config.model_id)  # an unknown id is a RegistryError


def data_task(data: str) -> tuple[Task, str]:
    """The task of data whose backbone does not say: a file is text (a ``label,text`` CSV under
    any name), a folder is images (class folders) unless it holds a ``.csv``.

    Returns:
        (``image`` or ``text``, why, naming the data).
    """
    if storage.is_s3(data):  # a prefix is planned again once downloaded
        return (Task.TEXT, f"{data} is a .csv") if looks_like_text(data) else (Task.IMAGE, f"{data} is a prefix")
    path = Path(data)
    if path.is_file():
        return Task.TEXT, f"{data} is a file"
    if looks_like_text(data):
        return Task.TEXT, f"{data} is a folder holding a .csv"
    return Task.IMAGE, f"{data} is a folder without a .csv"


def check_backbone_task(job: JobPlan, backbone_path: str) -> None:
    """Raise when a bare handle's SavedModel, once local, takes the other task's inputs than its data
    was read as (its task could not be told before it was fetched: a URL, ``s3://``, an archive). A
    previous model says so itself when it is continued (:func:`tf_finetune.training.classifier.load_classifier`).

    Args:
        job: the plan.
        backbone_path: the backbone's local folder.

    Raises:
        BackboneError: what the backbone takes, why the data was read otherwise, and what to pass.
    """
    if job.config.model_id or model_folder.is_model_folder(backbone_path):
        return  # a previous model says so itself when it is continued
    actual = task_of_model(backbone_path)
    if actual and actual != job.spec.task:
        raise BackboneError(
            f"backbone {job.spec.id} takes {actual.inputs}, but the data was read as "
            f"{DATA_FORMS[job.spec.task]} because {job.task_reason}; give {DATA_FORMS[actual]} as "
            f"--data, or a backbone that takes {job.spec.task.inputs}"
        )


def looks_like_text(data: str) -> bool:
    """Whether the data is text (a file, or a folder holding a ``.csv``) rather than image folders."""
    path = Path(data)
    if storage.is_s3(data):
        return path.suffix.lower() == ".csv"  # a prefix is checked once downloaded
    return path.is_file() or path.suffix.lower() == ".csv" or (path.is_dir() and bool(csv_files(path)))


# The local inputs a job reads: JobConfig field -> what to pass instead (named by its flag).
_SOURCES = {
    "data": "a folder of image class folders, or a label,text CSV file (or its folder)",
    "validation_data": "data in the same form as --data",
    "test_data": "data in the same form as --data",
    "handle": "a TF-Hub SavedModel folder, a .tar.gz of one, a Keras model file, "
    "a registry id (--model-id) or a hub URL",
}


def check_sources(config: JobConfig) -> None:
    """Raise unless every input the job reads can be found: misspelt ``s3://`` URIs, and local
    data, backbone or previous model paths that do not exist, before anything is read.

    Raises:
        StorageError: a misspelt S3 URI (the corrected one is named).
        DataError, BackboneError: a local path that does not exist, with its flag.
    """
    for name, instead in _SOURCES.items():
        flag, value = job_options.BY_NAME[name].flag, getattr(config, name)
        storage.check_s3_spelling(value, flag)
        if not value or storage.is_s3(value):
            continue
        path = local_handle(value) if name == "handle" else Path(value)
        if path is not None and not path.exists():
            error = BackboneError if name == "handle" else DataError
            raise error(f"{flag} {value}: no such file or folder; pass {instead}")


def check_job(config: JobConfig, replicas: int = 1) -> data_check.DataReport:
    """The report on a training job's data, read as ``train`` would read it (``check-data``).

    The same checks and decisions as :func:`tf_finetune.training.job.run` before it imports TensorFlow:
    every input path first (:func:`~tf_finetune.training.job_plan.check_sources`), then the plan (the
    task the data is read as, the effective hyperparameters); ``s3://`` channels are downloaded
    to a temporary folder. A job without a backbone is planned from its data alone.

    Args:
        config: the job, as ``train`` would run it (its output and checkpoint settings are unused).
        replicas: replicas training together, for the batch and the steps an epoch.

    Returns:
        The report; ``report.ok`` is False when training would fail on this data.

    Raises:
        TfFinetuneError: what ``train`` would refuse before reading data (missing paths, bad
            hyperparameters, an unknown model id).
    """
    check_sources(config)
    user = hyperparameters.normalize(config.hyperparameters)  # before any download
    with tempfile.TemporaryDirectory(prefix="tf_finetune-check-") as folder:
        job = plan_local(config, Path(folder), user)
        config, spec, hp = job.config, job.spec, job.hyperparameters
        image_size = (spec.image_size or DEFAULT_IMAGE_SIZE) if spec.task == Task.IMAGE else None
        return data_check.check_data(
            spec.task,
            config.data,
            validation=config.validation_data,
            test=config.test_data,
            image_size=image_size,
            batch_size=hp.batch_size,
            replicas=replicas,
            validation_split_ratio=hp.validation_split_ratio,
            max_text_words=spec.max_seq_length,
            task_reason=job.task_reason,
        )
