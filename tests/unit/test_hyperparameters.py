"""The hyperparameter schema: JumpStart names and defaults, parsing SageMaker's strings,
errors a user can act on, and the precedence of resolve()."""

from __future__ import annotations

import json
import math
import pickle

import pytest

import jumpstart_docs
from tf_finetune.errors import HyperparameterError
from tf_finetune.hyperparameters import SCHEMA, Hyperparameters, canonical_name, normalize, resolve

SCHEMA_NAMES = [p.name for p in SCHEMA]
BY_NAME = {p.name: p for p in SCHEMA}

JUMPSTART_NAMES = [
    "epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "beta_1",
    "beta_2",
    "epsilon",
    "momentum",
    "rho",
    "initial_accumulator_value",
    "dropout_rate",
    "regularizers_l2",
    "label_smoothing",
    "train_only_top_layer",
    "reinitialize_top_layer",
    "early_stopping",
    "early_stopping_patience",
    "early_stopping_min_delta",
    "validation_split_ratio",
    "warmup_steps_fraction",
    "augmentation",
    "augmentation_random_flip",
    "augmentation_random_rotation",
    "augmentation_random_zoom",
    "image_resize_interpolation",
    "random_seed",
]

JUMPSTART_DEFAULTS = {
    "epochs": 3,
    "batch_size": 32,
    "learning_rate": 0.001,
    "optimizer": "adam",
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-7,
    "momentum": 0.9,
    "rho": 0.95,
    "dropout_rate": 0.2,
    "regularizers_l2": 0.0001,
    "label_smoothing": 0.1,
    "train_only_top_layer": False,
    "reinitialize_top_layer": "Auto",
    "early_stopping": False,
    "early_stopping_patience": 5,
    "early_stopping_min_delta": 0.0,
    "validation_split_ratio": 0.2,
    "warmup_steps_fraction": 0.1,
    "augmentation": False,
    "augmentation_random_flip": "horizontal_and_vertical",
    "augmentation_random_rotation": 0.2,
    "augmentation_random_zoom": 0.1,
    "image_resize_interpolation": "bilinear",
}


def _error(values) -> str:
    """The message of the HyperparameterError that normalize(values) raises."""
    with pytest.raises(HyperparameterError) as info:
        normalize(values)
    return str(info.value)


# ---- names and defaults ------------------------------------------------------------------------


@pytest.mark.parametrize("name", JUMPSTART_NAMES)
def test_every_jumpstart_name_is_in_the_schema(name):
    assert name in SCHEMA_NAMES
    assert canonical_name(name) == name


def test_schema_names_are_unique():
    assert len(SCHEMA_NAMES) == len(set(SCHEMA_NAMES))


@pytest.mark.parametrize("name,default", sorted(JUMPSTART_DEFAULTS.items()))
def test_jumpstart_defaults(name, default):
    param = BY_NAME[name]
    assert param.default == default
    assert type(param.default) is type(default)
    resolved = resolve()[name]
    assert resolved == default and type(resolved) is type(default)


@pytest.mark.parametrize("param", SCHEMA, ids=SCHEMA_NAMES)
def test_every_default_is_itself_a_valid_value(param):
    assert param.parse(param.default) == param.default
    assert param.parse(str(param.default)) == param.default


@pytest.mark.parametrize("param", [p for p in SCHEMA if p.kind == "choice"], ids=lambda p: p.name)
def test_choice_defaults_are_among_the_choices(param):
    assert param.default in param.choices


# ---- values as SageMaker passes them ------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("True", True),
        ("False", False),
        ("true", True),
        ("false", False),
        ("0", False),
        ("1", True),
        (" TRUE ", True),
        (True, True),
        (False, False),
    ],
)
def test_bool_strings(text, expected):
    assert normalize({"early_stopping": text}) == {"early_stopping": expected}
    assert normalize({"train_only_top_layer": text})["train_only_top_layer"] is expected


