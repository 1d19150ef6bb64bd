"""Destinations and locations are checked before any work: one message, exit 1, nothing written."""

from __future__ import annotations

import pytest

from tf_finetune import storage
from tf_finetune.cli import commands
from tf_finetune.errors import StorageError


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "outfile"
    path.write_text("keep me")
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("tf-finetune: error:")]
    assert "Traceback" not in err and "read " not in err, err  # no data was read
    return line


@pytest.mark.parametrize("flag", ["--output", "--cache-dir"])
def test_train_refuses_a_file_as_a_folder_before_reading_data(flag, a_file, text_data, tmp_path, capsys):
    args = {"--output": str(tmp_path / "out"), "--cache-dir": str(tmp_path / "cache"), flag: str(a_file)}
    argv = ["train", "--data", str(text_data), "--handle", str(tmp_path / "no-backbone")]
    assert commands.main(argv + [x for pair in args.items() for x in pair]) == 1
    assert _error(capsys) == f"tf-finetune: error: {flag} {a_file} is a file; it must be a folder (new or existing)"
    assert a_file.read_text() == "keep me" and not (tmp_path / "out").exists()


def test_an_s3_uri_without_a_bucket(tmp_path):
    with pytest.raises(StorageError, match=r"--output s3:///x has no bucket"):
        storage.check_destination("s3:///x", "--output")
    storage.check_destination("s3://bucket/prefix/", "--output")  # fine, nothing contacted


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--model", "missing.tar.gz", "--data", "d"],
        ["export-tflite", "--model", "missing.tar.gz"],
        ["fetch-model", "some-id"],
        ["import-backbone", "missing.h5"],
    ],
)
def test_every_writing_command_checks_its_destination_first(command, a_file, capsys):
    assert commands.main([*command, "--output", str(a_file)]) == 1
    assert f"--output {a_file} is a file" in _error(capsys)  # not the missing model's message


def test_a_new_folder_under_a_file_is_refused(a_file):
    with pytest.raises(StorageError, match=f"{a_file} is a file, so no folder can be made under it"):
        storage.check_destination(a_file / "sub" / "dir", "--output")


def test_nothing_is_created_by_the_check(tmp_path):
    storage.check_destination(tmp_path / "new" / "deeper", "--output")
    assert list(tmp_path.iterdir()) == []
