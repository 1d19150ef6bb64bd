"""The command line's parsers: every command, its flags and their help (no behaviour here)."""
from __future__ import annotations

import argparse
import os

from tf_finetune import __version__, job_options
from tf_finetune.hyperparameters import SCHEMA
from tf_finetune.instances import DEFAULT_INSTANCE_TYPE

CACHE_ENV = "TF_FINETUNE_CACHE"


def default_cache_dir() -> str:
    """``$TF_FINETUNE_CACHE``, else ``~/.cache/tf_finetune``."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tf_finetune")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more, got {text!r}")
    return value


def _add_hyperparameter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hyperparameters", "JumpStart names; --snake_case and --kebab-case both work; "
        "booleans as True/False. Defaults: the schema, then the model's registry overrides.")
    for param in SCHEMA:
        flags = {f"--{n}" for name in (param.name, *param.aliases) for n in (name, name.replace("_", "-"))}
        # Kebab-case first: argparse shows the first flag in the usage line.
        group.add_argument(*sorted(flags, key=lambda f: (len(f), "_" in f, f)), dest=f"hp_{param.name}", default=None,
                           metavar="V", help=f"{param.help} ({param.allowed()}; default {param.default})")


def _add_job_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="where the model goes: DIR/output/model.tar.gz; DIR may be "
                             "s3://bucket/<model-name>")
    parser.add_argument("--registry", default=None, metavar="YAML", help="use this registry file")
    parser.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR",
                        help=f"built-in backbones and extracted archives (${CACHE_ENV})")
    parser.add_argument("--cpu-devices", type=int, default=0, metavar="N",
                        help="split the CPU into N logical devices (N replicas), to try "
                             "distribution without GPUs")


def _add_keras_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("a Keras model file as the backbone (.h5, .keras, Keras "
                                      "SavedModel of a whole classifier)")
    job_options.add_flags(group, ["feature_layer", "pixel_range"])


def _add_train_command(commands) -> None:
    train = commands.add_parser("train", help="fine-tune a backbone and write model.tar.gz")
    job_options.add_flags(train, ["model_id"])
    train.add_argument("--handle", help="backbone SavedModel: folder, .tar.gz, s3://, file:// or "
                       "hub URL; with --model-id, where that entry's SavedModel is (e.g. from "
                       "fetch-model)")
    train.add_argument("--data", required=True, metavar="PATH",
                       help="image class folders, or data.csv (or its folder) for text; local "
                            "or s3://")
    train.add_argument("--validation-data", metavar="PATH", help="separate validation data")
    train.add_argument("--test-data", metavar="PATH", help="test data, scored after training")
    job_options.add_flags(train, ["feature_cache", "image_size", "max_seq_length"])
    train.add_argument("--checkpoint-dir", metavar="DIR",
                       help="save the training state here every epoch and on SIGTERM; a rerun "
                            "of the same job resumes from it")
    job_options.add_flags(train, ["checkpoint_steps", "fresh_start"])
    _add_keras_flags(train)
    _add_job_flags(train)
    _add_hyperparameter_flags(train)


def _add_launch_command(commands) -> None:
    launch = commands.add_parser("launch", help="run the same job as a SageMaker training job")
    launch.add_argument("--name", required=True, help="the model name; the job name is it plus a "
                        "timestamp")
    job_options.add_flags(launch, ["model_id"])
    launch.add_argument("--handle", help="backbone (local folder/.tar.gz, uploaded; or s3://), sent "
                        "as the 'model' channel")
    launch.add_argument("--data", required=True, metavar="PATH", help="training data: local "
                        "(uploaded) or s3://")
    launch.add_argument("--validation-data", metavar="PATH", help="separate validation data")
    launch.add_argument("--test-data", metavar="PATH", help="test data, scored after training")
    job_options.add_flags(launch, ["feature_cache", "image_size", "max_seq_length"])
    launch.add_argument("--output", required=True, metavar="S3", help="s3://bucket/[prefix/]: the "
                        "model lands at <output><job-name>/output/model.tar.gz")
    launch.add_argument("--role", help="IAM role ARN the job runs as")
    launch.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE,
                        help=f"training instance (default {DEFAULT_INSTANCE_TYPE})")
    launch.add_argument("--instance-count", type=int, default=1, metavar="N")
    launch.add_argument("--gpus", type=int, metavar="N", help="GPUs per instance, for a type "
                        "tf-finetune does not know")
    launch.add_argument("--spot", action="store_true", help="managed spot training; checkpoints "
                        "go to <output><name>/checkpoints/ so an interrupted job resumes")
    launch.add_argument("--max-run", type=int, default=24 * 3600, metavar="SECONDS",
                        help="stop the job after this long (default one day)")
    launch.add_argument("--image-uri", help="training image (default: AWS's TensorFlow 2.21 "
                        "training image, Python 3.12)")
    launch.add_argument("--region", help="AWS region (default: boto3's)")
    launch.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                        help="wait for the job, streaming its log (default: wait)")
    launch.add_argument("--dry-run", action="store_true",
                        help="print the request that would be sent; send nothing")
    launch.add_argument("--registry", default=None, metavar="YAML", help="use this registry file")
    _add_hyperparameter_flags(launch)


def _add_check_data_command(commands) -> None:
    check = commands.add_parser("check-data", help="report on training data before training: counts, "
                                "classes, unusable files, duplicates and leakage across splits")
    check.add_argument("--data", required=True, metavar="PATH", help="training data (local or s3://)")
    check.add_argument("--validation-data", metavar="PATH", help="separate validation data")
    check.add_argument("--test-data", metavar="PATH", help="test data")
    check.add_argument("--model-id", help="registry id: its task, input size and batch size")
    check.add_argument("--image-size", type=job_options.argparse_type("image_size"), metavar="PX",
                       help="the model's input size (default: the entry's, else 224)")
    check.add_argument("--batch-size", type=int, metavar="N", help="per-replica batch (default: the entry's)")
    check.add_argument("--validation-split-ratio", type=float, metavar="R",
                       help="held out of the training data without --validation-data (default 0.2)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--registry", default=None, metavar="YAML", help="use this registry file")


def _add_list_models_command(commands) -> None:
    listing = commands.add_parser("list-models", help="list the registry's backbones")
    listing.add_argument("--task", choices=("image", "text"))
    listing.add_argument("--registry", default=None, metavar="YAML")


def _add_describe_command(commands) -> None:
    describe = commands.add_parser("describe", help="show one registry entry")
    describe.add_argument("model_id")
    describe.add_argument("--registry", default=None, metavar="YAML")


def _add_fetch_model_command(commands) -> None:
    fetch = commands.add_parser("fetch-model", help="store a registry backbone as a .tar.gz for "
                                "the SageMaker 'model' channel or --handle (network isolation)")
    fetch.add_argument("model_id")
    fetch.add_argument("--output", required=True, metavar="DIR_OR_S3",
                       help="local folder or s3://bucket/prefix/; writes <output>/<model_id>.tar.gz")
    fetch.add_argument("--registry", default=None, metavar="YAML")
    fetch.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR")


def _add_predict_command(commands) -> None:
    predict = commands.add_parser("predict", help="classify images or texts with a fine-tuned model")
    predict.add_argument("--model", required=True, metavar="PATH",
                         help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz")
    predict.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="image files/folders; or texts, a data.csv, a .txt file; - for stdin")
    predict.add_argument("--top-k", type=_positive_int, default=3, metavar="K", help="labels to show (default 3)")
    predict.add_argument("--json", action="store_true", help="one JSON object per input")


def _add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="accuracy, F1 and confusion matrix on labelled data")
    evaluate.add_argument("--model", required=True, metavar="PATH",
                          help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz")
    evaluate.add_argument("--data", required=True, metavar="PATH",
                          help="labelled data in the training format (class folders or data.csv)")
    evaluate.add_argument("--output", default="evaluation", metavar="DIR",
                          help="where evaluation.json, confusion_matrix.png, per_class.txt and the "
                               "misclassified examples (misclassified.png / .csv) go (default ./evaluation)")


def _add_import_backbone_command(commands) -> None:
    imported = commands.add_parser(
        "import-backbone", help="cut a Keras classifier (.h5, .keras, Keras SavedModel) at its "
        "feature layer and save it as a TF-Hub image feature-vector SavedModel")
    imported.add_argument("model_file", metavar="MODEL_FILE")
    imported.add_argument("--output", required=True, metavar="DIR",
                          help="new folder for the SavedModel; DIR.tar.gz or s3://… for an archive")
    imported.add_argument("--image-size", type=job_options.argparse_type("image_size"), metavar="PX",
                          help="input size, for a network that declares none and cannot take any")
    _add_keras_flags(imported)


def _add_export_tflite_command(commands) -> None:
    lite = commands.add_parser("export-tflite", help="convert a fine-tuned model to TensorFlow "
                               "Lite and check its accuracy against the SavedModel")
    lite.add_argument("--model", required=True, metavar="PATH_OR_TAR",
                      help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz")
    lite.add_argument("--quantize", choices=("none", "float16", "dynamic", "int8"), default="none",
                      help="none (float32), float16 weights, dynamic (int8 weights) or int8 "
                           "(weights and activations; needs --data)")
    lite.add_argument("--data", metavar="PATH", help="training images: int8 calibrates on a "
                      "sample of them")
    lite.add_argument("--validation-data", metavar="PATH", help="held-out labelled data to "
                      "check the TFLite model's accuracy against the SavedModel's")
    lite.add_argument("--output", metavar="DIR", help="where model.tflite, labels.txt and "
                      "tflite_report.json go (default: beside model.tar.gz, or in the model folder)")


def _add_demo_command(commands) -> None:
    demo = commands.add_parser("demo", help="fine-tune the built-in text backbone on the bundled "
                               "sample data and show predictions (offline)")
    _add_job_flags(demo)
    demo.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    return build_parsers()[0]


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The argument parser, and each sub-command's parser by name."""
    parser = argparse.ArgumentParser(
        prog="tf-finetune", allow_abbrev=False, description="Fine-tune TensorFlow Hub backbones for image and text "
        "classification, locally or as a SageMaker job.")
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
        # --debug after the command too, where users put it (SUPPRESS: absent leaves the top's value).
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks and TensorFlow logs")
    return parser, dict(commands.choices)
