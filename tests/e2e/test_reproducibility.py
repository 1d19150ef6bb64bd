"""An explicit random_seed makes a CPU run repeatable: same split, same order, same weights, with
or without checkpoints, and when stopped and resumed."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

import tiny_modules
from tf_finetune.errors import TrainingInterrupted
from tf_finetune.job_options import JobConfig
from tf_finetune.training import stopping
from tf_finetune.training.job import run

HP = {
    "epochs": 2,
    "batch_size": 2,
    "learning_rate": 0.05,
    "validation_split_ratio": 0.25,
    "dropout_rate": 0.3,
    "train_only_top_layer": False,
}


def trained(data, module, cache_dir, seed: int, caplog, checkpoint_dir=None) -> tuple[dict, str]:
    caplog.clear()
    result = run(
        JobConfig(
            data=str(data),
            output=None,
            handle=str(module),
            image_size=16,
            hyperparameters=dict(HP, random_seed=seed),
            cache_dir=str(cache_dir),
            feature_cache=False,
            checkpoint_dir=checkpoint_dir,
        )
    )
    digest = re.search(r"weights_digest=(\w+)", caplog.text).group(1)
    return result.metrics["history"], digest


def test_same_seed_same_run_other_seed_other_run(image_module, cache_dir, tmp_path, caplog):
    caplog.set_level("INFO")
    # 12 noisy images per class: the split, the order and dropout all show in the weights
    data = tiny_modules.write_image_folder(tmp_path / "images", per_class=12)
    first, digest = trained(data, image_module, cache_dir, 11, caplog)
    again, digest_again = trained(data, image_module, cache_dir, 11, caplog)
    other, digest_other = trained(data, image_module, cache_dir, 12, caplog)
    # Checkpointing must not change training (its restore used to build the optimizer early,
    # which changed how often the train function was traced and so the dropout seeds).
    checkpointed, digest_checkpointed = trained(
        data, image_module, cache_dir, 11, caplog, checkpoint_dir=str(tmp_path / "checkpoints")
    )

    assert again == first and digest_again == digest  # exactly, not approximately
    assert checkpointed == first and digest_checkpointed == digest
    assert digest_other != digest and other["loss"] != first["loss"]


@pytest.mark.parametrize("task", ["image", "text"])
def test_the_training_stream_from_step_n_is_the_whole_streams_from_step_n(tmp_path, task):
    from tf_finetune.data import Examples
    from tf_finetune.data.pipeline import Decoding, training_batches

    # 15 examples in batches of 4: passes end inside batches 3, 7 and 11
    if task == "image":
        root = tiny_modules.write_image_folder(tmp_path / "images", per_class=8)
        inputs = tuple(sorted(str(p) for p in root.rglob("*.jpg")))[:15]
    else:
        inputs = tuple(f"text {i}" for i in range(15))
    examples = Examples(inputs, tuple(i % 3 for i in range(15)))

    def stream(first_step: int, steps: int, cache: str) -> list[tuple[np.ndarray, np.ndarray]]:
        decoded = str(tmp_path / cache) if task == "image" else None
        batches = training_batches(
            examples, task, 3, 4, shuffle_seed=9, decoding=Decoding(8), cache_file=decoded, first_step=first_step
        )
        return [(x.numpy(), y.numpy()) for x, y in batches.take(steps)]

    whole = stream(0, 12, "whole")
    for first in (3, 5, 8):
        resumed = stream(first, 12 - first, f"from-{first}")
        assert all(np.array_equal(a, b) for batch, same in zip(resumed, whole[first:]) for a, b in zip(batch, same))
    labels = np.concatenate([y for _, y in whole])
    assert not np.array_equal(labels[:15], labels[15:30])  # each pass is another order


class _StopWhenLogged(logging.Handler):
    """Requests a stop, as SIGTERM does, the moment a log line matches ``pattern``."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def emit(self, record):
        if self.pattern.search(record.getMessage()):
            stopping.request_stop()


@pytest.mark.parametrize(
    "head_only,batch_size",
    [
        (False, 2),  # 5 steps an epoch: stopped, and resumed, inside epoch 1
        (True, 16),  # 1 step an epoch: the stop waits for the epoch's validation and save
    ],
    ids=["full fine-tune, inside an epoch", "head-only on cached features, at an epoch's end"],
)
def test_a_run_stopped_and_resumed_is_the_run_never_stopped(
    image_module, cache_dir, tmp_path, caplog, head_only, batch_size
):
    caplog.set_level("INFO")
    data = tiny_modules.write_image_folder(tmp_path / "images", per_class=12)  # 18 to train on
    hp = dict(HP, epochs=3, batch_size=batch_size, train_only_top_layer=head_only, random_seed=5, regularizers_l2=0.001)
    checkpoints = tmp_path / "checkpoints"

    def train(checkpoint_dir=None):
        caplog.clear()
        result = run(
            JobConfig(
                data=str(data),
                output=None,
                handle=str(image_module),
                image_size=16,
                hyperparameters=hp,
                cache_dir=str(cache_dir),
                feature_cache=head_only,
                checkpoint_dir=checkpoint_dir,
                checkpoint_steps=2 if checkpoint_dir else 0,
            )
        )
        return result.metrics["history"], re.search(r"weights_digest=(\w+)", caplog.text).group(1)

    history, digest = train()
    # The stop is asked for before training starts: it comes at the end of the first step.
    stopper = _StopWhenLogged(r"^checkpoints: .* \(new job\)")
    logging.getLogger("tf_finetune").addHandler(stopper)
    try:
        with pytest.raises(TrainingInterrupted, match="at epoch 1, step 1;"):
            train(str(checkpoints))
    finally:
        logging.getLogger("tf_finetune").removeHandler(stopper)
    resumed_history, resumed_digest = train(str(checkpoints))

    assert "(saved at epoch 1, step 1)" in caplog.text
    assert resumed_digest == digest  # the same weights, exactly
    assert resumed_history == history  # every epoch's metrics, the interrupted one too
