"""A job's settings, declared once for every door: :class:`JobConfig`, and how each door spells each.

A job is a :class:`JobConfig`: what to train, on what, where the result goes, beside the training
hyperparameters (:mod:`tf_finetune.hyperparameters`). Each setting a user gives is one
:class:`JobOption`, which says how the doors spell it: the command line's ``--kebab-case`` flag,
SageMaker's hyperparameter (``--name value`` strings) or input channel, and how its text is parsed
and checked, with one message naming the option.

The doors cross between their values and a job in one function per direction:
:func:`job_config` (door values -> JobConfig: the command line's ``train``, ``check-data`` and
``launch``, the SageMaker container, the Python door) and :func:`hyperparameters_of` with
:func:`channels_of` (JobConfig -> what a SageMaker job is sent: ``launch``; the container reads it
back with :func:`parse_options` and :func:`from_channels`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tf_finetune.errors import HyperparameterError
from tf_finetune.hyperparameters import parse_bool, parse_int

CACHE_ENV = "TF_FINETUNE_CACHE"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> str:
    """The cache folder of every door unless one is given: ``$TF_FINETUNE_CACHE``, else
    ``~/.cache/tf_finetune``.

    Args:
        environ: the environment (default ``os.environ``; the SageMaker container passes its own).

    Returns:
        The folder (not created here).
    """
    environ = os.environ if environ is None else environ
    return environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tf_finetune")


@dataclass(frozen=True)
class JobConfig:
    """What to fine-tune, on what, and where the result goes.

    Attributes:
        data: training data: a class-folder root (images) or a data.csv / its folder (text);
            local or ``s3://``.
        output: the model location, local or ``s3://``; the archive goes to
            ``<output>/output/model.tar.gz``.
        model_id: registry id of the backbone (or give ``handle``).
        handle: a backbone handle (folder, .tar.gz, s3://, URL, builtin:). With ``model_id``
            it says where that entry's SavedModel is (e.g. the SageMaker ``model`` channel).
        validation_data: separate validation data (local or ``s3://``); else a split of ``data``.
        test_data: held-out data evaluated once after training (``test_*`` metrics).
        hyperparameters: user values (any accepted spelling, strings or Python values).
        image_size: input size for handles that do not fix theirs (overrides the registry).
        max_seq_length: text with a BERT-style preprocessor: the sequence length texts are
            packed to (default: the preprocessor's own, 128 for TF-Hub's BERT preprocessors).
        registry: a registry YAML instead of the packaged one.
        cache_dir: where built-in backbones and extracted archives are kept (default
            :func:`default_cache_dir`).
        model_dir: when set, also leave the unpacked model folder here (SageMaker's model dir).
        report_dir: where training curves, the validation confusion matrix and evaluation.json
            go; default ``<output>/output/reports`` (uploaded there for ``s3://`` outputs).
        tensorboard_dir: TensorBoard logs; default ``<output>/output/tensorboard`` for a local
            output, none otherwise.
        feature_cache: with a frozen backbone and no augmentation, compute its features once
            and train the head on them (False: run the backbone every epoch).
        multi_worker: train across several hosts (``TF_CONFIG`` describes the cluster); only the
            chief writes outputs.
        checkpoint_dir: save the training state here every epoch (and on SIGTERM, see
            :mod:`tf_finetune.training.checkpoint`) and resume from it when it holds this job's checkpoint.
        checkpoint_steps: also save every this many steps (0: at epoch ends only).
        fresh_start: discard a checkpoint of another job in ``checkpoint_dir`` instead of
            refusing to start.
        feature_layer: a Keras model file as the backbone: the layer to cut at (default: the
            input of its classification head).
        pixel_range: a Keras model file as the backbone: the pixel range it was trained on
            (``0,1``, ``-1,1``, ``0,255``) when the model does not show it.
    """

    data: str
    output: str | None
    model_id: str | None = None
    handle: str | None = None
    validation_data: str | None = None
    test_data: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    max_seq_length: int | None = None
    registry: str | None = None
    cache_dir: str = field(default_factory=default_cache_dir)
    model_dir: str | None = None
    report_dir: str | None = None
    tensorboard_dir: str | None = None
    multi_worker: bool = False
    feature_cache: bool = True
    checkpoint_dir: str | None = None
    checkpoint_steps: int = 0
    fresh_start: bool = False
    feature_layer: str | None = None
    pixel_range: str | None = None


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(JobConfig)}


def _boolean(text: str) -> bool:
    value = parse_bool(text)
    if value is None:
        raise ValueError("expected True or False")
    return value


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_int(text)
        if value is None or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _text(text: str) -> str:
    if not str(text).strip():
        raise ValueError("expected a value")
    return str(text)


@dataclass(frozen=True)
class JobOption:
    """One setting of a job, and how each door spells it.

    Attributes:
        name: the :class:`JobConfig` field it sets, and its SageMaker hyperparameter's name
            (``worker_port`` alone sets no field: the SageMaker container reads it to join its hosts).
        help: what it does, for ``--help``.
        parse: text -> value; raises ValueError saying what is expected (None: the text as given).
        metavar: the value's placeholder in ``--help``.
        cli: whether the command line takes it, as :attr:`flag` (``train`` and ``check-data`` take
            every such option).
        required: whether every command that takes the flag requires it.
        negative_flag: for booleans on by default, the flag that turns them off.
        launch: whether ``launch`` takes the flag too; a string is the flag's help there.
        hyperparameter: whether SageMaker takes it as a hyperparameter: the container parses it,
            ``launch`` sends it when it differs from the default.
        channel: the SageMaker input channel it is: the container reads ``SM_CHANNEL_<NAME>``,
            ``launch`` sends the ``s3://`` prefix or uploads the local path.
    """

    name: str
    help: str
    parse: Callable[[str], Any] | None = None
    metavar: str = "V"
    cli: bool = True
    required: bool = False
    negative_flag: str | None = None
    launch: bool | str = False
    hyperparameter: bool = False
    channel: str | None = None

    @property
    def flag(self) -> str:
        """The command-line flag: ``--kebab-case``, or the ``negative_flag`` of a boolean on by default."""
        return self.negative_flag or "--" + self.name.replace("_", "-")

    @property
    def default(self) -> Any:
        """The value when the option is not given: its JobConfig field's default (else None)."""
        found = FIELDS.get(self.name)
        if found is None:
            return None
        if found.default is not dataclasses.MISSING:
            return found.default
        factory = found.default_factory
        return None if factory is dataclasses.MISSING else factory()

    def value(self, text: str) -> Any:
        """The parsed value of ``text``.

        Raises:
            HyperparameterError: what was wrong and what is expected.
        """
        try:
            return self.parse(text) if self.parse else text
        except ValueError as exc:
            raise HyperparameterError(f"hyperparameter {self.name}={text!r}: {exc}") from None


MAX_SEQ_HELP = (
    "BERT-family text models: word pieces per text, [CLS] and [SEP] included (default: "
    "the preprocessor's, 128); longer texts are truncated and counted in the log"
)

# In the order train's --help lists them.
OPTIONS: tuple[JobOption, ...] = (
    JobOption("model_id", "registry id (see list-models)", _text, "ID", launch=True, hyperparameter=True),
    JobOption(
        "handle",
        "backbone SavedModel: folder, .tar.gz, s3://, file:// or hub URL; with --model-id, "
        "where that entry's SavedModel is (e.g. from fetch-model)",
        metavar="HANDLE",
        channel="model",
        launch="backbone (local folder/.tar.gz, uploaded; or s3://), sent as the 'model' channel",
    ),
    JobOption(
        "data",
        "image class folders; for text a label,text CSV file (any name) or a folder holding data.csv; local or s3://",
        metavar="PATH",
        required=True,
        channel="training",
        launch="training data: local (uploaded) or s3://",
    ),
    JobOption("validation_data", "separate validation data", metavar="PATH", launch=True, channel="validation"),
    JobOption("test_data", "test data, scored after training", metavar="PATH", launch=True, channel="test"),
    JobOption(
        "feature_cache",
        "with a frozen backbone, still run it every epoch (by default its features are computed once)",
        _boolean,
        negative_flag="--no-feature-cache",
        launch=True,
        hyperparameter=True,
    ),
    JobOption(
        "image_size",
        "input size for a handle that does not fix it (default 224)",
        _whole(16, 4096),
        "PX",
        launch=True,
        hyperparameter=True,
    ),
    JobOption("max_seq_length", MAX_SEQ_HELP, _whole(3, 512), "N", launch=True, hyperparameter=True),
    JobOption(
        "checkpoint_dir",
        "save the training state here every epoch and on SIGTERM; a rerun of the same job resumes from it",
        metavar="DIR",
    ),
    JobOption(
        "checkpoint_steps", "with --checkpoint-dir, also save every N steps", _whole(0, 10**9), "N", hyperparameter=True
    ),
    JobOption(
        "fresh_start", "discard a checkpoint of another job found in --checkpoint-dir", _boolean, hyperparameter=True
    ),
    JobOption(
        "feature_layer",
        "layer to cut at (default: the input of the classification head, i.e. of the final Dense layers)",
        _text,
        "NAME",
        hyperparameter=True,
    ),
    JobOption(
        "pixel_range",
        "pixel values the network was trained on (0,1 / -1,1 / 0,255) when the model does "
        "not show it (Rescaling layer, known architecture); else 0,1 is assumed",
        _text,
        "LOW,HIGH",
        hyperparameter=True,
    ),
    JobOption(
        "output", "where the model goes: DIR/output/model.tar.gz; DIR may be s3://bucket/<model-name>", metavar="DIR"
    ),
    JobOption("registry", "use this registry file", metavar="YAML", launch=True),
    JobOption("cache_dir", f"built-in backbones and extracted archives (${CACHE_ENV})", metavar="DIR"),
    # Several SageMaker hosts: the port workers talk on (TF_CONFIG); locally TF_CONFIG is given.
    JobOption(
        "worker_port",
        "TCP port of the workers on several hosts",
        _whole(1, 65535),
        "PORT",
        cli=False,
        hyperparameter=True,
    ),
)
BY_NAME = {option.name: option for option in OPTIONS}
BY_CHANNEL = {option.channel: option for option in OPTIONS if option.channel}
# JobConfig's fields no user gives: the SageMaker container's folders (SM_MODEL_DIR,
# SM_OUTPUT_DATA_DIR, SM_OUTPUT_DIR), and TF_CONFIG's cluster on both doors.
FROM_ENVIRONMENT = frozenset({"model_dir", "report_dir", "tensorboard_dir", "multi_worker"})


def job_config(values: Mapping[str, Any], hyperparameters: Mapping[str, Any]) -> JobConfig:
    """The job a door's values describe: the one way from a door to a :class:`JobConfig`.

    Args:
        values: the door's values by JobConfig field (``vars`` of the command line's namespace, the
            SageMaker container's parsed options and environment, the Python door's keywords). Other
            names (``command``, ``worker_port``, …) are left out; a field missing or None takes its
            default (``cache_dir``: :func:`default_cache_dir`).
        hyperparameters: the user's hyperparameters as given; planning the job checks them, once.

    Returns:
        The job.
    """
    given = {name: values[name] for name in FIELDS if name != "hyperparameters" and values.get(name) is not None}
    given.setdefault("output", None)
    return JobConfig(hyperparameters=dict(hyperparameters), **given)


def hyperparameters_of(config: JobConfig) -> dict[str, str]:
    """What a SageMaker job of ``config`` is sent as hyperparameters (``launch``).

    The container reads them back (:func:`parse_options`, then :func:`job_config`) as the same
    settings.

    Args:
        config: the job.

    Returns:
        The user's hyperparameters as given, and each job option SageMaker takes as a hyperparameter
        whose value is not its default, all as text.
    """
    sent = {name: _as_text(value) for name, value in config.hyperparameters.items()}
    for option in OPTIONS:
        if option.hyperparameter and option.name in FIELDS:
            value = getattr(config, option.name)
            if value is not None and value != option.default:
                sent[option.name] = _as_text(value)
    return sent


def channels_of(config: JobConfig) -> dict[str, str]:
    """The SageMaker input channels of ``config``'s inputs (``launch``): channel -> path or ``s3://`` prefix.

    Args:
        config: the job.

    Returns:
        The data channels given (``training`` first), then the backbone's (``model``).
    """
    given = [option for option in OPTIONS if option.channel and getattr(config, option.name)]
    given.sort(key=lambda option: option.channel == "model")  # the data first, as SageMaker lists them
    return {str(option.channel): getattr(config, option.name) for option in given}


def from_channels(channels: Mapping[str, str]) -> dict[str, str | None]:
    """The JobConfig fields of SageMaker's input channels (the container): field -> local folder.

    Args:
        channels: channel name -> local folder (``SM_CHANNEL_<NAME>``); other channels are ignored.

    Returns:
        Every channel option's field, None where its channel is absent.
    """
    return {option.name: channels.get(str(option.channel)) for option in BY_CHANNEL.values()}


def _as_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def parse_options(options: Mapping[str, str]) -> dict[str, Any]:
    """Parse and check the string values of job options (SageMaker's arguments).

    Args:
        options: option name -> text, for options SageMaker takes as hyperparameters.

    Returns:
        every such option's value: the parsed value where given, else its default.

    Raises:
        HyperparameterError: a value of the wrong type or out of range.
    """
    parsed = {option.name: option.default for option in OPTIONS if option.hyperparameter}
    parsed.update({name: BY_NAME[name].value(text) for name, text in options.items()})
    return parsed


def argparse_type(name: str) -> Callable[[str], Any]:
    """The ``type=`` of option ``name``'s flag: argparse reports a bad value as a usage error."""
    option = BY_NAME[name]

    def parse(text: str) -> Any:
        try:
            return option.parse(text) if option.parse else text
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, got {text!r}") from None

    parse.__name__ = option.name  # argparse names the type in some messages
    return parse


def add_flags(
    parser: argparse.ArgumentParser | Any, names: Iterable[str], *, required: Collection[str] = (), launch: bool = False
) -> None:
    """Add the flags of the options ``names`` to ``parser`` (or an argument group), from their declarations.

    Booleans are switches: ``--fresh-start`` turns one on, a ``negative_flag`` turns one off.

    Args:
        parser: the command's parser, or one of its argument groups.
        names: the options, in the order ``--help`` lists them.
        required: options this command requires besides those every command does (``output``).
        launch: the flags of ``launch``: with its help where it has its own.

    Raises:
        ValueError: an option the command line does not take.
    """
    for name in names:
        option = BY_NAME[name]
        if not option.cli or (launch and not option.launch):
            raise ValueError(f"the command line does not take {name}")
        help_text = option.launch if launch and isinstance(option.launch, str) else option.help
        if option.parse is _boolean:
            action = "store_false" if option.negative_flag else "store_true"
            parser.add_argument(option.flag, dest=name, action=action, help=help_text)
            continue
        parser.add_argument(
            option.flag,
            dest=name,
            default=option.default,
            metavar=option.metavar,
            help=help_text,
            required=option.required or name in required,
            type=argparse_type(name),
        )
