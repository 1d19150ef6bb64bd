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

A request the model cannot use raises ValueError with what was wrong and what to send; the
container returns it as the error response.
"""

from __future__ import annotations

import base64
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the shapes of what the container passes; never defined when the container runs
    from typing import Protocol

    class _Body(Protocol):
        """The request body as the container passes it (a stream)."""

        def read(self) -> bytes | str: ...

    class _Reply(Protocol):
        """TF Serving's REST response (the container's ``requests`` response)."""

        status_code: int
        content: bytes


_LABELS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "labels.json")
_IMAGE_TYPES = ("application/x-image", "image/jpeg", "image/png")
_TEXT_TYPES = ("application/x-text", "text/plain")
_ACCEPTED = "send application/x-image, application/x-text or application/json"
_JSON_SHAPES = 'JSON: a text, a list of texts, a list of {"b64": "<base64 image>"}, or {"instances": [...]}'
# What the model decodes (tf.io.decode_image), by the file's first bytes.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
_labels: list[str] | None = None


def _class_names() -> list[str]:
    global _labels
    if _labels is None:
        with open(_LABELS_FILE, encoding="utf-8") as handle:
            _labels = json.load(handle)["class_names"]
    return _labels


def _media_type(value: str | None, default: str) -> str:
    return (value or default).split(";")[0].strip().lower()


def input_handler(data: _Body | bytes | str, context: object) -> str:
    """Turn a request body into a TF Serving REST ``predict`` request (JSON).

    Raises:
        ValueError: an empty body, an unsupported content type, bytes that are not an image,
            text that is not UTF-8, JSON that is malformed or of another shape, a ``b64`` field
            that is not base64, or images and texts mixed in one request (the message says which).
    """
    content_type = _media_type(getattr(context, "request_content_type", None), "application/json")
    body = data.read() if hasattr(data, "read") else data
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body:
        raise ValueError(f"the request body is empty: {_ACCEPTED}")
    if content_type in _IMAGE_TYPES:
        _check_image(body, "the body")
        instances = [{"b64": base64.b64encode(body).decode("ascii")}]
    elif content_type in _TEXT_TYPES:
        instances = [_utf8(body)]
    elif content_type == "application/json":
        payload = _json(body)
        if isinstance(payload, dict) and "inputs" in payload:  # TF Serving's columnar format, as it is
            return json.dumps(payload)
        instances = _instances(payload)
    else:
        raise ValueError(f"unsupported content type {content_type!r}: {_ACCEPTED}")
    return json.dumps({"instances": instances})


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the text is not UTF-8 (byte {exc.start}): send UTF-8 text") from None


def _check_image(data: bytes, where: str) -> None:
    if not data.startswith(_IMAGE_MAGIC):
        raise ValueError(f"{where} is not a JPEG, PNG, GIF or BMP image ({len(data)} bytes starting {data[:8]!r})")


def _json(body: bytes) -> Any:
    try:
        return json.loads(_utf8(body))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); send {_JSON_SHAPES}"
        ) from None


def _instances(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and "instances" in payload:
        instances = payload["instances"]
    else:
        instances = payload if isinstance(payload, list) else [payload]
    if not isinstance(instances, list) or not instances:
        raise ValueError(f"no instances to predict on: send {_JSON_SHAPES}")
    kinds: set[str] = set()
    for index, instance in enumerate(instances):
        if isinstance(instance, str):
            kinds.add("text")
        elif isinstance(instance, dict) and set(instance) == {"b64"} and isinstance(instance["b64"], str):
            try:
                data = base64.b64decode(instance["b64"], validate=True)
            except ValueError:
                raise ValueError(f'instance {index}: its "b64" field is not base64') from None
            _check_image(data, f"instance {index}")
            kinds.add("image")
        else:
            raise ValueError(f"instance {index} is {json.dumps(instance)[:60]}: send {_JSON_SHAPES}")
    if len(kinds) > 1:
        raise ValueError("the request mixes texts and images; a model takes one kind: send them in separate requests")
    return instances


def output_handler(data: _Reply, context: object) -> tuple[str, str]:
    """Turn TF Serving's response into JumpStart-style JSON; returns (body, content type)."""
    if data.status_code != 200:
        raise ValueError(
            f"the model could not use the request ({data.status_code}): {data.content.decode('utf-8', 'replace')[:500]}"
        )
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
