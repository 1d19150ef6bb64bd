"""The catalogue of fine-tunable backbones (``hub_models.yaml``), read and validated.

The catalogue is data: one YAML file, one :class:`ModelSpec` per entry, one door
(:meth:`Registry.get`), which also answers to SageMaker JumpStart's model ids (an entry's
``jumpstart_ids``; the ids with no counterpart here are listed with the reason and what to use
instead). Reading it never imports TensorFlow, so ``list-models`` and ``describe`` answer at once.
"""

from __future__ import annotations

import difflib
import importlib.resources
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tf_finetune import hyperparameters
from tf_finetune.errors import HyperparameterError, RegistryError
from tf_finetune.tasks import TASK_NAMES, Task

PIXEL_RANGES = ("0,1",)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_JUMPSTART_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # JumpStart's ids keep their capitals (L-12-H-768)
# Handles the registry accepts: hub and Kaggle URLs, buckets, local folders, built-ins.
_HANDLE = re.compile(r"^(https://[a-z0-9.-]+/\S+|gs://\S+|s3://\S+|file://\S+|builtin:[a-z0-9_-]+)$")
_REQUIRED = ("id", "task", "handle", "fine_tunable", "license", "description")
_KNOWN = set(_REQUIRED) | {
    "preprocessor",
    "output_key",
    "image_size",
    "pixel_range",
    "output_dim",
    "kaggle_handle",
    "requires",
    "hyperparameters",
    "jumpstart_ids",
}


@dataclass(frozen=True)
class ModelSpec:
    """One backbone: an entry of the catalogue, or a bare handle from the command line.

    A job derives its own with :func:`dataclasses.replace` (its image size and sequence
    length, where the weights were localised); a bare handle knows its id (the handle), task
    and handle only.

    Attributes:
        id: registry id used on the command line (a bare handle: the handle itself).
        task: ``image`` or ``text``.
        handle: TF-Hub handle (tfhub.dev/Kaggle URL, ``builtin:NAME``, path, archive).
        fine_tunable: whether the backbone's weights may be trained.
        license: licence of the pretrained weights.
        description: one line for people.
        preprocessor: handle of a separate text preprocessing model (BERT family).
        output_key: key of the feature output when the backbone returns a dict.
        image_size: input height = width in pixels (image task).
        pixel_range: input value range (image task); TF-Hub image models take ``0,1``.
        output_dim: width of the feature vector, where known.
        kaggle_handle: the same model on Kaggle Models.
        requires: extra Python packages the backbone needs (e.g. tensorflow-text).
        hyperparameters: default overrides for this backbone.
        max_seq_length: text with a BERT-style preprocessor: the sequence length to pack to;
            None = the preprocessor's own (a job's choice, never in the catalogue).
        jumpstart_ids: the SageMaker JumpStart model ids this entry stands for (its handle is
            the published TF2 feature vector or encoder of the model JumpStart lists).
    """

    id: str
    task: Task
    handle: str
    fine_tunable: bool = True
    license: str = ""
    description: str = ""
    preprocessor: str | None = None
    output_key: str | None = None
    image_size: int | None = None
    pixel_range: str | None = None
    output_dim: int | None = None
    kaggle_handle: str | None = None
    requires: tuple[str, ...] = ()
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    max_seq_length: int | None = None
    jumpstart_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))  # "image" as written in YAML or code: a Task


@dataclass(frozen=True)
class Unavailable:
    """JumpStart model ids with no counterpart in the catalogue: why, and the entry to use instead."""

    ids: tuple[str, ...]
    reason: str
    instead: str


