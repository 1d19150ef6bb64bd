"""An explicit random_seed makes a CPU run repeatable: same split, same order, same weights."""
from __future__ import annotations

import re

import tiny_modules
from tf_finetune.job import JobConfig, run

HP = {"epochs": 2, "batch_size": 2, "learning_rate": 0.05, "validation_split_ratio": 0.25,
      "dropout_rate": 0.3, "train_only_top_layer": False}


def trained(data, module, cache_dir, seed: int, caplog, checkpoint_dir=None) -> tuple[dict, str]:
    caplog.clear()
    result = run(JobConfig(data=str(data), output=None, handle=str(module), image_size=16,
                           hyperparameters=dict(HP, random_seed=seed), cache_dir=str(cache_dir),
                           feature_cache=False, checkpoint_dir=checkpoint_dir))
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
    checkpointed, digest_checkpointed = trained(data, image_module, cache_dir, 11, caplog,
                                                checkpoint_dir=str(tmp_path / "checkpoints"))

    assert again == first and digest_again == digest  # exactly, not approximately
    assert checkpointed == first and digest_checkpointed == digest
    assert digest_other != digest and other["loss"] != first["loss"]