@pytest.mark.parametrize(
    "name,text,expected",
    [
        ("learning_rate", "0.001", 0.001),
        ("learning_rate", "1e-4", 1e-4),
        ("epsilon", "1e-07", 1e-7),
        ("beta_1", "0", 0.0),
        ("augmentation_random_rotation", "-0.5", -0.5),
        ("learning_rate", 1, 1.0),
    ],
)
def test_float_strings(name, text, expected):
    value = normalize({name: text})[name]
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize("text,expected", [("32", 32), ("32.0", 32), (" 16 ", 16), (32.0, 32), (8, 8)])
def test_int_strings_and_integral_floats(text, expected):
    value = normalize({"batch_size": text})["batch_size"]
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize("spelling", ["batch_size", "batch-size", "--batch-size", "--batch_size"])
def test_snake_and_kebab_case(spelling):
    assert canonical_name(spelling) == "batch_size"
    assert normalize({spelling: "16"}) == {"batch_size": 16}


@pytest.mark.parametrize("spelling", ["train_only_on_top_layer", "train-only-on-top-layer"])
def test_alias_train_only_on_top_layer(spelling):
    assert canonical_name(spelling) == "train_only_top_layer"
    assert normalize({spelling: "True"}) == {"train_only_top_layer": True}


@pytest.mark.parametrize(
    "name,given,expected",
    [
        ("optimizer", "ADAM", "adam"),
        ("optimizer", "AdamW", "adamw"),
        ("reinitialize_top_layer", "auto", "Auto"),
        ("reinitialize_top_layer", "true", "True"),
        ("reinitialize_top_layer", True, "True"),
        ("reinitialize_top_layer", False, "False"),
        ("augmentation_random_flip", "none", "None"),
        ("augmentation_random_flip", None, "None"),
        ("augmentation_random_flip", "HORIZONTAL", "horizontal"),
        ("image_resize_interpolation", "Bicubic", "bicubic"),
    ],
)
def test_choices_are_case_insensitive_and_canonical(name, given, expected):
    assert normalize({name: given}) == {name: expected}


def test_normalize_returns_schema_names_only_for_what_was_given():
    got = normalize({"batch-size": "8", "learning-rate": "0.01", "train_only_on_top_layer": "1"})
    assert got == {"batch_size": 8, "learning_rate": 0.01, "train_only_top_layer": True}
    assert normalize(None) == {}
    assert normalize({}) == {}


@pytest.mark.parametrize(
    "name,value",
    [
        ("epochs", 1),
        ("learning_rate", 1e-12),
        ("learning_rate", 1.0),
        ("dropout_rate", 0.0),
        ("dropout_rate", 0.999),
        ("validation_split_ratio", 0),
        ("augmentation_random_zoom", -1.0),
        ("random_seed", 0),
    ],
)
def test_boundaries_that_are_allowed(name, value):
    assert normalize({name: value}) == {name: value}


# ---- errors ------------------------------------------------------------------------------------


def test_unknown_name_lists_the_known_ones():
    message = _error({"epoch": 3})
    assert "'epoch'" in message
    assert "unknown hyperparameter" in message
    for name in SCHEMA_NAMES:
        assert name in message


def test_canonical_name_rejects_unknown_names():
    with pytest.raises(HyperparameterError, match="unknown hyperparameter 'lr'"):
        canonical_name("lr")


