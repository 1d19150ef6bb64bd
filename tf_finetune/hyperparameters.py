"""The one hyperparameter schema, shared by every door (CLI, SageMaker entry point, library).

Names and defaults follow SageMaker JumpStart's TensorFlow image and text classification
algorithms. Values may arrive as Python values or as strings (``"True"``, ``"0.001"``), as
SageMaker passes them; ``snake_case`` and ``kebab-case`` spellings are both accepted.

Precedence when building the effective set: schema defaults < task defaults < the model's
registry overrides < values given by the user.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from tf_finetune.errors import HyperparameterError

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def parse_bool(value: Any) -> bool | None:
    """``True``/``False`` from a bool or its spellings (``true``, ``1``, ``yes``, ``on``, …); None
    when ``value`` is none of them."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


# The value converters of every door (hyperparameters, job options, flags): None when the value
# is not of the kind; each door words its own message around them.


def parse_int(value: Any) -> int | None:
    """A whole number from an int, a whole float or their text (``"32"``, ``"32.0"``, as SageMaker
    may pass an integer); None otherwise (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None


def parse_float(value: Any) -> float | None:
    """A finite number from a number or its text; None otherwise (booleans, nan and inf included)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_weights(value: Any) -> str | tuple[float, ...] | None:
    """``none``, ``auto`` or positive finite weights from a list or comma-separated text; None otherwise."""
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        text = "none" if value is None else str(value).strip().strip("[]")
        if text.lower() in ("none", "auto"):
            return text.lower()
        parts = text.split(",")
    weights = tuple(parse_float(part) for part in parts)
    if not weights or any(w is None or w <= 0 for w in weights):
        return None
    return tuple(float(w) for w in weights if w is not None)


TaskScope = Literal["image", "text", "both"]
Level = Literal["basic", "advanced"]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, default, allowed values, and what a form needs to show it.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``choice`` or ``weights`` (``none``,
    ``auto`` or a tuple of positive floats). Numeric ranges are ``[low, high]``; ``low_open``
    and ``high_open`` make a bound exclusive. ``task`` says which models take it (``image``,
    ``text`` or ``both``), ``level`` whether a form shows it first (``basic``) or on demand
    (``advanced``), and ``only_when`` the settings of other hyperparameters it applies under
    (``(("optimizer", ("adam", "adamw")),)``: beta_1 means nothing to sgd).
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    task: TaskScope = "both"
    level: Level = "advanced"
    only_when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def applies(self, values: Mapping[str, Any], task: str | None = None) -> bool:
        """Whether this hyperparameter means something for a job with these settings.

        Args:
            values: the other hyperparameters (canonical names; missing ones count as their defaults).
            task: ``image`` or ``text``; None for either.

        Returns:
            False for an image-only hyperparameter of a text job, or one whose ``only_when``
            conditions the values do not meet.
        """
        if task is not None and self.task not in ("both", task):
            return False
        return all(values.get(name, _BY_NAME[name].default) in allowed for name, allowed in self.only_when)

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.kind == "weights":
            return "none, auto, or one positive weight per class, comma-separated (e.g. 1,4)"
        if self.kind == "bool":
            return "True or False"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.high is None:
            high = "inf"
        else:
            high = f"{self.high:d}" if self.kind == "int" else f"{self.high:g}"
        opening = "(" if self.low_open else "["
        closing = ")" if self.high_open or self.high is None else "]"
        kind = "an integer" if self.kind == "int" else "a number"
        return f"{kind} in {opening}{self.low:g}, {high}{closing}"

    def parse(self, value: Any) -> Any:
        """Convert ``value`` (a Python value or a string) and check its range.

        Raises:
            HyperparameterError: naming the hyperparameter, the value and what is allowed.
        """
        parsed: Any = self._parse_choice(value) if self.kind == "choice" else _CONVERTERS[self.kind](value)
        if parsed is None:
            raise HyperparameterError(f"hyperparameter {self.name}={value!r} is invalid: expected {self.allowed()}")
        if self.kind in ("int", "float"):
            assert self.low is not None  # every number has a lower bound (test_hyperparameters checks it)
            too_high = self.high is not None and (parsed >= self.high if self.high_open else parsed > self.high)
            too_low = parsed <= self.low if self.low_open else parsed < self.low
            if too_low or too_high:
                raise HyperparameterError(
                    f"hyperparameter {self.name}={value!r} is out of range: expected {self.allowed()}"
                )
        return parsed

    def _parse_choice(self, value: Any) -> str | None:
        text = "None" if value is None else str(value).strip()
        for choice in self.choices:
            if text.lower() == choice.lower():
                return choice
        return None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "bool": parse_bool,
    "int": parse_int,
    "float": parse_float,
    "weights": parse_weights,
}
_OPTIMIZERS = ("adam", "adamw", "sgd", "nesterov", "rmsprop", "adagrad", "adadelta")
# TensorFlow Lite export: float32, float16 weights, int8 weights (dynamic range), int8 throughout.
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


