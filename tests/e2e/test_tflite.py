"""TFLite export: the ``tflite`` hyperparameter at the end of training, the ``export-tflite``
command, the self-check against the SavedModel, and what is refused (text models, int8 without
training images). The real checks use ONE ants/bees model trained per session
(``ants_bees_h5_run`` in conftest) and convert it four ways."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from helpers import extract, run_main
from tf_finetune.data import load_data
from tf_finetune.errors import HyperparameterError, TfFinetuneError
from tf_finetune.job_options import JobConfig
from tf_finetune.serving.tflite import LABELS_TXT, REPORT_FILE, TFLITE_FILE, export_tflite
from tf_finetune.training.job import plan, run


@pytest.fixture(scope="module")
def ants_bees(ants_bees_h5_run, shared, tmp_path_factory):
    """(output folder, unpacked model folder, data split) of the session's ants/bees run."""
    output, result = ants_bees_h5_run
    model_dir = tmp_path_factory.mktemp("ants_bees_model")
    extract(result.archive, model_dir)
    data = shared / "data" / "hymenoptera"
    return output / "output", model_dir, load_data("image", data / "train", data / "val")


@pytest.fixture(scope="module")
def converted(ants_bees, tmp_path_factory):
    """quantization -> (report, folder): the session's model converted in this process with the
    held-out check, each quantization once whichever test asks first."""
    _, model_dir, data = ants_bees
    done: dict[str, tuple[dict, object]] = {}

    def convert(quantize: str):
        if quantize not in done:
            folder = tmp_path_factory.mktemp(f"tflite_{quantize}")
            done[quantize] = export_tflite(model_dir, folder, quantize, heldout=data.validation), folder
        return done[quantize]

    return convert


def _print_row(report):
    print(
        f"\n| {report['quantize']} | {report['tflite_bytes']:,} | {report['accuracy_tflite']:.4f} | "
        f"{report['accuracy_savedmodel']:.4f} | {report['agreement']:.4f} |"
    )


@pytest.mark.shared
@pytest.mark.slow
def test_none_keeps_the_savedmodel_predictions(converted):
    report, folder = converted("none")
    _print_row(report)
    assert report["runtime"].startswith("ai-edge-litert ")  # LiteRT, not the deprecated tf.lite
    assert report["num_examples"] == 153
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4
    assert report["accuracy_tflite"] == report["accuracy_savedmodel"]
    # the file runs on its own: one ant, in float32 [1, 160, 160, 3] in [0, 1]
    interpreter = Interpreter(model_path=str(folder / TFLITE_FILE))
    interpreter.allocate_tensors()
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 160, 160, 3]
    assert (folder / LABELS_TXT).read_text().splitlines() == ["ants", "bees"]


@pytest.mark.shared
@pytest.mark.slow
def test_export_tflite_command_float16_within_one_point(ants_bees, shared, tmp_path):
    output = ants_bees[0]
    proc = run_main(
        "export-tflite",
        "--model",
        str(output / "model.tar.gz"),
        "--quantize",
        "float16",
        "--validation-data",
        str(shared / "data" / "hymenoptera" / "val"),
        "--output",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / TFLITE_FILE)
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    _print_row(report)
    assert "tflite float16:" in proc.stderr and "SavedModel" in proc.stderr  # reported side by side
    assert abs(report["accuracy_tflite"] - report["accuracy_savedmodel"]) <= 0.01
    assert report["tflite_bytes"] == (tmp_path / TFLITE_FILE).stat().st_size


@pytest.mark.shared
@pytest.mark.slow
def test_int8_from_the_tflite_hyperparameter_within_three_points(ants_bees, ants_bees_h5_run):
    output, _, _ = ants_bees
    report = json.loads((output / REPORT_FILE).read_text())
    _print_row(report)
    assert report["quantize"] == "int8" and report["num_examples"] == 153
    # the job's validation accuracy is what the SavedModel scores in the check
    final = ants_bees_h5_run[1].metrics["final"]["val_accuracy"]
    assert report["accuracy_savedmodel"] == pytest.approx(final, abs=1e-6)
    assert abs(report["accuracy_tflite"] - report["accuracy_savedmodel"]) <= 0.03
    assert (output / LABELS_TXT).read_text() == "ants\nbees\n"
    assert (output / TFLITE_FILE).stat().st_size == report["tflite_bytes"]


