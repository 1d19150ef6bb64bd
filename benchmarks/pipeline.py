"""Full fine-tuning: is the input pipeline ever the bottleneck, and does memory grow with the data?

    python benchmarks/pipeline.py --data ../shared/data/hymenoptera \
        --handle ../shared/models/mobilenet_v2_035_imagenet [--runs 3]

Two measurements, each as whole processes, alternating so machine noise hits all alike:

throughput  The same model (backbone trainable, 224 px, batch 32, one CPU device) trained for
            ``--epochs`` on
              files    tf_finetune's own pipeline over the training images (``--copies`` x):
                       parallel decode, decoded-image cache, shuffle, prefetch
              memory   one batch of synthetic tensors already in memory, repeated: the upper bound
              xla      (with --xla) as files, with ``jit_compile=True`` (XLA), to decide its
                       default; a run that does not finish within --xla-timeout is reported so
            and prints training images/s over all epochs and over the epochs after the first
            (the first one decodes and fills the cache), and files / memory.
memory      Peak RSS of ``tf-finetune train`` (full fine-tune, 1 epoch) on the dataset and on the
            dataset copied 4x; prints 4x / 1x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from head_only import copy_images, summary  # noqa: E402

THROUGHPUT = textwrap.dedent("""
    import json, sys, tempfile, time
    import tensorflow as tf, tf_keras
    from tf_finetune import hyperparameters
    from tf_finetune.training import distribute, classifier
    from tf_finetune.registry import ModelSpec
    from tf_finetune.data import load_data
    from tf_finetune.data.pipeline import Decoding, steps_per_epoch, training_batches

    mode, data, handle, size, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    strategy = distribute.create_strategy()
    hp = hyperparameters.resolve({"epochs": epochs, "jit_compile": mode == "xla"})
    split = load_data("image", data, None, 0.0, 123)
    n, classes = len(split.train), split.label_map.num_classes
    with strategy.scope():
        spec = ModelSpec(handle, "image", handle, image_size=size)
        model, _ = classifier.build_classifier(spec, handle, None, classes, hp)
        classifier.compile_classifier(model, hp, epochs * -(-n // 32))
    with tempfile.TemporaryDirectory() as tmp:
        steps = steps_per_epoch(n, 32)
        if mode == "memory":
            images = tf.random.uniform([32, size, size, 3])
            labels = tf.one_hot(tf.range(32) % classes, classes)
            dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
        else:
            dataset = training_batches(split.train, "image", classes, 32, decoding=Decoding(size), shuffle_seed=123,
                                       cache_file=f"{tmp}/decoded")
        seconds = []

        class Clock(tf_keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                seconds.append(time.perf_counter() - self.start)

        model.fit(dataset, epochs=epochs, steps_per_epoch=steps, callbacks=[Clock()], verbose=0)
    print(json.dumps({"images": n, "epoch_seconds": seconds}))
""")


def run_json(command: list[str], env: dict, timeout: float | None = None) -> dict | None:
    """The JSON line the command prints last; None when it ran out of ``timeout``."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mib(command: list[str], env: dict) -> float:
    """Run ``command``; its peak resident set size in MiB (the kernel's own account, via wait4)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr.read()[-3000:]}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="folder with train/ and val/ class folders")
    parser.add_argument("--handle", required=True, help="image feature-vector SavedModel (fine-tunable)")
    parser.add_argument("--copies", type=int, default=2, help="copies of the training images (throughput)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    parser.add_argument("--xla-timeout", type=float, default=600, metavar="S")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    py = sys.executable
    modes = ("files", "memory", "xla") if args.xla else ("files", "memory")
    rate = {mode: {"all": [], "later": []} for mode in modes}
    xla_timeouts = 0
    rss = {"1x": [], "4x": []}
    with tempfile.TemporaryDirectory(prefix="bench.") as tmp:
        tmp = Path(tmp)
        n_train = copy_images(args.data / "train", tmp / "train", args.copies)
        for copies in (1, 4):
            for split in ("train", "val"):
                copy_images(args.data / split, tmp / f"{copies}x" / split, copies)
        for run in range(args.runs):
            for mode in rate:
                result = run_json(
                    [
                        py,
                        "-c",
                        THROUGHPUT,
                        mode,
                        str(tmp / "train"),
                        args.handle,
                        str(args.image_size),
                        str(args.epochs),
                    ],
                    env,
                    args.xla_timeout if mode == "xla" else None,
                )
                if result is None:
                    xla_timeouts += 1
                    continue
                seconds = result["epoch_seconds"]
                rate[mode]["all"].append(result["images"] * len(seconds) / sum(seconds))
                rate[mode]["later"].append(result["images"] * (len(seconds) - 1) / sum(seconds[1:]))
            for copies in rss:
                folder = tmp / copies
                rss[copies].append(
                    peak_rss_mib(
                        [
                            py,
                            "-m",
                            "tf_finetune",
                            "train",
                            "--handle",
                            args.handle,
                            "--image-size",
                            str(args.image_size),
                            "--data",
                            str(folder / "train"),
                            "--validation-data",
                            str(folder / "val"),
                            "--epochs",
                            "1",
                            "--output",
                            str(tmp / f"out-{copies}"),
                            "--cache-dir",
                            str(tmp / "cache"),
                        ],
                        env,
                    )
                )
            print(
                f"run {run + 1}/{args.runs}: "
                + ", ".join(f"{mode} {values['all'][-1]:.1f} img/s" for mode, values in rate.items() if values["all"])
                + ", "
                + ", ".join(f"RSS {k} {v[-1]:.0f} MiB" for k, v in rss.items()),
                flush=True,
            )
    median = lambda values: statistics.median(values)  # noqa: E731
    print(
        f"\nthroughput: {n_train} training images ({args.copies}x {args.data / 'train'}), "
        f"{args.image_size} px, batch 32, full fine-tune, {args.epochs} epochs, 1 CPU device; "
        f"{os.cpu_count()} CPU cores; {args.runs} runs"
    )
    print(f"{'images/s':22} {'min':>7} {'median':>7} {'max':>7}")
    for mode, values in rate.items():
        for span, label in (("all", "all epochs"), ("later", "after epoch 1")):
            if values[span]:
                print(f"{mode + ', ' + label:22} {summary(values[span], 1)}")
    for span, label in (("all", "all epochs"), ("later", "after epoch 1")):
        ratios = [f / m for f, m in zip(rate["files"][span], rate["memory"][span])]
        print(f"files / memory, {label}: {summary(ratios, 3)}   (target >= 0.9)")
        if args.xla and rate["xla"][span]:
            xla = [x / f for x, f in zip(rate["xla"][span], rate["files"][span])]
            print(f"xla / files, {label}:    {summary(xla, 3)}")
    if xla_timeouts:
        print(f"xla: {xla_timeouts} of {args.runs} runs did not finish within {args.xla_timeout:.0f} s")
    print("\npeak RSS, tf-finetune train, full fine-tune, 1 epoch (MiB):")
    for copies, values in rss.items():
        print(f"{copies:22} {summary(values, 0)}")
    ratios = [b / a for a, b in zip(rss["1x"], rss["4x"])]
    print(f"4x / 1x: {summary(ratios, 3)}   (target <= 1.25); medians {median(rss['4x']) / median(rss['1x']):.3f}")


if __name__ == "__main__":
    main()
