"""The SageMaker door: the training container's environment and arguments in, a job out.

The ``sagemaker-training`` toolkit runs ``tf_finetune/sagemaker/entrypoint/train.py`` with the job's
hyperparameters as command-line arguments (``--epochs 3 --train_only_top_layer True …``, plus
``--model_dir s3://…`` that the TensorFlow estimator adds) and the ``SM_*`` variables set. This
module reads both once, builds a :class:`~tf_finetune.job_options.JobConfig` (through
:func:`tf_finetune.job_options.job_config`, as every door does), runs it, and on any
failure writes the reason to ``<output>/failure`` (what SageMaker shows as the job's
FailureReason) and returns a non-zero exit code.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf_finetune import job_options, logs, model_folder, startup
from tf_finetune.errors import HyperparameterError, TfFinetuneError, TrainingInterrupted, disk_full
from tf_finetune.job_options import JobConfig
from tf_finetune.training.cluster import DEFAULT_WORKER_PORT, cluster_config, worker_count
from tf_finetune.training.job import run
from tf_finetune.training.stopping import install_sigterm_handler

log = logging.getLogger(__name__)

DEFAULT_BASE_DIR = "/opt/ml"

# Job options (model_id, image_size, worker_port, ...) travel as hyperparameters too; they are
# declared with the command line's flags in tf_finetune.job_options.
SAGEMAKER_OPTIONS = {option.name for option in job_options.OPTIONS if option.hyperparameter}
# Arguments the estimator or toolkit add on their own; outputs go to SM_MODEL_DIR regardless.
IGNORED_ARGUMENTS = {"model_dir"}


@dataclass(frozen=True)
class SageMakerEnv:
    """The parts of the SageMaker training environment a job needs, read once.

    Attributes:
        channels: channel name -> local folder (``SM_CHANNEL_<NAME>``).
        model_dir: where the model goes (``SM_MODEL_DIR``); SageMaker uploads it as
            ``model.tar.gz``.
        output_data_dir: other outputs (``SM_OUTPUT_DATA_DIR``), uploaded as ``output.tar.gz``.
        output_dir: where the ``failure`` file goes (``SM_OUTPUT_DIR``).
        hosts: all hosts of the job (``SM_HOSTS`` or ``resourceconfig.json``).
        current_host: this host.
        num_gpus: GPUs on this host (``SM_NUM_GPUS``).
        checkpoint_dir: ``/opt/ml/checkpoints`` when SageMaker made it (the estimator's
            ``checkpoint_s3_uri`` is set; managed spot training syncs it with S3), else None.
    """

    channels: Mapping[str, str]
    model_dir: str
    output_data_dir: str
    output_dir: str
    hosts: tuple[str, ...]
    current_host: str
    num_gpus: int
    checkpoint_dir: str | None = None

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> SageMakerEnv:
        """Read the environment the toolkit sets (with ``/opt/ml`` defaults, as on SageMaker).

        Raises:
            TfFinetuneError: the required ``training`` channel is missing.
        """
        base = Path(environ.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR))
        channels = {k[len("SM_CHANNEL_") :].lower(): v for k, v in environ.items() if k.startswith("SM_CHANNEL_")}
        if "training" not in channels:
            raise TfFinetuneError(
                "no 'training' channel (SM_CHANNEL_TRAINING is not set): pass fit({'training': 's3://bucket/prefix/'})"
            )
        hosts, current = _hosts(environ, base)
        return cls(
            channels=channels,
            model_dir=environ.get("SM_MODEL_DIR", str(base / "model")),
            output_data_dir=environ.get("SM_OUTPUT_DATA_DIR", str(base / "output" / "data")),
            output_dir=output_dir(environ),
            hosts=hosts,
            current_host=current,
            num_gpus=int(environ.get("SM_NUM_GPUS", "0") or 0),
            checkpoint_dir=str(base / "checkpoints") if (base / "checkpoints").is_dir() else None,
        )

    def job_values(self) -> dict[str, Any]:
        """The JobConfig fields this environment gives: the inputs from the channels, the model,
        report, TensorBoard and checkpoint folders SageMaker uploads; no ``output`` (``model_dir``).

        Returns:
            JobConfig field -> value, for :func:`tf_finetune.job_options.job_config`.
        """
        return {
            **job_options.from_channels(self.channels),
            "output": None,
            "model_dir": self.model_dir,
            "report_dir": self.output_data_dir,
            "tensorboard_dir": os.path.join(self.output_dir, "tensorboard"),
            "checkpoint_dir": self.checkpoint_dir,
        }


def output_dir(environ: Mapping[str, str]) -> str:
    """``SM_OUTPUT_DIR``, else ``$SAGEMAKER_BASE_DIR/output`` (``/opt/ml/output`` on SageMaker)."""
    base = environ.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR)
    return environ.get("SM_OUTPUT_DIR") or os.path.join(base, "output")


def _hosts(environ: Mapping[str, str], base: Path) -> tuple[tuple[str, ...], str]:
    if environ.get("SM_HOSTS"):
        hosts = tuple(json.loads(environ["SM_HOSTS"]))
        return hosts, environ.get("SM_CURRENT_HOST", hosts[0])
    config = base / "input" / "config" / "resourceconfig.json"
    if config.is_file():
        resources = json.loads(config.read_text("utf-8"))
        return tuple(resources["hosts"]), resources["current_host"]
    return ("localhost",), "localhost"


def parse_arguments(argv: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split the toolkit's ``--key value`` arguments into job options and hyperparameters.

    Accepts ``--key value``, ``--key=value`` and ``-k value`` (the toolkit's form for one-letter
    keys). Values stay strings; the hyperparameter schema parses them.

    Returns:
        (job options, hyperparameters); unknown names are left for the schema to reject.

    Raises:
        HyperparameterError: a stray value or a key without a value.
    """
    options: dict[str, str] = {}
    hyperparameters: dict[str, str] = {}
    tokens = list(argv)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("-") or token.strip("-") == "":
            raise HyperparameterError(f"unexpected argument {token!r}: hyperparameters come as --name value")
        key, has_value, value = token.lstrip("-").partition("=")
        if not has_value:
            if not tokens:
                raise HyperparameterError(f"hyperparameter {key!r} has no value")
            value = tokens.pop(0)
        name = key.replace("-", "_")
        if name in IGNORED_ARGUMENTS:
            continue
        (options if name in SAGEMAKER_OPTIONS else hyperparameters)[name] = value
    return options, hyperparameters


