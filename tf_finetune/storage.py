"""Local paths and archives: safe extraction and atomic packing.

(``s3://`` transfer is in :mod:`tf_finetune.s3`; paths are classified here so the rest of
the code has one place to ask.)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import overload

from tf_finetune import s3
from tf_finetune.errors import StorageError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_s3(uri: str) -> bool:
    """Whether ``uri`` names an S3 location."""
    return str(uri).startswith("s3://")


@overload
def localize_channel(uri: str, target: Path) -> str: ...
@overload
def localize_channel(uri: None, target: Path) -> None: ...
def localize_channel(uri: str | None, target: Path) -> str | None:
    """Download ``uri`` into ``target`` when it is an ``s3://`` URI; other values pass through."""
    if not uri or not is_s3(uri):
        return uri

    return str(s3.download_prefix(uri, target))


def local_path(location: str) -> Path:
    """The local path a location names: a path, or a ``file://`` URI (percent-decoded, as
    ``Path.as_uri()`` writes it; ``file://localhost/`` too), with ``~`` expanded."""
    if location.startswith("file://"):
        parsed = urllib.parse.urlparse(location)
        if parsed.netloc in ("", "localhost"):
            return Path(urllib.request.url2pathname(parsed.path)).expanduser()
        location = location[len("file://") :]  # file://relative/path or file://~/path, read as a path
    return Path(location).expanduser()


def misspelt_s3(location: str) -> str | None:
    """``s3://…`` when ``location`` looks like an S3 URI with a slash or colon missing
    (``s3:/bucket/x``, ``s3//bucket/x``, ``s3:bucket/x``), else None."""
    text = str(location)
    for broken in ("s3:/", "s3//", "s3:"):
        if text.startswith(broken) and not text.startswith("s3://"):
            return "s3://" + text[len(broken) :].lstrip("/")
    return None


def check_s3_spelling(location: str | None, what: str) -> None:
    """Raise a :class:`StorageError` with the corrected URI when ``location`` is a misspelt S3 URI.

    Args:
        location: a path or URI the user gave (None: nothing to check).
        what: how the user named it, for the message (``--data``, ``--output``).
    """
    fixed = misspelt_s3(location) if location else None
    if fixed:
        raise StorageError(f"{what} {location}: did you mean {fixed}? (S3 URIs start with s3://)")


def check_destination(location: str | Path, what: str) -> None:
    """Check, before any work, that results can be written at ``location`` (a folder to create
    or fill, local or ``s3://``); nothing is created.

    Args:
        location: the folder or ``s3://`` prefix.
        what: how the user named it, for the message (``--output``, ``--cache-dir``).

    Raises:
        StorageError: a misspelt S3 URI, an S3 URI without a bucket, an existing file where a
            folder is needed, or a place this process cannot create files in (read-only,
            no permission, a virtual file system such as /proc).
    """
    text = str(location)
    check_s3_spelling(text, what)
    if is_s3(text):
        if not text[5:].split("/", 1)[0]:
            raise StorageError(f"{what} {text} has no bucket: expected s3://bucket/prefix")
        return
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise StorageError(f"{what} {text} is a file; it must be a folder (new or existing)")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise StorageError(f"{what} {text}: {existing} is a file, so no folder can be made under it")
    try:  # the one reliable test: create something there (access() misses /proc, quotas, ACLs)
        os.rmdir(tempfile.mkdtemp(prefix=".tf_finetune-probe-", dir=existing))
    except OSError as exc:
        raise StorageError(
            f"{what} {text}: cannot create files in {existing} ({exc.strerror or exc}); choose another folder"
        ) from None


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (where a new folder would be created)."""
    while not path.exists():
        path = path.parent
    return path


def folder_bytes(path: str | Path) -> int:
    """Total size of the files under ``path`` (0 when it does not exist)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def check_free_space(needs: Iterable[tuple[str, str, int]]) -> None:
    """Check, before the work, that each local destination has room for at least what will be
    written there; folders on one file system add up. ``s3://`` destinations are not checked.

    Args:
        needs: (folder, the flag that names it, bytes it will receive at least).

    Raises:
        StorageError: a file system with less free space than its folders need (named, with
            both sizes and the flags that move them).
    """
    per_device: dict[int, tuple[Path, int, list[str]]] = {}
    for location, flag, size in needs:
        if is_s3(location) or size <= 0:
            continue
        existing = _nearest_existing(Path(location).expanduser().absolute())
        folder, total, flags = per_device.get(existing.stat().st_dev, (existing, 0, []))
        per_device[existing.stat().st_dev] = (folder, total + size, flags + [flag])
    for folder, total, flags in per_device.values():
        free = shutil.disk_usage(folder).free
        if free < total:
            raise StorageError(
                f"not enough free space for {' and '.join(flags)}: {folder} has {free / 2**20:.1f} MiB free and "
                f"this job writes at least {total / 2**20:.1f} MiB there (the backbone's weights, once for each "
                f"copy of the model); free some space, or point {' or '.join(flags)} to another disk, and run again"
            )


