"""``tf-finetune`` / ``python -m tf_finetune``: flags in, a job out, errors as messages.

TensorFlow is imported only by the commands that train, so ``--help``, ``list-models`` and
``describe`` answer at once.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tf_finetune import __version__, job_options, logs, storage
from tf_finetune.errors import TfFinetuneError, TrainingInterrupted
from tf_finetune.hyperparameters import SCHEMA
from tf_finetune.instances import DEFAULT_INSTANCE_TYPE

log = logging.getLogger("tf_finetune")

CACHE_ENV = "TF_FINETUNE_CACHE"
# Old spellings of --output, accepted for one release with a deprecation line: command -> flags.
DEPRECATED_OUTPUT_FLAGS = {"fetch-model": ("--to",), "import-backbone": ("--to",),
                           "evaluate": ("--output-dir",), "export-tflite": ("--output-dir",)}
# Commands that load TensorFlow: imported up front, with its C++ start-up notices hidden.
TENSORFLOW_COMMANDS = {"train", "demo", "predict", "evaluate", "export-tflite", "fetch-model",
                       "import-backbone"}


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


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag is a usage error with the closest known flags suggested."""
    import difflib

    parser, commands = build_parsers()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = commands[args.command]
        # --snake_case and --kebab-case are the same flag: suggest the kebab-case spelling once.
        known = sorted({flag.replace("_", "-") for action in command._actions for flag in action.option_strings
                        if flag.startswith("--")})
        hints = []
        for word in unknown:
            close = difflib.get_close_matches(word.partition("=")[0].replace("_", "-"), known, n=2, cutoff=0.6)
            if word.startswith("--") and close:
                hints.append(f"{word}: did you mean {' or '.join(close)}?")
        command.error(f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else ""))
    return args


