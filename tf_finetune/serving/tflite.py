"""TensorFlow Lite export of a fine-tuned model, checked against the SavedModel.

Image models convert the ``serving_images`` signature (float32 RGB ``[batch, size, size, 3]``
in [0, 1]) to a TFLite model whose one output is the class probabilities; TFLite builtins
cover the whole network. Text models are refused with the ops that stop them: their string
handling (lower-casing, regex, splitting, lookups) has no TFLite builtins, and would need the
select-TF-ops (Flex) runtime, which this check cannot run.

Quantization: ``none`` (float32), ``float16`` (weights stored as float16), ``dynamic``
(weights int8, activations float) and ``int8`` (weights and activations int8, calibrated on a
representative sample of the training images; input and output stay float32).

The export checks itself: on held-out data it runs the model in LiteRT (``ai-edge-litert``, the
TFLite runtime that replaces ``tf.lite.Interpreter``) and the SavedModel, and reports both
accuracies and the runtime (``tflite_report.json``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from tf_finetune import model_folder, storage
from tf_finetune.backbones.custom_ops import register_ops_for
from tf_finetune.backbones.peek import task_of_model
from tf_finetune.data import load_examples
from tf_finetune.errors import TfFinetuneError, first_line
from tf_finetune.hyperparameters import QUANTIZATIONS
from tf_finetune.serving.predictor import unpack_model
from tf_finetune.tasks import Task

if TYPE_CHECKING:  # TensorFlow only when a model is converted
    import tensorflow as tf
    from tensorflow.types.experimental import PolymorphicFunction

    from tf_finetune.data import DataSplit, Examples

log = logging.getLogger(__name__)

TFLITE_FILE = "model.tflite"
LABELS_TXT = "labels.txt"
REPORT_FILE = "tflite_report.json"
REPRESENTATIVE_EXAMPLES = 100
BATCH = 32


def export_tflite(
    folder: str | Path,
    out_dir: str | Path,
    quantize: str = "none",
    representative: Examples | None = None,
    heldout: Examples | None = None,
) -> dict[str, Any]:
    """Convert the model in ``folder`` and write ``model.tflite``, ``labels.txt`` and
    ``tflite_report.json`` into ``out_dir``.

    Args:
        folder: a model folder written by tf_finetune (``1/``, ``labels.json``).
        out_dir: where the files go (created if needed; existing files of these names are
            replaced).
        quantize: ``none``, ``float16``, ``dynamic`` or ``int8``.
        representative: training :class:`~tf_finetune.data.Examples` (image paths); int8
            calibrates on a seeded sample of up to 100 of them.
        heldout: held-out :class:`~tf_finetune.data.Examples` to check accuracy on; None skips
            the check.

    Returns:
        The report: quantization, sizes, both accuracies and their agreement.

    Raises:
        TfFinetuneError: not a tf_finetune model, an unknown quantization, int8 without
            training images, a text model (its string ops are not TFLite builtins), a failed
            conversion.
    """
    folder, out_dir = Path(folder), Path(out_dir)
    if quantize not in QUANTIZATIONS:
        raise TfFinetuneError(f"quantize={quantize!r} is not supported: choose one of {', '.join(QUANTIZATIONS)}")
    model_folder.check(folder, str(folder))
    label_map = model_folder.read_labels(folder)
    interpolation = _interpolation(folder)
    task, function, image_size, content = _converted(folder, quantize, representative, interpolation)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage.write_atomically(out_dir / TFLITE_FILE, content)
    storage.write_atomically(out_dir / LABELS_TXT, ("\n".join(label_map.class_names) + "\n").encode("utf-8"))
    report: dict[str, Any] = {
        "quantize": quantize,
        "task": task,
        "tflite_bytes": len(content),
        "savedmodel_bytes": _folder_bytes(model_folder.saved_model_dir(folder)),
        "input": _input_description(task, image_size, interpolation),
        "output": {"name": "probabilities", "dtype": "float32", "shape": [-1, label_map.num_classes]},
        "class_names": list(label_map.class_names),
    }
    if heldout is not None and len(heldout):
        report.update(check_accuracy(content, function, heldout, task, image_size, interpolation))
        _log_accuracy(quantize, len(content), report)
    else:
        log.info("tflite %s: %d bytes; no held-out data, accuracy not checked", quantize, len(content))
    storage.write_atomically(out_dir / REPORT_FILE, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    return report


def _input_description(task: Task, image_size: int | None, interpolation: str) -> dict[str, Any]:
    """The report's ``input``: what the TFLite model takes (name, dtype, shape; for images, the
    value range and the resize method training used)."""
    if task == Task.IMAGE:
        return {
            "name": "image",
            "dtype": "float32",
            "shape": [-1, image_size, image_size, 3],
            "range": [0.0, 1.0],
            "interpolation": interpolation,
        }
    return {"name": "text", "dtype": "string", "shape": [-1]}


def _log_accuracy(quantize: str, size: int, report: dict[str, Any]) -> None:
    """One line: the TFLite model's size and both accuracies on the held-out examples."""
    log.info(
        "tflite %s: %d bytes; accuracy on %d held-out examples: TFLite %.4f, SavedModel %.4f (agreement %.4f)",
        quantize,
        size,
        report["num_examples"],
        report["accuracy_tflite"],
        report["accuracy_savedmodel"],
        report["agreement"],
    )


