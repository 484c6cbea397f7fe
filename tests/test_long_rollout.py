"""Long imagined rollouts: 1000 steps stay finite, and memory stays bounded thanks to the sliding window
(the KV cache and the context keep `context_frames - 1` frames, however long the rollout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 4

# Runs in a fresh process so that the peak RSS is this rollout's alone. ru_maxrss is the peak so far, read
# after 100 and after 1000 steps.
ROLLOUT = """
import json, resource, sys, torch
torch.set_num_threads(1)
from tests.wm_fixtures import IMAGE, tiny_world_model

batch = int(sys.argv[1])
wm = tiny_world_model(max_frames=6)
wm.reset(torch.rand(batch, 1, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(0)), seed=0)
actions = torch.Generator().manual_seed(1)
peak, finite = {}, True
for step in range(1, 1001):
    frame = wm.step(torch.rand(batch, 2, generator=actions) * IMAGE, num_steps=1)
    finite = finite and bool(torch.isfinite(frame).all() and torch.isfinite(wm._state.context.latents).all())
    if step in (100, 1000):
        peak[step] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
state = wm._state.context
per_frame = (state.latents[:, :1].numel() + 2 * wm.dit.config.depth * state.latents[:, :1, ..., :1].numel()
             * wm.dit.config.hidden_size) * 4
print(json.dumps({"peak": peak, "finite": finite, "cached": len(state.cache), "context": state.latents.shape[1],
                  "window": wm.context_frames - 1, "bytes_per_frame": per_frame}))
"""


def test_1000_step_rollout_is_finite_and_memory_stays_bounded() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", ROLLOUT, str(BATCH)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads(result.stdout.splitlines()[-1])
    assert run["finite"]
    assert run["cached"] == run["context"] == run["window"]
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    at_100, at_1000 = run["peak"]["100"] * unit, run["peak"]["1000"] * unit
    assert at_1000 <= 1.2 * at_100
    # sharper than the ratio, which torch's own few hundred MB dominate: keeping every frame's latents and
    # keys/values would add 900 frames' worth; less than half of that may appear
    assert at_1000 - at_100 < 0.5 * 900 * run["bytes_per_frame"]
