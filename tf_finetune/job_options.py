"""Job options, declared once for both doors: the command line's flags and SageMaker's arguments.

Job options say what to train and how to run it, beside the training hyperparameters
(:mod:`tf_finetune.hyperparameters`). On SageMaker they travel with the hyperparameters as
``--name value`` strings; on the command line they are ``--kebab-case`` flags. Each value is
parsed and checked here, before any of it is used, with one message naming the option.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tf_finetune.errors import HyperparameterError
from tf_finetune.hyperparameters import parse_bool


def _boolean(text: str) -> bool:
    value = parse_bool(text)
    if value is None:
        raise ValueError("expected True or False")
    return value


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value
    return parse


def _text(text: str) -> str:
    if not str(text).strip():
        raise ValueError("expected a value")
    return str(text)


@dataclass(frozen=True)
class JobOption:
    """One job option.

    Attributes:
        name: the ``JobConfig`` field and the SageMaker argument (``snake_case``).
        parse: string -> value; raises ValueError saying what is expected.
        help: what it does, for ``--help``.
        metavar: the value's placeholder in ``--help``.
        sagemaker: whether the SageMaker entry point takes it.
        cli: whether ``train`` takes it as a flag.
        negative_flag: for booleans on by default, the flag that turns them off.
        default: the value when the option is not given.
    """

    name: str
    parse: Callable[[str], Any]
    help: str
    metavar: str = "V"
    sagemaker: bool = True
    cli: bool = True
    negative_flag: str | None = None
    default: Any = None

    @property
    def flag(self) -> str:
        """The command-line flag (``--kebab-case``)."""
        return "--" + self.name.replace("_", "-")

    def value(self, text: str) -> Any:
        """The parsed value of ``text``.

        Raises:
            HyperparameterError: what was wrong and what is expected.
        """
        try:
            return self.parse(text)
        except ValueError as exc:
            raise HyperparameterError(f"hyperparameter {self.name}={text!r}: {exc}") from None


MAX_SEQ_HELP = ("BERT-family text models: word pieces per text, [CLS] and [SEP] included (default: "
                "the preprocessor's, 128); longer texts are truncated and counted in the log")

OPTIONS: tuple[JobOption, ...] = (
    JobOption("model_id", _text, "registry id (see list-models)", "ID"),
    JobOption("image_size", _whole(16, 4096), "input size for a handle that does not fix it "
              "(default 224)", "PX"),
    JobOption("max_seq_length", _whole(3, 512), MAX_SEQ_HELP, "N"),
    JobOption("feature_cache", _boolean, "with a frozen backbone, still run it every epoch (by default "
              "its features are computed once)", negative_flag="--no-feature-cache", default=True),
    JobOption("checkpoint_steps", _whole(0, 10**9), "with --checkpoint-dir, also save every N steps", "N",
              default=0),
    JobOption("fresh_start", _boolean, "discard a checkpoint of another job found in --checkpoint-dir",
              default=False),
    JobOption("feature_layer", _text, "layer to cut at (default: the input of the classification head, "
              "i.e. of the final Dense layers)", "NAME"),
    JobOption("pixel_range", _text, "pixel values the network was trained on (0,1 / -1,1 / 0,255) when "
              "the model does not show it (Rescaling layer, known architecture); else 0,1 is assumed",
              "LOW,HIGH"),
    # Several SageMaker hosts: the port workers talk on (TF_CONFIG); locally TF_CONFIG is given.
    JobOption("worker_port", _whole(1, 65535), "TCP port of the workers on several hosts", "PORT",
              cli=False),
)
BY_NAME = {option.name: option for option in OPTIONS}


def parse_options(options: Mapping[str, str]) -> dict[str, Any]:
    """Parse and check the string values of job options (SageMaker's arguments).

    Returns:
        every option's value: the parsed value where given, else its default.

    Raises:
        HyperparameterError: a value of the wrong type or out of range.
    """
    parsed = {option.name: option.default for option in OPTIONS}
    parsed.update({name: BY_NAME[name].value(text) for name, text in options.items()})
    return parsed


def argparse_type(name: str) -> Callable[[str], Any]:
    """The ``type=`` of option ``name``'s flag: argparse reports a bad value as a usage error."""
    option = BY_NAME[name]

    def parse(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, got {text!r}") from None
    parse.__name__ = option.name  # argparse names the type in some messages
    return parse


def add_flags(parser: argparse.ArgumentParser | Any, names: Iterable[str]) -> None:
    """Add the flags of the options ``names`` to ``parser`` (or an argument group).

    Booleans are switches: ``--fresh-start`` turns one on, a ``negative_flag`` turns one off.
    """
    for name in names:
        option = BY_NAME[name]
        if option.parse is _boolean:
            if option.negative_flag:
                parser.add_argument(option.negative_flag, dest=name, action="store_false", help=option.help)
            else:
                parser.add_argument(option.flag, dest=name, action="store_true", help=option.help)
        else:
            parser.add_argument(option.flag, dest=name, type=argparse_type(name), default=option.default,
                                metavar=option.metavar, help=option.help)
