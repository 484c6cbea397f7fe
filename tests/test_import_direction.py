"""The packages' dependency direction: `worldmodel` imagines on its own and `policies` act on their own;
only `wmeval` glues them. Any import against it, even a lazy one inside a function, fails here."""

from __future__ import annotations

import ast

import pytest

from tests.source_tree import parse_sources

FORBIDDEN = {
    "worldmodel": {"wmeval", "policies", "lerobot"},
    "policies": {"worldmodel", "wmeval"},
}


def imported_packages(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(sources: dict[str, ast.Module]) -> list[str]:
    return [
        f"{path}:{line} imports {name}"
        for path, tree in sources.items()
        for line, name in imported_packages(tree)
        if name in FORBIDDEN.get(path.split("/")[0], ())
    ]


def test_worldmodel_and_policies_import_only_downwards() -> None:
    assert violations(parse_sources()) == []


@pytest.mark.parametrize(
    ("path", "code", "found"),
    [
        ("worldmodel/x.py", "from wmeval.errors import WmevalError", "worldmodel/x.py:1 imports wmeval"),
        ("worldmodel/x.py", "def f():\n    import lerobot.policies\n", "worldmodel/x.py:2 imports lerobot"),
        ("worldmodel/x.py", "import torch, policies", "worldmodel/x.py:1 imports policies"),
        ("policies/x.py", "from worldmodel import WorldModel", "policies/x.py:1 imports worldmodel"),
        ("policies/x.py", "import wmeval.io as io", "policies/x.py:1 imports wmeval"),
    ],
)
def test_a_forbidden_import_is_found(path: str, code: str, found: str) -> None:
    assert violations({path: ast.parse(code)}) == [found]


def test_allowed_imports_pass() -> None:
    allowed = {
        "wmeval/x.py": "import worldmodel, policies, lerobot",
        "policies/x.py": "import lerobot, torch",
    }
    assert violations({p: ast.parse(c) for p, c in allowed.items()}) == []
