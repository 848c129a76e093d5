"""The package's layout: modules of readable size, and imports that go one way.

Every ``import`` statement counts, at module level, inside a function or under ``TYPE_CHECKING``:
a cycle hidden in a function body is still a cycle for a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "ppo"
MAX_MODULE_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The ppo modules that module ``name`` imports anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .runs import y
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in MODULES and target != name}
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_import_graph_is_read_from_the_source():
    """The checks below see real edges (a parser that found none would pass them all)."""
    assert "ppo.config" in GRAPH["ppo.train"] and "ppo.errors" in GRAPH["ppo.config"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_longer_than_a_reader_takes_in(name):
    assert len(MODULES[name].read_text().splitlines()) <= MAX_MODULE_LINES


def test_no_import_cycle():
    """Depth-first search of the import graph: no module reaches itself."""
    visiting, done = [], set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, f"import cycle: {' -> '.join(visiting[visiting.index(name):] + [name])}"
        visiting.append(name)
        for imported in sorted(GRAPH[name]):
            visit(imported)
        visiting.pop()
        done.add(name)

    for name in sorted(GRAPH):
        visit(name)


def test_the_config_imports_only_leaf_modules():
    """ppo.config is at the bottom of the package: what it imports of ppo imports nothing of ppo."""
    for imported in GRAPH["ppo.config"]:
        assert not GRAPH[imported], f"ppo.config imports {imported}, which imports {sorted(GRAPH[imported])}"


def test_every_package_of_ppo_is_installed():
    """A regular install (CI's) ships only the packages pyproject.toml lists: each package dir of ppo/ is there."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE_DIR.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {module_name(path) for path in PACKAGE_DIR.rglob("__init__.py")}
    assert packages <= listed, f"not in pyproject.toml's packages: {sorted(packages - listed)}"
