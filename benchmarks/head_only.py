"""Head-only fine-tuning: tf_finetune against the standard TF-Hub tutorial recipe, side by side.

    python benchmarks/head_only.py --data ../shared/data/hymenoptera \
        --handle ../shared/models/mobilenet_v2_035_imagenet [--copies 10] [--runs 3]

Copies the train/ and val/ images ``--copies`` times into a temporary folder, then runs, as
whole processes, alternating so machine noise hits all alike:
  ours    python -m tf_finetune train --train-only-top-layer True (features computed once)
  recipe  image_dataset_from_directory + frozen hub.KerasLayer + fit + SavedModel export,
          written plainly below as the TF-Hub tutorials do it
  floor   import, load the backbone, one forward pass over the same images, export
and prints min/median/max wall time of each, the ratios of the medians, and both validation
accuracies. Also times ``tf-finetune --help`` and ``list-models``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

RECIPE = textwrap.dedent("""
    import sys, json
    import tensorflow as tf, tensorflow_hub as hub, tf_keras
    train_dir, val_dir, handle, size, epochs, out = sys.argv[1:]
    size, epochs = int(size), int(epochs)
    def load(d, shuffle):
        ds = tf_keras.utils.image_dataset_from_directory(d, image_size=(size, size), batch_size=32,
                                                         shuffle=shuffle, seed=123, label_mode="categorical")
        n = len(ds.class_names)
        return ds.map(lambda x, y: (x / 255.0, y)).prefetch(tf.data.AUTOTUNE), n
    train, n = load(train_dir, True)
    val, _ = load(val_dir, False)
    model = tf_keras.Sequential([tf_keras.Input([size, size, 3]), hub.KerasLayer(handle, trainable=False),
                                 tf_keras.layers.Dropout(0.2),
                                 tf_keras.layers.Dense(n, activation="softmax",
                                                       kernel_regularizer=tf_keras.regularizers.l2(1e-4))])
    model.compile(tf_keras.optimizers.Adam(0.001),
                  tf_keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=0)
    model.save(out, save_format="tf")
    print(json.dumps({"val_accuracy": history.history["val_accuracy"][-1]}))
""")

FLOOR = textwrap.dedent("""
    import sys
    import tensorflow as tf, tensorflow_hub as hub, tf_keras
    train_dir, val_dir, handle, size, out = sys.argv[1:]
    size = int(size)
    layer = hub.KerasLayer(handle, trainable=False)
    model = tf_keras.Sequential([tf_keras.Input([size, size, 3]), layer, tf_keras.layers.Dense(2)])
    for d in (train_dir, val_dir):
        ds = tf_keras.utils.image_dataset_from_directory(d, image_size=(size, size), batch_size=32)
        model.predict(ds.map(lambda x, y: x / 255.0).prefetch(tf.data.AUTOTUNE), verbose=0)
    model.save(out, save_format="tf")
""")


def copy_images(source: Path, target: Path, copies: int) -> int:
    """``source``'s class folders with every .jpg/.jpeg copied ``copies`` times; returns the count."""
    count = 0
    for image in sorted(source.rglob("*")):
        if image.suffix.lower() not in (".jpg", ".jpeg") or not image.is_file():
            continue
        folder = target / image.parent.relative_to(source)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(copies):
            shutil.copyfile(image, folder / f"{image.stem}-{i}{image.suffix}")
            count += 1
    return count


def timed(command: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def summary(values: list[float], digits: int = 2) -> str:
    return " ".join(f"{v:7.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="folder with train/ and val/ class folders")
    parser.add_argument("--handle", required=True, help="image feature-vector SavedModel")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    py = sys.executable
    times = {"ours": [], "recipe": [], "floor": [], "help": [], "list-models": []}
    accuracy = {"ours": [], "recipe": []}
    with tempfile.TemporaryDirectory(prefix="bench.") as tmp:
        tmp = Path(tmp)
        n_train = copy_images(args.data / "train", tmp / "train", args.copies)
        n_val = copy_images(args.data / "val", tmp / "val", args.copies)
        common = [str(tmp / "train"), str(tmp / "val"), args.handle, str(args.image_size)]
        for run in range(args.runs):
            seconds, out = timed(
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
                    str(tmp / "train"),
                    "--validation-data",
                    str(tmp / "val"),
                    "--train-only-top-layer",
                    "True",
                    "--choose-hyperparameters",
                    "False",  # the recipe's fixed recipe
                    "--epochs",
                    str(args.epochs),
                    "--output",
                    str(tmp / f"ours{run}"),
                    "--cache-dir",
                    str(tmp / "cache"),
                ],
                env,
            )
            times["ours"].append(seconds)
            accuracy["ours"].append(float(re.search(r"final val_loss=\S+ val_accuracy=(\S+)", out).group(1)))
            seconds, out = timed([py, "-c", RECIPE, *common, str(args.epochs), str(tmp / f"recipe{run}")], env)
            times["recipe"].append(seconds)
            accuracy["recipe"].append(json.loads(re.search(r'\{"val_accuracy": .*?\}', out).group(0))["val_accuracy"])
            seconds, _ = timed([py, "-c", FLOOR, *common, str(tmp / f"floor{run}")], env)
            times["floor"].append(seconds)
            for name, command in (("help", ["--help"]), ("list-models", ["list-models"])):
                times[name].append(timed([py, "-m", "tf_finetune", *command], env)[0])
            print(f"run {run + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"\n{n_train} training + {n_val} validation images ({args.copies}x {args.data}), "
        f"{args.image_size} px, {args.epochs} epochs, head only; {os.cpu_count()} CPU cores; "
        f"{args.runs} runs"
    )
    print(f"{'':12} {'min':>7} {'median':>7} {'max':>7}   seconds")
    for name, values in times.items():
        print(f"{name:12} {summary(values)}")
    print(f"\nours / recipe = {median['ours'] / median['recipe']:.3f}   (target <= 0.25)")
    print(f"ours / floor  = {median['ours'] / median['floor']:.3f}   (target <= 1.3)")
    print(
        f"val_accuracy: ours {summary(accuracy['ours'], 4)}; recipe {summary(accuracy['recipe'], 4)} (min median max)"
    )
    print(f"--help {median['help']:.2f}s, list-models {median['list-models']:.2f}s   (target < 1 s)")


if __name__ == "__main__":
    main()
