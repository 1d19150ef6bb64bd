"""Text renderings of the registry for ``list-models`` and ``describe`` (no TensorFlow)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from tf_finetune.hyperparameters import SCHEMA, normalize, resolve
from tf_finetune.registry import ModelSpec, load_registry
from tf_finetune.tasks import Task
from tf_finetune.training.head_search import CHOOSABLE

# Refused for text models (see job_plan), so a text card does not show them.
IMAGE_ONLY = frozenset(p.name for p in SCHEMA if p.task == Task.IMAGE)


def _input(spec: ModelSpec) -> str:
    if spec.task == Task.IMAGE:
        return f"{spec.image_size}px [{spec.pixel_range or '0,1'}]"
    return "strings" + (" +preproc" if spec.preprocessor else "")


def table(registry_path: str | None = None, task: Task | None = None, *, jumpstart: bool = False) -> str:
    """One row per backbone: id, task, fine-tunable, input, output width, description.

    Args:
        registry_path: a registry file, or None for the packaged one.
        task: only this task when given.
        jumpstart: add the SageMaker JumpStart model ids each entry answers to, and list the
            JumpStart ids with no counterpart (with the entry to use instead).

    Returns:
        The aligned table as text.
    """
    registry = load_registry(registry_path)
    models = [m for m in registry.models if task in (None, m.task)]
    head = ("ID", "TASK", "FINE-TUNABLE", "INPUT", "DIM")
    rows = [(*head, "JUMPSTART MODEL IDS" if jumpstart else "DESCRIPTION")]
    rows += [
        (
            m.id,
            m.task,
            "yes" if m.fine_tunable else "no",
            _input(m),
            str(m.output_dim or "?"),
            (", ".join(m.jumpstart_ids) or "-") if jumpstart else m.description,
        )
        for m in models
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    if jumpstart:
        lines += [
            f"{name}: no counterpart here ({gap.reason}); use {gap.instead}"
            for gap in registry.unavailable
            for name in gap.ids
            if task is None or registry.get(gap.instead).task == task
        ]
    return "\n".join(lines)


def card(registry_path: str | None, model_id: str) -> str:
    """Every field of one backbone, one per line."""
    registry = load_registry(registry_path)
    spec = registry.get(model_id)
    lines = [f"{spec.id}: {spec.description}", f"  task:            {spec.task}", f"  handle:          {spec.handle}"]
    if spec.kaggle_handle:
        lines.append(f"  kaggle handle:   {spec.kaggle_handle}")
    if spec.jumpstart_ids:
        lines.append(f"  jumpstart ids:   {', '.join(spec.jumpstart_ids)}")
    if spec.preprocessor:
        lines.append(f"  preprocessor:    {spec.preprocessor}")
    if spec.output_key:
        lines.append(f"  output key:      {spec.output_key}")
    lines.append(f"  input:           {_input(spec)}")
    lines.append(f"  output dim:      {spec.output_dim or 'unknown'}")
    lines.append(f"  fine-tunable:    {'yes' if spec.fine_tunable else 'no'}")
    lines.append(f"  licence:         {spec.license}")
    if spec.requires:
        lines.append(f"  requires:        {', '.join(spec.requires)}")
    lines.extend(_default_hyperparameters(registry.task_defaults.get(spec.task) or {}, spec.hyperparameters, spec.task))
    return "\n".join(lines)


def _default_hyperparameters(task_defaults: Mapping[str, Any], entry: Mapping[str, Any], task: Task) -> list[str]:
    """The hyperparameters a job with this entry starts from, marked by where they come from."""
    task_defaults, entry = normalize(task_defaults), normalize(entry)
    values = resolve(task_defaults, entry)
    words = [
        f"{name}={value}" + ("*" if name in entry else "+" if name in task_defaults else "")
        for name, value in values.items()
        if task == Task.IMAGE or name not in IMAGE_ONLY
    ]
    head = (
        f"  hyperparameters: the defaults of a job with this backbone; a value you pass wins "
        f"(* this entry's, + the {task} task's)"
    )
    lines = [
        head,
        *textwrap.wrap(
            "  ".join(words), width=100, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False
        ),
    ]
    if not values.choose_hyperparameters:
        lines.append("  chosen by the job: nothing (choose_hyperparameters=False)")
    elif values.train_only_top_layer:
        lines.append(
            f"  chosen by the job when you leave them unset: {', '.join(CHOOSABLE)} (by validation "
            "loss, on cached features; metrics.json 'choices' has the evidence)"
        )
    else:
        lines.append(
            "  chosen by the job when you leave it unset: epochs (all run; the weights of the one "
            "with the lowest validation loss are kept)"
        )
    return lines