@pytest.mark.parametrize(
    "name,value,allowed",
    [
        ("epochs", "abc", "an integer in [1, inf)"),
        ("epochs", 3.5, "an integer in [1, inf)"),
        ("epochs", "3.5", "an integer in [1, inf)"),
        ("epochs", True, "an integer in [1, inf)"),
        ("batch_size", "", "an integer in [1, inf)"),
        ("batch_size", None, "an integer in [1, inf)"),
        ("early_stopping", "maybe", "True or False"),
        ("early_stopping", 2, "True or False"),
        ("augmentation", None, "True or False"),
        ("learning_rate", "nan", "a number in (0, 1]"),
        ("learning_rate", "inf", "a number in (0, 1]"),
        ("learning_rate", float("nan"), "a number in (0, 1]"),
        ("learning_rate", "-inf", "a number in (0, 1]"),
        ("learning_rate", "fast", "a number in (0, 1]"),
        ("learning_rate", True, "a number in (0, 1]"),
    ],
)
def test_wrong_type(name, value, allowed):
    message = _error({name: value})
    assert f"hyperparameter {name}=" in message
    assert repr(value) in message
    assert "invalid" in message
    assert allowed in message


@pytest.mark.parametrize(
    "name,value,allowed",
    [
        ("epochs", 0, "[1, inf)"),
        ("epochs", "0", "[1, inf)"),
        ("learning_rate", 2, "(0, 1]"),
        ("learning_rate", "-0.1", "(0, 1]"),
        ("dropout_rate", 1.0, "[0, 1)"),
        ("validation_split_ratio", 1.0, "[0, 1)"),
        ("validation_split_ratio", "1", "[0, 1)"),
        ("batch_size", -32, "[1, inf)"),
        ("batch_size", "-1", "[1, inf)"),
        ("early_stopping_patience", 0, "[1, inf)"),
        ("augmentation_random_rotation", 1.5, "[-1, 1]"),
        ("random_seed", -1, "[0, 4294967295]"),
        ("random_seed", 2**32, "[0, 4294967295]"),  # NumPy's seed limit
    ],
)
def test_out_of_range(name, value, allowed):
    message = _error({name: value})
    assert f"hyperparameter {name}={value!r}" in message
    assert "out of range" in message
    assert allowed in message


def test_unknown_choice_lists_the_allowed_ones():
    message = _error({"optimizer": "lion"})
    assert "optimizer='lion'" in message
    for choice in ("adam", "adamw", "sgd", "nesterov", "rmsprop", "adagrad", "adadelta"):
        assert choice in message


def test_unknown_flip_mode_lists_the_allowed_ones():
    message = _error({"augmentation_random_flip": "diagonal"})
    assert "'diagonal'" in message
    for choice in BY_NAME["augmentation_random_flip"].choices:
        assert choice in message


@pytest.mark.parametrize(
    "first,second,canonical",
    [
        ("batch_size", "batch-size", "batch_size"),
        ("train_only_top_layer", "train_only_on_top_layer", "train_only_top_layer"),
        ("--learning-rate", "learning_rate", "learning_rate"),
    ],
)
def test_same_name_twice_in_two_spellings(first, second, canonical):
    message = _error({first: "1", second: "1"})
    assert canonical in message
    assert "twice" in message
    assert repr(first) in message and repr(second) in message


# ---- resolve -----------------------------------------------------------------------------------


def test_resolve_without_layers_gives_the_defaults():
    hp = resolve()
    assert dict(hp) == {p.name: p.default for p in SCHEMA}


def test_resolve_precedence_defaults_then_layers_in_order():
    task = {"epochs": 10, "batch_size": 64}
    registry = {"batch-size": "16", "learning_rate": "3e-5"}
    user = {"epochs": "2"}
    hp = resolve(task, registry, user)
    assert hp.epochs == 2  # user beats task default
    assert hp.batch_size == 16  # registry override beats task default
    assert hp.learning_rate == 3e-5  # registry override beats schema default
    assert hp.optimizer == "adam"  # untouched: schema default
    # Order matters: the last layer wins.
    assert resolve(user, task).epochs == 10
    assert resolve(task, user).epochs == 2


def test_resolve_skips_empty_layers():
    assert resolve(None, {}, {"epochs": 4}, None).epochs == 4


def test_resolve_is_complete():
    hp = resolve({"epochs": 1})
    assert set(hp) == set(SCHEMA_NAMES)
    assert len(hp) == len(SCHEMA)
    for name in JUMPSTART_NAMES:
        assert name in hp


