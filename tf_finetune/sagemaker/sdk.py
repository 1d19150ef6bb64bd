"""Submit a :class:`~tf_finetune.sagemaker.launch.LaunchPlan` through the SageMaker Python SDK installed.

SDK v3 (``sagemaker-train``: ``sagemaker.train.ModelTrainer``) is the current path: it uploads
the code with its own container drivers, which run ``train.py`` with the hyperparameters as
arguments. SDK v2 (``sagemaker>=2.257,<3``: the ``TensorFlow`` estimator, given the training
image explicitly since its table stops at TF 2.19) is the legacy one: the ``sagemaker-training``
toolkit in the image runs ``train.py``; local inputs are uploaded here, as v2 does not.
Either way the code sent is a folder with ``train.py``, ``requirements.txt`` (both from the
package's ``sagemaker/entrypoint/``) and a copy of the ``tf_finetune`` package itself, and the SDK's
telemetry is always turned off. Before anything is uploaded, every bucket involved is checked to exist and
to be in the job's region (SageMaker refuses cross-region requests); if the submission fails,
what this launch uploaded is deleted again.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tf_finetune
from tf_finetune.errors import StorageError, TfFinetuneError, install_extra
from tf_finetune.s3 import S3Uri, list_keys
from tf_finetune.sagemaker.launch import LaunchPlan
from tf_finetune.storage import is_s3

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient

log = logging.getLogger(__name__)

INSTALL_HINT = (
    f"{install_extra('sagemaker')} for the SageMaker Python SDK v3 (sagemaker-train), or "
    "pip install 'sagemaker>=2.257,<3' for the v2 TensorFlow estimator"
)
TELEMETRY_OFF = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
ENTRY_SCRIPT = "train.py"
REQUIREMENTS = "requirements.txt"


def sdk_major() -> int:
    """3 when SDK v3's ModelTrainer is installed, else 2 for the v2 TensorFlow estimator.

    Raises:
        TfFinetuneError: neither is installed, naming what to install.
    """
    if not _installed("sagemaker"):
        raise TfFinetuneError(f"launch needs the SageMaker Python SDK: {INSTALL_HINT}")
    if _installed("sagemaker.train"):
        return 3
    if _installed("sagemaker.tensorflow"):
        return 2
    raise TfFinetuneError(
        f"the installed 'sagemaker' package has neither ModelTrainer nor the TensorFlow estimator: {INSTALL_HINT}"
    )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or blocked in sys.modules
        return False


def check_buckets(plan: LaunchPlan, s3: BaseClient) -> None:
    """Every bucket of the launch exists and is in the job's region.

    Raises:
        StorageError: a missing bucket, one in another region, or no access.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    buckets = {S3Uri.parse(plan.output_path).bucket: "--output"}
    for channel, source in plan.channels.items():
        if is_s3(source):
            buckets.setdefault(S3Uri.parse(source).bucket, f"the {channel} channel")
    for bucket, used_by in buckets.items():
        try:
            location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
        except NoCredentialsError:
            raise StorageError(
                "no AWS credentials: run 'aws configure' (or 'aws sso login'), or set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise StorageError(
                    f"bucket {bucket!r} ({used_by}) does not exist: create it in {plan.region} or name another"
                ) from None
            raise StorageError(
                f"cannot read the location of bucket {bucket!r} ({used_by}): {code} "
                f"{exc.response.get('Error', {}).get('Message', '')}".rstrip()
            ) from None
        except BotoCoreError as exc:
            raise StorageError(f"cannot reach S3 to check bucket {bucket!r}: {exc}") from None
        region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
        if region != plan.region:
            raise StorageError(
                f"bucket {bucket!r} ({used_by}) is in {region} and the job would run "
                f"in {plan.region}; SageMaker does not allow cross-region requests: "
                f"pass --region {region} or use a bucket in {plan.region}"
            )


def source_folder(target: Path) -> Path:
    """The code the job runs: ``train.py``, ``requirements.txt`` and the ``tf_finetune`` package."""
    package = Path(tf_finetune.__file__).resolve().parent
    shutil.copytree(
        package,
        target / "tf_finetune",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "entrypoint"),
    )
    for name in (ENTRY_SCRIPT, REQUIREMENTS):
        shutil.copyfile(package / "sagemaker" / "entrypoint" / name, target / name)
    return target


def submit(plan: LaunchPlan, wait: bool, boto_session: boto3.Session | None = None) -> dict[str, Any]:
    """Create the training job (uploading local inputs and the code), optionally wait for it.

    Args:
        plan: the checked launch.
        wait: wait until the job ends, streaming its log.
        boto_session: the boto3 session to use (default: a new one in the plan's region).

    Returns:
        The DescribeTrainingJob response (PascalCase keys), after the wait when waiting.

    Raises:
        TfFinetuneError: the SDK is missing, a bucket is wrong, or the request is refused (what
            this launch uploaded is deleted again). A job that fails later is not an error here:
            its description says so (see :func:`tf_finetune.sagemaker.launch.finish`).
    """
    major = sdk_major()
    import boto3

    boto_session = boto_session or boto3.session.Session(region_name=plan.region)
    s3 = boto_session.client("s3")
    check_buckets(plan, s3)
    staged = S3Uri.parse(plan.staging)
    before = set(list_keys(s3, staged))
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        with tempfile.TemporaryDirectory(prefix="tf_finetune-code-") as folder:
            code = source_folder(Path(folder))
            submit_with = _submit_v3 if major == 3 else _submit_v2
            name, wait_for_job = submit_with(plan, boto_session, code)
    except (ClientError, BotoCoreError, ValueError) as exc:
        _delete_new(s3, staged, before)
        raise TfFinetuneError(f"SageMaker did not accept the training job: {exc}") from None
    sagemaker = boto_session.client("sagemaker")
    description = sagemaker.describe_training_job(TrainingJobName=name)
    log.info(
        "training job %s created (%s) with SageMaker Python SDK v%d", name, description.get("TrainingJobArn"), major
    )
    if wait:
        wait_for_job()  # the SDK's own wait, printing the job's log lines as they come
        description = sagemaker.describe_training_job(TrainingJobName=name)
    return description


