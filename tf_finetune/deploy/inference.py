"""Request and response handlers for the SageMaker TensorFlow Serving container.

Shipped as ``code/inference.py`` inside every ``model.tar.gz``; the container calls
``input_handler`` before TensorFlow Serving's REST ``predict`` and ``output_handler`` after.
Standard library only: it runs in the serving container, not where tf_finetune is installed.

Requests (``Content-Type``):
    application/x-image (also image/jpeg, image/png)  one image's raw bytes
    application/x-text (also text/plain)              one text, UTF-8
    application/json    {"instances": [...]} as TF Serving takes it; a list of texts or of
                        {"b64": "<base64 image>"}; or one string
Responses (``Accept``):
    application/json          {"probabilities": [...]}  (a list of those for several inputs)
    application/json;verbose  {"probabilities": [...], "labels": [...], "predicted_label": "..."}
"""
import base64
import json
import os

_LABELS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "labels.json")
_IMAGE_TYPES = ("application/x-image", "image/jpeg", "image/png")
_TEXT_TYPES = ("application/x-text", "text/plain")
_labels = None


def _class_names():
    global _labels
    if _labels is None:
        with open(_LABELS_FILE, encoding="utf-8") as handle:
            _labels = json.load(handle)["class_names"]
    return _labels


def _media_type(value, default):
    return (value or default).split(";")[0].strip().lower()


def input_handler(data, context):
    """Turn a request body into a TF Serving REST ``predict`` request (JSON)."""
    content_type = _media_type(getattr(context, "request_content_type", None), "application/json")
    body = data.read() if hasattr(data, "read") else data
    if isinstance(body, str):
        body = body.encode("utf-8")
    if content_type in _IMAGE_TYPES:
        instances = [{"b64": base64.b64encode(body).decode("ascii")}]
    elif content_type in _TEXT_TYPES:
        instances = [body.decode("utf-8")]
    elif content_type == "application/json":
        payload = json.loads(body.decode("utf-8"))
        if isinstance(payload, dict) and ("instances" in payload or "inputs" in payload):
            return json.dumps(payload)
        instances = payload if isinstance(payload, list) else [payload]
    else:
        raise ValueError(f"unsupported content type {content_type!r}: send application/x-image, "
                         "application/x-text or application/json")
    return json.dumps({"instances": instances})


def output_handler(data, context):
    """Turn TF Serving's response into JumpStart-style JSON; returns (body, content type)."""
    if data.status_code != 200:
        raise ValueError(data.content.decode("utf-8"))
    predictions = json.loads(data.content.decode("utf-8"))["predictions"]
    verbose = "verbose" in (getattr(context, "accept_header", None) or "")
    answers = []
    for prediction in predictions:
        probabilities = prediction["probabilities"] if isinstance(prediction, dict) else prediction
        answer = {"probabilities": probabilities}
        if verbose:
            labels = _class_names()
            answer["labels"] = labels
            answer["predicted_label"] = labels[max(range(len(probabilities)), key=probabilities.__getitem__)]
        answers.append(answer)
    return json.dumps(answers[0] if len(answers) == 1 else answers), "application/json"
