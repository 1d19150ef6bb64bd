"""``tf-finetune launch``: the plan, the dry run, and a real submission through the SageMaker
SDK installed (v3 ModelTrainer in the main test venv, the v2 TensorFlow estimator in the
Python 3.12 CI venv) to local AWS protocol servers (moto: S3, SageMaker, IAM, STS on
127.0.0.1), then the job run from the captured request as SageMaker would run it
(``sagemaker_platform``).

The CreateTrainingJob request is captured client-side (botocore's ``provide-client-params``
event on the session given to the SDK), because moto's DescribeTrainingJob does not echo every
field faithfully. SDK v3's role-permission simulation (iam:SimulatePrincipalPolicy) is not
served by moto, so it is switched off with the SDK's ``SAGEMAKER_VALIDATE_ROLE=false``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import tarfile
from datetime import UTC, datetime

import pytest

from helpers import REPO, only_localhost, run_main
from sagemaker_platform import cannot_emulate, run_training_job, venv_bin
from tf_finetune.cli import commands
from tf_finetune.errors import HyperparameterError, StorageError, UsageError
from tf_finetune.job_options import JobConfig
from tf_finetune.sagemaker import launch
from tf_finetune.training.fit_loop import format_metrics

pytest.importorskip("sagemaker", reason="no SageMaker Python SDK is installed")
from tf_finetune.sagemaker.sdk import sdk_major  # noqa: E402

SDK = sdk_major()

ROLE = "arn:aws:iam::123456789012:role/TfFinetuneTest"
NOW = datetime(2026, 12, 2, 16, 30, 5, tzinfo=UTC)


JOB_FIELDS = {
    "data",
    "model_id",
    "handle",
    "validation_data",
    "test_data",
    "hyperparameters",
    "image_size",
    "max_seq_length",
}


def config(training, **overrides) -> launch.LaunchConfig:
    """A launch of ``training``; ``overrides`` are JobConfig or LaunchConfig fields."""
    job = dict(data=str(training), output=None, model_id="mobilenet-v2-100-224")
    job.update({k: v for k, v in overrides.items() if k in JOB_FIELDS})
    values = dict(name="ants-bees", output="s3://models/", role=ROLE, region="us-east-1")
    values.update({k: v for k, v in overrides.items() if k not in JOB_FIELDS})
    return launch.LaunchConfig(job=JobConfig(**job), **values)


def test_dry_run_prints_the_deployment_and_request_and_connects_nowhere(image_data, capsys):
    argv = [
        "launch",
        "--name",
        "ants-bees",
        "--model-id",
        "mobilenet-v2-100-224",
        "--data",
        str(image_data),
        "--output",
        "s3://models/",
        "--role",
        ROLE,
        "--instance-type",
        "ml.p3.8xlarge",
        "--region",
        "us-east-1",
        "--epochs",
        "5",
        "--train-only-top-layer",
        "False",
        "--dry-run",
    ]
    with only_localhost() as connects:
        assert commands.main(argv) == 0
    assert connects == []
    out = capsys.readouterr().out
    assert "ml.p3.8xlarge x 1 (4 GPU(s) each)" in out and "global batch      128 (32 x 4 replicas)" in out
    assert "tensorflow-training:2.21.0-gpu-py312" in out
    request = json.loads(out[out.index("{") :])
    assert request["HyperParameters"] == {
        "epochs": "5",
        "train_only_top_layer": "False",
        "model_id": "mobilenet-v2-100-224",
    }
    job = request["TrainingJobName"]
    assert re.fullmatch(r"ants-bees-\d{14}", job)
    assert request["InputDataConfig"]["training"].endswith(f"uploaded to s3://models/ants-bees/{job}/input/training/")
    assert f"model             s3://models/{job}/output/model.tar.gz" in out


def test_metric_definitions_read_our_epoch_line():
    line = (
        "tf_finetune.training.fit_loop INFO epoch=2/5 "
        + format_metrics({"loss": 0.4321, "accuracy": 0.875, "val_loss": 0.5012, "val_accuracy": 0.75, "val_auc": 0.9})
        + " time=3.2s"
    )
    found = {
        d["Name"]: float(re.search(d["Regex"], line).group(1))
        for d in launch.metric_definitions("auc")
        if d["Name"] != "test:accuracy"
    }
    assert found == {
        "train:loss": 0.4321,
        "train:accuracy": 0.875,
        "validation:loss": 0.5012,
        "validation:accuracy": 0.75,
        "validation:auc": 0.9,
    }


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"role": "SageMakerRole"}, r"--role 'SageMakerRole' is not an IAM role ARN"),
        ({"role": None}, r"--role is required"),
        (
            {"instance_type": "ml.p9.huge"},
            r"unknown instance type 'ml.p9.huge': known types are ml.g4dn.12xlarge.*--gpus N",
        ),
        ({"output": "/tmp/models"}, r"--output '/tmp/models': a SageMaker job writes to S3"),
        ({"name": "ants_bees"}, r"--name 'ants_bees': use 1-48 letters, digits and hyphens"),
        ({"data": "/no/such/folder"}, r"--data /no/such/folder: no such file or folder"),
        ({"hyperparameters": {"epochs": "many"}}, r"epochs"),
        ({"model_id": None}, r"give a registry model id \(--model-id\) or a backbone handle"),
        (
            {"model_id": "wordllama-words256", "hyperparameters": {"augmentation": "True"}},
            r"augmentation applies to image models only",
        ),  # the same checks as a local train
        ({"max_seq_length": 64}, r"max_seq_length applies to text models"),
    ],
)
def test_bad_launches_are_refused_before_anything_is_sent(image_data, overrides, message):
    with only_localhost() as connects, pytest.raises((HyperparameterError, StorageError, UsageError), match=message):
        launch.plan(config(image_data, **overrides))
    assert connects == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"role": "SageMakerRole"},
        {"role": None},
        {"name": "ants_bees"},
        {"gpus": -1},
        {"instance_type": "ml.p9.huge"},
        {"max_run": 0},
        {"data": "/no/such/folder"},
    ],
)
def test_a_wrong_flag_that_is_no_hyperparameter_is_a_usage_error(image_data, overrides):
    with pytest.raises(UsageError) as raised:
        launch.plan(config(image_data, **overrides))
    assert not isinstance(raised.value, HyperparameterError)


def test_a_bert_job_sends_its_sequence_length_and_uses_the_entry_batch(text_data):
    plan = launch.plan(
        config(text_data, model_id="small-bert-en-uncased-l4-h512", max_seq_length=256, instance_type="ml.p3.8xlarge"),
        now=NOW,
    )
    assert plan.hyperparameters == {"model_id": "small-bert-en-uncased-l4-h512", "max_seq_length": "256"}
    assert plan.deployment.global_batch == 64 * 4  # the BERT entries' batch, per GPU


def test_an_unknown_instance_type_with_gpus_given_is_accepted(image_data):
    plan = launch.plan(
        config(
            image_data, instance_type="ml.p5.48xlarge", gpus=8, instance_count=2, hyperparameters={"batch_size": "16"}
        ),
        now=NOW,
    )
    assert plan.deployment.global_batch == 16 * 8 * 2
    assert plan.job_name == "ants-bees-20261202163005"


@pytest.fixture
def aws(s3, monkeypatch):
    """The test's AWS: a fresh output bucket and the role in the local servers.

    Yields (S3 client, the bucket's name).
    """
    import uuid

    import boto3

    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    iam = boto3.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(
            RoleName="TfFinetuneTest",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ]
                }
            ),
        )
    yield s3, bucket


def sent(value):
    """A hyperparameter value as our entry point receives it: v2's estimator JSON-encodes values."""
    return json.loads(value) if SDK == 2 else value


def captured_session(requests: list):
    """A boto3 session that records every CreateTrainingJob request made through it."""
    import boto3

    session = boto3.session.Session(region_name="us-east-1")
    session.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: requests.append(json.loads(json.dumps(params, default=str))),
    )
    return session