def _submit_v3(plan: LaunchPlan, boto_session: boto3.Session, code: Path) -> tuple[str, Callable[[], None]]:
    """Create the job with ModelTrainer (it uploads local inputs and the code).

    Returns:
        (the job's name, a function that waits for it, streaming its log).
    """
    from sagemaker.core.utils.exceptions import FailedStatusError
    from sagemaker.train.configs import SourceCode

    trainer = _trainer(plan, boto_session, S3Uri.parse(plan.output_path))
    trainer.source_code = SourceCode(source_dir=str(code), entry_script=ENTRY_SCRIPT, requirements=REQUIREMENTS)
    trainer.train(input_data_config=_channels(plan), wait=False, logs=False)
    job = trainer._latest_training_job  # the SDK's handle of the job it created

    def wait_for_job() -> None:
        with contextlib.suppress(FailedStatusError):  # the output block shows status and reason
            job.wait(logs=True)

    return job.training_job_name, wait_for_job


def _submit_v2(plan: LaunchPlan, boto_session: boto3.Session, code: Path) -> tuple[str, Callable[[], None]]:
    """Create the job with the v2 TensorFlow estimator, uploading local inputs first.

    Returns:
        (the job's name, a function that waits for it, streaming its log).
    """
    from sagemaker.exceptions import UnexpectedStatusException
    from sagemaker.session import Session
    from sagemaker.tensorflow import TensorFlow

    output = S3Uri.parse(plan.output_path)
    session = Session(boto_session=boto_session, default_bucket=output.bucket, sagemaker_config=TELEMETRY_OFF)
    job = plan.job_name
    staging = S3Uri.parse(plan.staging).join(job, "input")
    inputs = {}
    for name, source in plan.channels.items():
        inputs[name] = (
            source
            if is_s3(source)
            else session.upload_data(
                str(Path(source).resolve()), bucket=staging.bucket, key_prefix=f"{staging.key}/{name}"
            )
        )
    config = plan.config
    estimator = TensorFlow(
        entry_point=ENTRY_SCRIPT,
        source_dir=str(code),
        image_uri=plan.image_uri,
        role=config.role,
        instance_type=config.instance_type,
        instance_count=config.instance_count,
        hyperparameters=dict(plan.hyperparameters),
        output_path=plan.output_path,
        code_location=str(S3Uri.parse(plan.staging)).rstrip("/"),
        base_job_name=config.name,
        max_run=config.max_run,
        use_spot_instances=config.spot,
        max_wait=2 * config.max_run if config.spot else None,
        checkpoint_s3_uri=plan.checkpoint_uri,
        metric_definitions=plan.metric_definitions,
        disable_profiler=True,
        debugger_hook_config=False,
        sagemaker_session=session,
    )
    estimator.fit(inputs=inputs, job_name=job, wait=False, logs=False)

    def wait_for_job() -> None:
        with contextlib.suppress(UnexpectedStatusException):  # the output block shows status and reason
            session.logs_for_job(job, wait=True)

    return job, wait_for_job


def _trainer(plan: LaunchPlan, boto_session: boto3.Session, output: S3Uri) -> Any:
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.shapes import MetricDefinition
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import CheckpointConfig, Compute, OutputDataConfig, StoppingCondition

    session = Session(
        boto_session=boto_session,
        default_bucket=output.bucket,
        default_bucket_prefix=output.key.strip("/") or None,
        sagemaker_config=TELEMETRY_OFF,
    )
    config = plan.config
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=config.role,
        base_job_name=config.name,
        training_image=plan.image_uri,
        compute=Compute(
            instance_type=config.instance_type,
            instance_count=config.instance_count,
            enable_managed_spot_training=config.spot or None,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=config.max_run, max_wait_time_in_seconds=2 * config.max_run if config.spot else None
        ),
        output_data_config=OutputDataConfig(s3_output_path=plan.output_path),
        checkpoint_config=CheckpointConfig(s3_uri=plan.checkpoint_uri) if config.spot else None,
        hyperparameters=dict(plan.hyperparameters),
    )
    return trainer.with_metric_definitions(
        [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in plan.metric_definitions]
    )


def _channels(plan: LaunchPlan) -> list:
    from sagemaker.train.configs import InputData

    return [
        InputData(channel_name=name, data_source=source if is_s3(source) else str(Path(source).resolve()))
        for name, source in plan.channels.items()
    ]


def _delete_new(s3: BaseClient, location: S3Uri, before: set[str]) -> None:
    """Delete what this launch uploaded (keys under ``location`` that were not there before)."""
    try:
        new = sorted(set(list_keys(s3, location)) - before)
        for start in range(0, len(new), 1000):
            s3.delete_objects(
                Bucket=location.bucket, Delete={"Objects": [{"Key": k} for k in new[start : start + 1000]]}
            )
        if new:
            log.info(
                "deleted the %d object(s) this launch had uploaded to s3://%s/%s",
                len(new),
                location.bucket,
                location.key,
            )
    except Exception as exc:  # cleanup must not hide the real error
        log.warning(
            "could not delete what this launch uploaded under s3://%s/%s: %s", location.bucket, location.key, exc
        )
