"""Every third-party module the code imports is a declared dependency (pyproject.toml), so a fresh install from
the README never relies on what another package happens to pull in."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("worldmodel", "policies", "wmeval")
#: modules whose distribution `packages_distributions` cannot see: rerun-sdk installs through a .pth file, and
#: extras that are not installed here have no metadata at all
NOT_INDEXED = {"rerun": "rerun-sdk", "rerun_cli": "rerun-sdk", "tensorflow_datasets": "tensorflow-datasets"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_canonical(re.match(r"[A-Za-z0-9_.-]+", s).group(0)) for s in specs}


def _imported() -> dict[str, str]:
    """Top-level module -> one file importing it, over every absolute import in the three packages."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return {m: f for m, f in found.items() if m not in sys.stdlib_module_names and m not in PACKAGES}


def test_every_imported_module_is_a_declared_distribution() -> None:
    declared, providers = _declared(), md.packages_distributions()
    imported = _imported()
    assert {"numpy", "torch", "yaml", "cv2"} <= set(imported)  # the walk sees the code's imports
    undeclared = []
    for module, where in sorted(imported.items()):
        dists = providers.get(module) or [NOT_INDEXED.get(module, module)]
        if not {_canonical(d) for d in dists} & declared:
            undeclared.append(f"{module} (imported in {where}; provided by {', '.join(dists)})")
    assert not undeclared, "imported but not declared in pyproject.toml: " + "; ".join(undeclared)


def test_opencv_pins_agree_with_what_gym_pusht_and_lerobot_require() -> None:
    """gym-pusht requires opencv-python and lerobot opencv-python-headless; both write cv2/, so the declared
    ranges must be the same release line (one consistent cv2) and admit what each requirer asks for."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ours = {
        _canonical(r.name): r.specifier
        for r in map(Requirement, project["dependencies"])
        if r.name.startswith("opencv")
    }
    assert set(ours) == {"opencv-python", "opencv-python-headless"}
    assert str(ours["opencv-python"]) == str(ours["opencv-python-headless"])
    for requirer in ("gym-pusht", "lerobot"):
        for req in map(Requirement, md.requires(requirer) or []):
            if _canonical(req.name) in ours and (req.marker is None or req.marker.evaluate()):
                spec = ours[_canonical(req.name)]
                floor = next(s.version for s in spec if s.operator == ">=")
                assert req.specifier.contains(floor), f"{requirer} wants {req}, we declare {spec}"
