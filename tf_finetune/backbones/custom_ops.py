"""Ops a SavedModel needs beyond core TensorFlow: found, and registered before it is loaded.

BERT-family preprocessors (and every model fine-tuned on one) use TensorFlow Text's ops
(``CaseFoldUTF8``, ``RegexSplitWithOffsets``, ``WordpieceTokenizeWithOffsets``, ...), which
exist in a process only once ``tensorflow_text`` is imported. Loading such a model without
them fails deep inside TensorFlow; :func:`register_ops_for` imports ``tensorflow_text`` when
the model's graph needs it and otherwise names the ops and the pip extra.
"""

from __future__ import annotations

from pathlib import Path

from tf_finetune.errors import TfFinetuneError, install_extra

TEXT_EXTRA = "bert"


def unknown_ops(saved_model_dir: str | Path) -> list[str]:
    """The op types in ``saved_model_dir``'s graph that this process has not registered."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    saved = saved_model_pb2.SavedModel.FromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    functions: set[str] = set()
    for graph in saved.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return sorted(op for op in ops - functions if op_def_registry.get(op) is None)


def register_ops_for(saved_model_dir: str | Path, what: str) -> None:
    """Make the ops ``saved_model_dir`` uses available, importing ``tensorflow_text`` if needed.

    Args:
        saved_model_dir: a folder holding ``saved_model.pb``.
        what: how to name the model in messages (e.g. ``the model models/spam``).

    Raises:
        TfFinetuneError: ops that neither TensorFlow nor TensorFlow Text provide, or
            TensorFlow Text's ops without ``tensorflow_text`` installed (naming the extra).
    """
    missing = unknown_ops(saved_model_dir)
    if not missing:
        return
    listed = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
    try:
        import tensorflow_text  # noqa: F401  (registers its ops)
    except ImportError:
        raise TfFinetuneError(
            f"{what} uses TensorFlow ops this installation does not have ({listed}); they are "
            f"TensorFlow Text's (BERT-family text preprocessing): "
            f"{install_extra(TEXT_EXTRA)}"
        ) from None
    still = unknown_ops(saved_model_dir)
    if still:
        import tensorflow as tf

        raise TfFinetuneError(
            f"{what} uses ops that neither TensorFlow {tf.__version__} nor TensorFlow Text "
            f"provide: {', '.join(still[:6])}; it needs the library that defines them"
        )