def code_files(s3, bucket: str, request: dict) -> list[str]:
    """The files of the code the job runs: v3's ``code`` channel, or v2's source archive."""
    if SDK == 3:
        [prefix] = [
            c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"] if c["ChannelName"] == "code"
        ]
        key = prefix[len(f"s3://{bucket}/") :].rstrip("/") + "/"
        return [o["Key"][len(key) :] for o in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]]
    archive = sent(request["HyperParameters"]["sagemaker_submit_directory"])
    body = s3.get_object(Bucket=bucket, Key=archive[len(f"s3://{bucket}/") :])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return [m.name for m in tar.getmembers() if m.isfile()]


def test_launch_uploads_inputs_and_code_and_creates_the_job(aws, text_data, capsys):
    from tf_finetune.sagemaker.sdk import submit

    s3, bucket = aws
    plan = launch.plan(
        config(
            text_data.parent,
            name="sms",
            model_id="wordllama-words256",
            spot=True,
            output=f"s3://{bucket}/",
            hyperparameters={"epochs": "2", "train_only_top_layer": False},
        )
    )
    requests: list = []
    with only_localhost() as connects:
        description = submit(plan, wait=True, boto_session=captured_session(requests))
        assert launch.finish(plan, description, waited=True) == 0
    assert connects and set(connects) == {"127.0.0.1"}
    [request] = requests
    job = request["TrainingJobName"]
    assert re.fullmatch(r"sms-\d{14}", job)
    ours = {
        k: sent(v) for k, v in request["HyperParameters"].items() if not k.startswith("sagemaker_") and k != "model_dir"
    }  # v2 adds its own
    assert ours == {"epochs": "2", "train_only_top_layer": "False", "model_id": "wordllama-words256"}
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == launch.metric_definitions()
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith("tensorflow-training:2.21.0-gpu-py312")
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{bucket}/"
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://{bucket}/sms/checkpoints/"
    assert request["RoleArn"] == ROLE
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels["training"].rstrip("/") == f"s3://{bucket}/sms/{job}/input/training"
    uploaded = s3.get_object(Bucket=bucket, Key=f"sms/{job}/input/training/data.csv")["Body"].read()
    assert uploaded == text_data.read_bytes()
    assert set(code_files(s3, bucket, request)) >= {
        "train.py",
        "requirements.txt",
        "tf_finetune/sagemaker/container.py",
        "tf_finetune/hub_models.yaml",
    }
    assert not any("__pycache__" in name for name in code_files(s3, bucket, request))
    record = json.loads(s3.get_object(Bucket=bucket, Key=f"{job}/output/training_job.json")["Body"].read())
    assert record["training_job_name"] == job and record["status"] == "Completed"
    assert record["training_job_arn"].endswith(f":training-job/{job}")
    assert record["output_path"] == f"s3://{bucket}/{job}/output/model.tar.gz"
    out = capsys.readouterr().out
    assert f"training job name  {job}" in out and "parent model       wordllama-words256" in out


