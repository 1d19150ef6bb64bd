"""Archive extraction refuses anything that would land outside its target."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tf_finetune.errors import StorageError
from tf_finetune.storage import extract_archive, local_path, move_into_place


def _archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = b"x"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = target
                tar.addfile(info)
    return path


def test_a_normal_archive_extracts(tmp_path):
    archive = _archive(tmp_path / "ok.tar.gz", [("m/saved_model.pb", "file", None), ("m/variables/v", "file", None)])
    target = extract_archive(archive, tmp_path / "out")
    assert (target / "m" / "saved_model.pb").read_bytes() == b"x"


@pytest.mark.parametrize(
    "members",
    [
        [("../escape.txt", "file", None)],
        [("/abs/escape.txt", "file", None)],
        [("m/link", "symlink", "../../outside")],
        [("m/link", "symlink", "/etc/passwd")],
    ],
    ids=["dotdot", "absolute", "relative-symlink-escape", "absolute-symlink"],
)
def test_unsafe_members_are_refused_and_nothing_is_left(tmp_path, members):
    archive = _archive(tmp_path / "bad.tar.gz", members)
    with pytest.raises(StorageError, match="unsafe member"):
        extract_archive(archive, tmp_path / "out" / "target")
    assert not (tmp_path / "out" / "target").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_not_a_tar_is_one_clear_error(tmp_path):
    bogus = tmp_path / "model.tar.gz"
    bogus.write_text("this is not an archive")
    with pytest.raises(StorageError, match="not a readable tar archive"):
        extract_archive(bogus, tmp_path / "out")


# Two jobs on one machine share the cache: both may extract the same backbone archive at once.


def test_move_into_place_keeps_a_finished_entry_and_refuses_a_file(tmp_path):
    first, second, target = tmp_path / "a", tmp_path / "b", tmp_path / "entry"
    for folder, text in ((first, "first"), (second, "second")):
        folder.mkdir()
        (folder / "x").write_text(text)
    assert move_into_place(first, target) is True
    assert move_into_place(second, target) is False  # another process's entry stays
    assert (target / "x").read_text() == "first" and (second / "x").is_file()
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):
        move_into_place(second, tmp_path / "file")


def test_publish_copies_into_a_new_folder_or_uploads(tmp_path, s3):
    from tf_finetune.storage import publish

    local = tmp_path / "model.tar.gz"
    local.write_bytes(os.urandom(3000))
    target = tmp_path / "a" / "b" / "model.tar.gz"
    assert publish(local, str(target)) == str(target) and target.read_bytes() == local.read_bytes()
    s3.create_bucket(Bucket="published")
    assert publish(local, "s3://published/x/model.tar.gz") == "s3://published/x/model.tar.gz"
    assert s3.get_object(Bucket="published", Key="x/model.tar.gz")["Body"].read() == local.read_bytes()
    with pytest.raises(StorageError, match="give an object key, not a prefix"):
        publish(local, "s3://published/x/")


def test_local_path_reads_paths_and_file_uris_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    spaced = tmp_path / "my models" / "ünï"
    assert local_path(spaced.as_uri()) == spaced  # percent-encoded, as Path.as_uri() writes it
    assert local_path("file://localhost" + spaced.as_uri()[len("file://") :]) == spaced
    assert local_path("file://~/m") == local_path("~/m") == tmp_path / "m"
    assert local_path("file://models/m") == Path("models/m")  # relative, as earlier versions read it
    assert local_path("models/50%20off") == Path("models/50%20off")  # a plain path is never decoded
