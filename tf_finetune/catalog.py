"""Text renderings of the registry for ``list-models`` and ``describe`` (no TensorFlow)."""
from __future__ import annotations

from tf_finetune.registry import ModelSpec, load_registry


def _input(spec: ModelSpec) -> str:
    if spec.task == "image":
        return f"{spec.image_size}px [{spec.pixel_range or '0,1'}]"
    return "strings" + (" +preproc" if spec.preprocessor else "")


def table(registry_path: str | None = None, task: str | None = None) -> str:
    """One row per backbone: id, task, fine-tunable, input, output width, description.

    Args:
        registry_path: a registry file, or None for the packaged one.
        task: only this task when given.

    Returns:
        The aligned table as text.
    """
    models = [m for m in load_registry(registry_path).models if task in (None, m.task)]
    rows = [("ID", "TASK", "FINE-TUNABLE", "INPUT", "DIM", "DESCRIPTION")]
    rows += [(m.id, m.task, "yes" if m.fine_tunable else "no", _input(m),
              str(m.output_dim or "?"), m.description) for m in models]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5]
                     for r in rows)


def card(registry_path: str | None, model_id: str) -> str:
    """Every field of one backbone, one per line."""
    spec = load_registry(registry_path).get(model_id)
    lines = [f"{spec.id}: {spec.description}",
             f"  task:            {spec.task}",
             f"  handle:          {spec.handle}"]
    if spec.kaggle_handle:
        lines.append(f"  kaggle handle:   {spec.kaggle_handle}")
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
    overrides = ", ".join(f"{k}={v}" for k, v in spec.hyperparameters.items()) or "none"
    lines.append(f"  hyperparameters: {overrides}")
    return "\n".join(lines)