def parse_job_options(options: Mapping[str, str]) -> dict[str, Any]:
    """Parse and check the job options' string values, before any of them is used.

    Returns:
        option name -> parsed value.

    Raises:
        HyperparameterError: a value of the wrong type or out of range, named with what is expected.
    """
    return job_options.parse_options(options)


def job_config(
    env: SageMakerEnv, parsed: Mapping[str, Any], hyperparameters: Mapping[str, str], cache_dir: str, multi_worker: bool
) -> JobConfig:
    """The job described by the SageMaker environment and arguments.

    The base model is the ``model`` channel when there is one (network isolation), else the
    registry entry ``model_id`` is downloaded through tensorflow_hub.

    Args:
        env: the environment, read.
        parsed: the job options, parsed (:func:`parse_job_options`).
        hyperparameters: the other arguments, as text.
        cache_dir: where backbones are cached.
        multi_worker: whether the job spans several hosts.

    Returns:
        The job.

    Raises:
        HyperparameterError: neither ``model_id`` nor a ``model`` channel.
    """
    if not parsed.get("model_id") and not env.channels.get("model"):
        raise HyperparameterError(
            "no backbone: set the model_id hyperparameter (see tf-finetune list-models) or give a 'model' channel"
        )
    values = {**env.job_values(), **parsed, "cache_dir": cache_dir, "multi_worker": multi_worker}
    return job_options.job_config(values, hyperparameters)


def configure_cluster(env: SageMakerEnv, parsed: Mapping[str, Any], environ: MutableMapping[str, str]) -> bool:
    """Set ``TF_CONFIG`` from the host list when there are several hosts and it is not set.

    Returns:
        Whether the job spans several workers.
    """
    if len(env.hosts) > 1 and not environ.get("TF_CONFIG"):
        port = parsed.get("worker_port") or DEFAULT_WORKER_PORT
        environ["TF_CONFIG"] = json.dumps(cluster_config(env.hosts, env.current_host, port))
    return worker_count(environ.get("TF_CONFIG")) > 1


def write_failure(directory: str, reason: str) -> None:
    """Write ``reason`` to ``<directory>/failure``, the file SageMaker reports as FailureReason.

    SageMaker shows the first 1024 characters, so the reason leads and any trace follows.
    """
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "failure"), "w", encoding="utf-8") as handle:
        handle.write(reason.rstrip("\n") + "\n")


def main(argv: Sequence[str] | None = None, environ: MutableMapping[str, str] | None = None) -> int:
    """Run a training job as SageMaker's script-mode entry point.

    Args:
        argv: the hyperparameter arguments (default ``sys.argv[1:]``).
        environ: the environment (default ``os.environ``; ``TF_CONFIG`` may be set in it).

    Returns:
        0 on success; 1 after writing the failure file.
    """
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    logs.configure(environ, tf_cpp_level="2")
    startup.prepare_tensorflow(environ)
    try:
        env = SageMakerEnv.read(environ)
        options, hyperparameters = parse_arguments(argv)
        parsed = parse_job_options(options)
        multi_worker = configure_cluster(env, parsed, environ)
        config = job_config(env, parsed, hyperparameters, job_options.default_cache_dir(environ), multi_worker)
        log.info(
            "host %s of %s, %d GPU(s); channels: %s",
            env.current_host,
            list(env.hosts),
            env.num_gpus,
            ", ".join(f"{k}={v}" for k, v in sorted(env.channels.items())),
        )

        if config.checkpoint_dir:  # spot interruption: save, then stop
            install_sigterm_handler()
        result = run(config)
        if result.chief:
            _write_output_data(env.output_data_dir, result.metrics)
            log.info("model written to %s", env.model_dir)
        return 0
    except TrainingInterrupted as exc:
        print(f"tf-finetune: {exc}", file=sys.stderr)
        write_failure(output_dir(environ), str(exc))
        return TrainingInterrupted.exit_code
    except TfFinetuneError as exc:
        reason = str(exc)
    except Exception as exc:  # an internal error: still one readable line first, then the trace
        reason = disk_full(exc) or f"internal error: {exc.__class__.__name__}: {exc}\n{traceback.format_exc()}"
    print(f"tf-finetune: error: {reason}", file=sys.stderr)
    write_failure(output_dir(environ), reason)
    return 1


def _write_output_data(directory: str, metrics: Mapping) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, model_folder.METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
        handle.write("\n")