def _converted(
    folder: Path, quantize: str, representative: Examples | None, interpolation: str
) -> tuple[Task, PolymorphicFunction, int | None, bytes]:
    """(task, the SavedModel function converted, its image size, the ``.tflite`` bytes)."""
    import tensorflow as tf

    register_ops_for(model_folder.saved_model_dir(folder), f"the model {folder}")
    loaded = tf.saved_model.load(str(model_folder.saved_model_dir(folder)))
    task = Task.IMAGE if _is_image_model(folder) else Task.TEXT
    if task != Task.IMAGE:
        function = _text_function(loaded)
        return task, function, None, _convert_text(function, loaded, quantize)
    if quantize == "int8" and (representative is None or not len(representative)):
        raise TfFinetuneError(
            "int8 quantization needs a representative sample of the training data: give the training images (--data)"
        )
    function, image_size = _image_function(loaded)
    samples = (
        _sample(representative, REPRESENTATIVE_EXAMPLES) if quantize == "int8" and representative is not None else None
    )
    return task, function, image_size, _convert(function, loaded, quantize, samples, image_size, interpolation)


def check_accuracy(
    content: bytes,
    function: PolymorphicFunction,
    examples: Examples,
    task: Task,
    image_size: int | None,
    interpolation: str = "bilinear",
) -> dict[str, Any]:
    """Accuracy of the TFLite model and of the SavedModel function on the same examples.

    Args:
        content: the ``.tflite`` flatbuffer.
        function: the SavedModel's probabilities function (same input as the TFLite model).
        examples: :class:`~tf_finetune.data.Examples` with class indices.
        task: ``image`` or ``text``.
        image_size: input size (image task).
        interpolation: resize method used in training.

    Returns:
        ``accuracy_tflite``, ``accuracy_savedmodel``, ``agreement`` (same predicted class),
        ``max_abs_diff`` of the probabilities, ``num_examples`` and ``runtime`` (which
        interpreter ran the TFLite model, with its version).
    """
    import tensorflow as tf

    interpreter, runtime = _interpreter(content)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    lite_rows, saved_rows = [], []
    for start in range(0, len(examples), BATCH):
        chunk = list(examples.inputs[start : start + BATCH])
        batch = _decode(chunk, image_size, interpolation) if task == Task.IMAGE else tf.constant(chunk, dtype=tf.string)
        saved_rows.append(function(batch).numpy())
        value = batch.numpy()
        interpreter.resize_tensor_input(input_index, list(value.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(input_index, value)
        interpreter.invoke()
        lite_rows.append(np.array(interpreter.get_tensor(output_index)))
    lite, saved = np.concatenate(lite_rows), np.concatenate(saved_rows)
    labels = np.asarray(examples.labels)
    return {
        "num_examples": int(len(labels)),
        "accuracy_tflite": float((lite.argmax(1) == labels).mean()),
        "accuracy_savedmodel": float((saved.argmax(1) == labels).mean()),
        "agreement": float((lite.argmax(1) == saved.argmax(1)).mean()),
        "max_abs_diff": float(np.abs(lite - saved).max()),
        "runtime": runtime,
    }


def _interpreter(content: bytes) -> tuple[Any, str]:
    """A LiteRT interpreter of ``content`` and the runtime's name; TensorFlow's own
    ``tf.lite.Interpreter`` (deprecated) only where ``ai-edge-litert`` is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        runtime = f"ai-edge-litert {version('ai-edge-litert')}"
    except ImportError:
        import tensorflow as tf

        log.warning(
            "ai-edge-litert is not installed: checking the TFLite model with TensorFlow's "
            "deprecated tf.lite.Interpreter (pip install ai-edge-litert)"
        )
        Interpreter, runtime = tf.lite.Interpreter, f"tf.lite {tf.__version__}"
    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
        warnings.simplefilter("ignore")
        return Interpreter(model_content=content, num_threads=os.cpu_count()), runtime


def _image_function(loaded: Any) -> tuple[PolymorphicFunction, int]:
    import tensorflow as tf

    from tf_finetune.serving.signatures import IMAGES_SIGNATURE

    if IMAGES_SIGNATURE not in loaded.signatures:
        raise TfFinetuneError(
            f"the model has no {IMAGES_SIGNATURE} signature (written by an "
            "older tf_finetune?): train it again to export TFLite"
        )
    serve = loaded.signatures[IMAGES_SIGNATURE]
    spec = serve.structured_input_signature[1]["image"]
    image_size = int(spec.shape[1])

    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="image")])
    def probabilities(image: tf.Tensor) -> tf.Tensor:
        return serve(image=image)["probabilities"]

    return probabilities, image_size


def _text_function(loaded: Any) -> PolymorphicFunction:
    import tensorflow as tf

    serve = loaded.signatures["serving_default"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def probabilities(text: tf.Tensor) -> tf.Tensor:
        return serve(text=text)["probabilities"]

    return probabilities


def _converter(function: PolymorphicFunction, loaded: Any, quantize: str) -> tf.lite.TFLiteConverter:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], loaded)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def _convert(
    function: PolymorphicFunction,
    loaded: Any,
    quantize: str,
    samples: Sequence[str] | None,
    image_size: int,
    interpolation: str,
) -> bytes:
    import tensorflow as tf

    converter = _converter(function, loaded, quantize)
    if quantize == "int8":
        assert samples is not None  # int8: _converted sampled the training images

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for path in samples:
                yield [_decode([path], image_size, interpolation).numpy()]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        with _quiet_absl():
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and plain exceptions
        raise TfFinetuneError(f"TFLite conversion ({quantize}) failed: {first_line(exc)}") from None


def _convert_text(function: PolymorphicFunction, loaded: Any, quantize: str) -> bytes:
    string_ops = _string_ops(function.get_concrete_function().graph)
    if string_ops:
        _refuse_text(", ".join(string_ops[:8]))
    converter = _converter(function, loaded, quantize)
    try:
        with _quiet_absl():
            return converter.convert()
    except Exception as exc:
        names = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op", str(exc))))
        _refuse_text(", ".join(names[:8]) if names else first_line(exc)[:200])


def _refuse_text(detail: str) -> NoReturn:
    raise TfFinetuneError(
        "this text model cannot be exported to TFLite: its text processing needs TensorFlow ops "
        f"that TFLite has no builtins for ({detail}). TFLite export supports image models; "
        "serve a text model as the SavedModel (model.tar.gz)"
    )


_PLUMBING = {
    "Placeholder",
    "Identity",
    "IdentityN",
    "Const",
    "NoOp",
    "StatefulPartitionedCall",
    "PartitionedCall",
    "Pack",
    "GatherV2",
    "Reshape",
    "Shape",
    "If",
    "StatelessIf",
    "While",
    "StatelessWhile",
}


def _string_ops(graph: tf.Graph) -> list[str]:
    """Types of the ops in ``graph`` and the functions it calls that compute on strings."""
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    graph_def = graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    found = set()
    for node in nodes:
        types = [value.type for key, value in node.attr.items() if key in ("T", "dtype", "Tin", "Tout")]
        types += [t for key, value in node.attr.items() for t in value.list.type]
        if tf.string.as_datatype_enum in types and node.op not in _PLUMBING:
            found.add(node.op)
    for node in nodes:  # ops whose definition declares string inputs or outputs (TF Text's too)
        op_def = op_def_registry.get(node.op)
        if op_def is not None and any(
            arg.type == tf.string.as_datatype_enum for arg in (*op_def.input_arg, *op_def.output_arg)
        ):
            found.add(node.op)
    return sorted(found)


def _decode(paths: Sequence[str], image_size: int | None, interpolation: str) -> tf.Tensor:
    import tensorflow as tf

    from tf_finetune.data.pipeline import decode_image

    if not image_size:
        raise ValueError("image inputs need image_size")
    return tf.stack([decode_image(tf.constant(p), image_size, interpolation) for p in paths])


def _sample(examples: Examples, count: int) -> list[str]:
    paths = list(examples.inputs)
    random.Random(0).shuffle(paths)
    return paths[:count]


def _interpolation(folder: Path) -> str:
    hp = model_folder.read_metrics(folder).get("hyperparameters", {})
    return hp.get("image_resize_interpolation", "bilinear")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """Keep absl's INFO lines (renamed function inputs) out of the log during save/convert."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        absl.setLevel(level)


def export_after_training(
    quantize: str, folder: Path, data: DataSplit, workdir: Path, targets: Sequence[str]
) -> dict[str, Any]:
    """The ``tflite`` hyperparameter: export the just-trained model and put the files in place.

    Args:
        quantize: ``float16``, ``dynamic`` or ``int8``.
        folder: the written model folder (``1/``, ``labels.json``).
        data: the job's :class:`~tf_finetune.data.DataSplit` (training images calibrate int8;
            the validation examples check accuracy).
        workdir: a scratch folder.
        targets: folders or ``s3://`` prefixes to receive ``model.tflite``, ``labels.txt`` and
            ``tflite_report.json``.

    Returns:
        The report.
    """
    staging = workdir / "tflite"
    report = export_tflite(folder, staging, quantize, data.train, data.validation)
    for target in targets:
        for name in (TFLITE_FILE, LABELS_TXT, REPORT_FILE):
            storage.publish(staging / name, f"{target.rstrip('/')}/{name}")
        log.info("%s written to %s", TFLITE_FILE, target)
    return report


def export_model(
    model: str,
    quantize: str = "none",
    data: str | None = None,
    validation_data: str | None = None,
    output_dir: str | None = None,
) -> dict[str, Any]:
    """``export-tflite``: convert a model folder, ``model.tar.gz`` or ``s3://`` archive.

    Args:
        model: the fine-tuned model.
        quantize: ``none``, ``float16``, ``dynamic`` or ``int8``.
        data: training data (class folders); int8 calibrates on a sample of it.
        validation_data: held-out labelled data to check accuracy on (optional).
        output_dir: where the files go; default beside ``model.tar.gz`` or in the model folder
            (required for an ``s3://`` model).

    Returns:
        The report, plus ``tflite_path``.

    Raises:
        TfFinetuneError: see :func:`export_tflite`; unreadable model or data.
    """
    if storage.is_s3(model) and not output_dir:
        raise TfFinetuneError(f"{model} is on S3: give --output for the TFLite files")

    with tempfile.TemporaryDirectory(prefix="tf_finetune.serving.tflite.") as tmp:
        default_out = Path(model).parent if Path(model).is_file() else Path(model)
        path = unpack_model(model, Path(tmp))
        label_map = model_folder.read_labels(path)
        task = Task.IMAGE if _is_image_model(path) else Task.TEXT
        representative = load_examples(task, data, label_map) if data and task == Task.IMAGE else None
        heldout = load_examples(task, validation_data, label_map) if validation_data else None
        out = Path(output_dir) if output_dir else default_out
        report = export_tflite(path, out, quantize, representative, heldout)
    report["tflite_path"] = str(out / TFLITE_FILE)
    return report


def _is_image_model(folder: Path) -> bool:
    return task_of_model(folder) == Task.IMAGE
