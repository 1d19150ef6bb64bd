"""``tf-finetune launch``: the same job as ``train``, as a SageMaker training job.

The flow: check everything that can be checked here (names, role, instance type, model,
hyperparameters, local paths) -> a :class:`LaunchPlan` (what would be sent, printed by
``--dry-run``) -> submit it through the SageMaker SDK installed (:mod:`tf_finetune.sagemaker.sdk`)
-> wait, streaming the job's log -> the training output block, also written as
``training_job.json`` beside ``model.tar.gz``.

Where things go, as on JumpStart's fine-tuning page, with ``--output s3://bucket/``: the model
at ``s3://bucket/<job-name>/output/model.tar.gz`` (the job name is ``--name`` plus a
timestamp, so every launch is unique), local inputs staged under
``s3://bucket/<name>/<job-name>/input/<channel>/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tf_finetune import job_options, model_folder
from tf_finetune.errors import TfFinetuneError, UsageError
from tf_finetune.s3 import S3Uri, client
from tf_finetune.sagemaker.instances import DEFAULT_INSTANCE_TYPE, Deployment, gpus_of
from tf_finetune.storage import check_s3_spelling, is_s3, write_atomically
from tf_finetune.training import job as local_job

if TYPE_CHECKING:
    from tf_finetune.job_options import JobConfig

TF_VERSION = "2.21.0"  # the TensorFlow training image: the package's TensorFlow line
PY_VERSION = "py312"  # the only Python AWS builds TF 2.21 training images for
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,47}$")  # + 15-char timestamp <= 63
ROLE_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan)"
DEFAULT_MAX_RUN = 24 * 3600


@dataclass(frozen=True)
class LaunchConfig:
    """What the user asked for (the flags of ``tf-finetune launch``).

    Attributes:
        job: the job to run, as ``train`` takes it (data, model, hyperparameters; its
            ``output`` is unused). Local data and a local ``handle`` are uploaded; ``s3://``
            ones are passed as channels.
        name: the model name; the job name is it plus a timestamp.
        output: ``s3://bucket/`` or ``s3://bucket/prefix/`` where the job's folder goes.
        role: the IAM role ARN the job runs as.
        instance_type, instance_count, gpus: where it runs (``gpus`` for a type not in the table).
        spot: managed spot training, with checkpoints synced to S3 so a job resumes.
        max_run: seconds before SageMaker stops the job.
        image_uri: a training image instead of AWS's TensorFlow one.
        region: the AWS region (default: boto3's).
    """

    job: JobConfig
    name: str
    output: str
    role: str | None
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    gpus: int | None = None
    spot: bool = False
    max_run: int = DEFAULT_MAX_RUN
    image_uri: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class LaunchPlan:
    """The training job to create, checked.

    Attributes:
        job_name: ``<name>-<UTC timestamp>`` (the SDK may stamp the second it submits).
        deployment: instance type and count, GPUs, the per-replica and global batch.
        channels: channel -> local path (uploaded at submission) or ``s3://`` prefix.
        hyperparameters: what the job gets as hyperparameters: the user's as given (strings), and
            the job options that differ from their defaults (:func:`tf_finetune.job_options.hyperparameters_of`).
        metric_definitions: ``[{"Name", "Regex"}]`` read from the job's log lines.
        output_path: ``s3://bucket/prefix/`` given to SageMaker; the job's folder goes under it.
        staging: where local inputs are uploaded (the SDK adds ``/<job-name>/input/<channel>``).
        image_uri, region, role, spot, max_run: as sent.
        parent_model: the model id or backbone handle (for the training output block).
    """

    config: LaunchConfig
    job_name: str
    deployment: Deployment
    channels: dict[str, str]
    hyperparameters: dict[str, str]
    metric_definitions: list[dict[str, str]]
    output_path: str
    staging: str
    image_uri: str
    region: str
    parent_model: str

    @property
    def model_path(self) -> str:
        """Where the model lands: ``<output>/<job-name>/output/model.tar.gz``."""
        return model_folder.archive_location(f"{self.output_path}{self.job_name}")

    @property
    def checkpoint_uri(self) -> str | None:
        """``<output>/<name>/checkpoints/`` for spot jobs (shared by reruns of the name)."""
        return f"{self.output_path}{self.config.name}/checkpoints/" if self.config.spot else None

    def request(self) -> dict[str, Any]:
        """The essential CreateTrainingJob fields, as ``--dry-run`` prints them."""
        channels = {
            name: source if is_s3(source) else f"{source} -> uploaded to {self.staging}{self.job_name}/input/{name}/"
            for name, source in self.channels.items()
        }
        request: dict[str, Any] = {
            "TrainingJobName": self.job_name,
            "RoleArn": self.config.role,
            "AlgorithmSpecification": {"TrainingImage": self.image_uri, "MetricDefinitions": self.metric_definitions},
            "HyperParameters": self.hyperparameters,
            "InputDataConfig": channels,
            "ResourceConfig": {
                "InstanceType": self.deployment.instance_type,
                "InstanceCount": self.deployment.instance_count,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.config.max_run},
            "OutputDataConfig": {"S3OutputPath": self.output_path},
            "EnableManagedSpotTraining": self.config.spot,
        }
        if self.config.spot:
            request["CheckpointConfig"] = {"S3Uri": self.checkpoint_uri}
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = 2 * self.config.max_run
        return request

    def describe(self) -> str:
        """The deployment configuration and where the model goes, for the terminal."""
        return (
            f"{self.deployment.describe()}\n"
            f"training image    {self.image_uri}\n"
            f"region            {self.region}\n"
            f"model             {self.model_path}"
        )


def plan(config: LaunchConfig, now: datetime | None = None) -> LaunchPlan:
    """Check a launch and describe the job it creates; nothing is sent anywhere.

    Args:
        config: the launch.
        now: the time for the job name (default: now, UTC).

    Returns:
        The plan.

    Raises:
        TfFinetuneError: anything wrong with the launch, named (HyperparameterError for the
            hyperparameters, UsageError for the launch's other flags, RegistryError for the model,
            StorageError for paths).
    """
    output_path = _checked_output_path(config)
    job = config.job
    hp = local_job.plan(job).hyperparameters  # the same checks as a local train, and the batch it uses
    channels = job_options.channels_of(job)
    for name, source in channels.items():
        _check_source(name, source)
    sent = job_options.hyperparameters_of(job)
    region = config.region or _default_region()
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    return LaunchPlan(
        config=config,
        job_name=f"{config.name}-{stamp}",
        deployment=Deployment(
            config.instance_type, config.instance_count, gpus_of(config.instance_type, config.gpus), hp.batch_size
        ),
        channels=channels,
        hyperparameters=sent,
        metric_definitions=metric_definitions(hp.eval_metric),
        output_path=output_path,
        staging=f"{output_path}{config.name}/",
        image_uri=config.image_uri or training_image(region, config.instance_type, config.gpus),
        region=region,
        parent_model=job.model_id or job.handle or "",
    )


def _checked_output_path(config: LaunchConfig) -> str:
    """Check the launch's own flags (name, output, role, counts); returns the S3 output path."""
    if not NAME_PATTERN.match(config.name or ""):
        raise UsageError(
            f"--name {config.name!r}: use 1-48 letters, digits and hyphens, "
            "starting and ending with a letter or digit (the job name adds a "
            "timestamp)"
        )
    check_s3_spelling(config.output, "--output")
    if not config.output.startswith("s3://"):
        raise UsageError(
            f"--output {config.output!r}: a SageMaker job writes to S3; pass s3://bucket/ or s3://bucket/prefix/"
        )
    if not config.role:
        raise UsageError(
            "--role is required: the ARN of the IAM role the job runs as "
            "(arn:aws:iam::<account>:role/<name>, with SageMaker and S3 access)"
        )
    if not ROLE_PATTERN.match(config.role):
        raise UsageError(
            f"--role {config.role!r} is not an IAM role ARN: expected arn:aws:iam::<12-digit account>:role/<name>"
        )
    if config.instance_count < 1:
        raise UsageError(f"--instance-count {config.instance_count}: expected 1 or more")
    if config.max_run < 1:
        raise UsageError(f"--max-run {config.max_run}: expected seconds, 1 or more")
    output = S3Uri.parse(config.output)
    return f"s3://{output.bucket}/{output.key.strip('/') + '/' if output.key.strip('/') else ''}"


def metric_definitions(eval_metric: str = "loss") -> list[dict[str, str]]:
    """Regexes over the job's per-epoch log line (``epoch=2/5 loss=… accuracy=… val_loss=…``) and
    its test line, so SageMaker's console charts and hyperparameter tuning need no user regex."""
    names = ["loss", "accuracy", "val_loss", "val_accuracy"]
    if eval_metric not in ("loss", "accuracy"):
        names.append(f"val_{eval_metric}")
    definitions = []
    for name in names:
        # "loss=" must not match inside "val_loss=": the train metrics follow "epoch=N/M ".
        lead = r"epoch=\d+/\d+ (?:\S+ )*?" if not name.startswith("val_") else r"\b"
        label = name.replace("val_", "validation:") if name.startswith("val_") else f"train:{name}"
        definitions.append({"Name": label, "Regex": f"{lead}{name}={NUMBER}"})
    definitions.append({"Name": "test:accuracy", "Regex": rf"\btest_accuracy={NUMBER}"})  # with test data
    return definitions


def training_image(region: str, instance_type: str, gpus: int | None = None) -> str:
    """AWS's TensorFlow training image for the package's TensorFlow line (GPU or CPU build).

    Uses the SageMaker SDK's image table when the SDK has it, else the registry account that
    serves the commercial regions.
    """
    device = "gpu" if gpus_of(instance_type, gpus) else "cpu"
    try:
        from sagemaker.core import image_uris

        return image_uris.retrieve(
            "tensorflow",
            region=region,
            version=TF_VERSION,
            py_version=PY_VERSION,
            instance_type=instance_type if gpus is None else ("ml.p3.2xlarge" if device == "gpu" else "ml.m5.xlarge"),
            image_scope="training",
        )
    except ImportError:
        return f"763104351884.dkr.ecr.{region}.amazonaws.com/tensorflow-training:{TF_VERSION}-{device}-{PY_VERSION}"


def _check_source(channel: str, source: str) -> None:
    flag = job_options.BY_CHANNEL[channel].flag
    check_s3_spelling(source, flag)
    if is_s3(source):
        S3Uri.parse(source)
    elif "://" in source:
        raise UsageError(f"{flag} {source}: a SageMaker channel is a local path (uploaded) or s3://bucket/prefix")
    elif not Path(source).exists():
        raise UsageError(f"{flag} {source}: no such file or folder")


def _default_region() -> str:
    import boto3

    region = boto3.session.Session().region_name
    if not region:
        raise TfFinetuneError("no AWS region: pass --region, or set AWS_DEFAULT_REGION or 'region' in ~/.aws/config")
    return region


def training_output(description: Mapping[str, Any], parent_model: str) -> dict[str, Any]:
    """JumpStart's training output (parent model, job name, ARN, times, status, output path)
    from a DescribeTrainingJob response."""
    return {
        "parent_model": parent_model,
        "training_job_name": description.get("TrainingJobName"),
        "training_job_arn": description.get("TrainingJobArn"),
        "status": description.get("TrainingJobStatus"),
        "training_time_seconds": description.get("TrainingTimeInSeconds"),
        "billable_time_seconds": description.get("BillableTimeInSeconds"),
        "output_path": (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        "failure_reason": description.get("FailureReason"),
    }


def format_training_output(record: Mapping[str, Any]) -> str:
    """The training output block, one ``name  value`` line per field that has a value."""
    labels = {
        "parent_model": "parent model",
        "training_job_name": "training job name",
        "training_job_arn": "training job ARN",
        "status": "status",
        "training_time_seconds": "training time (s)",
        "billable_time_seconds": "billable time (s)",
        "output_path": "output path",
        "failure_reason": "failure reason",
    }
    lines = ["training output"]
    lines += [f"  {labels[k]:<18} {record[k]}" for k in labels if record.get(k) not in (None, "")]
    return "\n".join(lines)


def training_output_json(record: Mapping[str, Any]) -> bytes:
    """``training_job.json``: the block as JSON."""
    return (json.dumps(dict(record), indent=2, default=str) + "\n").encode("utf-8")


def local_training_output(output: str, archive: str, parent_model: str, seconds: float) -> dict[str, Any]:
    """The training output of a local ``train``: the job is named after its output folder; no ARN."""
    return {
        "parent_model": parent_model,
        "training_job_name": output.rstrip("/").rsplit("/", 1)[-1],
        "training_job_arn": None,
        "status": "Completed",
        "training_time_seconds": round(seconds),
        "billable_time_seconds": None,
        "output_path": str(archive),
        "failure_reason": None,
    }


def write_training_output(record: Mapping[str, Any]) -> str:
    """Write ``training_job.json`` beside the model (``output_path``: a path or ``s3://`` URI).

    Returns:
        Where it went.
    """
    archive = str(record["output_path"])
    target = archive.rsplit("/", 1)[0] + "/training_job.json"
    if is_s3(target):
        location = S3Uri.parse(target)
        client().put_object(Bucket=location.bucket, Key=location.key, Body=training_output_json(record))
    else:
        write_atomically(Path(target), training_output_json(record))
    return target


def finish(plan: LaunchPlan, description: Mapping[str, Any], waited: bool) -> int:
    """Print the training output block; after a wait, also write it as ``training_job.json``
    beside ``model.tar.gz``.

    Returns:
        0 when the job completed (or is still running and not waited for).

    Raises:
        TfFinetuneError: the job failed or was stopped, with SageMaker's FailureReason.
    """
    record = training_output(description, plan.parent_model)
    if not record["output_path"]:
        record["output_path"] = model_folder.archive_location(f"{plan.output_path}{record['training_job_name']}")
    print(format_training_output(record))
    if not waited:
        return 0
    write_training_output(record)
    if record["status"] != "Completed":
        reason = record["failure_reason"] or "no reason given"
        raise TfFinetuneError(f"training job {record['training_job_name']} ended {record['status']}: {reason}")
    return 0
