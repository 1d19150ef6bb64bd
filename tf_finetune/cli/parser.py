"""The command line's parsers: every command, its flags and their help (no behaviour here)."""

from __future__ import annotations

import argparse
import functools
from typing import TYPE_CHECKING, NoReturn

from tf_finetune import __version__, job_options
from tf_finetune.hyperparameters import SCHEMA, Hyperparameters, Param, parse_int, resolve
from tf_finetune.registry import load_registry
from tf_finetune.sagemaker.instances import DEFAULT_INSTANCE_TYPE
from tf_finetune.tasks import TASK_NAMES, Task

PROG = "tf-finetune"
HYPERPARAMETER_DEST = "hp_"  # a hyperparameter flag's dest: hp_<schema name>


class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are the error and where the help is, not the usage block first."""

    def error(self, message: str) -> NoReturn:
        """Print ``tf-finetune: error: MESSAGE`` and a pointer to this command's --help; exit 2."""
        self.exit(2, f"{PROG}: error: {message}\nTry '{self.prog} --help' for more information.\n")


if TYPE_CHECKING:
    # What ``add_subparsers`` returns: each command's parser is added to it.
    _Commands = argparse._SubParsersAction[_Parser]


def _positive_int(text: str) -> int:
    value = parse_int(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more, got {text!r}")
    return value


@functools.cache
def _defaults_by_task() -> dict[str, Hyperparameters]:
    """Each task's hyperparameter defaults: the schema's, under the built-in registry's task_defaults."""
    task_defaults = load_registry().task_defaults
    return {task: resolve(task_defaults.get(task)) for task in Task}


def _default_help(param: Param) -> str:
    """``default 3``, or ``default 3 for image models, 10 for text models`` where the tasks' differ.

    Args:
        param: a hyperparameter of the schema.

    Returns:
        The default a job starts from, per task when the built-in registry's task_defaults set one.
    """
    by_task = {task: defaults[param.name] for task, defaults in _defaults_by_task().items()}
    if all(value == param.default for value in by_task.values()):
        return f"default {param.default}"
    return "default " + ", ".join(f"{value} for {task} models" for task, value in by_task.items())


def _add_hyperparameter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hyperparameters",
        "JumpStart names; --snake_case and --kebab-case both work; "
        "booleans as True/False. Defaults: the task's (as shown), then the model entry's own "
        "('tf-finetune describe ID' lists a model's).",
    )
    for param in SCHEMA:
        own = {f"--{n}" for n in (param.name, param.name.replace("_", "-"))}
        aliases = {f"--{n}" for name in param.aliases for n in (name, name.replace("_", "-"))} - own
        # The own name before its aliases, kebab-case first: argparse shows the first flag in the usage line.
        group.add_argument(
            *sorted(own, key=lambda f: ("_" in f, f)),
            *sorted(aliases, key=lambda f: ("_" in f, f)),
            dest=HYPERPARAMETER_DEST + param.name,
            default=None,
            metavar="V",
            help=f"{param.help} ({param.allowed()}; {_default_help(param)})",
        )


def hyperparameters_given(args: argparse.Namespace) -> dict[str, str]:
    """The hyperparameter flags given on the command line.

    Args:
        args: a command's parsed arguments.

    Returns:
        schema name -> the text given (the schema checks it once, when the job is planned).
    """
    prefix = HYPERPARAMETER_DEST
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}


def _add_job_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a job whose data and backbone are fixed (demo's)."""
    job_options.add_flags(parser, ["output", "registry", "cache_dir"])
    _add_cpu_devices_flag(parser)


def _add_cpu_devices_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=0,
        metavar="N",
        help="split the CPU into N logical devices (N replicas), to try distribution without GPUs",
    )


KERAS_OPTIONS = ("feature_layer", "pixel_range")


def _add_keras_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "a Keras model file as the backbone (.h5, .keras, Keras SavedModel of a whole classifier)"
    )
    job_options.add_flags(group, KERAS_OPTIONS)


def _add_training_job_flags(parser: argparse.ArgumentParser, *, output_required: bool) -> None:
    """A training job's flags: every job option the command line takes, and the hyperparameters (train's,
    and check-data's)."""
    names = [option.name for option in job_options.OPTIONS if option.cli]
    keras = names.index(KERAS_OPTIONS[0])  # their group where they are declared (the usage line's order)
    required = ["output"] if output_required else []
    job_options.add_flags(parser, [n for n in names[:keras] if n not in KERAS_OPTIONS], required=required)
    _add_keras_flags(parser)
    job_options.add_flags(parser, [n for n in names[keras:] if n not in KERAS_OPTIONS], required=required)
    _add_cpu_devices_flag(parser)
    _add_hyperparameter_flags(parser)


