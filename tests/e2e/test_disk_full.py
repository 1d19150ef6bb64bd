"""A full disk, for real: a small tmpfs mounted over one folder in a private mount namespace
(``unshare --mount``, root only), so writes there fail with ENOSPC as they would on a full disk.

Where the tool writes what it must (the model, the checkpoint, a TFLite file) the run ends with
one message naming what it was writing and the option that moves it, exit 1, the previous model
byte for byte and nothing half-written. Where it writes only to go faster (the feature cache,
the decoded-image cache in the temporary folder) it checks the free space first, says it skips
the cache, and finishes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare(1) to mount a small tmpfs in a mount namespace",
)

# Each "folder:size" of $MOUNTS gets a tmpfs of that size; then the commands in $COMMANDS run
# one after the other.
SCRIPT = r"""
set -e
for mount in $MOUNTS; do mount -t tmpfs -o size="${mount##*:}" tmpfs "${mount%:*}"; done
printf 'the previous model' > "$OUT/output/model.tar.gz"
set +e
i=0
while IFS= read -r command; do
  i=$((i + 1))
  sh -c "$command" > "$LOGS/stdout$i" 2> "$LOGS/stderr$i"
  echo "exit$i=$?"
done <<EOF
$COMMANDS
EOF
echo "previous=$(cat "$OUT/output/model.tar.gz")"
echo "full=$(cd "$FULL" && find . -mindepth 1 -not -path './tensorboard*' | sort | tr '\n' ' ')"
"""


def in_full_namespace(
    tmp_path: Path, full: Path, *commands: str, sizes: dict[Path, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Run ``commands`` (shell, ``$PYTHON -m tf_finetune ...``) with ``full`` a 4 KB tmpfs (and
    each folder of ``sizes`` a tmpfs of that size, e.g. ``"16k"``).

    Returns:
        ``exit1``, ``exit2``…, ``previous`` (the old archive's content) and ``full`` (what is
        left in the full folder); and each command's stderr.
    """
    out, logs = tmp_path / "out", tmp_path / "logs"
    (out / "output").mkdir(parents=True, exist_ok=True)
    mounts = {full: "4k", **(sizes or {})}
    for folder in mounts:
        folder.mkdir(parents=True, exist_ok=True)
    logs.mkdir()
    env = dict(
        os.environ,
        OUT=str(out),
        FULL=str(full),
        LOGS=str(logs),
        PYTHON=sys.executable,
        PYTHONPATH=str(REPO),
        COMMANDS="\n".join(commands),
        MOUNTS=" ".join(f"{folder}:{size}" for folder, size in mounts.items()),
    )
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600, cwd=REPO
    )
    if "mount:" in proc.stderr:
        pytest.skip(f"mount namespaces are not allowed here: {proc.stderr.strip()}")
    report = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return report, [(logs / f"stderr{i + 1}").read_text() for i in range(len(commands))]


def errors_of(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("tf-finetune: error:")]


def test_a_full_output_disk_is_one_message_and_leaves_the_previous_model(text_module, text_data, tmp_path):
    # 64 KB: the TensorBoard logs fit, the model does not. (A 4 KB output is refused before
    # training: see test_an_output_disk_smaller_than_the_model_is_refused_before_training.)
    for size, writing in (("64k", "the model to {output}:"),):
        run = tmp_path / size
        output = run / "out" / "output"
        report, (stderr,) = in_full_namespace(
            run,
            output,
            f'"$PYTHON" -m tf_finetune train --data {text_data} --handle {text_module} --output {run / "out"} '
            f"--cache-dir {tmp_path / 'cache'} --epochs 1 --batch-size 4",
            sizes={output: size},
        )
        assert report["exit1"] == "1", stderr[-3000:]
        (error,) = errors_of(stderr)
        assert error.startswith(
            "tf-finetune: error: no space left on the device writing " + writing.format(output=output)
        ), error
        assert error.endswith(
            ": nothing was published and temporary files were removed; free some space, or "
            "choose another --output, --cache-dir or TMPDIR, and run again"
        ), error
        assert report["previous"] == "the previous model"
        assert report["full"].split() == ["./model.tar.gz"]  # no staging folder or half-written archive


