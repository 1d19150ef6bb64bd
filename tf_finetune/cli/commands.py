"""``tf-finetune`` / ``python -m tf_finetune``: flags in, a job out, errors as messages.

TensorFlow is imported only by the commands that train, so ``--help``, ``list-models`` and
``describe`` answer at once.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tf_finetune import job_options, logs, startup, storage
from tf_finetune.api import train_job
from tf_finetune.backbones.packing import fetch_model, import_to
from tf_finetune.cli import catalog, demo
from tf_finetune.cli.parser import build_parsers, hyperparameters_given
from tf_finetune.data import load_examples
from tf_finetune.errors import TfFinetuneError, TrainingInterrupted, disk_full, writing
from tf_finetune.reports import gallery
from tf_finetune.reports.evaluation import classification_report, format_report, write_report
from tf_finetune.sagemaker import launch
from tf_finetune.sagemaker.sdk import submit
from tf_finetune.serving.predictor import collect_inputs, open_model, top_k
from tf_finetune.serving.tflite import export_model
from tf_finetune.training import stopping
from tf_finetune.training.checkpoint import TRAINING_STATE_DIR
from tf_finetune.training.cluster import worker_count
from tf_finetune.training.job_plan import check_job

if TYPE_CHECKING:
    from tf_finetune.job_options import JobConfig

log = logging.getLogger(__name__)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; a usage error exits 2 with one line (an unknown flag's with the closest known
    flags) and a pointer to the command's --help (cli_parser's parser class).

    Unknown flags are reported before anything else argparse would say: a misspelt ``--outptu``
    is why ``--output`` is missing.
    """
    parser, commands = build_parsers()
    name = next((word for word in argv if word in commands), None)
    if name is not None:
        command = commands[name]
        known = {flag for action in (*parser._actions, *command._actions) for flag in action.option_strings}
        flags = argv[: list(argv).index("--")] if "--" in argv else argv  # after "--", inputs only
        misspelt = [word for word in flags if word.startswith("--") and word.partition("=")[0] not in known]
        if misspelt:
            command.error(_unrecognized(command, misspelt))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        commands[args.command].error(_unrecognized(commands[args.command], unknown))
    return args


def _unrecognized(command: argparse.ArgumentParser, unknown: Sequence[str]) -> str:
    """The usage error of ``unknown`` arguments, with the closest known flags of each."""
    # --snake_case and --kebab-case are the same flag: suggest the kebab-case spelling once, and an
    # option by its own name, not an alias (--epsilon, not --eps).
    known = sorted(
        {
            long[0].replace("_", "-")
            for action in command._actions
            if (long := [flag for flag in action.option_strings if flag.startswith("--")])
        }
    )
    hints = []
    for word in unknown:
        close = difflib.get_close_matches(word.partition("=")[0].replace("_", "-"), known, n=2, cutoff=0.6)
        if word.startswith("--") and close:
            hints.append(f"{word}: did you mean {' or '.join(close)}?")
    return f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 usage)."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    logs.configure(quiet_libraries=not args.debug)
    startup.prepare_tensorflow(quiet=not args.debug)
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
    except Exception as exc:
        message = disk_full(exc)
        if message is None or args.debug:
            raise
        print(f"tf-finetune: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tf-finetune: {_interrupted(args)}", file=sys.stderr)
        return 130