def test_a_missing_bucket_or_one_in_another_region_is_named_and_nothing_is_uploaded(aws, image_data):
    from tf_finetune.sagemaker.sdk import submit

    s3, bucket = aws
    with pytest.raises(StorageError, match=r"bucket 'no-such-models' \(--output\) does not exist"):
        submit(launch.plan(config(image_data, output="s3://no-such-models/")), wait=False)
    europe = bucket.replace("models", "eu-data")
    s3.create_bucket(Bucket=europe, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(
        StorageError,
        match=rf"bucket '{europe}' \(the validation channel\) is in eu-west-1 and "
        r"the job would run in us-east-1.*--region eu-west-1",
    ):
        submit(
            launch.plan(config(image_data, output=f"s3://{bucket}/", validation_data=f"s3://{europe}/val/")), wait=False
        )
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_launch_without_credentials_says_how_to_set_them(aws, image_data, monkeypatch):
    from tf_finetune.sagemaker.sdk import submit

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with only_localhost(), pytest.raises(StorageError, match=r"no AWS credentials: run 'aws configure'"):
        submit(launch.plan(config(image_data)), wait=False)


@pytest.fixture
def platform(aws):
    """Skips unless the SDK's job can run here (v3: its drivers with a folder bound on /opt/ml)."""
    reason = cannot_emulate(SDK)
    if reason:
        pytest.skip(reason)
    return aws


def launch_tiny_text_job(bucket: str, training, text_module, **hyperparameters) -> dict:
    from tf_finetune.sagemaker.sdk import submit

    plan = launch.plan(
        config(
            training,
            name="tiny",
            model_id=None,
            handle=str(text_module),
            output=f"s3://{bucket}/",
            instance_type="ml.m5.xlarge",
            hyperparameters={"epochs": "1", **hyperparameters},
        )
    )
    assert plan.image_uri.endswith("tensorflow-training:2.21.0-cpu-py312")
    requests: list = []
    submit(plan, wait=False, boto_session=captured_session(requests))
    return requests[0]


def test_the_job_runs_under_the_sdk_v3_drivers_and_its_model_predicts(platform, text_data, text_module, tmp_path):
    s3, bucket = platform
    request = launch_tiny_text_job(bucket, text_data.parent, text_module, train_only_top_layer=False)
    run = run_training_job(request, s3, tmp_path / "opt_ml", venv_bin())
    assert run.returncode == 0, run.log[-4000:]
    if SDK == 3:
        assert "Running Basic Script driver" in run.log  # SageMaker's driver ran our train.py
        assert re.search(r"Executing command: \S+ train.py .*--epochs 1", run.log)
    else:
        assert re.search(r"train.py --epochs 1", run.log)  # the toolkit's command line
    assert run.failure is None
    assert run.model_uri == f"s3://{bucket}/{request['TrainingJobName']}/output/model.tar.gz"
    result = run_main("predict", "--model", run.model_uri, "--json", "alpha beta gamma")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[0])["predictions"]


