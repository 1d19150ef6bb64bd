"""Model quality of the defaults against a grid a careful user would try, side by side.

    python benchmarks/quality.py [--shared ../shared] [--datasets ants_bees,sms_spam,movie_snippets]
        [--seeds 1] [--only defaults,head3,...]

For each dataset it can reach, runs every recipe as a whole ``tf-finetune train`` process
(the same validation data for all: ants/bees' own val/ folder, or the default seeded 20 %
split of a text data.csv) and a frozen-feature + logistic-regression baseline (C chosen on
the validation split by accuracy, as the issue's baseline does; needs scikit-learn: ``pip install
scikit-learn``), then prints a table of validation accuracy, macro-F1 and wall time, with
each run's wall time divided by the head-only 3-epoch run's. ``--seeds 1,2,3`` repeats every
recipe with ``--random-seed`` (the split stays the default one: only image runs take separate
validation data; text runs pass the seed, which also moves the split, so compare text recipes
within a seed).
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
import time
from pathlib import Path

IMAGE_GRID = {
    "defaults": [],
    "head3": ["--train-only-top-layer", "True", "--epochs", "3", "--regularizers-l2", "0.0001"],
    "head10": ["--train-only-top-layer", "True", "--epochs", "10", "--regularizers-l2", "0.0001"],
    "head10_lr003": [
        "--train-only-top-layer",
        "True",
        "--epochs",
        "10",
        "--learning-rate",
        "0.003",
        "--regularizers-l2",
        "0.0001",
    ],
    "full_lr1e-4_5ep": ["--train-only-top-layer", "False", "--learning-rate", "0.0001", "--epochs", "5"],
    "full_lr1e-5_10ep": ["--train-only-top-layer", "False", "--learning-rate", "0.00001", "--epochs", "10"],
}
TEXT_GRID = {
    "defaults": [],
    "head3": ["--train-only-top-layer", "True", "--epochs", "3", "--regularizers-l2", "0.0001"],
    "head10_lr003": [
        "--train-only-top-layer",
        "True",
        "--epochs",
        "10",
        "--learning-rate",
        "0.003",
        "--regularizers-l2",
        "0.0001",
    ],
    "full_lr1e-2_3ep": ["--train-only-top-layer", "False", "--learning-rate", "0.01", "--epochs", "3"],
    "full_lr1e-2_10ep": ["--train-only-top-layer", "False", "--learning-rate", "0.01", "--epochs", "10"],
    "full_lr1e-3_10ep": ["--train-only-top-layer", "False", "--learning-rate", "0.001", "--epochs", "10"],
    "full_lr3e-3_5ep": ["--train-only-top-layer", "False", "--learning-rate", "0.003", "--epochs", "5"],
}

# The frozen-feature baseline, as its own process: features of train and validation from the
# backbone, then scikit-learn's logistic regression with C chosen on validation accuracy.
BASELINE = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, tensorflow_hub as hub, tf_keras
    from sklearn.linear_model import LogisticRegression
    from tf_finetune.data import load_data
    from tf_finetune.data.pipeline import Decoding, inference_batches
    task, data, validation, handle, size, seed = sys.argv[1:7]
    size, seed = int(size), int(seed)
    split = load_data(task, data, validation or None, 0.2, seed)
    inputs = tf_keras.Input([size, size, 3]) if task == "image" else tf_keras.Input([], dtype=tf.string)
    extractor = tf_keras.Model(inputs, hub.KerasLayer(handle, trainable=False)(inputs))
    def features(examples):
        batches = inference_batches(examples.inputs, task, 32, decoding=Decoding(size if task == "image" else None))
        return extractor.predict(batches, verbose=0)[:len(examples)]
    x_train, x_val = features(split.train), features(split.validation)
    y_train, y_val = np.array(split.train.labels), np.array(split.validation.labels)
    best = None
    for c in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100):
        predicted = LogisticRegression(C=c, max_iter=5000).fit(x_train, y_train).predict(x_val)
        accuracy = float(np.mean(predicted == y_val))
        if best is None or accuracy > best[0]:
            best = (accuracy, c, predicted)
    accuracy, c, predicted = best
    f1 = []
    for k in range(split.label_map.num_classes):
        tp = np.sum((predicted == k) & (y_val == k)); fp = np.sum((predicted == k) & (y_val != k))
        fn = np.sum((predicted != k) & (y_val == k))
        f1.append(2 * tp / max(2 * tp + fp + fn, 1))
    print(json.dumps({"accuracy": accuracy, "macro_f1": float(np.mean(f1)), "C": c}))
""")


