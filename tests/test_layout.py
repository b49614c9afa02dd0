"""The package's layout (docs/design.md, "Architecture"): imports only go down.

Read from the installed package's sources, every import counted, also those inside functions:
no import circle, and nothing below the front ends (the estimators, the command line, the
plots) imports one of them.
"""
import ast
from pathlib import Path

import pytest

import cbackprop

PACKAGE = Path(cbackprop.__file__).resolve().parent
FRONT_ENDS = ("cbackprop.cli", "cbackprop.sklearn", "cbackprop.plot")
ENTRY_POINTS = {"cbackprop.__main__": "cbackprop.cli"}     # python -m cbackprop is the command


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path, modules):
    """The cbackprop modules a source file imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cbackprop"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cbackprop"):
            # `from cbackprop.cli import train` names a module; `from x import Name`, x's
            # contents (the package itself for a name in its __init__)
            named = {f"{node.module}.{a.name}" for a in node.names}
            submodules = named & modules
            found.update(submodules)
            if submodules != named:
                found.add(node.module)
    return found


def _graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, set(modules)) if m in modules and m != name}
    return graph


def _belongs_to(module, package):
    return module == package or module.startswith(package + ".")


def test_sources_are_there():
    graph = _graph()
    assert {"cbackprop.network", "cbackprop.training", "cbackprop.modelfile"} <= set(graph)


def test_no_import_circle():
    graph = _graph()
    # the package's __init__ re-exports the public names: it sits on top, imported by none
    graph.pop("cbackprop", None)
    for deps in graph.values():
        deps.discard("cbackprop")
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycle = path[path.index(dep):] + [dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_nothing_below_imports_a_front_end():
    for module, deps in sorted(_graph().items()):
        if module in ENTRY_POINTS or any(_belongs_to(module, f) for f in FRONT_ENDS):
            continue                          # front ends may use the plots, say
        for dep in deps:
            if any(_belongs_to(dep, f) for f in FRONT_ENDS):
                pytest.fail(f"{module} imports the front end {dep}")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path):
    """One concern a module: about 600 lines at most."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 620


def test_the_core_knows_the_names_of_the_table():
    """The compiled core's codes cover exactly the names of _validation's table."""
    from cbackprop import _validation as v
    from cbackprop._core import core
    assert set(core._HIDDEN_CODES) == set(v.HIDDEN_ACTIVATIONS)
    assert set(core._OUTPUT_CODES) == set(v.OUTPUTS)
    assert set(core._LOSS_CODES) == set(v.LOSSES)
    assert set(core._SOLVER_CODES) == set(v.SOLVERS) - set(v.FULL_BATCH_SOLVERS) - {"online"}
