"""`wmeval bench`: measure the hot paths and write `bench.json` plus a table on stdout."""

from __future__ import annotations

import logging
from typing import Any

import torch
from omegaconf import DictConfig

from wmeval.bench import entries, sampling
from wmeval.errors import ConfigError
from wmeval.io import prepare_out_dir, to_json_safe, write_json
from wmeval.shipped import SHIPPED_WORLD_MODEL

log = logging.getLogger(__name__)

KNOWN = ("kv_cache", "batch_scaling", "train_mfu", "data_stall", "rollout_vs_sim", "cem", "euler_steps")
SUMMARY_KEYS = ("flatness", "speedup", "ratio", "mfu", "fraction", "fewest_steps_at_best_psnr")


def _train_mfu(device: torch.device, profile: str) -> dict[str, Any]:
    results = {"demo_tiny_fp32": entries.train_mfu(device, "tiny", (8, 8), 192, 6, 16, torch.float32)}
    if profile == "gpu":
        for size, batch in (("S", 16), ("B", 8)):
            results[f"dit_{size}_bf16"] = entries.train_mfu(
                device, size, (16, 16), 96, 10, batch, torch.bfloat16
            )
    return results


def run(cfg: DictConfig) -> dict[str, Any]:
    if cfg.get("profile") not in ("cpu", "gpu"):  # the demo's profiles (quick, ...) set no `profile` key
        raise ConfigError("bench takes profile=cpu or profile=gpu")
    unknown = sorted(set(cfg.entries) - set(KNOWN))
    if unknown:
        raise ConfigError(f"entries {unknown} are unknown: choose from {', '.join(KNOWN)}")
    if cfg.profile == "gpu" and not torch.cuda.is_available():
        raise ConfigError("profile=gpu needs a CUDA device, and none is visible: use profile=cpu")
    out = prepare_out_dir(cfg.out, "bench", overwrite=cfg.overwrite)
    device = torch.device("cuda" if cfg.profile == "gpu" else "cpu")
    runners = {
        "kv_cache": lambda: entries.kv_cache(device),
        "batch_scaling": lambda: entries.batch_scaling(device, world_model=cfg.world_model),
        "train_mfu": lambda: _train_mfu(device, cfg.profile),
        "data_stall": lambda: entries.data_stall(device),
        "rollout_vs_sim": lambda: entries.rollout_vs_sim(device, world_model=cfg.world_model),
        "cem": lambda: sampling.cem_throughput(device, entries.demo_sized_world_model(device)),
        "euler_steps": lambda: sampling.euler_steps(str(SHIPPED_WORLD_MODEL), device, seed=int(cfg.seed)),
    }
    results: dict[str, Any] = {"profile": cfg.profile, "seed": cfg.seed}
    for name in cfg.entries:
        torch.manual_seed(cfg.seed)
        log.info("bench %s ...", name)
        results[name] = runners[name]()
    results = to_json_safe(results)
    write_json(out / "bench.json", results)
    print(format_table(results))
    print(f"\nwritten to {out / 'bench.json'}")
    return results


def format_table(results: dict[str, Any]) -> str:
    rows = []
    for name, value in results.items():
        if not isinstance(value, dict):
            continue
        blocks = value if all(isinstance(v, dict) for v in value.values()) else {"": value}
        for label, block in blocks.items():
            ratios = ", ".join(
                f"{k}={block[k]:.3g}" for k in SUMMARY_KEYS if isinstance(block.get(k), (int, float))
            )
            rows.append(f"{(name + ' ' + label).strip():<32} {ratios:<40} {block.get('device', '')}")
    return "\n".join([f"{'entry':<32} {'ratios':<40} device", *rows])
