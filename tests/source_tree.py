"""The project's own source as syntax trees, for tests that check a rule across every module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("worldmodel", "wmeval", "policies")


def parse_sources() -> dict[str, ast.Module]:
    """`{"wmeval/io.py": tree, ...}` for every module of the three packages."""
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), filename=str(p)) for p in files}


def calls(tree: ast.Module) -> list[tuple[str, ast.Call]]:
    """Every call with its callee as written (`torch.load`, `subprocess.run`, `(out / 'x').write_text`)."""
    return [(ast.unparse(node.func), node) for node in ast.walk(tree) if isinstance(node, ast.Call)]


def ancestors(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    """Child -> parent for every node, to see what a call sits inside."""
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def enclosing(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> Iterator[ast.AST]:
    while node in parents:
        node = parents[node]
        yield node
