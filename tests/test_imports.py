"""No import circles inside aqbench: the module graph, from every import at any level (a function-level import
is still a dependency, only a deferred one), has no cycle."""

from aqbench import importgraph

# Edges left out on purpose, each (importer, imported), with the reason and who removes it: a cycle through code
# being rewritten elsewhere is listed here until that rewrite breaks it. Empty: the budget labels (once config.py's
# bits_label and label_groups, now aqbench/budget.py) and aqbench/report/aggregate.py are in no cycle.
EXCLUDED_EDGES: set[tuple[str, str]] = set()


def import_graph():
    graph = importgraph.import_graph()
    return {module: {t for t in targets if (module, t) not in EXCLUDED_EDGES} for module, targets in graph.items()}


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
    graph = importgraph.import_graph()
    for importer, imported in EXCLUDED_EDGES:
        assert imported in graph[importer], (importer, imported)
