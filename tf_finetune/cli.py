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
from collections.abc import Sequence
from pathlib import Path

from tf_finetune import __version__, logs
from tf_finetune.errors import TfFinetuneError, TrainingInterrupted
from tf_finetune.hyperparameters import SCHEMA
from tf_finetune.instances import DEFAULT_INSTANCE_TYPE

log = logging.getLogger("tf_finetune")

CACHE_ENV = "TF_FINETUNE_CACHE"
# Commands that load TensorFlow: imported up front, with its C++ start-up notices hidden.
TENSORFLOW_COMMANDS = {"train", "demo", "predict", "evaluate", "export-tflite", "fetch-model",
                       "import-backbone"}
_MAX_SEQ_HELP = ("BERT-family text models: word pieces per text, [CLS] and [SEP] included (default: "
                 "the preprocessor's, 128); longer texts are truncated and counted in the log")


def default_cache_dir() -> str:
    """``$TF_FINETUNE_CACHE``, else ``~/.cache/tf_finetune``."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tf_finetune")


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
    group.add_argument("--feature-layer", metavar="NAME", help="layer to cut at (default: the "
                       "input of the classification head, i.e. of the final Dense layers)")
    group.add_argument("--pixel-range", metavar="LOW,HIGH", help="pixel values the network was "
                       "trained on (0,1 / -1,1 / 0,255) when the model does not show it "
                       "(Rescaling layer, known architecture); else 0,1 is assumed")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="tf-finetune", allow_abbrev=False, description="Fine-tune TensorFlow Hub backbones for image and text "
        "classification, locally or as a SageMaker job.")
    parser.add_argument("--version", action="version", version=f"tf_finetune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="fine-tune a backbone and write model.tar.gz")
    train.add_argument("--model-id", help="registry id (see list-models)")
    train.add_argument("--handle", help="backbone SavedModel: folder, .tar.gz, s3://, file:// or "
                       "hub URL; with --model-id, where that entry's SavedModel is (e.g. from "
                       "fetch-model)")
    train.add_argument("--data", required=True, metavar="PATH",
                       help="image class folders, or data.csv (or its folder) for text; local "
                            "or s3://")
    train.add_argument("--validation-data", metavar="PATH", help="separate validation data")
    train.add_argument("--no-feature-cache", dest="feature_cache", action="store_false",
                       help="with a frozen backbone, still run it every epoch (by default its "
                            "features are computed once)")
    train.add_argument("--image-size", type=int, metavar="PX",
                       help="input size for a handle that does not fix it (default 224)")
    train.add_argument("--max-seq-length", type=int, metavar="N", help=_MAX_SEQ_HELP)
    train.add_argument("--checkpoint-dir", metavar="DIR",
                       help="save the training state here every epoch and on SIGTERM; a rerun "
                            "of the same job resumes from it")
    train.add_argument("--checkpoint-steps", type=int, default=0, metavar="N",
                       help="with --checkpoint-dir, also save every N steps")
    train.add_argument("--fresh-start", action="store_true",
                       help="discard a checkpoint of another job found in --checkpoint-dir")
    _add_keras_flags(train)
    _add_job_flags(train)
    _add_hyperparameter_flags(train)

    launch = commands.add_parser("launch", help="run the same job as a SageMaker training job")
    launch.add_argument("--name", required=True, help="the model name; the job name is it plus a "
                        "timestamp")
    launch.add_argument("--model-id", help="registry id (see list-models)")
    launch.add_argument("--handle", help="backbone (local folder/.tar.gz, uploaded; or s3://), sent "
                        "as the 'model' channel")
    launch.add_argument("--data", required=True, metavar="PATH", help="training data: local "
                        "(uploaded) or s3://")
    launch.add_argument("--validation-data", metavar="PATH", help="separate validation data")
    launch.add_argument("--test-data", metavar="PATH", help="test data, scored after training")
    launch.add_argument("--image-size", type=int, metavar="PX",
                        help="input size for a handle that does not fix it (default 224)")
    launch.add_argument("--max-seq-length", type=int, metavar="N", help=_MAX_SEQ_HELP)
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

    check = commands.add_parser("check-data", help="report on training data before training: counts, "
                                "classes, unusable files, duplicates and leakage across splits")
    check.add_argument("--data", required=True, metavar="PATH", help="training data (local or s3://)")
    check.add_argument("--validation-data", metavar="PATH", help="separate validation data")
    check.add_argument("--test-data", metavar="PATH", help="test data")
    check.add_argument("--model-id", help="registry id: its task, input size and batch size")
    check.add_argument("--image-size", type=int, metavar="PX", help="the model's input size (default: the "
                       "entry's, else 224)")
    check.add_argument("--batch-size", type=int, metavar="N", help="per-replica batch (default: the entry's)")
    check.add_argument("--validation-split-ratio", type=float, metavar="R",
                       help="held out of the training data without --validation-data (default 0.2)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--registry", default=None, metavar="YAML", help="use this registry file")

    listing = commands.add_parser("list-models", help="list the registry's backbones")
    listing.add_argument("--task", choices=("image", "text"))
    listing.add_argument("--registry", default=None, metavar="YAML")

    describe = commands.add_parser("describe", help="show one registry entry")
    describe.add_argument("model_id")
    describe.add_argument("--registry", default=None, metavar="YAML")

    fetch = commands.add_parser("fetch-model", help="store a registry backbone as a .tar.gz for "
                                "the SageMaker 'model' channel or --handle (network isolation)")
    fetch.add_argument("model_id")
    fetch.add_argument("--to", required=True, metavar="DIR_OR_S3",
                       help="local folder or s3://bucket/prefix/; writes <to>/<model_id>.tar.gz")
    fetch.add_argument("--registry", default=None, metavar="YAML")
    fetch.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR")

    predict = commands.add_parser("predict", help="classify images or texts with a fine-tuned model")
    predict.add_argument("--model", required=True, metavar="PATH",
                         help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz")
    predict.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="image files/folders; or texts, a data.csv, a .txt file; - for stdin")
    predict.add_argument("--top-k", type=int, default=3, metavar="K", help="labels to show (default 3)")
    predict.add_argument("--json", action="store_true", help="one JSON object per input")

    evaluate = commands.add_parser("evaluate", help="accuracy, F1 and confusion matrix on labelled data")
    evaluate.add_argument("--model", required=True, metavar="PATH",
                          help="model.tar.gz, its unpacked folder, or s3://…/model.tar.gz")
    evaluate.add_argument("--data", required=True, metavar="PATH",
                          help="labelled data in the training format (class folders or data.csv)")
    evaluate.add_argument("--output-dir", default="evaluation", metavar="DIR",
                          help="where evaluation.json, confusion_matrix.png, per_class.txt and the "
                               "misclassified examples (misclassified.png / .csv) go (default ./evaluation)")

    imported = commands.add_parser(
        "import-backbone", help="cut a Keras classifier (.h5, .keras, Keras SavedModel) at its "
        "feature layer and save it as a TF-Hub image feature-vector SavedModel")
    imported.add_argument("model_file", metavar="MODEL_FILE")
    imported.add_argument("--to", required=True, metavar="DIR",
                          help="new folder for the SavedModel; DIR.tar.gz or s3://… for an archive")
    imported.add_argument("--image-size", type=int, metavar="PX",
                          help="input size, for a network that declares none and cannot take any")
    _add_keras_flags(imported)

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
    lite.add_argument("--output-dir", metavar="DIR", help="where model.tflite, labels.txt and "
                      "tflite_report.json go (default: beside model.tar.gz, or in the model folder)")

    demo = commands.add_parser("demo", help="fine-tune the built-in text backbone on the bundled "
                               "sample data and show predictions (offline)")
    _add_job_flags(demo)
    demo.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")
    for command in commands.choices.values():  # no silent prefix matching of flags
        command.allow_abbrev = False
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 usage)."""
    args = build_parser().parse_args(argv)
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
        print("tf-finetune: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from tf_finetune import catalog

    if args.command == "list-models":
        print(catalog.table(args.registry, args.task))
        return 0
    if args.command == "describe":
        print(catalog.card(args.registry, args.model_id))
        return 0
    if args.command == "fetch-model":
        from tf_finetune.fetch import fetch_model

        print(fetch_model(args.model_id, args.to, args.cache_dir, args.registry))
        return 0
    if args.command == "launch":
        return _launch(args)
    if args.command == "check-data":
        return _check_data(args)
    if args.command == "predict":
        return _predict(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "import-backbone":
        from tf_finetune.fetch import import_to

        print(import_to(args.model_file, args.to, args.feature_layer, args.pixel_range,
                        args.image_size))
        return 0
    if args.command == "export-tflite":
        from tf_finetune.tflite import export_model

        report = export_model(args.model, args.quantize, args.data, args.validation_data,
                              args.output_dir)
        print(report["tflite_path"])
        return 0
    if args.cpu_devices:
        from tf_finetune.distribute import split_cpu

        split_cpu(args.cpu_devices)
    if args.command == "demo":
        from tf_finetune import demo

        demo.run_demo(args.output, args.cache_dir, args.epochs)
        return 0
    from tf_finetune.cluster import num_workers
    from tf_finetune.job import JobConfig, run

    if args.output is None:
        raise TfFinetuneError("train needs --output DIR (the model goes to DIR/output/model.tar.gz)")
    if args.checkpoint_dir:
        from tf_finetune.checkpoint import install_sigterm_handler

        install_sigterm_handler()
    hps = _hyperparameters(args)
    started = time.perf_counter()
    result = run(JobConfig(data=args.data, output=args.output, model_id=args.model_id,
                           handle=args.handle, validation_data=args.validation_data,
                           hyperparameters=hps, image_size=args.image_size,
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
                    max_seq_length=args.max_seq_length, registry=args.registry)
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

    from tf_finetune.predictor import collect_inputs, open_model, top_k

    with open_model(args.model) as model:
        stdin = sys.stdin.readlines() if "-" in args.inputs else ()
        inputs = collect_inputs(args.inputs, model.task, stdin)
        if not inputs:
            raise TfFinetuneError("nothing to predict on: " + " ".join(args.inputs))
        best = top_k(model.predict(inputs), model.label_map.class_names, max(1, args.top_k))
    for item, ranked in zip(inputs, best):
        if args.json:
            print(json.dumps({"input": item, "predictions": [
                {"label": label, "probability": round(p, 6)} for label, p in ranked]}, ensure_ascii=False))
        else:
            shown = "  ".join(f"{label} {p:.1%}" for label, p in ranked)
            print(f"{item}\t{shown}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tf_finetune import gallery
    from tf_finetune.data import load_examples
    from tf_finetune.evaluation import classification_report, format_report, write_report
    from tf_finetune.predictor import open_model

    with open_model(args.model) as model:
        examples = load_examples(model.task, args.data, model.label_map)
        probabilities = model.predict([str(x) for x in examples.inputs])
        names = model.label_map.class_names
        report = classification_report(examples.labels, probabilities.argmax(axis=1), names)
        report["model"], report["data"] = args.model, args.data
        print(format_report(report))
        written = write_report(report, Path(args.output_dir), f"{Path(args.data).name}: "
                               f"accuracy {report['accuracy']:.3f}")
        found = gallery.mistakes(examples.inputs, examples.labels, probabilities, names)
        written += gallery.write_gallery(model.task, found, format_report(report), Path(args.output_dir))
    for path in written:
        print(f"wrote {path}")
    return 0