def _interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves: for ``train``, the checkpoint to resume from, or that nothing was
    kept and how to make the next run resumable."""
    if args.command != "train":
        return "interrupted"
    folder = args.checkpoint_dir
    if folder and (Path(folder) / TRAINING_STATE_DIR).is_dir():
        return f"interrupted; the last checkpoint in {folder} is kept: run the same command again to resume"
    if folder:
        return (
            f"interrupted before the first checkpoint was saved in {folder}: nothing was kept; run the "
            "same command again to start over"
        )
    return (
        "interrupted: nothing was kept (the model is written when training ends); to make the next "
        "run resumable, add --checkpoint-dir DIR (a checkpoint is saved at every epoch's end)"
    )


def _dispatch(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "train": _train,
        "demo": _demo,
        "launch": _launch,
        "check-data": _check_data,
        "list-models": _list_models,
        "describe": _describe,
        "fetch-model": _fetch_model,
        "predict": _predict,
        "evaluate": _evaluate,
        "import-backbone": _import_backbone,
        "export-tflite": _export_tflite,
    }
    return handlers[args.command](args)


def _list_models(args: argparse.Namespace) -> int:
    print(catalog.table(args.registry, args.task, jumpstart=args.jumpstart))
    return 0


def _describe(args: argparse.Namespace) -> int:
    print(catalog.card(args.registry, args.model_id))
    return 0


def _fetch_model(args: argparse.Namespace) -> int:
    storage.check_destination(args.output, "--output")
    storage.check_destination(args.cache_dir, "--cache-dir")
    with writing(f"the model to {args.output} (through the cache in {args.cache_dir})", "--output or --cache-dir"):
        print(fetch_model(args.model_id, args.output, args.cache_dir, args.registry))
    return 0


def _import_backbone(args: argparse.Namespace) -> int:
    folder = str(Path(args.output).parent) if storage.is_archive(args.output) else args.output
    storage.check_destination(folder, "--output")
    print(import_to(args.model_file, args.output, args.feature_layer, args.pixel_range, args.image_size))
    return 0


def _export_tflite(args: argparse.Namespace) -> int:
    if args.output:
        storage.check_destination(args.output, "--output")
    with writing(f"the TFLite model to {args.output or 'the model folder'}", "--output"):
        report = export_model(args.model, args.quantize, args.data, args.validation_data, args.output)
    print(report["tflite_path"])
    return 0


def _split_cpu(args: argparse.Namespace) -> None:
    if args.cpu_devices:
        from tf_finetune.training.distribute import split_cpu

        split_cpu(args.cpu_devices)


def _demo(args: argparse.Namespace) -> int:
    storage.check_destination(args.cache_dir, "--cache-dir")
    _split_cpu(args)
    demo.run_demo(args.output, args.cache_dir, args.epochs)
    return 0


def _job_config(args: argparse.Namespace, **values: object) -> JobConfig:
    """The training job that a command's flags describe (``train``'s; ``check-data`` and ``launch``
    take the same job flags), with ``values`` instead of some of them."""

    cluster = {"multi_worker": worker_count(os.environ.get("TF_CONFIG")) > 1}
    return job_options.job_config({**vars(args), **cluster, **values}, hyperparameters_given(args))


def _train(args: argparse.Namespace) -> int:
    _split_cpu(args)

    stopping.install_ctrl_c_handler()
    if args.checkpoint_dir:
        stopping.install_sigterm_handler()
    result = train_job(_job_config(args))
    if result.archive:
        print(result.archive)
    return 0


def _launch(args: argparse.Namespace) -> int:

    # --output is where the SageMaker job writes, not the job's own output; the cluster is SageMaker's.
    job = _job_config(args, output=None, multi_worker=False)
    plan = launch.plan(
        launch.LaunchConfig(
            job=job,
            name=args.name,
            output=args.output,
            role=args.role,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            gpus=args.gpus,
            spot=args.spot,
            max_run=args.max_run,
            image_uri=args.image_uri,
            region=args.region,
        )
    )
    print(plan.describe())
    if args.dry_run:
        print(json.dumps(plan.request(), indent=2))
        return 0

    return launch.finish(plan, submit(plan, args.wait), args.wait)


def _check_data(args: argparse.Namespace) -> int:

    # train's flags: those of its output and checkpoints are accepted and unused; --cpu-devices
    # gives the replicas (without it one, as train on a CPU).
    report = check_job(_job_config(args), replicas=args.cpu_devices or 1)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def _predict(args: argparse.Namespace) -> int:
    with open_model(args.model) as model:
        stdin = sys.stdin.readlines() if "-" in args.inputs else ()
        answers = model.answer(collect_inputs(args.inputs, model.task, stdin))
        best = top_k(answers.probabilities, model.label_map.class_names, args.top_k)
    # The inputs that could be used are answered; the others are named with why, and exit 1.
    for item, ranked in zip(answers.inputs, best):
        if args.json:
            print(
                json.dumps(
                    {
                        "input": item,
                        "predictions": [{"label": label, "probability": round(p, 6)} for label, p in ranked],
                    },
                    ensure_ascii=False,
                )
            )
        else:
            shown = "  ".join(f"{label} {p:.1%}" for label, p in ranked)
            print(f"{item}\t{shown}")
    if answers.failures:
        raise TfFinetuneError(answers.failures)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    storage.check_destination(args.output, "--output")
    with open_model(args.model) as model:
        examples = load_examples(model.task, args.data, model.label_map)
        probabilities = model.predict([str(x) for x in examples.inputs])
        names = model.label_map.class_names
        report = classification_report(examples.labels, probabilities.argmax(axis=1), names)
        report["model"], report["data"] = args.model, args.data
        print(format_report(report))
        written = write_report(report, Path(args.output), f"{Path(args.data).name}: accuracy {report['accuracy']:.3f}")
        found = gallery.mistakes(examples.inputs, examples.labels, probabilities, names)
        written += gallery.write_gallery(model.task, found, format_report(report), Path(args.output))
    for path in written:
        print(f"wrote {path}")
    return 0
