"""Any LeRobot `PreTrainedPolicy` (local directory or Hub id) behind the same contract as scripted policies.

Loading mirrors `lerobot.scripts.lerobot_eval`: config -> policy class -> `from_pretrained`, then the saved
pre/post-processor pipelines (`make_pre_post_processors(cfg, pretrained_path=...)`) with the device overridden,
so normalisation is exactly what the policy was trained with. Nothing downloads unless `allow_download=True`:
a Hub id must already be in the local cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from policies.errors import PolicyError

PREPROCESSOR_FILE = "policy_preprocessor.json"


def resolve_pretrained(path_or_id: str, allow_download: bool = False) -> Path:
    """A local directory as is; a Hub id from the local cache (or downloaded when allowed)."""
    local = Path(path_or_id).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise PolicyError(
                f"{local} has no config.json: point lerobot:<dir> at a LeRobot pretrained_model dir"
            )
        return local
    if local.exists() or path_or_id.startswith((".", "/", "~")) or path_or_id.count("/") != 1:
        raise PolicyError(
            f"LeRobot policy {path_or_id!r} is neither an existing directory nor a Hub id (owner/name): "
            "pass lerobot:/path/to/pretrained_model"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=path_or_id, local_files_only=not allow_download))
    except Exception as err:  # offline, not cached, or no such repo
        how = "it is not in the local Hugging Face cache and downloads are off"
        raise PolicyError(
            f"cannot load LeRobot policy {path_or_id!r}: {how} ({type(err).__name__}); download it first "
            f"(`huggingface-cli download {path_or_id}`) or pass a local directory as lerobot:/path/to/pretrained_model"
        ) from err


class LeRobotPolicy:
    """Wraps a LeRobot policy with its processors; `select_action` takes and returns plain batched tensors."""

    def __init__(
        self,
        path_or_id: str,
        *,
        device: str = "cpu",
        allow_download: bool = False,
        name: str | None = None,
        seed: int | None = None,
    ) -> None:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors

        path = resolve_pretrained(path_or_id, allow_download)
        self.name = name or f"lerobot:{path_or_id}"
        if seed is not None:
            torch.manual_seed(int(seed))  # diffusion-style policies sample noise from the global generator
        try:
            config = PreTrainedConfig.from_pretrained(str(path))
        except Exception as err:
            raise PolicyError(f"{path}/config.json is not a LeRobot policy config ({err})") from err
        config.device = device
        policy_cls = get_policy_class(config.type)
        self.policy = policy_cls.from_pretrained(str(path), config=config)
        self.policy.eval()
        self.config = config
        overrides = {"device_processor": {"device": device}}
        if (path / PREPROCESSOR_FILE).is_file():
            self.preprocessor, self.postprocessor = make_pre_post_processors(
                config, pretrained_path=str(path), preprocessor_overrides=overrides
            )
        else:  # a bare save_pretrained without processors: no normalisation stats, like a fresh policy
            self.preprocessor, self.postprocessor = make_pre_post_processors(config)
        self.input_keys = list(config.input_features)

    def reset(self) -> None:
        self.policy.reset()
        for pipeline in (self.preprocessor, self.postprocessor):
            if hasattr(pipeline, "reset"):
                pipeline.reset()

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = [k for k in self.input_keys if k not in observation]
        if missing:
            raise PolicyError(
                f"{self.name} needs observation keys {missing}; the env gives {sorted(observation)}"
            )
        batch: dict[str, Any] = {k: observation[k] for k in self.input_keys}
        if "task" in observation:  # language-conditioned policies tokenize it in their preprocessor
            batch["task"] = observation["task"]
        batch = self.preprocessor(batch)
        with torch.inference_mode():
            action = self.policy.select_action(batch)
        action = self.postprocessor(action)
        return action.detach().to("cpu", torch.float32)
