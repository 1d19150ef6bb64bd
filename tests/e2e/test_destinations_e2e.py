"""The end-to-end half of tests/unit/test_destinations.py: the tests that train a model or run a door."""

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


def test_train_refuses_a_place_it_cannot_write(text_data, tmp_path, capsys):
    assert (
        commands.main(
            [
                "train",
                "--data",
                str(text_data),
                "--handle",
                "h",
                "--output",
                "/proc/o11",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 1
    )
    assert _error(capsys).startswith("tf-finetune: error: --output /proc/o11: cannot create files in /proc (")


def test_the_cache_variable_pointing_at_a_file(a_file, text_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(job_options.CACHE_ENV, str(a_file))
    assert commands.main(["train", "--data", str(text_data), "--handle", "h", "--output", str(tmp_path / "o")]) == 1
    assert f"--cache-dir {a_file} is a file" in _error(capsys)


@pytest.mark.parametrize(
    "given, meant",
    [("s3:/bucket/x", "s3://bucket/x"), ("s3//bucket/x", "s3://bucket/x"), ("s3:bucket/x", "s3://bucket/x")],
)
def test_a_misspelt_s3_uri_gets_a_hint(given, meant, tmp_path, capsys):
    for flag, extra in (("--data", ["--output", str(tmp_path / "o")]), ("--output", ["--data", str(tmp_path)])):
        assert commands.main(["train", flag, given, *extra, "--handle", "h", "--cache-dir", str(tmp_path)]) == 1
        assert f"{flag} {given}: did you mean {meant}? (S3 URIs start with s3://)" in _error(capsys)


def test_a_run_on_an_output_another_run_holds_stops_at_once(text_module, text_data, tmp_path):
    """While this process holds the output (as a running job does), a real train process on the same
    output exits 1 before reading data, naming the holder; once released, the same command runs."""
    import os
    import tarfile

    from helpers import run_cli

    out, cache = tmp_path / "out", tmp_path / "cache"
    command = [
        "train",
        "--data",
        str(text_data),
        "--handle",
        str(text_module),
        "--output",
        str(out),
        "--cache-dir",
        str(cache),
        "--epochs",
        "1",
        "--batch-size",
        "4",
    ]
    with storage.output_lock(cache, str(out)):
        second = run_cli(*command)
    assert second.returncode == 1
    assert (
        f"tf-finetune: error: another tf-finetune run (pid {os.getpid()}) is writing to {out}; wait for "
        "it to finish or choose another --output"
    ) in second.stderr
    assert "read " not in second.stderr and not out.exists()  # stopped before reading data
    again = run_cli(*command)
    assert again.returncode == 0, again.stderr[-2000:]
    with tarfile.open(out / "output" / "model.tar.gz") as archive:
        assert "1/saved_model.pb" in archive.getnames()


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    import subprocess
    import sys

    holder = (
        "import sys, time\nfrom tf_finetune import storage\n"
        "with storage.output_lock(sys.argv[1], sys.argv[2]):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path / "cache"), "s3://b/out"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    held = f"another tf-finetune run \\(pid {proc.pid}\\) is writing to s3://b/out"
    with pytest.raises(StorageError, match=held), storage.output_lock(tmp_path / "cache", "s3://b/out"):
        pass
    proc.kill()
    proc.wait()
    with storage.output_lock(tmp_path / "cache", "s3://b/out"):  # SIGKILL released it
        pass
