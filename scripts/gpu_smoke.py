"""GPU smoke run: the paths that only run with a CUDA device, in one short script (about ten minutes on one GPU).

    python scripts/gpu_smoke.py OUT_DIR                # on a machine with one CUDA device, after pip install -e .
    python scripts/gpu_smoke.py OUT_DIR --device cpu   # the same steps on CPU, minus the GPU benchmark

Steps, each a `wmeval` command in its own process (logs in OUT_DIR/<step>.log):
  1. environment: torch and CUDA versions, the device, bf16 support;
  2. `wmeval bench profile=gpu`: the hot paths, DiT-S/B training MFU in bf16 (skipped with --device cpu);
  3. `wmeval record`: a few PushT episodes to train on;
  4. `wmeval train` with the shipped model's recipe, `optim.precision=bf16`, a few steps on the device;
  5. `wmeval rank` inside the model just trained, on the device.
OUT_DIR/gpu_smoke.json gathers each step's exit code and wall time, the bench table, the final training loss
and the ranking; the script exits 1 if any step failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def steps(out: Path, device: str, train_steps: int = 20) -> list[tuple[str, list[str]]]:
    """(name, `wmeval` arguments) of each step; the benchmark only where a CUDA device is the target."""
    data, train, rank = out / "data", out / "train", out / "rank"
    plan = [("bench", ["bench", "profile=gpu", f"out={out / 'bench'}"])] if device == "cuda" else []
    plan += [
        (
            "record",
            ["record", "env=pusht", "policy=family", "episodes=1", "max_steps=60", "progress=false"]
            + [f"out={data}"],
        ),
        (
            "train_bf16",
            ["train", "recipe=pusht_tiny", f"data={data}", f"out={train}", f"device={device}"]
            + [
                "optim.precision=bf16",
                f"optim.steps={train_steps}",
                "optim.checkpoint_every=10",
                "heldout_episodes=2",
            ]
            + ["eval.episodes=2", "eval.horizon=4"],
        ),
        (
            "rank",
            ["rank", f"world_models=[{train / 'model'}]", f"device={device}", "episodes=2", "max_steps=30"]
            + ["num_envs=2", "n_boot=50", "rerun=off", "progress=false", f"out={rank}"],
        ),
    ]
    return plan


def environment() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    info["cuda_available"] = torch.cuda.is_available()
    if info["cuda_available"]:
        info["device"] = torch.cuda.get_device_name(0)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
        info["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def figures(out: Path) -> dict[str, Any]:
    """The numbers worth reporting, read back from what the commands wrote."""
    found: dict[str, Any] = {}
    bench = out / "bench" / "bench.json"
    if bench.is_file():
        found["bench"] = json.loads(bench.read_text())
    summary = out / "train" / "train_summary.json"
    if summary.is_file():
        train = json.loads(summary.read_text())
        found["train"] = {"final_loss": train["loss_history"][-1], "evals": train.get("evals")}
    report = out / "rank" / "report.json"
    if report.is_file():
        found["rank"] = json.loads(report.read_text()).get("ranking")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"environment": environment(), "steps": {}}
    if args.device == "cuda" and not result["environment"]["cuda_available"]:
        print("error: no CUDA device is visible: run on a GPU machine or pass --device cpu", file=sys.stderr)
        return 2
    failed = False
    for name, wmeval_args in steps(args.out, args.device, args.train_steps):
        started = time.perf_counter()
        with open(args.out / f"{name}.log", "w") as log:
            code = subprocess.call([sys.executable, "-m", "wmeval.cli", *wmeval_args], stdout=log, stderr=log)
        result["steps"][name] = {"exit_code": code, "wall_s": round(time.perf_counter() - started, 1)}
        print(f"{name}: exit {code} in {result['steps'][name]['wall_s']} s", flush=True)
        failed |= code != 0
        if code != 0 and name in ("record", "train_bf16"):
            break  # the later steps need what this one writes
    result.update(figures(args.out))
    (args.out / "gpu_smoke.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written to {args.out / 'gpu_smoke.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
