"""A SageMaker training host, emulated just enough to run one captured CreateTrainingJob request.

What is ours (test code, kept small): reading the captured request; laying out the ``/opt/ml``
tree the platform gives a container (``input/config/hyperparameters.json`` verbatim from the
request, ``inputdataconfig.json``, ``resourceconfig.json``, each channel downloaded from the S3
server into ``input/data/<channel>/``); binding that tree on ``/opt/ml`` in a private mount
namespace (the SDK's drivers hard-code ``/opt/ml``); and afterwards packing ``model/`` to
``<S3OutputPath><job>/output/model.tar.gz``, which SageMaker does after a job.

What is SageMaker's: everything that runs inside. For a job from SDK v3 the container entry
point and arguments come from the request; they run the SDK's drivers exactly as the SDK
uploaded them in the ``sm_drivers`` channel (``sm_train.sh``, ``scripts/environment.py``,
``scripts/install_requirements.py``, ``distributed_drivers/basic_script_driver.py``), which in
turn run our ``train.py`` from the ``code`` channel. For a job from SDK v2 (no entry point in
the request) the image's ``sagemaker-training`` toolkit runs: it fetches the code archive named
in the hyperparameters from S3, installs ``requirements.txt`` and runs ``train.py``; it honours
``SAGEMAKER_BASE_DIR``, so no namespace is needed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

OPT_ML = Path("/opt/ml")


def cannot_emulate(sdk_major: int) -> str | None:
    """Why this machine cannot run a job of this SDK major here, or None."""
    if sdk_major == 2:
        import importlib.util

        return None if importlib.util.find_spec("sagemaker_training") else "sagemaker-training is not installed"
    if os.geteuid() != 0:
        return "binding a folder on /opt/ml needs root (unshare --mount)"
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    try:
        OPT_ML.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {OPT_ML}: {exc}"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare --mount is not allowed here: {probe.stderr.decode(errors='replace').strip()}"
    return None


@dataclass
class JobRun:
    """How the emulated job ended: exit status, its log, the failure file, the model's S3 URI."""

    returncode: int
    log: str
    failure: str | None
    model_uri: str | None


def run_training_job(request: dict, s3, root: Path, python_bin: Path, timeout: int = 600) -> JobRun:
    """Run the job ``request`` describes, with ``root`` as its ``/opt/ml``.

    Args:
        request: the captured CreateTrainingJob parameters.
        s3: a boto3 S3 client of the server the channels are on.
        root: an empty folder to become ``/opt/ml``.
        python_bin: the folder whose ``python3``/``pip3`` play the image's Python.
    """
    job = request["TrainingJobName"]
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters", {})))
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                name: {
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for name in channels
            }
        )
    )
    instance_type = request["ResourceConfig"]["InstanceType"]
    v3 = "ContainerEntrypoint" in request["AlgorithmSpecification"]
    host = "algo-1" if v3 else "localhost"  # the v2 toolkit waits until the host name resolves
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": host,
                "current_instance_type": instance_type,
                "current_group_name": "homogeneousCluster",
                "hosts": [host],
                "network_interface_name": "eth0",
                "instance_groups": [
                    {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": [host]}
                ],
            }
        )
    )
    for name, uri in channels.items():
        _download(s3, uri, root / "input" / "data" / name)
    for folder in ("model", "output/data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    spec = request["AlgorithmSpecification"]
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "TRAINING_JOB_NAME": job,
        "LANG": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_FINETUNE_CACHE": str(root.parent / "container-cache"),
        **request.get("Environment", {}),
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
    }  # the S3 server
    if v3:  # SDK v3: its drivers, with the tree bound on /opt/ml
        bind = 'mount --bind "$0" /opt/ml && exec "$@"'
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            bind,
            str(root),
            *spec["ContainerEntrypoint"],
            *spec.get("ContainerArguments", []),
        ]
    else:  # SDK v2: the image's sagemaker-training toolkit
        env["SAGEMAKER_BASE_DIR"] = str(root)
        command = [str(python_bin / "python3"), "-c", "from sagemaker_training import trainer; trainer.train()"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=root)
    failure_file = root / "output" / "failure"
    failure = failure_file.read_text("utf-8") if failure_file.exists() else None
    model_uri = None
    if result.returncode == 0:
        model_uri = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
        _upload_tar(s3, root / "model", model_uri)
    return JobRun(result.returncode, result.stdout + result.stderr, failure, model_uri)


def _download(s3, uri: str, target: Path) -> None:
    bucket, _, prefix = uri[5:].partition("/")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :].lstrip("/") or Path(item["Key"]).name
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(destination))


def _upload_tar(s3, folder: Path, uri: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.iterdir()):
            archive.add(path, arcname=path.name)
    bucket, _, key = uri[5:].partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def venv_bin() -> Path:
    """The running interpreter's bin folder (the test venv plays the image's Python)."""
    return Path(sys.executable).parent
