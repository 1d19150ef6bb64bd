"""S3 channels and outputs over real HTTP to a local S3 server (moto), through boto3."""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from pathlib import Path

import pytest

from helpers import extract, offline_environment, run_main, write_registry
from tf_finetune import s3 as s3_lib
from tf_finetune.backbones.packing import pack_backbone
from tf_finetune.errors import StorageError


def put_tree(client, bucket: str, prefix: str, root: Path) -> int:
    """Upload every file under ``root`` to ``s3://bucket/prefix/<relative path>``."""
    count = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
            count += 1
    return count


def object_keys(client, bucket: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_download_prefix_keeps_the_tree_and_ignores_sibling_prefixes(s3, image_data, tmp_path):
    s3.create_bucket(Bucket="channels")
    uploaded = put_tree(s3, "channels", "jobs/data", image_data)
    s3.put_object(Bucket="channels", Key="jobs/data-old/red/stale.jpg", Body=b"not this one")
    target = s3_lib.download_prefix("s3://channels/jobs/data", tmp_path / "training")
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    expected = sorted(p.relative_to(image_data).as_posix() for p in image_data.rglob("*") if p.is_file())
    assert files == expected and len(files) == uploaded
    assert all((target / f).read_bytes() == (image_data / f).read_bytes() for f in files)
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind


def test_download_of_one_object_returns_the_file(s3, text_data, tmp_path):
    s3.create_bucket(Bucket="one")
    s3.upload_file(str(text_data), "one", "text/data.csv")
    path = s3_lib.download_prefix("s3://one/text/data.csv", tmp_path / "t")
    assert path == tmp_path / "t" / "data.csv"
    assert path.read_bytes() == text_data.read_bytes()


@pytest.mark.parametrize("key", ["data/../../evil.txt", "data/sub/../../../evil.txt"])
def test_keys_that_would_land_outside_the_folder_are_refused(s3, tmp_path, key):
    bucket = f"tricky-{uuid.uuid4().hex[:12]}"  # the moto server lives for the session
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/ok.csv", Body=b"0,a\n")
    s3.put_object(Bucket=bucket, Key="data/", Body=b"")  # a console "folder": skipped, not refused
    assert s3_lib.download_prefix(f"s3://{bucket}/data/", tmp_path / "fine") == tmp_path / "fine"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    refused = (
        f"refusing to download key '{re.escape(key[5:])}' under s3://{bucket}/data/: "
        f"it would be written outside {tmp_path / 'target'}"
    )
    with pytest.raises(StorageError, match=refused):
        s3_lib.download_prefix(f"s3://{bucket}/data/", tmp_path / "target")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_missing_bucket_and_empty_prefix_are_named(s3, tmp_path):
    with pytest.raises(StorageError, match=r"bucket 'no-such-bucket' does not exist"):
        s3_lib.download_prefix("s3://no-such-bucket/data/", tmp_path / "a")
    s3.create_bucket(Bucket="empty")
    with pytest.raises(StorageError, match=r"nothing found at s3://empty/data/.*bucket empty"):
        s3_lib.download_prefix("s3://empty/data/", tmp_path / "b")
    with pytest.raises(StorageError, match=r"cannot upload .*s3://no-such-bucket/m/output/model.tar.gz"):
        s3_lib.upload_file(_file(tmp_path), "s3://no-such-bucket/m/output/model.tar.gz")


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"x" * 1000)
    return path


def test_large_upload_is_multipart_and_complete(s3, tmp_path):
    s3.create_bucket(Bucket="big")
    payload = tmp_path / "big.bin"
    payload.write_bytes(bytes(range(256)) * (40 * 4096))  # 40 MiB: above boto3's 8 MiB threshold
    s3_lib.upload_file(payload, "s3://big/m/output/model.tar.gz")
    head = s3.head_object(Bucket="big", Key="m/output/model.tar.gz")
    assert head["ContentLength"] == payload.stat().st_size
    assert "-" in head["ETag"]  # a multipart ETag: the object was assembled from parts
    assert s3.list_multipart_uploads(Bucket="big").get("Uploads", []) == []