@contextlib.contextmanager
def output_lock(cache_dir: str | Path, output: str) -> Iterator[None]:
    """Hold the one lock of ``output`` (a folder or ``s3://`` prefix) on this machine while a job
    writes it; a second job given the same output stops at once instead of racing the first.

    The lock file lives in the cache (nothing is added to the output) and is released by the
    kernel when the process ends, however it ends.

    Raises:
        StorageError: another process holds the lock (its pid is named).
    """

    key = str(output) if is_s3(str(output)) else str(Path(output).expanduser().resolve())
    folder = Path(cache_dir) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".lock")
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StorageError(
                f"another tf-finetune run ({holder}) is writing to {output}; wait for it "
                "to finish or choose another --output"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_archive(path: str | Path) -> bool:
    """Whether ``path`` is named like a tar archive."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def _refuse_unsafe_name(archive: Path, name: str) -> None:
    # tarfile's data filter would strip a leading "/" and extract anyway; refuse it outright.
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
        raise StorageError(
            f"refusing to extract {archive}: unsafe member {name!r} "
            "(an absolute path or '..'); re-create the archive with relative paths"
        )


_FILTER_REASONS = {  # tarfile's data-filter refusals, in words
    "AbsolutePathError": "an absolute path",
    "OutsideDestinationError": "a path outside the archive",
    "AbsoluteLinkError": "a link to the absolute path {link!r}",
    "LinkOutsideDestinationError": "a link to {link!r}, outside the archive",
    "SpecialFileError": "a device or special file",
}


def move_into_place(staging: Path, target: Path) -> bool:
    """Rename the finished folder ``staging`` to ``target`` (absent or empty) in one step.

    Cache entries are built under a key that names their content, and two processes may build
    the same one at once: when ``target`` is already a non-empty folder, the other process
    finished first and its entry (complete, since it arrived by the same rename) is kept.
    ``staging`` is left for the caller to remove.

    Returns:
        True when ``staging`` became ``target``; False when another entry was already there.

    Raises:
        OSError: the rename failed for another reason (``target`` is a file, a full disk, ...).
    """
    try:
        os.replace(staging, target)  # onto a missing or an empty folder: atomic on POSIX
        return True
    except OSError:
        if target.is_dir() and any(target.iterdir()):
            return False
        raise


def extract_archive(archive: str | Path, target: str | Path) -> Path:
    """Extract a tar(.gz) archive into ``target``, refusing anything that would escape it.

    Members with absolute paths, ``..`` components, links pointing outside the target, and
    device files are refused (tarfile's ``data`` filter). The archive is extracted to a
    temporary sibling folder first and renamed into place, so ``target`` is complete or absent;
    when another process extracts to the same ``target`` at the same time, the first complete
    one is kept (see :func:`move_into_place`).

    Args:
        archive: the ``.tar.gz``/``.tgz``/``.tar`` file.
        target: folder to create; must not exist yet.

    Returns:
        ``target``.

    Raises:
        StorageError: not a tar archive, or an unsafe member (named).
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                _refuse_unsafe_name(archive, member.name)
            tar.extractall(staging, filter="data")
        move_into_place(staging, target)
    except tarfile.FilterError as exc:
        why = _FILTER_REASONS.get(exc.__class__.__name__, exc.__class__.__name__)
        raise StorageError(
            f"refusing to extract {archive}: unsafe member {exc.tarinfo.name!r} "
            f"({why.format(link=exc.tarinfo.linkname)}); re-create the archive "
            "with relative paths and links that stay inside it"
        ) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        # tarfile lists every compression it tried, one per line: keep the message one line.
        first = (str(exc).splitlines() or [""])[0].rstrip(":")
        reason = (
            "an empty file"
            if archive.is_file() and archive.stat().st_size == 0
            else "not a tar, .tar.gz, .tar.bz2 or .tar.xz file"
            if "could not be opened" in first
            else first or exc.__class__.__name__
        )
        raise StorageError(
            f"cannot extract {archive}: not a readable tar archive ({reason}); "
            "download it again, or give the SavedModel folder instead"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


STAGING_PREFIX = ".tf_finetune-staging-"


def staging_prefix() -> str:
    """Name prefix of this process's temporary files and folders beside an output.

    The process id in it lets a later run tell a killed run's leftovers (see
    :func:`remove_stale_staging`) from a live run's.
    """
    return f"{STAGING_PREFIX}{os.getpid()}-"


def remove_stale_staging(folder: Path) -> None:
    """Remove temporary files and folders in ``folder`` left by runs that are no longer running."""
    for entry in folder.glob(STAGING_PREFIX + "*") if folder.is_dir() else ():
        pid = entry.name[len(STAGING_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[str]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block ends
    without an error, removed otherwise. ``path`` is the previous file or the complete new one,
    never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=staging_prefix(), suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish(local: Path, destination: str) -> str:
    """Put the finished file ``local`` at ``destination``, whole or not at all.

    Every command builds what it writes in a local staging place, then publishes each file
    here: an ``s3://`` object appears only when its upload completes (see
    :func:`tf_finetune.s3.upload_file`); a local file is copied under a temporary name beside
    the target and renamed into place (see :func:`atomic_path`).

    Args:
        local: the finished file.
        destination: an ``s3://bucket/key`` or a local file path (its folder is created).

    Returns:
        ``destination``.

    Raises:
        StorageError: S3 refused or failed the upload. OSError: the local copy failed (the
            previous file, if any, is left as it was).
    """
    if is_s3(destination):
        return s3.upload_file(local, destination)
    with atomic_path(Path(destination)) as tmp:
        shutil.copyfile(local, tmp)
    return destination


def publish_folder(local: Path, destination: str) -> str:
    """Replace the folder ``destination`` with the finished folder ``local``: afterwards it holds
    ``local``'s files and nothing left from before.

    Locally the copy is made beside the target under a staging name, then swapped in by two
    renames (the previous folder aside, the new one in place) and the previous one removed; POSIX
    cannot swap two non-empty folders in one step, and a run killed between the renames leaves
    the previous folder under a staging name for the next run to remove (see
    :func:`remove_stale_staging`). On S3, which has no folders, each file is uploaded whole
    (see :func:`publish`), then the objects under ``destination`` that ``local`` lacks are deleted.

    Args:
        local: the finished folder (files only).
        destination: an ``s3://bucket/prefix`` or a local folder path (its parent is created).

    Returns:
        ``destination``.

    Raises:
        StorageError: S3 refused an upload or a deletion. OSError: the local copy failed (the
            previous folder is left as it was).
    """
    names = sorted(path.name for path in local.iterdir())
    if is_s3(destination):
        for name in names:
            publish(local / name, f"{destination.rstrip('/')}/{name}")
        s3.delete_others(destination, names)
        return destination
    with folder_in_place(Path(destination)) as staged:
        shutil.copytree(local, staged, dirs_exist_ok=True)
    return destination


@contextlib.contextmanager
def folder_in_place(target: Path) -> Iterator[Path]:
    """A new folder to fill, beside ``target`` under a staging name, that replaces ``target`` as a
    whole when the block ends without an error (and is removed when it raises).

    The swap is two renames (the previous folder aside, the new one in place), then the previous
    one is removed: POSIX cannot swap two non-empty folders in one step, and a run killed between
    the renames leaves the previous folder under a staging name for the next run to remove (see
    :func:`remove_stale_staging`). Being beside ``target``, the new folder is on its disk: it needs
    no room elsewhere, and the renames never copy.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent)
    staged = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=target.parent))
    aside = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=target.parent))
    try:
        yield staged
        os.chmod(staged, 0o755)  # mkdtemp makes it private
        if target.exists():
            os.replace(target, aside)  # onto an empty folder: allowed
        try:
            os.replace(staged, target)
        except OSError:
            if any(aside.iterdir()):
                os.replace(aside, target)  # the previous folder back
            raise
    finally:
        for folder in (staged, aside):
            shutil.rmtree(folder, ignore_errors=True)


def write_atomically(path: Path, content: bytes) -> Path:
    """Write ``content`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(content)
    return path


def pack_archive(members: Iterable[tuple[Path, str]], archive: Path) -> Path:
    """Write a ``.tar.gz`` of ``members`` (path, name in the archive) atomically (see
    :func:`atomic_path`).

    Returns:
        ``archive``.
    """
    with atomic_path(archive, ".tar.gz") as tmp, tarfile.open(tmp, "w:gz") as tar:
        for path, name in members:
            tar.add(path, arcname=name)
    return archive
