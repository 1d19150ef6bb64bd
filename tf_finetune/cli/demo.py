"""The offline demo: the built-in wordllama text backbone fine-tuned on bundled sample data.

The sample (``sample_data/topics.csv``, the project's own sentences) has three topics, named in
``sample_data/labels.json``; the demo trains, then reloads the exported SavedModel and classifies
unseen sentences.
"""

from __future__ import annotations

import importlib.resources
import logging
import shlex
import shutil
import sys
from pathlib import Path

from tf_finetune.job_options import JobConfig
from tf_finetune.serving.predictor import open_model, top_k
from tf_finetune.training.job import run

log = logging.getLogger(__name__)

DEMO_HYPERPARAMETERS = {
    "epochs": 30,
    "batch_size": 16,
    "learning_rate": 0.05,
    "train_only_top_layer": True,
    "label_smoothing": 0.0,
    "validation_split_ratio": 0.25,
}
# The model stays where the user can open it (a temporary folder would be gone by the last line).
DEFAULT_OUTPUT = "tf-finetune-demo"


def sample_path(name: str) -> Path:
    """A file of the bundled sample data."""
    return Path(str(importlib.resources.files("tf_finetune") / "sample_data" / name))


def run_demo(output: str | None, cache_dir: str, epochs: int | None = None) -> dict:
    """Train on the sample, print metrics and predictions; returns the metrics.

    Args:
        output: where the model goes (``<output>/output/model.tar.gz``);
            ``./tf-finetune-demo`` when None.
        cache_dir: where the built-in backbone is built once.
        epochs: override the demo's number of epochs.
    """
    hps = dict(DEMO_HYPERPARAMETERS, **({"epochs": epochs} if epochs else {}))
    result = run(
        JobConfig(
            data=str(sample_path("topics.csv")),
            output=output or DEFAULT_OUTPUT,
            model_id="wordllama-words256",
            hyperparameters=hps,
            cache_dir=cache_dir,
        )
    )
    examples = sample_path("topics_examples.txt").read_text("utf-8").split("\n")
    assert result.archive is not None  # a local single-worker run always writes one
    predictions = predict_texts(Path(result.archive), [e for e in examples if e.strip()])
    final = result.metrics["final"]
    print(
        f"\nvalidation accuracy: {final.get('val_accuracy', float('nan')):.3f} "
        f"({result.metrics['num_validation_examples']} held-out sentences, "
        f"{result.metrics['epochs_run']} epochs, {result.metrics['train_seconds']:.1f}s training)"
    )
    print("predictions of the exported model on new sentences:")
    for text, (label, probability) in predictions:
        print(f"  {label:>8} {probability:5.1%}  {text}")
    print(f"model: {result.archive}")
    print(
        f"try it: {cli_command()} predict --model {shlex.quote(str(Path(result.archive).absolute()))} "
        '"a bowl of soup with fresh bread"'
    )
    return result.metrics


def predict_texts(archive: Path, texts: list[str]) -> list[tuple[str, tuple[str, float]]]:
    """Each text's top label and probability from the exported ``model.tar.gz``."""
    with open_model(str(archive)) as model:
        best = top_k(model.predict(texts), model.label_map.class_names, 1)
    return [(text, ranked[0]) for text, ranked in zip(texts, best)]


def cli_command(argv0: str | None = None) -> str:
    """The command line that runs tf-finetune from the user's shell, as printed.

    Args:
        argv0: how this process was started; ``sys.argv[0]`` when None.

    Returns:
        ``tf-finetune`` when the ``tf-finetune`` script started this process and ``PATH`` finds
        that same script; the script's absolute path when ``PATH`` does not (``./quickstart.sh
        demo`` runs ``.venv/bin/tf-finetune`` from the project folder); else, for ``python -m
        tf_finetune`` or the Python API, this interpreter's path with ``-m tf_finetune``.
    """
    script = Path(sys.argv[0] if argv0 is None else argv0)
    if script.name == "tf-finetune" and script.is_file():
        on_path = shutil.which(script.name)
        if on_path and Path(on_path).resolve() == script.resolve():
            return script.name
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m tf_finetune"
