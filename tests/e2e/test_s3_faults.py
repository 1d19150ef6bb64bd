"""S3 under faults: a real HTTP proxy (tests/support/flaky_proxy.py) between boto3 and the moto server
answers a share of requests with 500 InternalError / 503 SlowDown, delays others, always fails
chosen operations or denies a bucket. Transfers must still succeed byte for byte, failed
uploads must leave neither an object nor a pending multipart upload, and a missing bucket or
denied access must be one clear error naming the bucket and key."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from flaky_proxy import FlakyProxy
from helpers import run_main, s3_environment, write_registry
from tf_finetune import s3 as s3_lib
from tf_finetune.backbones.packing import pack_backbone
from tf_finetune.errors import StorageError

MIB = 1024 * 1024
MULTIPART = 8 * MIB  # boto3's default multipart_threshold and chunk size, which s3.py keeps


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def through(proxy: FlakyProxy, monkeypatch) -> None:
    """Point tf_finetune.s3 (in this process) at the proxy; the test's own client stays direct."""
    for name, value in s3_environment(proxy.url).items():
        monkeypatch.setenv(name, value)


def pending_uploads(client, bucket: str) -> list:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def assert_absent(client, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as info:
        client.head_object(Bucket=bucket, Key=key)
    assert info.value.response["Error"]["Code"] == "404"


def assert_every_fault_was_retried_to_success(proxy: FlakyProxy) -> None:
    last = {}
    for record in proxy.records:
        last[record.request.signature] = record
    faulted = {r.request.signature for r in proxy.records if r.injected}
    assert faulted and all(not last[s].injected and last[s].status < 300 for s in faulted)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tf-finetune: error:")]


def test_transfers_survive_a_third_of_requests_failing(s3, s3_server, monkeypatch, tmp_path):
    s3.create_bucket(Bucket="flaky")
    source = tmp_path / "source"
    source.mkdir()
    expected = {}
    for i in range(40):
        name = f"class{i % 4}/item{i:02d}.bin"
        (source / name).parent.mkdir(exist_ok=True)
        data = os.urandom(1000 + 97 * i)
        (source / name).write_bytes(data)
        s3.put_object(Bucket="flaky", Key=f"channel/{name}", Body=data)
        expected[name] = digest(data)
    big = random_file(tmp_path / "model.tar.gz", 2 * MULTIPART + MIB)  # 3 parts

    with FlakyProxy(s3_server, failure_rate=0.3, delay_rate=0.1, delay=0.2) as proxy:
        through(proxy, monkeypatch)
        target = s3_lib.download_prefix("s3://flaky/channel/", tmp_path / "downloaded")
        s3_lib.upload_file(big, "s3://flaky/m/output/model.tar.gz")

    got = {p.relative_to(target).as_posix(): digest(p.read_bytes()) for p in target.rglob("*") if p.is_file()}
    assert got == expected
    body = s3.get_object(Bucket="flaky", Key="m/output/model.tar.gz")["Body"].read()
    assert digest(body) == digest(big.read_bytes())
    assert "-" in s3.head_object(Bucket="flaky", Key="m/output/model.tar.gz")["ETag"]  # multipart
    assert pending_uploads(s3, "flaky") == []

    injected = proxy.injected
    assert injected[500] > 0 and injected[503] > 0 and proxy.delayed > 0
    total = len(proxy.records)
    assert sum(injected.values()) == -(-total * 3 // 10)  # exactly the share asked for
    ops = {r.request.operation for r in proxy.records if r.injected}
    assert ops & {"GetObject", "HeadObject"} and ops & {
        "UploadPart",
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
    }
    assert_every_fault_was_retried_to_success(proxy)
    print(
        f"\nflaky transfers: {total} requests, injected {dict(injected)}, "
        f"{proxy.retries()} retries, {proxy.delayed} delayed"
    )


def test_cli_trains_from_s3_through_a_flaky_proxy(s3, s3_server, text_module, text_data, tmp_path):
    s3.create_bucket(Bucket="flaky-cli")
    s3.upload_file(str(text_data), "flaky-cli", "datasets/topics/data.csv")
    archive = pack_backbone(text_module, tmp_path / "tiny-text.tar.gz")
    s3.upload_file(str(archive), "flaky-cli", "base-models/tiny-text.tar.gz")

    with FlakyProxy(s3_server, failure_rate=0.3, delay_rate=0.2, delay=0.2) as proxy:
        proc = run_main(
            "train",
            "--handle",
            "s3://flaky-cli/base-models/tiny-text.tar.gz",
            "--data",
            "s3://flaky-cli/datasets/topics/",
            "--output",
            "s3://flaky-cli/my-model",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--cache-dir",
            str(tmp_path / "cache"),
            env=s3_environment(proxy.url),
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "s3://flaky-cli/my-model/output/model.tar.gz"
    body = s3.get_object(Bucket="flaky-cli", Key="my-model/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {"1/saved_model.pb", "labels.json", "metrics.json"} <= set(tar.getnames())
        assert all(member.size == len(tar.extractfile(member).read()) for member in tar.getmembers() if member.isfile())

    ops = {r.request.operation for r in proxy.records if r.injected}
    assert ops & {"GetObject", "HeadObject", "ListObjects"} and "PutObject" in ops, ops
    assert_every_fault_was_retried_to_success(proxy)
    print(f"\nflaky CLI: {len(proxy.records)} requests, injected {dict(proxy.injected)}, {proxy.retries()} retries")


def _is(operation: str):
    return lambda request: request.operation == operation


@pytest.mark.parametrize(
    "operation, size",
    [("UploadPart", MULTIPART + MIB), ("CompleteMultipartUpload", MULTIPART + MIB), ("PutObject", 1000)],
)
def test_upload_failing_past_the_retries_leaves_nothing(s3, s3_server, monkeypatch, tmp_path, operation, size):
    bucket = "abort-" + operation.lower()
    s3.create_bucket(Bucket=bucket)
    payload = random_file(tmp_path / "model.tar.gz", size)
    with FlakyProxy(s3_server, errors=(500,), fail_when=_is(operation)) as proxy:
        through(proxy, monkeypatch)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")  # the user's setting wins over the library's
        with pytest.raises(StorageError) as info:
            s3_lib.upload_file(payload, f"s3://{bucket}/m/output/model.tar.gz")

    message = str(info.value)
    assert message.startswith(f"cannot upload s3://{bucket}/m/output/model.tar.gz: S3 kept failing after retries"), (
        message
    )
    assert "InternalError" in message and operation in message and "AWS_MAX_ATTEMPTS" in message
    assert "\n" not in message
    assert_absent(s3, bucket, "m/output/model.tar.gz")
    assert pending_uploads(s3, bucket) == []
    attempts = proxy.attempts(operation)
    assert max(attempts.values()) == 3  # AWS_MAX_ATTEMPTS attempts, then it gave up
    if operation != "PutObject":
        aborts = [r for r in proxy.records if r.request.operation == "AbortMultipartUpload"]
        assert [r.status for r in aborts] == [204]  # the library's transfer aborted it itself


def test_missing_bucket_is_one_clear_error(s3, s3_server, monkeypatch, tmp_path):
    small = random_file(tmp_path / "small.tar.gz", 1000)
    big = random_file(tmp_path / "big.tar.gz", MULTIPART + MIB)
    with FlakyProxy(s3_server, failure_rate=0.3) as proxy:  # 404s are not masked by the retries
        through(proxy, monkeypatch)
        with pytest.raises(StorageError) as download:
            s3_lib.download_prefix("s3://no-such-bucket-x/data/", tmp_path / "d")
        uploads = []
        for path in (small, big):
            with pytest.raises(StorageError) as info:
                s3_lib.upload_file(path, "s3://no-such-bucket-x/m/output/model.tar.gz")
            uploads.append(str(info.value))
    hint = "bucket 'no-such-bucket-x' does not exist (check the name and the region)"
    assert str(download.value) == f"cannot list s3://no-such-bucket-x/data/: {hint}"
    assert uploads == [f"cannot upload s3://no-such-bucket-x/m/output/model.tar.gz: {hint}"] * 2
    assert not (tmp_path / "d").exists()
    assert proxy.injected  # the faults were there, and did not change the answer


def test_access_denied_is_one_clear_error(s3, s3_server, monkeypatch, text_module, tmp_path):
    s3.create_bucket(Bucket="locked")
    s3.put_object(Bucket="locked", Key="data/data.csv", Body=b"label,text\n1,a\n2,b\n")
    small = random_file(tmp_path / "small.tar.gz", 1000)
    big = random_file(tmp_path / "big.tar.gz", MULTIPART + MIB)
    with FlakyProxy(s3_server, deny_buckets={"locked"}) as proxy:
        through(proxy, monkeypatch)
        with pytest.raises(StorageError) as download:
            s3_lib.download_prefix("s3://locked/data/", tmp_path / "d")
        uploads = []
        for path in (small, big):
            with pytest.raises(StorageError) as info:
                s3_lib.upload_file(path, "s3://locked/m/output/model.tar.gz")
            uploads.append(str(info.value))
        assert proxy.injected == {403: 3}  # denied is final: not retried

        env = s3_environment(proxy.url)
        train = run_main(
            "train",
            "--handle",
            str(text_module),
            "--data",
            "s3://locked/data/",
            "--output",
            str(tmp_path / "out"),
            env=env,
        )
        registry = write_registry(tmp_path / "registry.yaml", id="tiny-text", task="text", handle=text_module.as_uri())
        fetch = run_main(
            "fetch-model", "tiny-text", "--output", "s3://locked/jumpstart/", "--registry", str(registry), env=env
        )

    assert str(download.value) == (
        "cannot list s3://locked/data/: access denied (AccessDenied): "
        "the credentials boto3 found may not list s3://locked/data/"
    )
    key = "s3://locked/m/output/model.tar.gz"
    assert (
        uploads
        == [f"cannot upload {key}: access denied (AccessDenied): the credentials boto3 found may not upload {key}"] * 2
    )
    for proc, uri in ((train, "s3://locked/data/"), (fetch, "s3://locked/jumpstart/tiny-text.tar.gz")):
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert error_lines(proc.stderr) == [
            f"tf-finetune: error: cannot "
            f"{'list' if proc is train else 'upload'} {uri}: "
            f"access denied (AccessDenied): the credentials boto3 "
            f"found may not {'list' if proc is train else 'upload'} "
            f"{uri}"
        ], proc.stderr
    assert not (tmp_path / "out").exists()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="locked")["Contents"]] == ["data/data.csv"]