def _optimizers(*names: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    return (("optimizer", names),)


_WITH_EARLY_STOPPING = (("early_stopping", (True,)),)
_WITH_AUGMENTATION = (("augmentation", (True,)),)


def _hp(kind: str, default: Any, help: str, **spec: Any) -> Any:
    """A :class:`Hyperparameters` field: its default, and the rest of its :class:`Param` as metadata."""
    return field(default=default, metadata={"kind": kind, "help": help, **spec})


@dataclass(frozen=True)
class Hyperparameters(Mapping[str, Any]):
    """The complete, validated, immutable set of hyperparameters of a job (``hp.epochs``, or
    ``hp["epochs"]`` as a mapping), made by :func:`resolve`. Each field declares its
    :class:`Param` (``SCHEMA``): type, default, help, range, allowed values, task, level and
    the settings it applies under."""

    epochs: int = _hp("int", 3, "Number of passes over the training data.", low=1, level="basic")
    batch_size: int = _hp(
        "int", 32, "Batch size per replica; the global batch is batch_size x replicas.", low=1, level="basic"
    )
    learning_rate: float = _hp(
        "float", 0.001, "Optimizer learning rate.", low=0.0, high=1.0, low_open=True, level="basic"
    )
    optimizer: str = _hp("choice", "adam", "Optimizer.", choices=_OPTIMIZERS, level="basic")
    beta_1: float = _hp(
        "float", 0.9, "beta_1 of adam/adamw.", low=0.0, high=1.0, only_when=_optimizers("adam", "adamw")
    )
    beta_2: float = _hp(
        "float", 0.999, "beta_2 of adam/adamw.", low=0.0, high=1.0, only_when=_optimizers("adam", "adamw")
    )
    epsilon: float = _hp(
        "float",
        1e-7,
        "epsilon of adam, adamw, rmsprop, adadelta, adagrad.",
        low=0.0,
        high=1.0,
        only_when=_optimizers("adam", "adamw", "rmsprop", "adadelta", "adagrad"),
        aliases=("eps",),  # the name both JumpStart tuning pages give it
    )
    momentum: float = _hp(
        "float",
        0.9,
        "Momentum of sgd, nesterov and rmsprop.",
        low=0.0,
        high=1.0,
        only_when=_optimizers("sgd", "nesterov", "rmsprop"),
    )
    rho: float = _hp(
        "float",
        0.95,
        "Discounting factor of rmsprop and adadelta.",
        low=0.0,
        high=1.0,
        only_when=_optimizers("rmsprop", "adadelta"),
    )
    initial_accumulator_value: float = _hp(
        "float", 0.0001, "Initial accumulator of adagrad.", low=0.0, high=1.0, only_when=_optimizers("adagrad")
    )
    dropout_rate: float = _hp(
        "float", 0.2, "Dropout before the classification layer.", low=0.0, high=1.0, high_open=True, level="basic"
    )
    regularizers_l2: float = _hp(
        "float", 0.0001, "L2 factor on the classification layer.", low=0.0, high=1.0, level="basic"
    )
    label_smoothing: float = _hp("float", 0.1, "Label smoothing of the cross-entropy loss.", low=0.0, high=1.0)
    train_only_top_layer: bool = _hp(
        "bool",
        False,
        "Train only the new classification layer (the backbone stays frozen).",
        aliases=("train_only_on_top_layer",),
        level="basic",
    )
    reinitialize_top_layer: str = _hp(
        "choice",
        "Auto",
        "Continuing from a previous model (incremental training): Auto and False keep its "
        "trained classification layer, True starts it from random weights.",
        choices=("Auto", "True", "False"),
    )
    choose_hyperparameters: bool = _hp(
        "bool",
        True,
        "Head-only training on cached features: choose regularizers_l2 and epochs when you "
        "leave them unset, by validation loss (a few candidates, each with early stopping; "
        "see metrics.json 'choices'). False: use the defaults as they are.",
    )
    class_weights: str | tuple[float, ...] = _hp(
        "weights",
        "none",
        "Weight of each class in the training loss: none; auto (inversely proportional to "
        "the class's share of the training data, mean 1); or one weight per class, in "
        "class-index order (e.g. 1,4).",
        level="basic",
    )
    binary_mode: bool = _hp(
        "bool",
        False,
        "Two classes only: the head has one sigmoid output (binary cross-entropy, class 1 from "
        "0.5); predictions still give one probability per class.",
    )
    eval_metric: str = _hp(
        "choice",
        "loss",
        "The validation metric that early stopping monitors and the best epoch is chosen by: "
        "loss (lowest), or accuracy, precision, recall, auc, prc (highest; with two classes "
        "those of class 1, else the mean over classes).",
        choices=("loss", "accuracy", "precision", "recall", "auc", "prc"),
    )
    early_stopping: bool = _hp(
        "bool", False, "Stop when the eval_metric (val_loss by default) stops improving.", level="basic"
    )
    early_stopping_patience: int = _hp(
        "int", 5, "Epochs without improvement before stopping.", low=1, only_when=_WITH_EARLY_STOPPING
    )
    early_stopping_min_delta: float = _hp(
        "float", 0.0, "Smallest val_loss change that counts.", low=0.0, high=1.0, only_when=_WITH_EARLY_STOPPING
    )
    validation_split_ratio: float = _hp(
        "float",
        0.2,
        "Share of the training data held out for validation when no validation data is "
        "given (stratified, seeded); 0 means no validation.",
        low=0.0,
        high=1.0,
        high_open=True,
        level="basic",
    )
    warmup_steps_fraction: float = _hp(
        "float",
        0.1,
        "adamw only: share of all steps over which the learning rate rises from 0, then decays linearly to 0.",
        low=0.0,
        high=1.0,
        only_when=_optimizers("adamw"),
    )
    augmentation: bool = _hp(
        "bool", False, "Images: random flip, rotation and zoom in training.", task="image", level="basic"
    )
    augmentation_random_flip: str = _hp(
        "choice",
        "horizontal_and_vertical",
        "Flip mode.",
        choices=("horizontal_and_vertical", "horizontal", "vertical", "None"),
        task="image",
        only_when=_WITH_AUGMENTATION,
    )
    augmentation_random_rotation: float = _hp(
        "float", 0.2, "Rotation, a fraction of 2 pi.", low=-1.0, high=1.0, task="image", only_when=_WITH_AUGMENTATION
    )
    augmentation_random_zoom: float = _hp(
        "float", 0.1, "Zoom factor.", low=-1.0, high=1.0, task="image", only_when=_WITH_AUGMENTATION
    )
    image_resize_interpolation: str = _hp(
        "choice", "bilinear", "Resize method for images.", choices=_INTERPOLATIONS, task="image"
    )
    mixed_precision: bool = _hp(
        "bool",
        False,
        "GPUs: run the backbone's float32 graph in float16 where it is safe (automatic mixed "
        "precision) with loss scaling. Ignored on CPUs, where float16 is slower.",
    )
    jit_compile: bool = _hp("bool", False, "Compile the training step with XLA.")
    tflite: str = _hp(
        "choice",
        "none",
        "Image models: also export model.tflite, labels.txt and tflite_report.json after "
        "training, with this quantization (int8 calibrates on training images), checked "
        "against the SavedModel on the validation data. Text models: none only.",
        choices=QUANTIZATIONS,
        task="image",
    )
    random_seed: int = _hp(
        "int",
        123,
        "Seed of the split, shuffling and initialisation; setting it "
        "explicitly also makes the input order deterministic.",
        low=0,
        high=2**32 - 1,
    )

    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_NAMES:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELD_NAMES)

    def __len__(self) -> int:
        return len(_FIELD_NAMES)