def _add_train_command(commands: _Commands) -> None:
    train = commands.add_parser("train", help="fine-tune a backbone and write model.tar.gz")
    _add_training_job_flags(train, output_required=True)


def _add_launch_command(commands: _Commands) -> None:
    launch = commands.add_parser("launch", help="run the same job as a SageMaker training job")
    launch.add_argument("--name", required=True, help="the model name; the job name is it plus a timestamp")
    # The job options a launch sends (--output is the launch's own: the S3 folder of its jobs);
    # --registry, read here only, after the launch's own flags.
    sent = [option.name for option in job_options.OPTIONS if option.launch and option.name != "registry"]
    job_options.add_flags(launch, sent, launch=True)
    launch.add_argument(
        "--output",
        required=True,
        metavar="S3",
        help="s3://bucket/[prefix/]: the model lands at <output><job-name>/output/model.tar.gz",
    )
    launch.add_argument("--role", required=True, help="IAM role ARN the job runs as")
    launch.add_argument(
        "--instance-type", default=DEFAULT_INSTANCE_TYPE, help=f"training instance (default {DEFAULT_INSTANCE_TYPE})"
    )
    launch.add_argument("--instance-count", type=int, default=1, metavar="N")
    launch.add_argument("--gpus", type=int, metavar="N", help="GPUs per instance, for a type tf-finetune does not know")
    launch.add_argument(
        "--spot",
        action="store_true",
        help="managed spot training; checkpoints go to <output><name>/checkpoints/ so an interrupted job resumes",
    )
    launch.add_argument(
        "--max-run",
        type=int,
        default=24 * 3600,
        metavar="SECONDS",
        help="stop the job after this long (default one day)",
    )
    launch.add_argument(
        "--image-uri", help="training image (default: AWS's TensorFlow 2.21 training image, Python 3.12)"
    )
    launch.add_argument("--region", help="AWS region (default: boto3's)")
    launch.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait for the job, streaming its log (default: wait)",
    )
    launch.add_argument("--dry-run", action="store_true", help="print the request that would be sent; send nothing")
    job_options.add_flags(launch, ["registry"], launch=True)
    _add_hyperparameter_flags(launch)


def _add_check_data_command(commands: _Commands) -> None:
    check = commands.add_parser(
        "check-data",
        help="report on training data before training: counts, classes, unusable files, "
        "duplicates and leakage across splits",
        description="Takes train's flags: put check-data in place of train to check a training command's data "
        "as train reads it (the task from --model-id or --handle, else from the data; the hold-out, batch and "
        "steps train would use). Flags of the output and checkpoints are accepted and unused.",
    )
    _add_training_job_flags(check, output_required=False)
    check.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_list_models_command(commands: _Commands) -> None:
    listing = commands.add_parser("list-models", help="list the registry's backbones")
    listing.add_argument("--task", choices=TASK_NAMES)
    listing.add_argument(
        "--jumpstart", action="store_true", help="show the SageMaker JumpStart model ids each backbone answers to"
    )
    listing.add_argument("--registry", default=None, metavar="YAML")


def _add_describe_command(commands: _Commands) -> None:
    describe = commands.add_parser("describe", help="show one registry entry (by its id or a JumpStart model id)")
    describe.add_argument("model_id")
    describe.add_argument("--registry", default=None, metavar="YAML")


def _add_fetch_model_command(commands: _Commands) -> None:
    fetch = commands.add_parser(
        "fetch-model",
        help="store a registry backbone as a .tar.gz for the SageMaker 'model' channel or --handle (network isolation)",
    )
    fetch.add_argument("model_id")
    fetch.add_argument(
        "--output",
        required=True,
        metavar="DIR_OR_S3",
        help="local folder or s3://bucket/prefix/; writes <output>/<model_id>.tar.gz",
    )
    fetch.add_argument("--registry", default=None, metavar="YAML")
    fetch.add_argument("--cache-dir", default=job_options.default_cache_dir(), metavar="DIR")


