"""No import circles inside aqbench: the module graph, from every import at any level (a function-level import
is still a dependency, only a deferred one), has no cycle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aqbench"

# Edges left out on purpose, each (importer, imported), with the reason and who removes it: a cycle through code
# being rewritten elsewhere is listed here until that rewrite breaks it. Empty: the budget labels (once config.py's
# bits_label and label_groups, now aqbench/budget.py) and aqbench/report/aggregate.py are in no cycle.
EXCLUDED_EDGES: set[tuple[str, str]] = set()


def module_names():
    """{dotted module name: path} for every .py file of the package (a package is its __init__.py)."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("aqbench",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _known(name, modules):
    """The longest prefix of a dotted name that is a module of the package (import aqbench.a.b.c -> aqbench.a.b)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) or None


def imports_of(module, path, modules):
    """The aqbench modules that `module` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..y import z
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # from aqbench.pkg import name: the submodule when name is one, else the package itself
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "aqbench" or target.startswith("aqbench."):
                known = _known(target, modules)
                if known and known != module:
                    found.add(known)
                    found |= _packages_run_by(module, known, modules)
    return found


def _packages_run_by(module, target, modules):
    """The packages whose __init__.py importing `target` from `module` runs first: target's enclosing packages
    below aqbench that do not enclose `module` (those are already being imported): from aqbench.methods.common
    import x in aqbench/search.py runs aqbench/methods/__init__.py, and so everything that imports, first."""
    parts = target.split(".")
    packages = {".".join(parts[:i]) for i in range(2, len(parts))}
    return {p for p in packages if p in modules and not (module == p or module.startswith(p + "."))}


def import_graph():
    modules = module_names()
    return {
        module: {t for t in imports_of(module, path, modules) if (module, t) not in EXCLUDED_EDGES}
        for module, path in modules.items()
    }


def find_cycle(graph):
    """One cycle as a list of modules (first == last), or None: a depth-first search in sorted order."""
    state, stack = {}, []  # state: 1 on the stack, 2 done

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def all_cycles(graph):
    """Cycles until none is left, each found after removing the last edge of the one before (at least one per
    tangle of modules), for the failure message: every circle in view, not only the first."""
    graph = {k: set(v) for k, v in graph.items()}
    cycles = []
    while (cycle := find_cycle(graph)) is not None:
        cycles.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])
    return cycles


def test_graph_sees_function_level_and_submodule_imports():
    graph = import_graph()
    assert "aqbench.tasks.conll03" in graph["aqbench.tasks"]  # from aqbench.tasks import conll03: the submodule
    assert "aqbench.registry" in graph["aqbench.config"]  # from aqbench import registry
    assert "aqbench.config" in graph["aqbench.cli"]  # imported inside the CLI's functions
    assert "aqbench.methods" in graph["aqbench.search"]  # from aqbench.methods.common import ...: runs its __init__
    assert "aqbench.tasks" not in graph["aqbench.tasks.kinds.tagging"]  # its own package is already importing
    assert all(m.startswith("aqbench") for targets in graph.values() for m in targets)


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycles = all_cycles(import_graph())
    assert not cycles, "import cycles in aqbench:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_excluded_edges_exist():
    """An exclusion that no longer matches an import is stale: remove it."""
    modules = module_names()
    for importer, imported in EXCLUDED_EDGES:
        assert imported in imports_of(importer, modules[importer], modules), (importer, imported)