def test_resolve_validates_every_layer():
    with pytest.raises(HyperparameterError, match="epochs"):
        resolve({"epochs": 3}, {"epochs": 0})
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        resolve({"epochz": 3})


def test_resolve_accepts_hyperparameters_as_a_layer():
    hp = resolve({"epochs": 7, "optimizer": "sgd"})
    again = resolve(hp, {"train_only_top_layer": True})
    assert again.epochs == 7 and again.optimizer == "sgd" and again.train_only_top_layer is True
    assert hp.train_only_top_layer is False


def test_attribute_and_item_access():
    hp = resolve({"batch_size": "8"})
    assert isinstance(hp, Hyperparameters)
    assert hp.batch_size == hp["batch_size"] == 8
    for name in SCHEMA_NAMES:
        assert getattr(hp, name) == hp[name]


def test_unknown_attribute_raises_attribute_error():
    hp = resolve()
    with pytest.raises(AttributeError, match="no_such_thing"):
        hp.no_such_thing  # noqa: B018
    assert not hasattr(hp, "epoch")
    assert getattr(hp, "epoch", "fallback") == "fallback"
    with pytest.raises(KeyError):
        hp["epoch"]  # noqa: B018


def test_hyperparameters_cannot_be_changed():
    hp = resolve()
    with pytest.raises(AttributeError):
        hp.epochs = 50
    with pytest.raises(AttributeError):
        del hp.epochs
    with pytest.raises(TypeError):
        hp["epochs"] = 50  # type: ignore[index]
    assert hp.epochs == hp["epochs"] == 3


def test_hyperparameters_do_not_share_state_with_their_input():
    values = {p.name: p.default for p in SCHEMA}
    hp = Hyperparameters(**values)
    values["epochs"] = 99
    assert hp.epochs == 3


def test_hyperparameters_serialise():
    hp = resolve({"epochs": 5, "augmentation_random_flip": "none"})
    assert json.loads(json.dumps(dict(hp))) == dict(hp)
    copy = pickle.loads(pickle.dumps(hp))
    assert copy == hp and copy.epochs == 5
    assert "epochs" in repr(hp)


# ---- descriptions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,text",
    [
        ("epochs", "an integer in [1, inf)"),
        ("learning_rate", "a number in (0, 1]"),
        ("dropout_rate", "a number in [0, 1)"),
        ("augmentation", "True or False"),
        ("reinitialize_top_layer", "one of Auto, True, False"),
    ],
)
def test_allowed_describes_the_range(name, text):
    assert BY_NAME[name].allowed() == text


def test_numeric_params_have_a_lower_bound():
    for param in SCHEMA:
        if param.kind in ("int", "float"):
            assert param.low is not None, param.name
            assert not math.isnan(param.low)


# ---- the declaration a form is generated from ---------------------------------------------------


def test_the_schema_is_the_dataclass_fields_with_types_that_match_their_kinds():
    import dataclasses
    import typing

    hints = typing.get_type_hints(Hyperparameters)
    assert [f.name for f in dataclasses.fields(Hyperparameters)] == [p.name for p in SCHEMA]
    python_type = {"int": int, "float": float, "bool": bool, "choice": str}
    for param in SCHEMA:
        if param.kind in python_type:
            assert hints[param.name] is python_type[param.kind], param.name
        assert isinstance(param.default, hints[param.name] if param.kind in python_type else (str, tuple))


def test_a_learning_rate_of_zero_is_refused_with_the_open_bound_shown():
    with pytest.raises(HyperparameterError, match=r"learning_rate=0 is out of range: expected a number in \(0, 1\]"):
        resolve({"learning_rate": 0})
    assert resolve({"learning_rate": 1}).learning_rate == 1


def test_only_when_conditions_name_real_hyperparameters_and_allowed_values():
    by_name = {p.name: p for p in SCHEMA}
    for param in SCHEMA:
        for name, allowed in param.only_when:
            other = by_name[name]
            assert all(other.parse(value) == value for value in allowed), (param.name, name)


