"""Archive extraction refuses anything that would land outside its target."""
from __future__ import annotations

import io
import tarfile

import pytest

from tf_finetune.errors import StorageError
from tf_finetune.storage import extract_archive


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
    archive = _archive(tmp_path / "ok.tar.gz", [("m/saved_model.pb", "file", None),
                                                ("m/variables/v", "file", None)])
    target = extract_archive(archive, tmp_path / "out")
    assert (target / "m" / "saved_model.pb").read_bytes() == b"x"


@pytest.mark.parametrize("members", [
    [("../escape.txt", "file", None)],
    [("/abs/escape.txt", "file", None)],
    [("m/link", "symlink", "../../outside")],
    [("m/link", "symlink", "/etc/passwd")],
], ids=["dotdot", "absolute", "relative-symlink-escape", "absolute-symlink"])
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
