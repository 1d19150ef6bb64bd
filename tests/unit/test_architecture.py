"""The package's shape: folders by role, layered one way down (the doors over SageMaker, over
training, over the model files, over the reports, over the backbones, over the shared leaves), an
import graph with no cycle, one module per basename, no more than 15 modules at the top, and no
function or module that outgrows a screen or a sitting (60 and 500 lines).

Every ``import`` counts, including those inside functions: a local import hides a cycle from
the interpreter but not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO

PACKAGE = REPO / "tf_finetune"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Module name -> file, for every module of ``package`` (the SageMaker entry point script aside)."""
    return {_module_name(p, package.parent): p for p in sorted(package.rglob("*.py")) if "entrypoint" not in p.parts}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports (``from tf_finetune import x`` counts as ``x``)."""
    files = package_modules(package)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in (_module_of(t, files) for t in targets):
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40 and graph["tf_finetune.training.job"], "the graph was not read"
    assert cycles(graph) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    "module, imported",
    [("tf_finetune.training.job", "tf_finetune.model_folder"), ("tf_finetune.data", "tf_finetune.data.images")],
)
def test_imports_are_resolved_to_modules(module, imported):
    assert imported in import_graph()[module]


MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 500


def oversized(package: Path = PACKAGE) -> list[str]:
    """Functions over MAX_FUNCTION_LINES (docstring included) and modules over MAX_MODULE_LINES."""
    found = []
    for path in sorted(package.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > MAX_MODULE_LINES:
            found.append(f"{path.relative_to(package)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(package)}:{node.lineno} {node.name}: {length} lines")
    return found


def test_functions_and_modules_stay_readable_in_one_screen():
    assert oversized() == []


def test_an_oversized_function_would_be_found(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n", encoding="utf-8")
    assert oversized(tmp_path) == [f"long.py:1 long: {MAX_FUNCTION_LINES + 1} lines"]


# The wings, lowest first: a module may import its own layer and the layers below, never above.
LAYERS = [
    {
        "errors",
        "logs",
        "progress",
        "startup",
        "s3",
        "storage",
        "hyperparameters",
        "job_options",
        "registry",
        "model_folder",
        "data",
        "tasks",
    },  # the shared leaves
    {"backbones"},
    {"reports"},
    {"serving"},
    {"training"},
    {"sagemaker"},
    {"tf_finetune", "__main__", "api", "cli"},  # the doors
]


def layer_of(module: str) -> int:
    wing = module.split(".")[1] if "." in module else module
    [rank] = [rank for rank, wings in enumerate(LAYERS) if wing in wings]
    return rank


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {imported}"
        for module, targets in graph.items()
        for imported in targets
        if layer_of(imported) > layer_of(module)
    )


def test_every_module_sits_in_a_layer_and_imports_only_downwards():
    assert upward_arrows(import_graph()) == []


def test_an_upward_arrow_would_be_found():
    graph = {"tf_finetune.reports.plots": {"tf_finetune.training.job"}, "tf_finetune.training.job": set()}
    assert upward_arrows(graph) == ["tf_finetune.reports.plots -> tf_finetune.training.job"]


MAX_TOP_LEVEL_MODULES = 15


def test_the_top_of_the_package_holds_the_shared_leaves_and_the_doors_only():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_two_modules_share_a_basename():
    names: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            names.setdefault(path.stem, []).append(str(path.relative_to(PACKAGE)))
    assert {stem: paths for stem, paths in names.items() if len(paths) > 1} == {}


MAX_REQUIRED_PARAMETERS = 6


def long_parameter_lists(package: Path = PACKAGE) -> list[str]:
    """Functions with more than MAX_REQUIRED_PARAMETERS parameters without a default (``self`` and
    ``cls`` aside; keyword-only ones count): what belongs together goes into a record, the rest
    is keyword-only with a default."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                positional = args.posonlyargs + args.args
                required = [arg.arg for arg in positional[: len(positional) - len(args.defaults)]]
                required += [arg.arg for arg, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
                count = len([name for name in required if name not in ("self", "cls")])
                if count > MAX_REQUIRED_PARAMETERS:
                    found.append(
                        f"{path.relative_to(package)}:{node.lineno} {node.name}: {count} parameters without a default"
                    )
    return found


def test_no_function_takes_more_than_six_parameters_without_a_default():
    assert long_parameter_lists() == []


def test_a_long_parameter_list_would_be_found(tmp_path):
    (tmp_path / "wide.py").write_text(
        "class C:\n"
        "    def fine(self, a, b, c, d, e, f, g=0, *, h=1):\n        pass\n\n"
        "def wide(a, b, c, d, e, f, *, g):\n    pass\n\n"
        "async def wider(a, b, c, d, e, f, g, h=0):\n    pass\n",
        encoding="utf-8",
    )
    assert long_parameter_lists(tmp_path) == [
        "wide.py:5 wide: 7 parameters without a default",
        "wide.py:8 wider: 7 parameters without a default",
    ]


def test_every_test_file_is_a_unit_or_an_end_to_end_one():
    """The e2e mark comes from the folder (tests/conftest.py), so a test file anywhere else would
    have no kind; one basename per test file, as pytest imports them by basename."""
    tests = REPO / "tests"
    assert sorted(p.name for p in tests.glob("test_*.py")) == []
    assert sorted(p.name for p in (tests / "support").glob("test_*.py")) == []
    unit, e2e = ({p.name for p in (tests / kind).glob("test_*.py")} for kind in ("unit", "e2e"))
    assert unit and e2e and unit.isdisjoint(e2e)


def local_stdlib_imports(package: Path = PACKAGE) -> list[str]:
    """Function-local imports of the standard library: they cost nothing at the top, where a reader
    looks for them (local imports are for what keeps TensorFlow and the SDKs out of the fast commands)."""
    import sys

    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import):
                        names = [alias.name for alias in inner.names]
                    elif isinstance(inner, ast.ImportFrom) and not inner.level:
                        names = [inner.module or ""]
                    else:
                        continue
                    found += [
                        f"{path.relative_to(package)}:{inner.lineno} {name}"
                        for name in names
                        if name.split(".")[0] in sys.stdlib_module_names
                    ]
    return found