@dataclass(frozen=True)
class Registry:
    """All entries of one registry file, with the per-task default hyperparameters and the
    JumpStart ids it cannot serve."""

    source: str
    models: tuple[ModelSpec, ...]
    task_defaults: Mapping[str, Mapping[str, Any]]
    unavailable: tuple[Unavailable, ...] = ()

    def get(self, model_id: str) -> ModelSpec:
        """Return the entry ``model_id``: a registry id or one of an entry's JumpStart ids.

        Raises:
            RegistryError: unknown id, with the closest known ids; or a JumpStart id with no
                counterpart here, with the reason and the entry to use instead.
        """
        for spec in self.models:
            if model_id == spec.id or model_id in spec.jumpstart_ids:
                return spec
        for gap in self.unavailable:
            if model_id in gap.ids:
                raise RegistryError(
                    f"JumpStart model id {model_id!r} has no counterpart in {self.source}: {gap.reason} "
                    f"Use --model-id {gap.instead} instead, or pass --handle."
                )
        known = [name for spec in self.models for name in (spec.id, *spec.jumpstart_ids)]
        close = difflib.get_close_matches(model_id, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise RegistryError(
            f"unknown model id {model_id!r} in {self.source}.{hint} "
            "Run 'tf-finetune list-models' to see all ids (--jumpstart for JumpStart's), or pass --handle."
        )


def default_registry_path() -> Path:
    """The ``hub_models.yaml`` shipped inside the package."""
    return Path(str(importlib.resources.files("tf_finetune") / "hub_models.yaml"))


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and validate a registry file.

    Args:
        path: a YAML file; the packaged ``hub_models.yaml`` when None.

    Returns:
        The validated :class:`Registry`.

    Raises:
        RegistryError: naming the file, the entry and the field that is wrong.
    """
    path = Path(path) if path else default_registry_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"cannot read registry {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"registry {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise RegistryError(f"registry {path}: expected a mapping with a 'models' list")
    task_defaults = document.get("task_defaults") or {}
    if not isinstance(task_defaults, dict):
        raise RegistryError(f"registry {path}: 'task_defaults' must be a mapping of task to hyperparameters")
    for task, values in task_defaults.items():
        if task not in TASK_NAMES:
            raise RegistryError(f"registry {path}: task_defaults has unknown task {task!r}")
        _check_hyperparameters(path, f"registry {path}, task_defaults.{task}", values)
    models = tuple(_parse_entry(path, index, entry) for index, entry in enumerate(document["models"]))
    unavailable = _parse_unavailable(path, document.get("jumpstart_unavailable") or [])
    _check_unique(path, models, unavailable)
    return Registry(str(path), models, task_defaults, unavailable)


def _parse_unavailable(path: Path, items: Any) -> tuple[Unavailable, ...]:
    where = f"registry {path}, jumpstart_unavailable"
    if not isinstance(items, list):
        raise RegistryError(f"{where}: expected a list of {{ids, reason, instead}}")
    parsed = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"ids", "reason", "instead"}:
            raise RegistryError(f"{where}[{index}]: expected exactly the fields ids, reason, instead")
        parsed.append(
            Unavailable(_jumpstart_ids(f"{where}[{index}]", item["ids"]), str(item["reason"]), item["instead"])
        )
    return tuple(parsed)


def _jumpstart_ids(where: str, ids: Any) -> tuple[str, ...]:
    if not isinstance(ids, list) or not all(isinstance(i, str) and _JUMPSTART_ID.match(i) for i in ids):
        raise RegistryError(f"{where}: JumpStart ids must be a list of ids (letters, digits, '.', '_', '-')")
    return tuple(ids)


def _check_unique(path: Path, models: tuple[ModelSpec, ...], unavailable: tuple[Unavailable, ...]) -> None:
    """Every id and JumpStart id names one thing; every ``instead`` names an entry."""
    seen: dict[str, str] = {}
    named = [(f"models[{i}]", name) for i, spec in enumerate(models) for name in (spec.id, *spec.jumpstart_ids)]
    named += [(f"jumpstart_unavailable[{i}]", name) for i, gap in enumerate(unavailable) for name in gap.ids]
    for where, name in named:
        if name in seen:
            raise RegistryError(f"registry {path}, {where}: id {name!r} is also in {seen[name]}; ids must be unique")
        seen[name] = where
    ids = {spec.id for spec in models}
    for index, gap in enumerate(unavailable):
        if gap.instead not in ids:
            raise RegistryError(
                f"registry {path}, jumpstart_unavailable[{index}]: 'instead' is {gap.instead!r}, not a registry id"
            )


def _parse_entry(path: Path, index: int, entry: Any) -> ModelSpec:
    where = f"registry {path}, models[{index}]"
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: expected a mapping, got {type(entry).__name__}")
    if isinstance(entry.get("id"), str):
        where += f" (id {entry['id']!r})"
    for name in _REQUIRED:
        if entry.get(name) in (None, ""):
            raise RegistryError(f"{where}: required field {name!r} is missing")
    unknown = sorted(set(entry) - _KNOWN)
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if not isinstance(entry["id"], str) or not _ID.match(entry["id"]):
        raise RegistryError(f"{where}: field 'id' must be lower-case letters, digits, '.', '_', '-'")
    if entry["task"] not in TASK_NAMES:
        raise RegistryError(f"{where}: field 'task' is {entry['task']!r}; expected one of {TASK_NAMES}")
    for name in ("handle", "preprocessor", "kaggle_handle"):
        value = entry.get(name)
        if value is not None and not (isinstance(value, str) and _HANDLE.match(value)):
            raise RegistryError(f"{where}: field {name!r} is not a well-formed handle: {value!r}")
    if not isinstance(entry["fine_tunable"], bool):
        raise RegistryError(f"{where}: field 'fine_tunable' must be true or false; got {entry['fine_tunable']!r}")
    if entry["task"] == Task.IMAGE:
        size = entry.get("image_size")
        if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 2048:
            raise RegistryError(f"{where}: image models need 'image_size', an integer 8..2048; got {size!r}")
        if str(entry.get("pixel_range", "0,1")) not in PIXEL_RANGES:
            raise RegistryError(f"{where}: field 'pixel_range' must be one of {PIXEL_RANGES}")
    elif entry.get("image_size") is not None:
        raise RegistryError(f"{where}: field 'image_size' is for image models only")
    overrides = entry.get("hyperparameters") or {}
    _check_hyperparameters(path, where, overrides)
    return ModelSpec(
        id=entry["id"],
        task=entry["task"],
        handle=entry["handle"],
        fine_tunable=entry["fine_tunable"],
        license=str(entry["license"]),
        description=str(entry["description"]).strip(),
        preprocessor=entry.get("preprocessor"),
        output_key=entry.get("output_key"),
        image_size=entry.get("image_size"),
        pixel_range=str(entry["pixel_range"]) if entry.get("pixel_range") else None,
        output_dim=entry.get("output_dim"),
        kaggle_handle=entry.get("kaggle_handle"),
        requires=tuple(entry.get("requires") or ()),
        hyperparameters=dict(overrides),
        jumpstart_ids=_jumpstart_ids(where, entry.get("jumpstart_ids") or []),
    )


def _check_hyperparameters(path: Path, where: str, values: Any) -> None:
    if not isinstance(values, dict):
        raise RegistryError(f"{where}: 'hyperparameters' must be a mapping")
    try:
        hyperparameters.normalize(values)
    except HyperparameterError as exc:
        raise RegistryError(f"{where}: {exc}") from exc
