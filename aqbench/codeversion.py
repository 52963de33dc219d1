"""The code version of a stage: a hash of the aqbench modules its command imports, so that a change to the code
a job runs reruns that job (a rule parameter) and nothing else.

The hash is over each module's syntax tree without docstrings, so comments, docstrings and formatting change
nothing; the package version is part of it. The modules are those `aqbench <stage>` imports (cli.py's cmd_<stage>
function, which imports what it needs inside its body) and, transitively, every aqbench module they import.
"""

import ast
import copy
import functools
import hashlib
from pathlib import Path

from aqbench import importgraph

PACKAGE = Path(__file__).resolve().parent


def module_path(name):
    return importgraph.module_names(PACKAGE)[name]


def _method_modules():
    """The modules aqbench.methods loads by the names the registry gives them (importlib, not an import
    statement): the quantize stage runs them, and what they import (calibration, QAT, the training loop)."""
    from aqbench.registry import METHODS

    return {spec.module for spec in METHODS.values()}


def closure(roots):
    """The modules the roots import, transitively, the roots included; aqbench.methods also runs the method
    modules (a dynamic import the graph cannot see)."""
    graph, seen, todo = importgraph.import_graph(PACKAGE), set(), list(roots)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph.get(m, ())
            todo += _method_modules() if m == "aqbench.methods" else ()
    return sorted(seen)


def _without_docstrings(tree):
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _digest(tree):
    """The tree's code without its docstrings (changed in place: callers pass a tree of their own)."""
    return hashlib.sha256(ast.dump(_without_docstrings(tree), include_attributes=False).encode()).digest()


@functools.cache
def _module_digest(name):
    return _digest(ast.parse(module_path(name).read_text()))


@functools.cache
def _function_digest(name):
    return _digest(copy.deepcopy(_cli_functions()[name]))


@functools.cache
def _cli_functions():
    return {n.name: n for n in ast.parse((PACKAGE / "cli.py").read_text()).body if isinstance(n, ast.FunctionDef)}


def _command(stage):
    """cli.py's cmd_<stage> function (check-report -> cmd_check_report) and the cli.py functions it calls, as one
    module node."""
    functions = _cli_functions()
    name = "cmd_" + stage.replace("-", "_")
    if name not in functions:
        raise KeyError(f"aqbench has no command {stage!r} ({name} in aqbench/cli.py)")
    found, todo = [], [name]
    while todo:
        node = functions[todo.pop()]
        if node not in found:
            found.append(node)
            todo += [n for n in _names_used(node) if n in functions]
    return ast.Module(body=found, type_ignores=[])


def _names_used(function):
    """The global names a function reads: not its arguments or the names it assigns (a local `main` is not
    cli.main, which would pull every command's modules into the stage's version)."""
    local = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
    local |= {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return [n.id for n in ast.walk(function) if isinstance(n, ast.Name) and n.id not in local]


def stage_modules(stage):
    """The aqbench modules `aqbench <stage>` runs."""
    return closure(importgraph.imports_of("aqbench.cli", _command(stage), importgraph.module_names(PACKAGE)))


@functools.cache
def code_version(stage):
    """A short hash of what `aqbench <stage>` runs: the package version, its command and its modules' code."""
    from aqbench import __version__

    h = hashlib.sha256(__version__.encode())
    for function in _command(stage).body:
        h.update(_function_digest(function.name))
    for name in stage_modules(stage):
        h.update(name.encode() + _module_digest(name))
    return h.hexdigest()[:16]