def _add_predict_command(commands: _Commands) -> None:
    predict = commands.add_parser("predict", help="classify images or texts with a fine-tuned model")
    predict.add_argument(
        "--model", required=True, metavar="PATH", help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz"
    )
    predict.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files/folders; or texts, a data.csv, a .txt file; - for stdin"
    )
    predict.add_argument("--top-k", type=_positive_int, default=3, metavar="K", help="labels to show (default 3)")
    predict.add_argument("--json", action="store_true", help="one JSON object per input")


def _add_evaluate_command(commands: _Commands) -> None:
    evaluate = commands.add_parser("evaluate", help="accuracy, F1 and confusion matrix on labelled data")
    evaluate.add_argument(
        "--model", required=True, metavar="PATH", help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz"
    )
    evaluate.add_argument(
        "--data", required=True, metavar="PATH", help="labelled data in the training format (class folders or data.csv)"
    )
    evaluate.add_argument(
        "--output",
        default="evaluation",
        metavar="DIR",
        help="where evaluation.json, confusion_matrix.png, per_class.txt and the "
        "misclassified examples (misclassified.png / .csv) go (default ./evaluation)",
    )


def _add_import_backbone_command(commands: _Commands) -> None:
    imported = commands.add_parser(
        "import-backbone",
        help="cut a Keras classifier (.h5, .keras, Keras SavedModel) at its "
        "feature layer and save it as a TF-Hub image feature-vector SavedModel",
    )
    imported.add_argument("model_file", metavar="MODEL_FILE")
    imported.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="new folder for the SavedModel; DIR.tar.gz or s3://… for an archive",
    )
    imported.add_argument(
        "--image-size",
        type=job_options.argparse_type("image_size"),
        metavar="PX",
        help="input size, for a network that declares none and cannot take any",
    )
    _add_keras_flags(imported)


def _add_export_tflite_command(commands: _Commands) -> None:
    lite = commands.add_parser(
        "export-tflite",
        help="convert a fine-tuned model to TensorFlow Lite and check its accuracy against the SavedModel",
    )
    lite.add_argument(
        "--model",
        required=True,
        metavar="PATH_OR_TAR",
        help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz",
    )
    lite.add_argument(
        "--quantize",
        choices=("none", "float16", "dynamic", "int8"),
        default="none",
        help="none (float32), float16 weights, dynamic (int8 weights) or int8 (weights and activations; needs --data)",
    )
    lite.add_argument("--data", metavar="PATH", help="training images: int8 calibrates on a sample of them")
    lite.add_argument(
        "--validation-data",
        metavar="PATH",
        help="held-out labelled data to check the TFLite model's accuracy against the SavedModel's",
    )
    lite.add_argument(
        "--output",
        metavar="DIR",
        help="where model.tflite, labels.txt and "
        "tflite_report.json go (default: beside model.tar.gz, or in the model folder)",
    )


def _add_demo_command(commands: _Commands) -> None:
    demo = commands.add_parser(
        "demo", help="fine-tune the built-in text backbone on the bundled sample data and show predictions (offline)"
    )
    _add_job_flags(demo)
    demo.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")


def _mark_required(parser: argparse.ArgumentParser) -> None:
    """Start the help of each required flag with "required:" (argparse lists them under "options")."""
    for action in parser._actions:
        if action.required and action.option_strings:
            action.help = f"required: {action.help}" if action.help else "required"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    return build_parsers()[0]


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The argument parser, and each sub-command's parser by name."""
    parser = _Parser(  # the sub-commands' parsers are of its class too
        prog=PROG,
        allow_abbrev=False,
        description="Fine-tune TensorFlow Hub backbones for image and text "
        "classification, locally or as a SageMaker job.",
    )
    parser.add_argument("--version", action="version", version=f"tf_finetune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_command(commands)
    _add_launch_command(commands)
    _add_check_data_command(commands)
    _add_list_models_command(commands)
    _add_describe_command(commands)
    _add_fetch_model_command(commands)
    _add_predict_command(commands)
    _add_evaluate_command(commands)
    _add_import_backbone_command(commands)
    _add_export_tflite_command(commands)
    _add_demo_command(commands)
    for command in commands.choices.values():
        command.allow_abbrev = False  # no silent prefix matching of flags
        _mark_required(command)
        # --debug after the command too, where users put it (SUPPRESS: absent leaves the top's value).
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and TensorFlow logs"
        )
    return parser, dict(commands.choices)