def test_cli_trains_from_s3_and_uploads_to_the_jumpstart_layout(s3, s3_server, text_module, text_data, tmp_path):
    s3.create_bucket(Bucket="bucket")
    s3.upload_file(str(text_data), "bucket", "datasets/topics/data.csv")
    model_archive = pack_backbone(text_module, tmp_path / "tiny-text.tar.gz")
    s3.upload_file(str(model_archive), "bucket", "base-models/tiny-text.tar.gz")
    proc = run_main(
        "train",
        "--handle",
        "s3://bucket/base-models/tiny-text.tar.gz",
        "--data",
        "s3://bucket/datasets/topics/",
        "--output",
        "s3://bucket/my-model",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "s3://bucket/my-model/output/model.tar.gz"
    body = s3.get_object(Bucket="bucket", Key="my-model/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {"1/saved_model.pb", "labels.json", "metrics.json"} <= set(tar.getnames())
    assert sorted(object_keys(s3, "bucket")) == [
        "base-models/tiny-text.tar.gz",
        "datasets/topics/data.csv",
        "my-model/output/model.tar.gz",
        "my-model/output/reports/confusion_matrix.png",
        "my-model/output/reports/data_report.json",
        "my-model/output/reports/evaluation.json",
        "my-model/output/reports/misclassified.csv",
        "my-model/output/reports/per_class.txt",
        "my-model/output/reports/training_curves.png",
        "my-model/output/training_job.json",
    ]


def test_failed_run_leaves_no_object_and_names_the_problem(s3, text_module, tmp_path):
    s3.create_bucket(Bucket="failing")
    s3.put_object(Bucket="failing", Key="bad/data.csv", Body=b"label,text\n0,hello\n1,world\n")
    proc = run_main(
        "train",
        "--handle",
        str(text_module),
        "--data",
        "s3://failing/bad/",
        "--output",
        "s3://failing/my-model",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert len(errors) == 1 and "data.csv line 1" in errors[0], proc.stderr
    assert object_keys(s3, "failing") == ["bad/data.csv"]

    proc = run_main(
        "train", "--handle", str(text_module), "--data", "s3://no-such-bucket/x/", "--output", "s3://failing/my-model"
    )
    assert proc.returncode == 1
    assert "bucket 'no-such-bucket' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fetch_model_packs_a_local_entry_and_uploads_it(s3, text_module, tmp_path):
    registry = write_registry(tmp_path / "registry.yaml", id="tiny-text", task="text", handle=text_module.as_uri())
    s3.create_bucket(Bucket="models")
    proc = run_main("fetch-model", "tiny-text", "--output", "s3://models/jumpstart/", "--registry", str(registry))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "s3://models/jumpstart/tiny-text.tar.gz"
    local = tmp_path / "fetched.tar.gz"
    s3.download_file("models", "jumpstart/tiny-text.tar.gz", str(local))
    names = extract(local, tmp_path / "x")
    assert "saved_model.pb" in names and "variables/variables.index" in names
    original = {p.relative_to(text_module).as_posix(): p.read_bytes() for p in text_module.rglob("*") if p.is_file()}
    unpacked = {
        p.relative_to(tmp_path / "x").as_posix(): p.read_bytes() for p in (tmp_path / "x").rglob("*") if p.is_file()
    }
    assert unpacked == original

    proc = run_main("fetch-model", "tiny-text", "--output", str(tmp_path / "staged"), "--registry", str(registry))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "staged" / "tiny-text.tar.gz").is_file()


def test_fetch_model_offline_is_the_clear_error(tmp_path):
    proc = run_main(
        "fetch-model",
        "mobilenet-v2-100-224",
        "--output",
        str(tmp_path / "staged"),
        env={"TFHUB_CACHE_DIR": str(tmp_path / "hub-cache"), **offline_environment()},
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert len(errors) == 1, proc.stderr
    assert "TFHUB_CACHE_DIR" in errors[0] and "'model' channel" in errors[0] and "--handle" in errors[0]
    assert not (tmp_path / "staged").exists()


def test_a_bundled_preprocessor_is_used_instead_of_downloading(text_module, tmp_path):
    from tf_finetune.backbones.loading import local_preprocessor, local_saved_model
    from tf_finetune.registry import ModelSpec

    archive = pack_backbone(text_module, tmp_path / "channel" / "bert.tar.gz", preprocessor=text_module)
    spec = ModelSpec(
        "bert",
        "text",
        handle=str(archive.parent),  # the entry, located at the fetched copy
        preprocessor="https://tfhub.dev/x/preprocess/1",
    )
    backbone = local_saved_model(spec.handle, tmp_path / "cache")
    assert (Path(backbone) / "saved_model.pb").is_file()
    assert local_preprocessor(spec, backbone, tmp_path / "cache") == str(Path(backbone) / "preprocessor")