SCHEMA: tuple[Param, ...] = tuple(Param(name=f.name, default=f.default, **f.metadata) for f in fields(Hyperparameters))
_FIELD_NAMES = tuple(p.name for p in SCHEMA)

_BY_NAME: dict[str, Param] = {}
for _param in SCHEMA:
    for _name in (_param.name, *_param.aliases):
        _BY_NAME[_name] = _param


def canonical_name(name: str) -> str:
    """Map a spelling (``batch-size``, ``batch_size``, an alias) to the schema name.

    Raises:
        HyperparameterError: for an unknown name, listing the known ones.
    """
    key = name.strip().lstrip("-").replace("-", "_")
    if key not in _BY_NAME:
        known = ", ".join(p.name for p in SCHEMA)
        close = difflib.get_close_matches(key, _BY_NAME, n=1)
        hint = f" (did you mean {_BY_NAME[close[0]].name}?)" if close else ""
        raise HyperparameterError(f"unknown hyperparameter {name!r}{hint}; known: {known}")
    return _BY_NAME[key].name


def normalize(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Canonical names and parsed values for a partial set, checking each one.

    Args:
        values: name -> value; names in any accepted spelling, values as strings or Python.

    Returns:
        A dict keyed by schema name.

    Raises:
        HyperparameterError: an unknown name, a bad value, or one name given twice.
    """
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name, value in (values or {}).items():
        key = canonical_name(name)
        if key in out:
            raise HyperparameterError(f"hyperparameter {key} is given twice (as {spelled[key]!r} and {name!r})")
        out[key] = _BY_NAME[key].parse(value)
        spelled[key] = name
    return out


def resolve(*layers: Mapping[str, Any] | None) -> Hyperparameters:
    """Merge partial sets over the schema defaults, later layers winning.

    Args:
        *layers: partial sets, lowest precedence first (e.g. task defaults, registry
            overrides, user values).

    Returns:
        The complete, validated :class:`Hyperparameters`.
    """
    merged = {p.name: p.default for p in SCHEMA}
    for layer in layers:
        merged.update(normalize(layer))
    return Hyperparameters(**merged)


def class_weight_map(
    setting: str | tuple[float, ...], labels: Collection[int], num_classes: int
) -> dict[int, float] | None:
    """The ``class_weights`` setting as Keras's ``class_weight`` mapping.

    Args:
        setting: ``none``, ``auto`` or one weight per class.
        labels: the class index of every training example.
        num_classes: how many classes there are.

    Returns:
        class index -> weight, or None for ``none``. ``auto`` weighs each class by
        ``n / (num_classes * n_class)``, so the weights average 1 over the examples.

    Raises:
        HyperparameterError: a list whose length is not the number of classes.
    """
    if setting == "none":
        return None
    if setting == "auto":
        counts = [0] * num_classes
        for label in labels:
            counts[label] += 1
        return {c: len(labels) / (num_classes * max(n, 1)) for c, n in enumerate(counts)}
    if len(setting) != num_classes:
        raise HyperparameterError(
            f"class_weights has {len(setting)} weights but the data has {num_classes} classes: give "
            "one weight per class, in class-index order, or class_weights=auto"
        )
    return dict(enumerate(float(w) for w in setting))
