"""The outputs of a trained job: ``metrics.json``'s record, the model folder, the TFLite files,
``model.tar.gz`` (local or S3), the reports and the TensorBoard logs, each written whole or not at all."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tf_finetune import model_folder, s3, storage
from tf_finetune.data import DataSplit, Examples, LabelMap
from tf_finetune.errors import writing
from tf_finetune.reports import evaluation, gallery, plots
from tf_finetune.serving import tflite

if TYPE_CHECKING:
    import numpy as np
    import tf_keras

    from tf_finetune.hyperparameters import Hyperparameters
    from tf_finetune.job_options import JobConfig
    from tf_finetune.reports.data_check import DataReport
    from tf_finetune.training.classifier import Backbone, Built
    from tf_finetune.training.head_search import Choice
    from tf_finetune.training.scoring import Scorer

log = logging.getLogger(__name__)


def output_folder(output: str) -> str:
    """``<output>/output``: where the archive, TFLite files and reports go."""
    return f"{output.rstrip('/')}/{model_folder.OUTPUT_SUBDIR}"


@dataclass(frozen=True)
class Inputs:
    """A job's data, read and checked once.

    Attributes:
        data: the training and validation splits.
        test: the test split, or None.
        report: what the data report found (logged at the start, written with the reports).
        class_weight: class index -> weight of its examples in the loss, or None.
    """

    data: DataSplit
    test: Examples | None
    report: DataReport
    class_weight: dict[int, float] | None


@dataclass(frozen=True)
class Fitted:
    """What training produced, and how the trained model scores at the end.

    Attributes:
        history: metric name -> one value per epoch run.
        val_scorer: scores the trained model on the validation split (None without one).
        hyperparameters: the hyperparameters that ran, with the tool's choices applied.
        choices: what the tool chose (:class:`~tf_finetune.training.head_search.Choice`), in order.
        seconds: how long training took.
        final: the final ``train_``, ``val_`` and ``test_`` metrics (filled after training).
        val_probabilities: the validation predictions the final metrics and the reports come from.
    """

    history: dict[str, list[float]]
    val_scorer: Scorer | None
    hyperparameters: Hyperparameters
    choices: list[Choice]
    seconds: float
    final: dict[str, float] = field(default_factory=dict)
    val_probabilities: np.ndarray | None = None


@dataclass(frozen=True)
class Written:
    """Where the model went (None when only the model folder was asked for, or on a worker that
    is not the chief), and whether this process is the chief."""

    archive: Path | str | None
    chief: bool


def write_outputs(
    config: JobConfig,
    built: Built,
    data: DataSplit,
    metrics: dict[str, Any],
    hp: Hyperparameters,
    workdir: Path,
    *,
    chief: bool = True,
) -> Written:
    """Write the model: the model folder (``config.model_dir``), the TFLite files (the ``tflite``
    hyperparameter) and ``<output>/output/model.tar.gz``.

    Saving runs collective ops, so every worker of a cluster saves; only the chief keeps the result.

    Args:
        config: the job (a :class:`~tf_finetune.training.job_plan.JobConfig`): where the model goes.
        built: the trained classifier and its image size.
        data: the data it was trained on (its task and label map; the TFLite file's samples).
        metrics: ``metrics.json``'s record (:func:`metrics_record`).
        hp: the hyperparameters that ran.
        workdir: the job's working folder.
        chief: whether this process is the chief (:func:`~tf_finetune.training.distribute.is_chief`:
            a process training alone is).

    Returns:
        Where the model went, and whether this process is the chief.
    """
    from tf_finetune.serving import export, signatures

    model = built.model
    served = signatures.make_signatures(
        model, data.task, data.label_map.class_names, built.image_size, hp.image_resize_interpolation
    )
    if not chief:
        export.write_model_folder(model, data.label_map, metrics, workdir / "worker-model", served)
        return Written(None, chief=False)
    if config.model_dir:
        with writing(f"the model folder {config.model_dir}"):
            export.write_model_folder(model, data.label_map, metrics, Path(config.model_dir), served)
    if hp.tflite != "none":  # model.tflite next to model.tar.gz and in the model dir
        targets = [t for t in (config.model_dir, config.output and output_folder(config.output)) if t]
        with writing(f"the TFLite model (working folder {workdir}; to {', '.join(map(str, targets))})"):
            source = (
                Path(config.model_dir)
                if config.model_dir
                else export.write_model_folder(model, data.label_map, metrics, workdir / "tflite-model", served)
            )
            tflite.export_after_training(hp.tflite, source, data, workdir, targets)
    archive = None
    if config.output:
        with writing(f"the model to {output_folder(config.output)}"):
            archive = write_archive(model, data.label_map, metrics, served, config.output, workdir)
    return Written(archive, chief=True)


def tensorboard_dir(config: JobConfig, job_scope: contextlib.ExitStack) -> str | None:
    """Where the run's TensorBoard logs go: ``config.tensorboard_dir``, else, for a local output,
    a sub-folder of ``<output>/output/tensorboard`` of its own (TensorBoard then shows reruns side
    by side instead of overlaid).

    A failed job writes nothing: that sub-folder is removed when ``job_scope`` (the job's) ends
    with an error, whatever it is (Ctrl-C too), and so are the folders made for it when they are
    left empty.

    Args:
        config: the job (a :class:`~tf_finetune.training.job_plan.JobConfig`).
        job_scope: what is undone when the job ends.

    Returns:
        The folder, or None for no logs.
    """
    if config.tensorboard_dir is not None or not config.output or storage.is_s3(config.output):
        return config.tensorboard_dir
    run_name = time.strftime("%Y%m%d-%H%M%S", time.localtime()) + f"-{os.getpid()}"
    folder = Path(output_folder(config.output)) / "tensorboard" / run_name
    made = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first

    def remove_on_failure(failure: type[BaseException] | None, *_: object) -> None:
        if failure is None:
            return
        shutil.rmtree(folder, ignore_errors=True)
        for parent in made[1:]:
            with contextlib.suppress(OSError):  # not empty: something else is there, keep it
                parent.rmdir()

    job_scope.push(remove_on_failure)
    return str(folder)


def metrics_record(
    config: JobConfig, backbone: Backbone, inputs: Inputs, built: Built, fitted: Fitted, total_seconds: float
) -> dict[str, Any]:
    """What ``metrics.json`` records of a run (the doors and the benchmarks read it), whole.

    Args:
        config: the job (a :class:`~tf_finetune.training.job_plan.JobConfig`): the model id asked for.
        backbone: the backbone as used, with its text lengths.
        inputs: the data: examples counted per split.
        built: the classifier's image size, and its layout (replicas, workers, batch, steps).
        fitted: what training produced and the final metrics.
        total_seconds: how long the job has taken.

    Returns:
        The record, as plain JSON values.
    """
    data, layout, spec, history = inputs.data, built.layout, backbone.spec, fitted.history
    return {
        "backbone": {
            "id": config.model_id,
            "handle": spec.handle,
            "task": spec.task,
            "image_size": built.image_size,
            "preprocessor": spec.preprocessor,
            **backbone.text_lengths,
        },
        "final": fitted.final,
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "epochs_run": len(next(iter(history.values()), [])),
        "replicas": layout.replicas,
        "global_batch_size": layout.global_batch,
        "num_train_examples": len(data.train),
        "num_validation_examples": len(data.validation) if data.validation else 0,
        "num_classes": data.label_map.num_classes,
        "hyperparameters": dict(fitted.hyperparameters),
        "train_seconds": round(fitted.seconds, 2),
        "total_seconds": round(total_seconds, 2),
        "workers": layout.workers,
        "num_test_examples": len(inputs.test) if inputs.test is not None else 0,
        "steps_per_epoch": layout.steps,
        "choices": [choice.record() for choice in fitted.choices],
    }


def write_archive(
    model: tf_keras.Model,
    label_map: LabelMap,
    metrics: Mapping[str, Any],
    signatures: Mapping[str, Any],
    output: str,
    workdir: Path,
) -> Path | str:
    """Pack the model as ``<output>/output/model.tar.gz``, locally or on S3, atomically."""
    from tf_finetune.serving import export

    if not storage.is_s3(output):
        archive = Path(output) / model_folder.OUTPUT_SUBDIR / model_folder.ARCHIVE_NAME
        export.export_archive(model, label_map, metrics, archive, signatures)
        log.info("model written to %s", archive)
        return archive

    local = export.export_archive(model, label_map, metrics, workdir / model_folder.ARCHIVE_NAME, signatures)
    uri = storage.publish(
        local, str(s3.S3Uri.parse(output).join(model_folder.OUTPUT_SUBDIR, model_folder.ARCHIVE_NAME))
    )
    log.info("model written to %s", uri)
    return uri


def write_reports(
    config: JobConfig,
    data: DataSplit,
    val_probabilities: np.ndarray | None,
    history: Mapping[str, Sequence[float]],
    workdir: Path,
    report: DataReport,
) -> None:
    """The data report, training curves, and the validation confusion matrix with per-class
    metrics and the misclassified examples (from the same predictions as the final validation
    metrics).

    ``<output>/output/reports`` is replaced as a whole, so it holds this run's reports only: a
    local one is written beside it and swapped in (:func:`storage.folder_in_place`), an ``s3://``
    one written in ``workdir`` and published (:func:`storage.publish_folder`).
    ``config.report_dir`` (SageMaker's output data folder, new for every job) is filled file by
    file from ``workdir``.
    """
    if not config.report_dir and not config.output:
        return
    # Without a report_dir, the return above leaves an output.
    if config.report_dir or (config.output and storage.is_s3(config.output)):
        directory = workdir / "reports"
        directory.mkdir(parents=True, exist_ok=True)
        _draw_reports(directory, data, val_probabilities, history, report)
        if config.report_dir:
            destination = config.report_dir
            for path in sorted(directory.iterdir()):
                storage.publish(path, str(Path(destination) / path.name))
        else:
            assert config.output
            destination = storage.publish_folder(directory, f"{output_folder(config.output)}/reports")
    else:
        assert config.output
        destination = str(Path(output_folder(config.output)) / "reports")
        with storage.folder_in_place(Path(destination)) as directory:
            _draw_reports(directory, data, val_probabilities, history, report)
    log.info("reports written to %s", destination)


def _draw_reports(
    directory: Path,
    data: DataSplit,
    val_probabilities: np.ndarray | None,
    history: Mapping[str, Sequence[float]],
    report: DataReport,
) -> None:
    """Write the reports into ``directory``."""
    (directory / "data_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    plots.training_curves(history, directory / "training_curves.png")
    if val_probabilities is not None and data.validation is not None:
        predicted = val_probabilities.argmax(axis=1)
        names = data.label_map.class_names
        report = evaluation.classification_report(data.validation.labels, predicted, names)
        evaluation.write_report(report, directory, f"validation: accuracy {report['accuracy']:.3f}")
        found = gallery.mistakes(data.validation.inputs, data.validation.labels, val_probabilities, names)
        gallery.write_gallery(data.task, found, evaluation.format_report(report), directory)
