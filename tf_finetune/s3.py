"""``s3://`` transfer through boto3: download a prefix, upload one object all-or-nothing.

Credentials, region and endpoint come from boto3's standard chain, so ``AWS_PROFILE``,
instance roles, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` (S3-compatible stores, the test
server) all work without options here. Transient errors are retried by botocore's
``standard`` retry mode.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tf_finetune.errors import StorageError

if TYPE_CHECKING:  # boto3 and tqdm only when something is transferred
    from botocore.client import BaseClient
    from tqdm import tqdm

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
WORKERS = 16
PROGRESS_MIN_OBJECTS = 50  # show a progress bar for channels at least this large


@dataclass(frozen=True)
class S3Uri:
    """A parsed ``s3://bucket/key`` location."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        """Split ``s3://bucket/key``.

        Raises:
            StorageError: not an ``s3://bucket/...`` URI.
        """
        if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise StorageError(f"{uri!r} is not an S3 URI of the form s3://bucket/key")
        bucket, _, key = uri[5:].partition("/")
        return cls(bucket, key)

    def join(self, *parts: str) -> S3Uri:
        """This location with ``parts`` appended as key path segments."""
        key = "/".join([self.key.rstrip("/")] + [p.strip("/") for p in parts]).lstrip("/")
        return S3Uri(self.bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def client() -> BaseClient:
    """A boto3 S3 client from the standard credential/region/endpoint chain, with retries.

    Retries default to ``standard`` mode with :data:`MAX_ATTEMPTS` retries; the user's
    ``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE`` (or ``max_attempts`` / ``retry_mode`` in the
    AWS config file) win over these defaults.
    """
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.get_session()
    retries: dict[str, int | str] = {}
    if core.get_config_variable("max_attempts") is None:
        retries["max_attempts"] = MAX_ATTEMPTS
    if not (os.environ.get("AWS_RETRY_MODE") or core.get_scoped_config().get("retry_mode")):
        retries["mode"] = "standard"
    config = Config(retries=retries, max_pool_connections=WORKERS)
    return boto3.session.Session(botocore_session=core).client("s3", config=config)


def download_prefix(uri: str, target: Path) -> Path:
    """Download every object under ``uri`` (a prefix, or one object) into ``target``.

    Keys keep their path below the prefix; files are downloaded in parallel, each to a
    temporary name then renamed, with a progress bar for large channels.

    Args:
        uri: ``s3://bucket/prefix/`` or ``s3://bucket/key``.
        target: local folder (created).

    Returns:
        ``target``, or the single file when ``uri`` names one object.

    Raises:
        StorageError: missing bucket, access denied, nothing under the prefix (all named).
    """
    location = S3Uri.parse(uri)
    s3 = client()
    keys = list_keys(s3, location)
    if not keys:
        raise StorageError(f"nothing found at {uri}: the prefix is empty or does not exist in bucket {location.bucket}")
    target.mkdir(parents=True, exist_ok=True)
    single = len(keys) == 1 and keys[0] == location.key
    prefix = location.key if location.key.endswith("/") or not location.key else location.key + "/"
    jobs = []
    for key in keys:
        relative = key.rsplit("/", 1)[-1] if single else key[len(prefix) :]
        destination = _safe_destination(target, relative, uri)
        jobs.append((key, destination))
    with _progress(len(jobs), f"downloading {uri}") as bar, ThreadPoolExecutor(WORKERS) as pool:
        for _ in pool.map(lambda job: _download_one(s3, location.bucket, *job), jobs):
            bar.update(1)
    log.info("downloaded %d file(s) from %s", len(jobs), uri)
    return jobs[0][1] if single else target


def upload_file(path: Path, uri: str) -> str:
    """Upload one file to ``uri`` so that the object is complete or absent.

    Small files go up in one PUT; large ones as a multipart upload that S3 assembles only when
    it completes (boto3's transfer manager aborts it on failure), so readers never see a
    partial object.

    Returns:
        ``uri``.

    Raises:
        StorageError: naming the bucket and key.
    """
    location = S3Uri.parse(uri)
    if not location.key or location.key.endswith("/"):
        raise StorageError(f"cannot upload {path} to {uri}: give an object key, not a prefix")
    s3 = client()
    try:
        s3.upload_file(str(path), location.bucket, location.key)
    except Exception as exc:
        raise _storage_error(exc, "upload", location) from None
    log.info("uploaded %s", uri)
    return uri


def list_keys(s3: BaseClient, location: S3Uri) -> list[str]:
    """The object keys at ``location``: the object itself when one is named exactly, else
    every object under it as a folder (``data`` does not match ``data-old/...``), sorted.

    Raises:
        StorageError: the bucket cannot be listed.
    """
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
            keys.extend(o["Key"] for o in page.get("Contents", ()) if not o["Key"].endswith("/"))
    except Exception as exc:
        raise _storage_error(exc, "list", location) from None
    if location.key in keys:
        return [location.key]  # one object named exactly
    # "s3://b/data" must not pick up "s3://b/data-old/..."
    if location.key and not location.key.endswith("/"):
        keys = [k for k in keys if k.startswith(location.key + "/")]
    return sorted(keys)


def delete_others(uri: str, keep: Collection[str]) -> list[str]:
    """Delete the objects under the prefix ``uri`` except those named in ``keep`` (key paths
    below the prefix): what a previous run left there that this run did not write.

    Returns:
        The keys deleted.

    Raises:
        StorageError: the prefix cannot be listed or an object cannot be deleted (named).
    """
    location = S3Uri.parse(uri.rstrip("/") + "/")
    s3 = client()
    stale = [key for key in list_keys(s3, location) if key[len(location.key) :] not in keep]
    for start in range(0, len(stale), 1000):  # DeleteObjects takes up to 1000 keys
        batch = stale[start : start + 1000]
        try:
            errors = s3.delete_objects(
                Bucket=location.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            ).get("Errors", [])
        except Exception as exc:
            raise _storage_error(exc, "delete", location) from None
        if errors:  # per-object refusals come back in the answer, not as an exception
            first = errors[0]
            raise StorageError(
                f"cannot delete s3://{location.bucket}/{first['Key']}: {first.get('Code')} "
                f"{first.get('Message', '')} ({len(errors)} object(s) refused); check "
                "that the credentials may delete under this prefix"
            )
    if stale:
        log.info("deleted %d object(s) under %s that this run did not write", len(stale), uri)
    return stale


def _safe_destination(target: Path, relative: str, uri: str) -> Path:
    destination = (target / relative).resolve()
    if not relative or not destination.is_relative_to(target.resolve()):
        raise StorageError(f"refusing to download key {relative!r} under {uri}: it would be written outside {target}")
    return destination


def _download_one(s3: BaseClient, bucket: str, key: str, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix="." + destination.name + ".", dir=destination.parent)
    os.close(handle)
    try:
        s3.download_file(bucket, key, tmp)
        os.replace(tmp, destination)
    except Exception as exc:
        raise _storage_error(exc, "download", S3Uri(bucket, key)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _storage_error(exc: Exception, action: str, location: S3Uri) -> StorageError:
    """One message naming bucket and key and what to do, for botocore's many error types."""
    code, cause = "", _botocore_cause(exc)
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if code and response else None
    if code == "NoSuchBucket":
        hint = f"bucket {location.bucket!r} does not exist (check the name and the region)"
    elif code in ("AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        hint = (
            f"access denied ({code}): the credentials boto3 found may not {action} "
            f"s3://{location.bucket}/{location.key}"
        )
    elif code in ("NoSuchKey", "404"):
        hint = "no such object"
    elif code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
        hint = (
            f"S3 kept failing after retries ({cause}); "
            + ("the upload was abandoned (a multipart upload is aborted); " if action == "upload" else "")
            + "try again later, or allow more retries with AWS_MAX_ATTEMPTS"
        )
    elif cause.__class__.__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        hint = "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    else:
        hint = f"{exc.__class__.__name__}: {exc}"
    return StorageError(f"cannot {action} {location}: {hint}")


_TRANSIENT_CODES = (
    "InternalError",
    "SlowDown",
    "ServiceUnavailable",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
)


def _botocore_cause(exc: BaseException) -> BaseException:
    """The botocore error inside boto3's transfer wrappers (S3UploadFailedError re-raises a
    ClientError as text; RetriesExceededError keeps it as ``last_exception``)."""
    seen = exc
    for _ in range(5):
        if isinstance(getattr(seen, "response", None), dict):
            return seen
        nested = getattr(seen, "last_exception", None) or seen.__cause__ or seen.__context__
        if nested is None:
            break
        seen = nested
    return exc


def _progress(total: int, description: str) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="file", leave=False, disable=total < PROGRESS_MIN_OBJECTS or None)