@pytest.mark.shared
@pytest.mark.slow
def test_dynamic_and_the_sizes_shrink(converted, ants_bees):
    report, _ = converted("dynamic")
    _print_row(report)
    assert abs(report["accuracy_tflite"] - report["accuracy_savedmodel"]) <= 0.03
    sizes = {q: converted(q)[0]["tflite_bytes"] for q in ("none", "float16", "dynamic")}
    sizes["int8"] = json.loads((ants_bees[0] / REPORT_FILE).read_text())["tflite_bytes"]  # the run's
    print("sizes:", sizes)
    assert sizes["none"] > 1.8 * sizes["float16"]  # weights halved
    assert sizes["float16"] > 1.2 * sizes["int8"]  # int8 weights, plus int8 activations' scales
    assert 0.75 < sizes["dynamic"] / sizes["int8"] < 1.25  # both store int8 weights


# ---- mechanics on tiny models -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(image_module, image_data, tmp_path_factory, cache_dir):
    """A tiny image model trained with tflite=dynamic, written to an output and a model dir."""
    root = tmp_path_factory.mktemp("tiny_tflite")
    result = run(
        JobConfig(
            data=str(image_data),
            output=str(root / "out"),
            handle=str(image_module),
            model_dir=str(root / "model"),
            image_size=32,
            cache_dir=str(cache_dir),
            hyperparameters={"epochs": 1, "train_only_top_layer": True, "tflite": "dynamic"},
        )
    )
    return root, result


def test_tflite_hyperparameter_goes_to_output_and_model_dir(tiny_run):
    root, result = tiny_run
    for folder in (root / "out" / "output", root / "model"):
        assert {TFLITE_FILE, LABELS_TXT, REPORT_FILE} <= {p.name for p in folder.iterdir()}
        assert (folder / LABELS_TXT).read_text() == "blue\nred\n"
    report = json.loads((root / "model" / REPORT_FILE).read_text())
    assert report["quantize"] == "dynamic" and report["input"]["shape"] == [-1, 32, 32, 3]
    assert report["num_examples"] == result.metrics["num_validation_examples"] > 0
    interpreter = Interpreter(model_path=str(root / "model" / TFLITE_FILE))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.full([1, 32, 32, 3], 0.5, np.float32))
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).sum() == pytest.approx(1.0, abs=1e-5)


def test_int8_needs_training_images(tiny_run, image_data, tmp_path):
    with pytest.raises(
        TfFinetuneError,
        match=r"int8 quantization needs a representative sample "
        r"of the training data: give the training images \(--data\)",
    ):
        export_tflite(tiny_run[0] / "model", tmp_path, "int8")
    with pytest.raises(TfFinetuneError, match="is not a tf_finetune model: no labels.json"):
        export_tflite(image_data, tmp_path, "none")
    assert not list(tmp_path.iterdir())


def test_text_models_are_refused_with_the_ops_that_stop_them(text_module, text_data, tmp_path, cache_dir):
    with pytest.raises(HyperparameterError, match="tflite=float16 applies to image models"):
        plan(
            JobConfig(data=str(text_data), output=None, handle=str(text_module), hyperparameters={"tflite": "float16"})
        )
    run(
        JobConfig(
            data=str(text_data),
            output=None,
            handle=str(text_module),
            model_dir=str(tmp_path / "model"),
            cache_dir=str(cache_dir),
            hyperparameters={"epochs": 1, "train_only_top_layer": True},
        )
    )
    with pytest.raises(
        TfFinetuneError,
        match=r"text model cannot be exported to TFLite: .*"
        r"\(LookupTableFindV2, .*StringLower.*\)",
    ):
        export_tflite(tmp_path / "model", tmp_path / "lite", "float16")
    assert not (tmp_path / "lite").exists()


def test_export_tflite_int8_command_calibrates_on_the_training_images_given(tiny_run, image_data, tmp_path):
    archive = tiny_run[0] / "out" / "output" / "model.tar.gz"
    refused = run_main(
        "export-tflite", "--model", str(archive), "--quantize", "int8", "--output", str(tmp_path / "refused")
    )
    assert refused.returncode == 1 and "give the training images (--data)" in refused.stderr
    assert not (tmp_path / "refused").exists()

    out = tmp_path / "lite"
    proc = run_main(
        "export-tflite",
        "--model",
        str(archive),
        "--quantize",
        "int8",
        "--data",
        str(image_data),
        "--validation-data",
        str(image_data),
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["quantize"] == "int8" and report["num_examples"] == 24  # the held-out check ran
    interpreter = Interpreter(model_path=str(out / TFLITE_FILE))
    assert np.int8 in {detail["dtype"] for detail in interpreter.get_tensor_details()}  # int8 weights
    assert (out / LABELS_TXT).read_text() == "blue\nred\n"