@pytest.mark.parametrize(
    "name, settings, task, applies",
    [
        ("beta_1", {"optimizer": "adam"}, None, True),
        ("beta_1", {"optimizer": "sgd"}, None, False),
        ("beta_1", {}, None, True),  # the default optimizer is adam
        ("momentum", {}, None, False),
        ("warmup_steps_fraction", {"optimizer": "adamw"}, "text", True),
        ("early_stopping_patience", {"early_stopping": True}, None, True),
        ("early_stopping_patience", {}, None, False),
        ("augmentation_random_zoom", {"augmentation": True}, "image", True),
        ("augmentation_random_zoom", {"augmentation": True}, "text", False),
        ("tflite", {}, "text", False),
        ("epochs", {}, "text", True),
    ],
)
def test_applies_follows_the_task_and_the_other_settings(name, settings, task, applies):
    [param] = [p for p in SCHEMA if p.name == name]
    assert param.applies(settings, task) is applies


def test_every_hyperparameter_has_a_level_and_the_basic_ones_come_first_in_a_form():
    assert {p.level for p in SCHEMA} == {"basic", "advanced"}
    basic = [p.name for p in SCHEMA if p.level == "basic"]
    assert {"epochs", "batch_size", "learning_rate", "optimizer", "train_only_top_layer"} <= set(basic)


# ---- one family of value converters, for every door -------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("32", 32),
        ("32.0", 32),
        (" 7 ", 7),
        (32.0, 32),
        ("3.5", None),
        ("x", None),
        (True, None),
        ("nan", None),
        ("1e400", None),
    ],
)
def test_parse_int_takes_whole_numbers_in_any_spelling_sagemaker_uses(text, value):
    from tf_finetune.hyperparameters import parse_int

    assert parse_int(text) == value


def test_the_doors_convert_with_the_same_family():
    from tf_finetune import job_options
    from tf_finetune.cli import parser

    # "96.0" is how SageMaker may pass an integer: a job option takes it as a hyperparameter does.
    assert job_options.parse_options({"image_size": "96.0"})["image_size"] == 96 == resolve({"epochs": "96.0"}).epochs
    assert parser.build_parser().parse_args(["predict", "--model", "m", "--top-k", "2.0", "x"]).top_k == 2
    with pytest.raises(HyperparameterError, match=r"image_size='96.5': expected a whole number from 16 to 4096"):
        job_options.parse_options({"image_size": "96.5"})


@pytest.mark.parametrize(
    "documented", [jumpstart_docs.IMAGE_HYPERPARAMETERS, jumpstart_docs.TEXT_HYPERPARAMETERS], ids=["image", "text"]
)
def test_every_hyperparameter_on_the_jumpstart_pages_is_accepted_with_its_documented_default(documented):
    hp = resolve(documented)
    for name, value in documented.items():
        param = next(p for p in SCHEMA if p.name == canonical_name(name))
        assert hp[param.name] == param.parse(value), name


@pytest.mark.parametrize(
    "ranges", [jumpstart_docs.IMAGE_TUNING_RANGES, jumpstart_docs.TEXT_TUNING_RANGES], ids=["image", "text"]
)
def test_every_value_at_the_ends_of_the_jumpstart_tuning_ranges_is_accepted(ranges):
    for name, values in ranges.items():
        for value in values:
            hp = resolve({name: str(value)})
            assert hp[canonical_name(name)] == next(p for p in SCHEMA if p.name == canonical_name(name)).parse(
                str(value)
            ), (name, value)


def test_eps_is_the_tuning_pages_name_for_epsilon():
    assert canonical_name("eps") == "epsilon"
    assert resolve({"eps": "1e-8"}).epsilon == 1e-8
    with pytest.raises(HyperparameterError, match="twice"):
        resolve({"eps": "1e-8", "epsilon": "1e-7"})