def test_a_failed_job_leaves_our_reason_in_the_failure_file(platform, tmp_path, text_module):
    s3, bucket = platform
    data = tmp_path / "bad" / "data.csv"
    data.parent.mkdir()
    data.write_text("0,a fine row\nspam,a label that is not an integer\n", encoding="utf-8")
    request = launch_tiny_text_job(bucket, data.parent, text_module)
    run = run_training_job(request, s3, tmp_path / "opt_ml", venv_bin())
    assert run.returncode != 0 and run.model_uri is None
    assert run.failure and "data.csv" in run.failure.splitlines()[0] and "line 2" in run.failure.splitlines()[0]
    assert "Training Execution failed" not in run.failure  # the driver's generic text did not replace ours


def readme_snippet(title: str) -> str:
    """The first Python block after the heading ``title`` of docs/sagemaker.md."""
    text = (REPO / "docs" / "sagemaker.md").read_text("utf-8")
    section = text[text.index(title) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_for_the_installed_sdk_creates_the_job(aws):
    import boto3

    s3, bucket = aws
    title = "### From your own code: SDK v3" if SDK == 3 else "### From your own code: SDK v2"
    code = readme_snippet(title).replace("my-bucket", bucket)
    with only_localhost() as connects:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert set(connects) == {"127.0.0.1"}
    sagemaker = boto3.client("sagemaker")
    jobs = [
        j["TrainingJobName"]
        for j in sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        if j["TrainingJobName"].startswith("ants-bees-")
    ]
    assert jobs, "the snippet created no training job"
    job = sagemaker.describe_training_job(TrainingJobName=sorted(jobs)[-1])
    assert sent(job["HyperParameters"]["model_id"]) == "mobilenet-v2-100-224"
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("tensorflow-training:2.21.0-gpu-py312")
    assert job["OutputDataConfig"]["S3OutputPath"].rstrip("/") == f"s3://{bucket}"


def test_a_failed_job_ends_with_its_reason_and_exit_1_and_keeps_the_record(aws, image_data, capsys):
    from tf_finetune.errors import TfFinetuneError

    s3, bucket = aws
    plan = launch.plan(config(image_data, output=f"s3://{bucket}/"), now=NOW)
    reason = "/opt/ml/input/data/training/data.csv line 2: label 'spam' is not an integer"
    description = {
        "TrainingJobName": plan.job_name,
        "TrainingJobStatus": "Failed",
        "FailureReason": reason,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{plan.job_name}",
    }
    with pytest.raises(TfFinetuneError, match=rf"training job {plan.job_name} ended Failed: .*line 2: label 'spam'"):
        launch.finish(plan, description, waited=True)
    assert f"failure reason     {reason}" in capsys.readouterr().out
    record = json.loads(s3.get_object(Bucket=bucket, Key=f"{plan.job_name}/output/training_job.json")["Body"].read())
    assert record["status"] == "Failed" and record["failure_reason"] == reason


def test_launch_without_the_sdk_names_the_package_to_install(image_data, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sagemaker", None)  # as if not installed
    argv = [
        "launch",
        "--name",
        "ants-bees",
        "--model-id",
        "mobilenet-v2-100-224",
        "--data",
        str(image_data),
        "--output",
        "s3://models/",
        "--role",
        ROLE,
        "--region",
        "us-east-1",
    ]
    with only_localhost() as connects:
        assert commands.main(argv) == 1
    assert connects == []
    assert (
        "launch needs the SageMaker Python SDK: pip install '.[sagemaker]' in the tf_finetune clone"
        in capsys.readouterr().err
    )