def test_a_full_checkpoint_disk_names_the_checkpoint_folder(text_module, text_data, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    report, (stderr,) = in_full_namespace(
        tmp_path,
        checkpoints,
        f'"$PYTHON" -m tf_finetune train --data {text_data} --handle {text_module} --output {tmp_path / "out"} '
        f"--cache-dir {tmp_path / 'cache'} --checkpoint-dir {checkpoints} --epochs 2 --batch-size 4",
    )
    assert report["exit1"] == "1", stderr[-3000:]
    assert errors_of(stderr) == [
        f"tf-finetune: error: no space left on the device writing the checkpoint in {checkpoints}: nothing was "
        "published and temporary files were removed; free some space, or choose another --checkpoint-dir, "
        "and run again"
    ]
    assert report["previous"] == "the previous model"
    # Only the job's record is left (written whole, atomically), no half-written training state.
    assert report["full"].split() == ["./job.json"]


def test_a_full_cache_or_temporary_folder_only_turns_the_caches_off(image_module, image_data, tmp_path):
    # The feature cache on a full --cache-dir, then the decoded-image cache in a TMPDIR without
    # room for it (16 KB: Python itself skips a TMPDIR where it cannot write): both are skipped
    # with a line that says so, and both runs finish. A TFLite export to the full folder then
    # fails with one message.
    full, small = tmp_path / "full", tmp_path / "small"
    common = f"--data {image_data} --handle {image_module} --image-size 16 --epochs 1 --batch-size 4"
    report, (features, decoded, exported) = in_full_namespace(
        tmp_path,
        full,
        f'"$PYTHON" -m tf_finetune train {common} --output {tmp_path / "a"} --cache-dir {full} '
        "--train-only-top-layer True",
        f'TMPDIR={small} "$PYTHON" -m tf_finetune train {common} --output {tmp_path / "b"} '
        f"--cache-dir {tmp_path / 'cache'} --train-only-top-layer False",
        f'"$PYTHON" -m tf_finetune export-tflite --model {tmp_path / "b" / "output" / "model.tar.gz"} '
        f"--output {full / 'tflite'}",
        sizes={small: "16k"},
    )
    assert report["exit1"] == "0" and not errors_of(features), features[-3000:]
    assert f"are not kept: 0.0 MiB free in {full / 'features'}" in features
    assert report["exit2"] == "0" and not errors_of(decoded), decoded[-3000:]
    assert f"are not cached: 0.0 GiB free in {small}/tf_finetune." in decoded
    metrics = json.loads(
        subprocess.run(
            ["tar", "-xzOf", str(tmp_path / "b" / "output" / "model.tar.gz"), "metrics.json"],
            capture_output=True,
            check=True,
        ).stdout
    )
    assert metrics["epochs_run"] == 1

    assert report["exit3"] == "1", exported[-3000:]
    assert errors_of(exported) == [
        f"tf-finetune: error: no space left on the device writing the TFLite model to {full / 'tflite'}: nothing "
        "was published and temporary files were removed; free some space, or choose another --output, "
        "and run again"
    ]
    assert not [entry for entry in report["full"].split() if entry.startswith("./tflite/")]  # no partial file


def test_an_output_disk_smaller_than_the_model_is_refused_before_training(text_data, tmp_path):
    import tiny_modules

    (tmp_path / "hub").mkdir()
    wide = tiny_modules.save_text_module(tmp_path / "hub" / "wide_text", dim=4096)
    weights = sum(p.stat().st_size for p in (wide / "variables").iterdir())
    assert weights > 2 * 64 * 1024  # so that it cannot fit the 64 KB output below
    output = tmp_path / "out" / "output"
    report, (stderr,) = in_full_namespace(
        tmp_path,
        output,
        f'"$PYTHON" -m tf_finetune train --data {text_data} --handle {wide} --output {tmp_path / "out"} '
        f"--cache-dir {tmp_path / 'cache'} --epochs 1 --batch-size 4",
        sizes={output: "64k"},
    )
    assert report["exit1"] == "1", stderr[-3000:]
    (error,) = errors_of(stderr)
    assert error.startswith(f"tf-finetune: error: not enough free space for --output: {output} has "), error
    assert f"writes at least {weights / 2**20:.1f} MiB there" in error
    assert "epoch=1/" not in stderr  # refused before training
    assert report["previous"] == "the previous model" and report["full"].split() == ["./model.tar.gz"]


def test_publishing_into_a_full_folder_keeps_the_previous_file_whole(tmp_path):
    # storage.publish is how every command puts a finished file in place (or on S3).
    new = tmp_path / "new.tar.gz"
    new.write_bytes(os.urandom(64 * 1024))  # 16 times the tmpfs
    full = tmp_path / "out" / "output"
    command = (
        '$PYTHON -c "import sys; from pathlib import Path; from tf_finetune import storage; '
        f"storage.publish(Path('{new}'), '{full}/model.tar.gz')\""
    )
    report, (stderr,) = in_full_namespace(tmp_path, full, command)
    assert report["exit1"] == "1" and "No space left on device" in stderr, stderr
    assert report["previous"] == "the previous model"  # not truncated, not half the new one
    assert report["full"].split() == ["./model.tar.gz"]  # and no temporary file left beside it
