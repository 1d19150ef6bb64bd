"""Helpers for tests: where things are, and running the command line as a user would."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TF_FINETUNE_SHARED", REPO.parent / "shared"))
# conftest splits the CPU into this many logical devices. Two keep every replica edge case (a last
# batch smaller than the replica count) at about 3/4 of 4's time on 2 cores; set
# TF_FINETUNE_TEST_REPLICAS=4 to run the suite as on a 4-GPU host.
REPLICAS = int(os.environ.get("TF_FINETUNE_TEST_REPLICAS", "2"))


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python -m tf_finetune ARGS`` in a subprocess (one CPU device unless ``--cpu-devices`` says otherwise)."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "tf_finetune", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


def run_main(*args: str, env: dict | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """``tf_finetune.cli.commands.main(ARGS)`` in this process, seen as :func:`run_cli` sees a subprocess.

    For tests of what a command does rather than of the process around it (start-up noise,
    signals, the device split, ``python -m``): it saves the subprocess's TensorFlow import
    (about 8 s each). The exit code is main's return value (2 for a usage error); stdout is
    what it prints; stderr is what it prints there plus its log lines, one message each as the
    command line shows them. ``env`` is set in ``os.environ`` for the call and then restored.
    The process has the suite's REPLICAS logical CPUs, not a subprocess's one.
    """
    import io
    import logging
    from contextlib import redirect_stderr, redirect_stdout

    from tf_finetune.cli import commands

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("tf_finetune")
    saved_env = {name: os.environ.get(name) for name in env or {}}
    saved_stdin = sys.stdin
    os.environ.update(env or {})
    package_logger.addHandler(handler)
    try:
        sys.stdin = io.StringIO(stdin)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = commands.main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        package_logger.removeHandler(handler)
        sys.stdin = saved_stdin
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(["tf-finetune", *args], code, out.getvalue(), err.getvalue())


def write_registry(path: Path, **entry) -> Path:
    """A registry YAML with one entry (``fine_tunable``, ``license`` and ``description`` filled in)."""
    import yaml

    entry = {"fine_tunable": True, "license": "Apache-2.0", "description": "a tiny model for tests", **entry}
    path.write_text(yaml.safe_dump({"models": [entry]}, sort_keys=False), encoding="utf-8")
    return path


def extract(archive, into) -> list[str]:
    """Extract a model.tar.gz; returns its member names."""
    import tarfile

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(into, filter="data")
    return names


def decode_images(paths, size):
    """Images as the model expects them, decoded here independently of tf_finetune's pipeline."""
    import tensorflow as tf

    images = []
    for path in paths:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False, dtype=tf.float32)
        images.append(tf.image.resize(image, [size, size], method="bilinear"))
    return tf.clip_by_value(tf.stack(images), 0.0, 1.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_environment() -> dict[str, str]:
    """Proxy variables pointing at a closed port on 127.0.0.1: any download fails fast, on this
    machine or a connected one (an "offline" test must not depend on DNS failing)."""
    closed = f"http://127.0.0.1:{free_port()}"
    return {
        "HTTPS_PROXY": closed,
        "HTTP_PROXY": closed,
        "https_proxy": closed,
        "http_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
    }


def s3_environment(endpoint: str) -> dict[str, str]:
    """What points boto3 at the test S3 server: endpoint, region and dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }


_CONNECTS: list | None = None  # the armed recorder of only_localhost(), or None
_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


def _audit(event: str, args) -> None:
    if _CONNECTS is None or event != "socket.connect":
        return
    address = args[1]
    host = address[0] if isinstance(address, tuple) else str(address)
    _CONNECTS.append(host)
    if isinstance(address, tuple) and host not in _LOCAL_HOSTS:
        raise PermissionError(f"test traffic must stay on 127.0.0.1: connect to {address} refused")


@contextlib.contextmanager
def only_localhost():
    """Refuse (and record) every socket connect to a host other than 127.0.0.1 while active.

    Yields the list of hosts connected to, so a test can also assert that nothing connected.
    An audit hook cannot be removed, so it is installed once and armed only in here.
    """
    global _CONNECTS
    if not getattr(only_localhost, "installed", False):
        sys.addaudithook(_audit)
        only_localhost.installed = True
    _CONNECTS = connects = []
    try:
        yield connects
    finally:
        _CONNECTS = None


def grid_shape(tiles: int) -> tuple[int, int]:
    """(width, height) in pixels of plots.image_grid's PNG for ``tiles`` tiles."""
    from tf_finetune.reports import plots

    columns, rows = plots.grid_layout(tiles)
    return columns * plots.TILE_PX, plots.TITLE_PX + rows * (plots.TILE_PX + plots.CAPTION_PX)