def datasets(shared: Path) -> dict[str, dict]:
    models, data = shared / "models", shared / "data"
    return {
        "ants_bees": dict(
            task="image",
            grid=IMAGE_GRID,
            data=data / "hymenoptera" / "train",
            validation=data / "hymenoptera" / "val",
            backbone=["--handle", str(models / "mobilenet_v2_035_imagenet"), "--image-size", "224"],
            handle=models / "mobilenet_v2_035_imagenet",
            size=224,
        ),
        "sms_spam": dict(
            task="text",
            grid=TEXT_GRID,
            data=data / "sms_spam" / "data.csv",
            validation=None,
            backbone=["--model-id", "wordllama-words256", "--handle", str(models / "wordllama_words256")],
            handle=models / "wordllama_words256",
            size=0,
        ),
        "movie_snippets": dict(
            task="text",
            grid=TEXT_GRID,
            data=data / "movie_snippets" / "data.csv",
            validation=None,
            backbone=["--model-id", "wordllama-words256", "--handle", str(models / "wordllama_words256")],
            handle=models / "wordllama_words256",
            size=0,
        ),
    }


def train(spec: dict, recipe: list[str], seed: int | None, out: Path, env: dict) -> dict:
    """One ``tf-finetune train`` process; its validation report, choices and wall time."""
    command = [
        sys.executable,
        "-m",
        "tf_finetune",
        "train",
        *spec["backbone"],
        "--data",
        str(spec["data"]),
        "--output",
        str(out),
        *recipe,
    ]
    if spec["validation"]:
        command += ["--validation-data", str(spec["validation"])]
    if seed is not None:
        command += ["--random-seed", str(seed)]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr[-3000:]}")
    report = json.loads((out / "output" / "reports" / "evaluation.json").read_text())
    import tarfile

    with tarfile.open(out / "output" / "model.tar.gz") as archive:
        metrics = json.load(archive.extractfile("metrics.json"))
    chosen = ", ".join(f"{c['name']}={c['value']:g}" for c in metrics.get("choices", []))
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "seconds": seconds, "note": chosen}


def baseline(spec: dict, seed: int | None, env: dict) -> dict:
    command = [
        sys.executable,
        "-c",
        BASELINE,
        spec["task"],
        str(spec["data"]),
        str(spec["validation"] or ""),
        str(spec["handle"]),
        str(spec["size"]),
        str(123 if seed is None else seed),
    ]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        return {
            "accuracy": float("nan"),
            "macro_f1": float("nan"),
            "seconds": seconds,
            "note": proc.stderr.strip().splitlines()[-1][:80],
        }
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "accuracy": result["accuracy"],
        "macro_f1": result["macro_f1"],
        "seconds": seconds,
        "note": f"C={result['C']:g}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--datasets", default="ants_bees,sms_spam,movie_snippets")
    parser.add_argument("--seeds", default="", help="comma-separated random seeds (default: none given)")
    parser.add_argument("--only", default="", help="comma-separated recipe names (and 'baseline')")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    seeds = [int(s) for s in args.seeds.split(",") if s] or [None]
    only = set(filter(None, args.only.split(",")))
    known = datasets(args.shared)
    rows = []
    with tempfile.TemporaryDirectory(prefix="quality.") as tmp:
        for name in args.datasets.split(","):
            spec = known[name]
            if not Path(spec["data"]).exists():
                print(f"skipping {name}: {spec['data']} not found", file=sys.stderr)
                continue
            for seed in seeds:
                results = {}
                for recipe, flags in spec["grid"].items():
                    if only and recipe not in only:
                        continue
                    results[recipe] = train(spec, flags, seed, Path(tmp) / f"{name}-{recipe}-{seed}", env)
                    print(f"{name} seed={seed} {recipe}: {results[recipe]}", file=sys.stderr, flush=True)
                if not only or "baseline" in only:
                    results["frozen+logreg"] = baseline(spec, seed, env)
                    print(f"{name} seed={seed} frozen+logreg: {results['frozen+logreg']}", file=sys.stderr, flush=True)
                reference = results.get("head3", {}).get("seconds")
                for recipe, r in results.items():
                    ratio = f"{r['seconds'] / reference:.2f}" if reference else "-"
                    rows.append(
                        (
                            name,
                            "-" if seed is None else str(seed),
                            recipe,
                            f"{r['accuracy']:.3f}",
                            f"{r['macro_f1']:.3f}",
                            f"{r['seconds']:.1f}",
                            ratio,
                            r["note"],
                        )
                    )
    header = ("data", "seed", "recipe", "val acc", "macro-F1", "wall s", "÷ head3", "chosen / note")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    by_recipe: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        by_recipe.setdefault((row[0], row[2]), []).append(float(row[3]))
    if len(seeds) > 1:
        print("\nmean validation accuracy over seeds:")
        for (data, recipe), values in by_recipe.items():
            print(f"  {data:15} {recipe:18} {statistics.mean(values):.3f} (min {min(values):.3f})")


if __name__ == "__main__":
    main()
