"""What a deployed model answers: serving signatures, SageMaker TFS handlers, predict and evaluate."""

from __future__ import annotations

import base64
import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tiny_modules
from helpers import extract, grid_shape, run_main
from tf_finetune.backbones.tfhub import hub
from tf_finetune.cli import commands
from tf_finetune.data.pipeline import decode_image
from tf_finetune.job_options import JobConfig
from tf_finetune.training.job import run

FAST = {"epochs": 4, "batch_size": 4, "learning_rate": 0.05, "label_smoothing": 0.0}

# Runs in a fresh interpreter that never imports tf_finetune: plain TensorFlow, as a server does.
PLAIN_TF_SCRIPT = """
import json, sys
import tensorflow as tf
model_dir, kind, *inputs = sys.argv[1:]
serve = tf.saved_model.load(model_dir).signatures["serving_default"]
if kind == "image":
    out = serve(image_bytes=tf.constant([open(p, "rb").read() for p in inputs]))
else:
    out = serve(text=tf.constant(inputs))
print(json.dumps({"probabilities": out["probabilities"].numpy().tolist(),
                  "label": [x.decode() for x in out["label"].numpy()]}))
"""


@pytest.fixture(scope="module")
def image_model(image_module, image_data, cache_dir, tmp_path_factory) -> Path:
    """A fine-tuned tiny image model, unpacked; its validation images are in ``<dir>/../val``."""
    root = tmp_path_factory.mktemp("served")
    validation = tiny_modules.write_image_folder(root / "val", per_class=5)
    result = run(
        JobConfig(
            data=str(image_data),
            validation_data=str(validation),
            output=str(root / "out"),
            handle=str(image_module),
            image_size=24,
            hyperparameters=FAST,
            cache_dir=str(cache_dir),
        )
    )
    extract(result.archive, root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def text_model(text_module, text_data, cache_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served-text")
    result = run(
        JobConfig(
            data=str(text_data),
            output=str(root / "out"),
            handle=str(text_module),
            hyperparameters=dict(FAST, epochs=8),
            cache_dir=str(cache_dir),
        )
    )
    extract(result.archive, root / "model")
    return root / "model"


def plain_tf(model_dir: Path, kind: str, inputs) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_TF_SCRIPT, str(model_dir / "1"), kind, *map(str, inputs)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def keras_model(model_dir: Path) -> tf_keras.Model:
    return tf_keras.models.load_model(str(model_dir / "1"), custom_objects={"KerasLayer": hub.KerasLayer})


def test_raw_jpeg_bytes_served_by_plain_tensorflow_match_the_keras_model(image_model):
    paths = sorted((image_model.parent / "val").rglob("*.jpg"))
    served = plain_tf(image_model, "image", paths)
    # The Keras model on images decoded by the training pipeline: no train/serve skew.
    images = tf.stack([decode_image(tf.constant(str(p)), 24, "bilinear") for p in paths])
    expected = keras_model(image_model).predict(images, verbose=0)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    names = json.loads((image_model / "labels.json").read_text())["class_names"]
    assert served["label"] == [names[i] for i in expected.argmax(axis=1)]
    assert served["label"] == [p.parent.name for p in paths]  # the colours are learnt

    batch = tf.saved_model.load(str(image_model / "1")).signatures["serving_images"]
    np.testing.assert_allclose(batch(image=images)["probabilities"].numpy(), expected, atol=1e-6)


def test_raw_strings_served_by_plain_tensorflow_match_the_keras_model(text_model):
    texts = ["rain and snow today", "the team scored a goal", "wind and cloud", "a match to win"]
    served = plain_tf(text_model, "text", texts)
    expected = keras_model(text_model).predict(tf.constant(texts), verbose=0)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["label"] == ["1", "2", "1", "2"]


@dataclass
class Context:
    """The attributes of the TFS container's request context that the handlers read."""

    request_content_type: str
    accept_header: str


@dataclass
class Response:
    status_code: int
    content: bytes


def tf_serving_predict(model_dir: Path, request: str) -> Response:
    """What TF Serving's REST predict does with a JSON request, in row format."""
    serve = tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    instances = json.loads(request)["instances"]
    values = [base64.b64decode(x["b64"]) if isinstance(x, dict) else x.encode() for x in instances]
    try:
        outputs = {k: v.numpy().tolist() for k, v in serve(**{input_name: tf.constant(values)}).items()}
    except tf.errors.InvalidArgumentError as exc:
        return Response(400, json.dumps({"error": exc.message}).encode())
    rows = [
        {k: (v[i].decode() if isinstance(v[i], bytes) else v[i]) for k, v in outputs.items()}
        for i in range(len(values))
    ]
    return Response(200, json.dumps({"predictions": rows}).encode())


def load_handlers(model_dir: Path):
    spec = importlib.util.spec_from_file_location("inference", model_dir / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tfs_handlers_answer_images_as_jumpstart_does(image_model):
    handlers = load_handlers(image_model)
    image = sorted((image_model.parent / "val" / "red").glob("*.jpg"))[0]
    names = json.loads((image_model / "labels.json").read_text())["class_names"]

    context = Context("application/x-image", "application/json;verbose")
    request = handlers.input_handler(image.read_bytes(), context)
    body, content_type = handlers.output_handler(tf_serving_predict(image_model, request), context)
    answer = json.loads(body)
    assert content_type == "application/json"
    assert answer["labels"] == names and answer["predicted_label"] == "red"
    assert len(answer["probabilities"]) == 2 and sum(answer["probabilities"]) == pytest.approx(1, abs=1e-5)

    context = Context("application/x-image", "application/json")
    body, _ = handlers.output_handler(
        tf_serving_predict(image_model, handlers.input_handler(image.read_bytes(), context)), context
    )
    assert json.loads(body) == {"probabilities": answer["probabilities"]}

    # a JSON batch of base64 images gives one answer per image
    blue = sorted((image_model.parent / "val" / "blue").glob("*.jpg"))[0]
    batch = json.dumps([{"b64": base64.b64encode(p.read_bytes()).decode()} for p in (image, blue)])
    context = Context("application/json", "application/json;verbose")
    body, _ = handlers.output_handler(tf_serving_predict(image_model, handlers.input_handler(batch, context)), context)
    assert [a["predicted_label"] for a in json.loads(body)] == ["red", "blue"]

    # a body that is not an image is refused before the model, not answered wrongly
    context = Context("application/x-image", "application/json")
    with pytest.raises(ValueError, match="the body is not a JPEG, PNG, GIF or BMP image"):
        handlers.input_handler(b"not an image", context)
    # a truncated JPEG gets past the first bytes: the model's error comes back, named
    truncated = tf_serving_predict(image_model, handlers.input_handler(image.read_bytes()[:200], context))
    with pytest.raises(ValueError, match=r"the model could not use the request \(400\): .*(?i:jpeg|decode)"):
        handlers.output_handler(truncated, context)
    with pytest.raises(ValueError, match="unsupported content type 'application/pdf'"):
        handlers.input_handler(b"%PDF", Context("application/pdf", "application/json"))


def test_tfs_handlers_answer_texts(text_model):
    handlers = load_handlers(text_model)
    context = Context("application/x-text", "application/json;verbose")
    body, _ = handlers.output_handler(
        tf_serving_predict(text_model, handlers.input_handler(b"the team scored a goal", context)), context
    )
    assert json.loads(body)["predicted_label"] == "2"
    context = Context("application/json", "application/json;verbose")
    request = handlers.input_handler(json.dumps(["rain and snow today", "a match to win"]), context)
    body, _ = handlers.output_handler(tf_serving_predict(text_model, request), context)
    assert [a["predicted_label"] for a in json.loads(body)] == ["1", "2"]


def test_predict_command_prints_top_k_and_json(image_model, tmp_path):
    val = image_model.parent / "val"
    archive = image_model.parent / "out" / "output" / "model.tar.gz"
    proc = run_main("predict", "--model", str(archive), "--top-k", "2", str(val))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 10
    for line in lines:
        path, ranked = line.split("\t")
        first = ranked.split()[0]
        assert first == Path(path).parent.name and ranked.count("%") == 2

    proc = run_main("predict", "--model", str(image_model), "--json", str(next(val.glob("red/*.jpg"))))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["predictions"][0]["label"] == "red" and len(answer["predictions"]) == 2

    proc = run_main("predict", "--model", str(tmp_path), "x.jpg")
    assert proc.returncode == 1 and "is not a tf_finetune model: no labels.json" in proc.stderr


def test_predict_texts_from_arguments_and_stdin(text_model):
    proc = run_main(
        "predict",
        "--model",
        str(text_model),
        "--top-k",
        "1",
        "the team scored a goal",
        "-",
        stdin="rain and snow today\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert [line.split("\t")[1].split()[0] for line in proc.stdout.strip().splitlines()] == ["2", "1"]


def test_evaluate_reports_the_validation_accuracy_and_writes_files(image_model, tmp_path):
    proc = run_main(
        "evaluate",
        "--model",
        str(image_model),
        "--data",
        str(image_model.parent / "val"),
        "--output",
        str(tmp_path / "eval"),
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((image_model / "metrics.json").read_text())
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["final"]["val_accuracy"], abs=1e-6)
    assert report["num_examples"] == 10 and sum(map(sum, report["confusion_matrix"])) == 10
    assert set(report["per_class"]) == {"blue", "red"}
    assert f"accuracy={report['accuracy']:.4f} macro_f1={report['macro_f1']:.4f}" in proc.stdout
    assert (tmp_path / "eval" / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_a_test_set_that_lacks_a_class_or_has_an_unknown_one(image_model, tmp_path):
    import shutil

    only_blue = tmp_path / "only_blue"
    shutil.copytree(image_model.parent / "val" / "blue", only_blue / "blue")
    proc = run_main(
        "evaluate", "--model", str(image_model), "--data", str(only_blue), "--output", str(tmp_path / "eval")
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{only_blue} has no examples of 1 of the 2 classes (red)" in proc.stderr
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["absent_classes"] == ["red"] and report["per_class"]["red"]["support"] == 0
    assert report["num_examples"] == len(list((only_blue / "blue").iterdir()))
    assert "(not in the test data)" in proc.stdout

    shutil.copytree(image_model.parent / "val" / "red", only_blue / "green")
    proc = run_main(
        "evaluate", "--model", str(image_model), "--data", str(only_blue), "--output", str(tmp_path / "eval2")
    )
    assert proc.returncode == 1
    assert "has class folder(s) that the training data does not have: ['green']" in proc.stderr
    assert not (tmp_path / "eval2").exists()


def test_evaluate_draws_the_misclassified_images_most_confident_first(image_model, tmp_path):
    import shutil

    from PIL import Image

    # Each class's validation images filed under the other class: the model's right answers become mistakes.
    swapped = tmp_path / "swapped"
    for true, other in (("blue", "red"), ("red", "blue")):
        shutil.copytree(image_model.parent / "val" / true, swapped / other)
    assert (
        commands.main(
            ["evaluate", "--model", str(image_model), "--data", str(swapped), "--output", str(tmp_path / "eval")]
        )
        == 0
    )
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    matrix = np.array(report["confusion_matrix"])
    wrong = int(matrix.sum() - np.trace(matrix))
    assert wrong > 0
    with Image.open(tmp_path / "eval" / "misclassified.png") as grid:
        grid.load()
        assert grid.size == grid_shape(min(wrong, 36))
    with open(tmp_path / "eval" / "misclassified.csv", newline="", encoding="utf-8") as handle:
        named = list(csv.DictReader(handle))  # every mistake, by file: to find and fix it
    assert len(named) == wrong and all(Path(row["path"]).parent.name == row["true"] for row in named)
    assert all(Path(row["path"]).is_relative_to(swapped) and row["predicted"] != row["true"] for row in named)
    table = (tmp_path / "eval" / "per_class.txt").read_text()
    assert table.splitlines()[1].startswith("blue") and table.splitlines()[2].startswith("red")


def test_evaluate_lists_the_misclassified_texts_one_to_one(text_model, text_data, tmp_path):
    import csv

    labels = json.loads((text_model / "labels.json").read_text())
    flipped = tmp_path / "flipped.csv"
    with (
        open(text_data, newline="", encoding="utf-8") as source,
        open(flipped, "w", newline="", encoding="utf-8") as target,
    ):
        rows = list(csv.reader(source))
        low, high = labels["original_labels"]
        csv.writer(target).writerows([high if int(label) == low else low, text] for label, text in rows)
    assert (
        commands.main(
            ["evaluate", "--model", str(text_model), "--data", str(flipped), "--output", str(tmp_path / "eval")]
        )
        == 0
    )
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    matrix = np.array(report["confusion_matrix"])
    with open(tmp_path / "eval" / "misclassified.csv", newline="", encoding="utf-8") as handle:
        mistakes = list(csv.DictReader(handle))
    assert len(mistakes) == int(matrix.sum() - np.trace(matrix)) > 0
    truth = {text: str(high if int(label) == low else low) for label, text in rows}
    assert all(m["true"] == truth[m["text"]] and m["predicted"] != m["true"] for m in mistakes)
    assert {m["true"] for m in mistakes} <= set(labels["class_names"])
    probabilities = [float(m["probability"]) for m in mistakes]
    assert probabilities == sorted(probabilities, reverse=True)


def test_predict_answers_the_good_images_and_names_the_bad_one(image_model, tmp_path):
    from PIL import Image

    good = next((image_model.parent / "val" / "red").glob("*.jpg"))
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(good, folder / "a_good.jpg")
    Image.open(good).save(folder / "b_anim.gif")  # the model decodes GIFs, but training leaves them out
    Image.open(good).save(tmp_path / "placeholder.gif")
    (folder / "c_broken.jpg").write_bytes(b"this is not an image")
    proc = run_main(
        "predict", "--model", str(image_model), "--top-k", "1", str(folder), str(tmp_path / "placeholder.gif")
    )
    assert proc.returncode == 1
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == [str(folder / "a_good.jpg")]
    assert proc.stdout.split("\t")[1].startswith("red ")
    assert (
        f"ignored 1 file(s) that are not .jpg/.jpeg/.png, which training ignores too: {folder / 'b_anim.gif'}"
        in proc.stderr.splitlines()
    )
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert error == (
        f"tf-finetune: error: cannot predict on 2 input(s): {folder / 'c_broken.jpg'}: not an image "
        f"(cannot be decoded); {tmp_path / 'placeholder.gif'}: not a .jpg/.jpeg/.png file, and training "
        "reads only those: convert it to JPEG or PNG"
    )


@pytest.mark.parametrize(
    "argument, message",
    [
        ("missing_reviews.txt", "no such file (to classify these characters as a text"),
        ("data/new.csv", "no such file"),
        ("", "an empty text, nothing to classify"),
    ],
)
def test_predict_names_what_is_not_a_text_and_answers_the_others(text_model, argument, message):
    proc = run_main("predict", "--model", str(text_model), "rain and snow today", argument, "a match to win")
    assert proc.returncode == 1
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == ["rain and snow today", "a match to win"]
    assert f"tf-finetune: error: cannot predict on 1 input(s): {argument!r}: {message}" in proc.stderr


def test_predict_refuses_folders_and_images_for_a_text_model(text_model, image_model, capsys):
    image = next((image_model.parent / "val" / "red").glob("*.jpg"))
    for argument, message in (
        (str(image.parent), "a folder; a text model takes texts"),
        (str(image), "an image file, and this model classifies texts"),
    ):
        assert commands.main(["predict", "--model", str(text_model), argument]) == 1
        assert f"{argument!r}: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("k", ["0", "-1", "two"])
def test_predict_top_k_must_be_positive(text_model, k, capsys):
    with pytest.raises(SystemExit) as exited:
        commands.main(["predict", "--model", str(text_model), "--top-k", k, "a text"])
    assert exited.value.code == 2
    assert f"argument --top-k: expected a whole number, 1 or more, got '{k}'" in capsys.readouterr().err


HOSTILE = [  # (content type, body, what the error says)
    ("application/json", b"{not json", "the body is not valid JSON (Expecting property name"),
    ("application/json", b'{"foo": 1}', 'instance 0 is {"foo": 1}: send JSON: a text, a list of texts'),
    ("application/json", b"[1, 2]", "instance 0 is 1: send JSON"),
    ("application/json", b'{"instances": []}', "no instances to predict on"),
    ("application/json", b'[{"b64": "***not base64***"}]', 'instance 0: its "b64" field is not base64'),
    ("application/json", b'[{"b64": "aGVsbG8="}]', "instance 0 is not a JPEG, PNG, GIF or BMP image"),
    ("application/json", b'["a text", {"b64": "/9j/4AAQ"}]', "the request mixes texts and images"),
    ("application/pdf", b"%PDF-1.4", "unsupported content type 'application/pdf': send application/x-image"),
    ("application/x-image", b"", "the request body is empty"),
    ("application/x-image", b"\x00" * (20 * 2**20), "the body is not a JPEG, PNG, GIF or BMP image (20971520 bytes"),
    ("text/plain", b"\xff\xfe caf\xe9", "the text is not UTF-8 (byte 0)"),
]


@pytest.mark.parametrize("content_type, body, message", HOSTILE, ids=[m[:30] for _, _, m in HOSTILE])
def test_hostile_requests_get_a_clear_error(text_model, content_type, body, message):
    handlers = load_handlers(text_model)
    with pytest.raises(ValueError) as error:
        handlers.input_handler(body, Context(content_type, "application/json"))
    assert message in str(error.value)


def test_valid_requests_still_work_after_hostile_ones_and_long_texts(text_model):
    handlers = load_handlers(text_model)
    for content_type, body, _ in HOSTILE:
        with pytest.raises(ValueError):
            handlers.input_handler(body, Context(content_type, "application/json"))
    context = Context("application/json", "application/json;verbose")
    long_text = "rain " * 20_000  # 100,000 characters
    request = handlers.input_handler(json.dumps(["rain and snow today", long_text]), context)
    body, _ = handlers.output_handler(tf_serving_predict(text_model, request), context)
    answers = json.loads(body)
    assert len(answers) == 2 and answers[0]["predicted_label"] == "1"
    assert sum(answers[1]["probabilities"]) == pytest.approx(1.0, abs=1e-4)


def test_evaluate_a_text_model(text_model, text_data, tmp_path, capsys):
    assert (
        commands.main(
            ["evaluate", "--model", str(text_model), "--data", str(text_data), "--output", str(tmp_path / "eval")]
        )
        == 0
    )
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    rows = [line for line in text_data.read_text().splitlines() if line.strip()]
    assert report["num_examples"] == len(rows) and 0.0 <= report["accuracy"] <= 1.0
    out = capsys.readouterr().out
    supports = [int(line.split()[-1]) for line in out.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert sum(supports) == len(rows)  # one per-class row per label of the CSV
    assert f"wrote {tmp_path / 'eval' / 'evaluation.json'}" in out


def test_predict_and_evaluate_read_a_model_on_s3(image_model, s3, tmp_path, capsys):
    archive = image_model.parent / "out" / "output" / "model.tar.gz"
    s3.create_bucket(Bucket="trained")
    s3.upload_file(str(archive), "trained", "job/output/model.tar.gz")
    uri = "s3://trained/job/output/model.tar.gz"
    val = image_model.parent / "val"

    assert commands.main(["predict", "--model", str(image_model), "--json", str(val)]) == 0
    local = capsys.readouterr().out
    assert commands.main(["predict", "--model", uri, "--json", str(val)]) == 0
    assert capsys.readouterr().out == local and len(local.splitlines()) == 10

    assert commands.main(["evaluate", "--model", uri, "--data", str(val), "--output", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    metrics = json.loads((image_model / "metrics.json").read_text())
    assert report["num_examples"] == 10
    assert report["accuracy"] == pytest.approx(metrics["final"]["val_accuracy"], abs=1e-6)

    assert commands.main(["predict", "--model", "s3://trained/no-such/model.tar.gz", str(val)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tf-finetune: error:")]
    assert errors == [
        "tf-finetune: error: nothing found at s3://trained/no-such/model.tar.gz: the prefix is "
        "empty or does not exist in bucket trained"
    ]
