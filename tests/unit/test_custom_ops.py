"""Ops a SavedModel needs beyond core TensorFlow (tf_finetune/backbones/custom_ops.py): finding the op types
a saved graph uses that this process has not registered (in the graph and inside its functions,
function calls aside), the one error for ops nobody provides or for unknown ops when tensorflow_text
cannot be imported, and importing tensorflow_text in a fresh process so a model using its ops loads.

Models with unknown ops are real SavedModels whose saved_model.pb gets extra nodes of op types no
library defines, as a model saved with a newer TensorFlow or a custom op library would have."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from tf_finetune.backbones.custom_ops import register_ops_for, unknown_ops
from tf_finetune.errors import TfFinetuneError

# No library defines these op types.
MADE_UP = [f"TfFinetuneTestOp{letter}" for letter in "GFEDCBA"]


def _with_extra_ops(source: Path, target: Path, graph_ops=(), function_ops=(), call_functions=False) -> Path:
    """A copy of SavedModel ``source`` with nodes of ``graph_ops`` in its graph and of ``function_ops``
    in the body of every function of its library; with ``call_functions``, also a node in the graph
    that calls each library function by name (GraphDef's direct form of a function call)."""
    shutil.copytree(source, target)
    path = target / "saved_model.pb"
    saved = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for graph in saved.meta_graphs:
        for i, op in enumerate(graph_ops):
            graph.graph_def.node.add(name=f"extra_graph_node_{i}", op=op)
        functions = list(graph.graph_def.library.function)
        assert functions, "the tiny module's graph has functions to put ops into"
        for function in functions:
            for i, op in enumerate(function_ops):
                function.node_def.add(name=f"extra_function_node_{i}", op=op)
        if call_functions:
            for i, function in enumerate(functions):
                graph.graph_def.node.add(name=f"call_{i}", op=function.signature.name)
    path.write_bytes(saved.SerializeToString())
    return target


def test_a_model_of_core_ops_needs_nothing_more(image_module, text_module):
    for module in (image_module, text_module):
        assert unknown_ops(module) == []
        assert unknown_ops(str(module)) == []  # a str path too
        register_ops_for(module, f"the model {module.name}")  # nothing to do, no error


def test_unknown_ops_are_found_in_the_graph_and_inside_its_functions_once_each_sorted(image_module, tmp_path):
    module = _with_extra_ops(
        image_module,
        tmp_path / "m",
        graph_ops=["TfFinetuneTestOpZ"],
        function_ops=["TfFinetuneTestOpB", "TfFinetuneTestOpA", "TfFinetuneTestOpB"],
    )
    assert unknown_ops(module) == ["TfFinetuneTestOpA", "TfFinetuneTestOpB", "TfFinetuneTestOpZ"]


def test_a_call_of_one_of_the_models_own_functions_is_not_an_unknown_op(image_module, tmp_path):
    module = _with_extra_ops(image_module, tmp_path / "m", call_functions=True)
    saved = saved_model_pb2.SavedModel.FromString((module / "saved_model.pb").read_bytes())
    called = {node.op for node in saved.meta_graphs[0].graph_def.node if node.name.startswith("call_")}
    # the function names are not registered op types: counted as ops, they would be reported
    assert called and all(op_def_registry.get(op) is None for op in called)
    assert unknown_ops(module) == []


def test_ops_neither_tensorflow_nor_tensorflow_text_provide_are_one_error_naming_them(image_module, tmp_path):
    module = _with_extra_ops(image_module, tmp_path / "m", function_ops=["TfFinetuneTestOpB", "TfFinetuneTestOpA"])
    with pytest.raises(TfFinetuneError) as info:
        register_ops_for(module, "the model models/custom")
    message = str(info.value)
    assert message.startswith("the model models/custom uses ops that neither TensorFlow")
    assert tf.__version__ in message
    assert "TfFinetuneTestOpA, TfFinetuneTestOpB" in message


def test_without_tensorflow_text_the_error_names_six_ops_and_the_pip_extra(image_module, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_text", None)  # makes `import tensorflow_text` fail
    module = _with_extra_ops(image_module, tmp_path / "m", function_ops=MADE_UP)
    with pytest.raises(TfFinetuneError) as info:
        register_ops_for(module, "the model models/spam")
    message = str(info.value)
    first_six = sorted(MADE_UP)[:6]
    assert message.startswith(
        f"the model models/spam uses TensorFlow ops this installation does not have ({', '.join(first_six)}, ...)"
    )
    assert sorted(MADE_UP)[6] not in message
    assert "pip install '.[bert]' in the tf_finetune clone" in message
    assert info.value.__suppress_context__  # one error, not the ImportError chained under it


# A fresh interpreter: no tensorflow_text imported yet, as in a serving or training process.
