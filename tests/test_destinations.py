"""Destinations and locations are checked before any work: one message, exit 1, nothing written."""
from __future__ import annotations

import pytest

from tf_finetune import job_options, storage
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


def test_train_refuses_a_place_it_cannot_write(text_data, tmp_path, capsys):
    assert commands.main(["train", "--data", str(text_data), "--handle", "h", "--output", "/proc/o11",
                     "--cache-dir", str(tmp_path / "cache")]) == 1
    assert _error(capsys).startswith("tf-finetune: error: --output /proc/o11: cannot create files in /proc (")


def test_the_cache_variable_pointing_at_a_file(a_file, text_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(job_options.CACHE_ENV, str(a_file))
    assert commands.main(["train", "--data", str(text_data), "--handle", "h", "--output", str(tmp_path / "o")]) == 1
    assert f"--cache-dir {a_file} is a file" in _error(capsys)


@pytest.mark.parametrize("given, meant", [("s3:/bucket/x", "s3://bucket/x"), ("s3//bucket/x", "s3://bucket/x"),
                                          ("s3:bucket/x", "s3://bucket/x")])
def test_a_misspelt_s3_uri_gets_a_hint(given, meant, tmp_path, capsys):
    for flag, extra in (("--data", ["--output", str(tmp_path / "o")]), ("--output", ["--data", str(tmp_path)])):
        assert commands.main(["train", flag, given, *extra, "--handle", "h", "--cache-dir", str(tmp_path)]) == 1
        assert f"{flag} {given}: did you mean {meant}? (S3 URIs start with s3://)" in _error(capsys)


def test_an_s3_uri_without_a_bucket(tmp_path):
    with pytest.raises(StorageError, match=r"--output s3:///x has no bucket"):
        storage.check_destination("s3:///x", "--output")
    storage.check_destination("s3://bucket/prefix/", "--output")  # fine, nothing contacted


@pytest.mark.parametrize("command", [
    ["evaluate", "--model", "missing.tar.gz", "--data", "d"],
    ["export-tflite", "--model", "missing.tar.gz"],
    ["fetch-model", "some-id"],
    ["import-backbone", "missing.h5"],
])
def test_every_writing_command_checks_its_destination_first(command, a_file, capsys):
    assert commands.main([*command, "--output", str(a_file)]) == 1
    assert f"--output {a_file} is a file" in _error(capsys)  # not the missing model's message


def test_a_new_folder_under_a_file_is_refused(a_file):
    with pytest.raises(StorageError, match=f"{a_file} is a file, so no folder can be made under it"):
        storage.check_destination(a_file / "sub" / "dir", "--output")


def test_nothing_is_created_by_the_check(tmp_path):
    storage.check_destination(tmp_path / "new" / "deeper", "--output")
    assert list(tmp_path.iterdir()) == []


def test_a_run_on_an_output_another_run_holds_stops_at_once(text_module, text_data, tmp_path):
    """While this process holds the output (as a running job does), a real train process on the same
    output exits 1 before reading data, naming the holder; once released, the same command runs."""
    import os
    import tarfile

    from helpers import run_cli

    out, cache = tmp_path / "out", tmp_path / "cache"
    command = ["train", "--data", str(text_data), "--handle", str(text_module), "--output", str(out),
               "--cache-dir", str(cache), "--epochs", "1", "--batch-size", "4"]
    with storage.output_lock(cache, str(out)):
        second = run_cli(*command)
    assert second.returncode == 1
    assert (f"tf-finetune: error: another tf-finetune run (pid {os.getpid()}) is writing to {out}; wait for "
            "it to finish or choose another --output") in second.stderr
    assert "read " not in second.stderr and not out.exists()  # stopped before reading data
    again = run_cli(*command)
    assert again.returncode == 0, again.stderr[-2000:]
    with tarfile.open(out / "output" / "model.tar.gz") as archive:
        assert "1/saved_model.pb" in archive.getnames()


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    import subprocess
    import sys

    holder = ("import sys, time\nfrom tf_finetune import storage\n"
              "with storage.output_lock(sys.argv[1], sys.argv[2]):\n"
              "    print('held', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path / "cache"), "s3://b/out"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    held = f"another tf-finetune run \\(pid {proc.pid}\\) is writing to s3://b/out"
    with pytest.raises(StorageError, match=held), storage.output_lock(tmp_path / "cache", "s3://b/out"):
        pass
    proc.kill()
    proc.wait()
    with storage.output_lock(tmp_path / "cache", "s3://b/out"):  # SIGKILL released it
        pass
