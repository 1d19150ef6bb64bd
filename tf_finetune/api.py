"""The Python door: ``tf_finetune.fine_tune(...)``, for notebooks and scripts.

(Not ``train``: that name is the :mod:`tf_finetune.training.fit_loop` module's.)

It runs the job ``tf-finetune train`` runs, with the same options (:class:`JobConfig`'s fields)
and hyperparameters, given by name, mapped as every door maps them
(:func:`tf_finetune.job_options.job_config`); it shows the job's progress lines without any logging set-up
and raises the errors the command line prints. Importing it imports no TensorFlow.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tf_finetune import job_options, logs, startup
from tf_finetune.errors import DiskFullError, HyperparameterError, TfFinetuneError, disk_full
from tf_finetune.hyperparameters import SCHEMA, canonical_name
from tf_finetune.sagemaker import launch
from tf_finetune.training.job import run

if TYPE_CHECKING:
    from tf_finetune.job_options import JobConfig
    from tf_finetune.training.job_plan import JobResult

__all__ = ["fine_tune", "job_config", "train_job"]

log = logging.getLogger(__name__)


def fine_tune(
    data: str,
    *,
    output: str,
    model_id: str | None = None,
    handle: str | None = None,
    validation_data: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    **options: Any,
) -> JobResult:
    """Fine-tune a backbone on ``data`` and write the model, as ``tf-finetune train`` does.

    The job's lines (data report, one line per epoch, final metrics) go to stderr when the
    program has configured no logging; with a configuration of its own they go to the
    ``tf_finetune`` logger like any library's. On a terminal, progress bars show each epoch.

    Args:
        data: training data: a class-folder root (images) or a ``data.csv`` or its folder (text);
            local or ``s3://``.
        output: the model goes to ``<output>/output/model.tar.gz`` (local or ``s3://``).
        model_id: registry id of the backbone (see ``tf-finetune list-models``).
        handle: a backbone handle instead (folder, ``.tar.gz``, ``s3://``, URL).
        validation_data: separate validation data; by default a split of ``data``.
        hyperparameters: hyperparameters as a mapping (any spelling ``--help`` shows).
        **options: any other :class:`~tf_finetune.job_options.JobConfig` field (``test_data``,
            ``cache_dir``, ``checkpoint_dir``, ``image_size``, ``feature_cache``, …) and any
            hyperparameter (``epochs=5``, ``train_only_top_layer=True``), by name.

    Returns:
        The :class:`~tf_finetune.training.job_plan.JobResult`: ``archive`` (the ``model.tar.gz`` path or
        URI), ``metrics`` (the content of ``metrics.json``) and ``label_map`` (the class names).

    Raises:
        TfFinetuneError: anything the user can fix (bad data, an unknown model, a bad
            hyperparameter, a full disk, …), with the message the command line prints after
            ``tf-finetune: error:``; nothing is written then.
    """
    logs.show_progress()

    startup.prepare_tensorflow()  # before TensorFlow's first import, as the other doors do
    config = job_config(
        data,
        output=output,
        model_id=model_id,
        handle=handle,
        validation_data=validation_data,
        hyperparameters=hyperparameters,
        **options,
    )
    return train_job(config)


def job_config(
    data: str, *, output: str | None, hyperparameters: Mapping[str, Any] | None = None, **options: Any
) -> JobConfig:
    """The :class:`~tf_finetune.job_options.JobConfig` of ``data``, ``output`` and options by name.

    Args:
        data: the training data.
        output: where the model goes.
        hyperparameters: hyperparameters as a mapping.
        **options: JobConfig fields and hyperparameters by name (the ones that are not fields);
            ``cache_dir`` defaults to the command line's (``$TF_FINETUNE_CACHE``, else
            ``~/.cache/tf_finetune``).

    Returns:
        The job, its hyperparameters not yet checked (:func:`~tf_finetune.training.job.run` does).

    Raises:
        HyperparameterError: a name that is neither a JobConfig field nor a hyperparameter.
    """
    fields = sorted(set(job_options.FIELDS) - {"data", "output", "hyperparameters"})
    named = {name: value for name, value in options.items() if name not in fields}
    for name in named:
        _check_hyperparameter_name(name, fields)
    settings = {k: v for k, v in options.items() if k in fields}
    return job_options.job_config({**settings, "data": data, "output": output}, {**(hyperparameters or {}), **named})


def train_job(config: JobConfig) -> JobResult:
    """Run the job; with a local archive, write ``training_job.json`` beside it and log its
    training output block (the command line's ``train`` runs this too).

    Raises:
        TfFinetuneError: as :func:`~tf_finetune.training.job.run`; a full disk, as a DiskFullError.
    """
    started = time.perf_counter()
    try:
        result = run(config)
    except TfFinetuneError:
        raise
    except Exception as exc:
        message = disk_full(exc)
        if message is None:
            raise
        raise DiskFullError(message) from exc
    if result.archive and config.output:
        record = launch.local_training_output(
            config.output, str(result.archive), config.model_id or config.handle or "", time.perf_counter() - started
        )
        launch.write_training_output(record)
        log.info("%s", launch.format_training_output(record))
    return result


def _check_hyperparameter_name(name: str, fields: list[str]) -> None:
    """Raise unless ``name`` is a hyperparameter (in any accepted spelling)."""

    try:
        canonical_name(name)
    except HyperparameterError:
        known = fields + [param.name for param in SCHEMA]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise HyperparameterError(
            f"unknown option {name!r}{hint}: fine_tune() takes JobConfig's fields "
            f"({', '.join(fields)}) and the hyperparameters (`tf-finetune train "
            f"--help` lists them) by name"
        ) from None
