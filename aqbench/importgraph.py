"""The package's import graph: which aqbench modules each module imports, at any depth (a function-level import
is a dependency too, only a deferred one). The code versions (aqbench.codeversion) follow it; a test checks it
has no cycle."""

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def module_names(package=PACKAGE):
    """{dotted module name: path} for every .py file of the package (a package is its __init__.py)."""
    names = {}
    for path in sorted(Path(package).rglob("*.py")):
        parts = ("aqbench",) + path.relative_to(package).with_suffix("").parts
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
    """The aqbench modules that `module` imports anywhere in `path`, its file, or in an AST given as `path`."""
    is_package = not isinstance(path, ast.AST) and path.name == "__init__.py"
    found = set()
    tree = path if isinstance(path, ast.AST) else ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
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


@functools.cache
def import_graph(package=PACKAGE):
    """{module: the aqbench modules importing it runs}, over the whole package (a copy of it: `package`)."""
    modules = module_names(package)
    return {module: frozenset(imports_of(module, path, modules)) for module, path in modules.items()}