def with_current_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` with the old spellings of ``--output`` replaced, and a deprecation line for each.

    Args:
        argv: the command line after the program name.

    Returns:
        (the arguments to parse, the deprecation lines to show).
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    old_flags = DEPRECATED_OUTPUT_FLAGS.get(command or "", ())
    current, notes = [], []
    for arg in argv:
        flag, equals, value = arg.partition("=")
        if flag in old_flags:
            notes.append(f"tf-finetune: warning: {flag} is deprecated and will be removed in the next "
                         f"release; use --output (same meaning)")
            arg = f"--output{equals}{value}"
        current.append(arg)
    return current, notes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 usage)."""
    argv, deprecations = with_current_flags(sys.argv[1:] if argv is None else argv)
    for line in deprecations:
        print(line, file=sys.stderr)
    args = _parse(argv)
    logs.configure(quiet_libraries=not args.debug)
    if args.command in TENSORFLOW_COMMANDS and not args.debug:
        logs.import_tensorflow_quietly()
    try:
        return _dispatch(args)
    except TrainingInterrupted as exc:
        print(f"tf-finetune: {exc}", file=sys.stderr)
        return TrainingInterrupted.exit_code
    except TfFinetuneError as exc:
        if args.debug:
            raise
        print(f"tf-finetune: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        folder = getattr(args, "checkpoint_dir", None)
        kept = folder is not None and Path(folder).is_dir() and any(Path(folder).iterdir())
        print("tf-finetune: interrupted" + (f"; the last checkpoint in {folder} is kept: run the same "
                                            "command again to resume" if kept else ""), file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "train": _train, "demo": _demo, "launch": _launch, "check-data": _check_data,
        "list-models": _list_models, "describe": _describe, "fetch-model": _fetch_model,
        "predict": _predict, "evaluate": _evaluate, "import-backbone": _import_backbone,
        "export-tflite": _export_tflite}
    return handlers[args.command](args)


def _list_models(args: argparse.Namespace) -> int:
    from tf_finetune import catalog

    print(catalog.table(args.registry, args.task))
    return 0


def _describe(args: argparse.Namespace) -> int:
    from tf_finetune import catalog

    print(catalog.card(args.registry, args.model_id))
    return 0


def _fetch_model(args: argparse.Namespace) -> int:
    from tf_finetune.fetch import fetch_model

    storage.check_destination(args.output, "--output")
    storage.check_destination(args.cache_dir, "--cache-dir")
    print(fetch_model(args.model_id, args.output, args.cache_dir, args.registry))
    return 0


def _import_backbone(args: argparse.Namespace) -> int:
    from tf_finetune.fetch import import_to

    folder = str(Path(args.output).parent) if storage.is_archive(args.output) else args.output
    storage.check_destination(folder, "--output")
    print(import_to(args.model_file, args.output, args.feature_layer, args.pixel_range, args.image_size))
    return 0


def _export_tflite(args: argparse.Namespace) -> int:
    from tf_finetune.tflite import export_model

    if args.output:
        storage.check_destination(args.output, "--output")
    report = export_model(args.model, args.quantize, args.data, args.validation_data, args.output)
    print(report["tflite_path"])
    return 0


def _split_cpu(args: argparse.Namespace) -> None:
    if args.cpu_devices:
        from tf_finetune.distribute import split_cpu

        split_cpu(args.cpu_devices)


def _demo(args: argparse.Namespace) -> int:
    from tf_finetune import demo

    storage.check_destination(args.cache_dir, "--cache-dir")
    _split_cpu(args)
    demo.run_demo(args.output, args.cache_dir, args.epochs)
    return 0


def _train(args: argparse.Namespace) -> int:
    from tf_finetune.cluster import num_workers
    from tf_finetune.job import JobConfig, run

    _split_cpu(args)
    if args.output is None:
        raise TfFinetuneError("train needs --output DIR (the model goes to DIR/output/model.tar.gz)")
    if args.checkpoint_dir:
        from tf_finetune.checkpoint import install_sigterm_handler

        install_sigterm_handler()
    started = time.perf_counter()
    result = run(JobConfig(data=args.data, output=args.output, model_id=args.model_id,
                           handle=args.handle, validation_data=args.validation_data,
                           test_data=args.test_data,
                           hyperparameters=_hyperparameters(args), image_size=args.image_size,
                           max_seq_length=args.max_seq_length,
                           registry=args.registry, cache_dir=args.cache_dir,
                           feature_cache=args.feature_cache, feature_layer=args.feature_layer,
                           pixel_range=args.pixel_range, checkpoint_dir=args.checkpoint_dir,
                           checkpoint_steps=args.checkpoint_steps, fresh_start=args.fresh_start,
                           multi_worker=num_workers(os.environ.get("TF_CONFIG")) > 1))
    if result.archive:
        from tf_finetune import launch

        record = launch.local_training_output(args.output, str(result.archive), args.model_id or args.handle,
                                              time.perf_counter() - started)
        launch.write_training_output(record)
        print(launch.format_training_output(record), file=sys.stderr)
        print(result.archive)
    return 0


def _hyperparameters(args: argparse.Namespace) -> dict[str, str]:
    return {k[3:]: v for k, v in vars(args).items() if k.startswith("hp_") and v is not None}


def _launch(args: argparse.Namespace) -> int:
    import json

    from tf_finetune import launch
    from tf_finetune.job import JobConfig

    job = JobConfig(data=args.data, output=None, model_id=args.model_id, handle=args.handle,
                    validation_data=args.validation_data, test_data=args.test_data,
                    hyperparameters=_hyperparameters(args), image_size=args.image_size,
                    max_seq_length=args.max_seq_length, registry=args.registry,
                    feature_cache=args.feature_cache)
    plan = launch.plan(launch.LaunchConfig(
        job=job, name=args.name, output=args.output, role=args.role, instance_type=args.instance_type,
        instance_count=args.instance_count, gpus=args.gpus, spot=args.spot, max_run=args.max_run,
        image_uri=args.image_uri, region=args.region))
    print(plan.describe())
    if args.dry_run:
        print(json.dumps(plan.request(), indent=2))
        return 0
    from tf_finetune.sagemaker_sdk import submit

    return launch.finish(plan, submit(plan, args.wait), args.wait)


def _check_data(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from tf_finetune.data_report import check_data
    from tf_finetune.hyperparameters import resolve
    from tf_finetune.job import fetch_channel, looks_like_text
    from tf_finetune.registry import load_registry

    layers, image_size, task = [], args.image_size, None
    if args.model_id:
        registry = load_registry(args.registry)
        spec = registry.get(args.model_id)
        task, layers = spec.task, [registry.task_defaults.get(spec.task), spec.hyperparameters]
        image_size = image_size or spec.image_size
    given = {k: v for k, v in (("batch_size", args.batch_size),
                               ("validation_split_ratio", args.validation_split_ratio)) if v is not None}
    hp = resolve(*layers, given)
    with tempfile.TemporaryDirectory(prefix="tf_finetune-check-") as folder:
        training, validation, test = (fetch_channel(p, Path(folder) / name) if p else None for name, p in
                                      (("training", args.data), ("validation", args.validation_data),
                                       ("test", args.test_data)))
        assert training is not None  # --data is required
        task = task or ("text" if looks_like_text(str(training)) else "image")
        report = check_data(task, training, validation, test,
                            image_size=image_size or (224 if task == "image" else None),
                            batch_size=hp.batch_size, validation_split_ratio=hp.validation_split_ratio)
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def _predict(args: argparse.Namespace) -> int:
    import json

    from tf_finetune.predictor import collect_inputs, describe_failures, open_model, top_k

    with open_model(args.model) as model:
        stdin = sys.stdin.readlines() if "-" in args.inputs else ()
        inputs = collect_inputs(args.inputs, model.task, stdin)
        if not inputs:
            raise TfFinetuneError("nothing to predict on: " + " ".join(args.inputs))
        probabilities, failed = model.predict_each(inputs)
        best = top_k(probabilities, model.label_map.class_names, args.top_k)
    # The inputs that could be used are answered; the others are named with why, and exit 1.
    for item, ranked in zip([x for i, x in enumerate(inputs) if i not in failed], best):
        if args.json:
            print(json.dumps({"input": item, "predictions": [
                {"label": label, "probability": round(p, 6)} for label, p in ranked]}, ensure_ascii=False))
        else:
            shown = "  ".join(f"{label} {p:.1%}" for label, p in ranked)
            print(f"{item}\t{shown}")
    if failed:
        raise TfFinetuneError(describe_failures(inputs, failed))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tf_finetune import gallery
    from tf_finetune.data import load_examples
    from tf_finetune.evaluation import classification_report, format_report, write_report
    from tf_finetune.predictor import open_model

    storage.check_destination(args.output, "--output")
    with open_model(args.model) as model:
        examples = load_examples(model.task, args.data, model.label_map)
        probabilities = model.predict([str(x) for x in examples.inputs])
        names = model.label_map.class_names
        report = classification_report(examples.labels, probabilities.argmax(axis=1), names)
        report["model"], report["data"] = args.model, args.data
        print(format_report(report))
        written = write_report(report, Path(args.output), f"{Path(args.data).name}: "
                               f"accuracy {report['accuracy']:.3f}")
        found = gallery.mistakes(examples.inputs, examples.labels, probabilities, names)
        written += gallery.write_gallery(model.task, found, format_report(report), Path(args.output))
    for path in written:
        print(f"wrote {path}")
    return 0
