"""Facts copied from the SageMaker docs for the two JumpStart TensorFlow algorithms, to check that a
job moves between JumpStart and this tool unchanged.

Source: the SageMaker Developer Guide (github.com/awsdocs/amazon-sagemaker-developer-guide,
``doc_source/``): ``IC-TF-Hyperparameter.md``, ``text-classification-tensorflow-Hyperparameter.md``
(names and defaults), ``IC-TF-tuning.md``, ``text-classification-tensorflow-tuning.md`` (tunable
ranges), ``IC-TF-Models.md`` and ``text-classification-tensorflow-Models.md`` (model ids).
"""

from __future__ import annotations

# Every hyperparameter on the two pages, with the default the page gives (as SageMaker passes it:
# a string). The text page's epochs default (10) differs from the image page's (3).
IMAGE_HYPERPARAMETERS = {
    "augmentation": "False",
    "augmentation_random_flip": "horizontal_and_vertical",
    "augmentation_random_rotation": "0.2",
    "augmentation_random_zoom": "0.1",
    "batch_size": "32",
    "beta_1": "0.9",
    "beta_2": "0.999",
    "dropout_rate": "0.2",
    "early_stopping": "False",
    "early_stopping_min_delta": "0.0",
    "early_stopping_patience": "5",
    "epochs": "3",
    "epsilon": "1e-7",
    "image_resize_interpolation": "bilinear",
    "initial_accumulator_value": "0.0001",
    "label_smoothing": "0.1",
    "learning_rate": "0.001",
    "momentum": "0.9",
    "optimizer": "adam",
    "regularizers_l2": ".0001",
    "reinitialize_top_layer": "Auto",
    "rho": "0.95",
    "train_only_on_top_layer": "False",
}
TEXT_HYPERPARAMETERS = {
    "batch_size": "32",
    "beta_1": "0.9",
    "beta_2": "0.999",
    "dropout_rate": "0.2",
    "early_stopping": "False",
    "early_stopping_min_delta": "0.0",
    "early_stopping_patience": "5",
    "epochs": "10",
    "epsilon": "1e-7",
    "initial_accumulator_value": "0.0001",
    "learning_rate": "0.001",
    "momentum": "0.9",
    "optimizer": "adam",
    "regularizers_l2": "0.0001",
    "reinitialize_top_layer": "Auto",
    "rho": "0.95",
    "train_only_on_top_layer": "False",
    "validation_split_ratio": "0.2",
    "warmup_steps_fraction": "0.1",
}

# The tuning pages' recommended ranges: name -> (min, max) or the categorical values.
IMAGE_TUNING_RANGES: dict[str, tuple] = {
    "batch_size": (8, 512),
    "beta_1": (1e-6, 0.999),
    "beta_2": (1e-6, 0.999),
    "eps": (1e-8, 1.0),
    "learning_rate": (1e-6, 0.5),
    "momentum": (0.0, 0.999),
    "optimizer": ("sgd", "adam", "rmsprop", "nesterov", "adagrad", "adadelta"),
    "regularizers_l2": (0.0, 0.999),
    "train_only_on_top_layer": ("True", "False"),
}
TEXT_TUNING_RANGES: dict[str, tuple] = {
    **IMAGE_TUNING_RANGES,
    "batch_size": (4, 128),
    "optimizer": ("adamw", "adam", "sgd", "rmsprop", "nesterov", "adagrad", "adadelta"),
}