def test_the_standard_library_is_imported_at_the_top():
    assert local_stdlib_imports() == []


def test_a_local_standard_library_import_would_be_found(tmp_path):
    (tmp_path / "late.py").write_text("def late():\n    import json\n    return json\n", encoding="utf-8")
    assert local_stdlib_imports(tmp_path) == ["late.py:2 json"]


# What a function-local import may defer: a library that takes seconds to load or pulls in much.
HEAVY_LIBRARIES = frozenset(
    {"tensorflow", "tf_keras", "tensorflow_hub", "tensorflow_text", "matplotlib", "boto3", "botocore", "sagemaker"}
)


def _import_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs when imported: its body's, not those under ``if TYPE_CHECKING``,
    and its functions' only for a function its body calls (``hub = _import_hub()``)."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending += node.orelse
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            pending += [] if not isinstance(node, ast.ClassDef) else node.body
        else:
            called = [n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
            pending += [inner for name in called if name in functions for inner in ast.walk(functions.pop(name))]
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending += getattr(node, field, [])
    return found


def heavy_at_import(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the HEAVY_LIBRARIES that importing it loads: its own import-time imports, and
    those of the package modules (and parent packages) it imports, transitively."""
    files = package_modules(package)
    direct: dict[str, tuple[set[str], set[str]]] = {}
    for name, path in files.items():
        libraries, modules = set(), {parent for parent in _parents(name) if parent in files}
        for node in _import_time_imports(ast.parse(path.read_text("utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package.name):
                names = [f"{node.module}.{a.name}" for a in node.names]
            for target in names:
                if target.split(".")[0] == package.name:
                    modules.add(_module_of(target, files))
                else:
                    libraries |= {target.split(".")[0]} & HEAVY_LIBRARIES
        direct[name] = (libraries, modules - {name, ""})
    heavy: dict[str, set[str]] = {}

    def visit(name: str, seen: frozenset[str]) -> set[str]:
        if name not in heavy:
            libraries, modules = direct[name]
            heavy[name] = set(libraries).union(*(visit(m, seen | {name}) for m in modules if m not in seen))
        return heavy[name]

    for name in files:
        visit(name, frozenset())
    return heavy


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _module_of(target: str, files: dict[str, Path]) -> str:
    while target and target not in files:  # a name inside a module: its module
        target = target.rpartition(".")[0]
    return target


def light_local_imports(package: Path = PACKAGE) -> list[str]:
    """Function-local imports of package modules that load none of HEAVY_LIBRARIES: nothing is
    saved by deferring them, so they belong at the top, where a reader looks for them."""
    files = package_modules(package)
    heavy = heavy_at_import(package)
    found = []
    for path in files.values():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(package.name):
                    targets = [_module_of(f"{inner.module}.{a.name}", files) for a in inner.names]
                elif isinstance(inner, ast.Import) and inner.names[0].name.startswith(package.name):
                    targets = [_module_of(a.name, files) for a in inner.names]
                else:
                    continue
                if not any(heavy.get(t) for t in targets):
                    found.append(f"{path.relative_to(package)}:{inner.lineno} {', '.join(targets)}")
    return found


def test_function_local_imports_defer_only_modules_that_load_a_heavy_library():
    assert light_local_imports() == []


def test_a_light_local_import_would_be_found_and_a_heavy_one_allowed(tmp_path):
    package = tmp_path / "tf_finetune"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "light.py").write_text("import json\n")
    (package / "heavy.py").write_text("from tf_finetune import light\nimport tensorflow as tf\n")
    (package / "hidden.py").write_text("def _load():\n    import matplotlib\n    return matplotlib\n\nplt = _load()\n")
    (package / "user.py").write_text(
        "def f():\n    from tf_finetune import heavy, hidden\n    from tf_finetune.light import json\n"
        "    return heavy, hidden, json\n"
    )
    assert heavy_at_import(package) == {
        "tf_finetune": set(),
        "tf_finetune.light": set(),
        "tf_finetune.heavy": {"tensorflow"},
        "tf_finetune.hidden": {"matplotlib"},
        "tf_finetune.user": set(),
    }
    assert light_local_imports(package) == ["user.py:3 tf_finetune.light"]
