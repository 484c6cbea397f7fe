"""Security by inspection of the source tree (what a reviewer would grep for), plus one behavioural check:
weights load only through safetensors or `torch.load(weights_only=True)`, caches hold no pickles, remote code
runs only when the user asks, servers bind to localhost, and no path from a config reaches a shell."""

from __future__ import annotations

import ast

import pytest
import yaml

from tests.source_tree import ROOT, calls, parse_sources
from wmeval.cli import main
from wmeval.report.viewer import DEFAULT_HOST

# Release formats that are not plain tensors, each loaded only from a local file the user provided:
# Cosmos ships TorchScript; CoTracker is torch.hub code from the local hub cache (never downloaded).
REVIEWED_CODE_LOADERS = {
    ("torch.jit.load", "worldmodel/encoders/cosmos.py"),
    ("torch.hub.load", "wmeval/metrics/pck.py"),
}
LOCALHOST = ("127.0.0.1", "localhost", "::1")


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


@pytest.fixture(scope="module")
def tree() -> dict[str, ast.Module]:
    return parse_sources()


def test_torch_load_only_with_weights_only(tree) -> None:
    found = [(path, c) for path, t in tree.items() for name, c in calls(t) if name == "torch.load"]
    assert found  # the scan sees the loaders that exist
    unsafe = [f"{path}:{c.lineno}" for path, c in found if not is_true(keyword(c, "weights_only"))]
    assert unsafe == []


def test_code_loading_formats_are_the_reviewed_ones(tree) -> None:
    used = {
        (name, path)
        for path, t in tree.items()
        for name, _ in calls(t)
        if name in ("torch.jit.load", "torch.hub.load")
    }
    assert used == REVIEWED_CODE_LOADERS


def test_no_pickle_anywhere_data_is_stored(tree) -> None:
    unpickling = [
        f"{path}:{c.lineno}"
        for path, t in tree.items()
        for name, c in calls(t)
        if name in ("pickle.load", "pickle.loads", "pickle.Unpickler") or is_true(keyword(c, "allow_pickle"))
    ]
    assert unpickling == []
    serialisers = {"pickle", "cloudpickle", "dill", "joblib", "shelve"}
    stores = ("worldmodel/data/", "worldmodel/training/", "wmeval/data/", "wmeval/judges/", "wmeval/io.py")
    importing = [path for path, t in tree.items() if path.startswith(stores) and imported(t) & serialisers]
    assert importing == []


def imported(tree: ast.Module) -> set[str]:
    """Top-level names of every module `tree` imports."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_remote_code_only_when_the_user_sets_it(tree) -> None:
    forced = [
        f"{path}:{c.lineno}"
        for path, t in tree.items()
        for _, c in calls(t)
        if isinstance(keyword(c, "trust_remote_code"), ast.Constant) and keyword(c, "trust_remote_code").value
    ]
    assert forced == []


def test_no_shell_and_no_expansion(tree) -> None:
    forbidden = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"}
    forbidden |= {"os.path.expandvars", "eval", "exec"}
    bad = [
        f"{path}:{c.lineno} {name}"
        for path, t in tree.items()
        for name, c in calls(t)
        if name in forbidden or is_true(keyword(c, "shell"))
    ]
    assert bad == []
    string_commands = [
        f"{path}:{c.lineno}"
        for path, t in tree.items()
        for name, c in calls(t)
        if name.startswith("subprocess.") and c.args and isinstance(c.args[0], ast.Constant | ast.JoinedStr)
    ]
    assert string_commands == []


def test_servers_bind_to_localhost_by_default(tree) -> None:
    defaults = [
        ast.unparse(default)
        for t in tree.values()
        for fn in ast.walk(t)
        if isinstance(fn, ast.FunctionDef)
        for default in defaults_of(fn, "host")
    ]
    assert DEFAULT_HOST in LOCALHOST
    assert defaults and all(d.endswith("DEFAULT_HOST") or d.strip("'\"") in LOCALHOST for d in defaults)
    configs = [yaml.safe_load(p.read_text()) or {} for p in (ROOT / "wmeval" / "conf").rglob("*.yaml")]
    hosts = [c["host"] for c in configs if "host" in c]
    assert hosts and all(h in LOCALHOST for h in hosts)


def defaults_of(fn: ast.FunctionDef, name: str) -> list[ast.expr]:
    """The default value(s) of parameter `name` of `fn`."""
    positional = fn.args.posonlyargs + fn.args.args
    pairs = list(zip(positional[len(positional) - len(fn.args.defaults) :], fn.args.defaults, strict=True))
    pairs += zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True)
    return [default for arg, default in pairs if arg.arg == name and default is not None]


def test_a_path_from_the_config_is_never_run_by_a_shell(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = "ds_$(touch PWNED)_`touch PWNED2`;touch PWNED3"
    args = ["record", "policy=pusht/idle", "episodes=1", "max_steps=2", "progress=false", f"out='{out}'"]
    assert main(args) == 0
    assert (tmp_path / out / "meta" / "info.json").is_file()
    assert not list(tmp_path.glob("PWNED*"))
