"""Incremental training: a previous model.tar.gz as the starting point."""

from __future__ import annotations

import pytest

import tiny_modules
from tf_finetune.errors import BackboneError
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import run

HEAD_ONLY = {
    "train_only_top_layer": True,
    "batch_size": 4,
    "learning_rate": 0.01,
    "label_smoothing": 0.0,
    "validation_split_ratio": 0.25,
}


@pytest.fixture(scope="module")
def previous_model(text_module, text_data, cache_dir, tmp_path_factory):
    """A text model trained to high accuracy, and its first-epoch validation loss from scratch."""
    out = tmp_path_factory.mktemp("previous")
    result = run(
        JobConfig(
            data=str(text_data),
            output=str(out),
            handle=str(text_module),
            hyperparameters=dict(HEAD_ONLY, epochs=12, learning_rate=0.05),
            cache_dir=str(cache_dir),
        )
    )
    scratch = run(
        JobConfig(
            data=str(text_data),
            output=None,
            handle=str(text_module),
            hyperparameters=dict(HEAD_ONLY, epochs=1),
            cache_dir=str(cache_dir),
        )
    )
    return result, scratch.metrics["history"]["val_loss"][0]


def test_continuing_starts_from_the_trained_model_not_from_scratch(previous_model, text_data, cache_dir, tmp_path):
    previous, scratch_first_loss = previous_model
    trained_loss = previous.metrics["final"]["val_loss"]
    continued = run(
        JobConfig(
            data=str(text_data),
            output=str(tmp_path / "next"),
            handle=str(previous.archive),
            hyperparameters=dict(HEAD_ONLY, epochs=1),
            cache_dir=str(cache_dir),
        )
    )
    first_loss = continued.metrics["history"]["val_loss"][0]
    assert first_loss < scratch_first_loss
    assert first_loss == pytest.approx(trained_loss, abs=0.05)  # where the previous run ended
    assert continued.metrics["final"]["val_accuracy"] >= previous.metrics["final"]["val_accuracy"] - 0.05

    reset = run(
        JobConfig(
            data=str(text_data),
            output=None,
            handle=str(previous.archive),
            hyperparameters=dict(HEAD_ONLY, epochs=1, reinitialize_top_layer=True),
            cache_dir=str(cache_dir),
        )
    )
    assert reset.metrics["history"]["val_loss"][0] > first_loss + 0.1


def test_different_classes_are_one_error_listing_them(previous_model, cache_dir, tmp_path):
    previous, _ = previous_model
    other = tiny_modules.write_text_csv(tmp_path / "data.csv", labels=(1, 3))
    with pytest.raises(
        BackboneError,
        match=r"training .*previous.*model.tar.gz: its classes differ.*"
        r"Only in the model: \['2'\]; only in the data: \['3'\]",
    ):
        run(
            JobConfig(
                data=str(other),
                output=str(tmp_path / "out"),
                handle=str(previous.archive),
                hyperparameters={"epochs": 1},
                cache_dir=str(cache_dir),
            )
        )
    assert not (tmp_path / "out").exists()


def test_a_text_model_cannot_continue_on_images(previous_model, image_data, cache_dir):
    previous, _ = previous_model
    with pytest.raises(BackboneError, match="text model and the data is image data"):
        run(
            JobConfig(
                data=str(image_data),
                output=None,
                handle=str(previous.archive),
                hyperparameters={"epochs": 1},
                cache_dir=str(cache_dir),
            )
        )
