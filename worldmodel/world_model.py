"""`WorldModel`: encoder + adapter + DiT + objective behind a reset/step API for batched closed-loop rollouts.

Frames follow LeRobot's convention (float in [0, 1], `[B, T, 3, H, W]`). One world-model step may span several
simulator steps (`sim_steps_per_frame`); with `action_mode="concat"` its action is those steps' raw actions
concatenated (`action_dim = raw_action_dim * sim_steps_per_frame`), with `"sampled"` (the paper's clips) it is
the raw action of the step's first sim step (`action_dim = raw_action_dim`); `step_actions` in
`worldmodel.data.actions` turns per-sim-step actions into either. A multi-view model (`dit.num_views > 1`)
takes and gives its views side by side along the width (view 0 leftmost, `image_size = (H, views * W)`), the
same layout as its latent grid, so every caller can treat a multi-view frame as one image.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from worldmodel.adapters import load_adapter, save_adapter
from worldmodel.data.actions import ACTION_MODES, ActionLayout, step_action_dim
from worldmodel.dit import DiT, DiTConfig
from worldmodel.encoders import load_encoder
from worldmodel.errors import InputError
from worldmodel.hub import resolve_pretrained, split_revision
from worldmodel.io import atomic_path
from worldmodel.model_card import CARD_NAME, model_card
from worldmodel.objectives import build_objective
from worldmodel.reading import load_weights, read_json
from worldmodel.rigid import rigid_groups
from worldmodel.sampling import SamplingContext, denoise_frame, frame_noise
from worldmodel.threads import single_cpu_thread

CONFIG_NAME = "world_model.json"
WEIGHTS_NAME = "dit.safetensors"
FORMAT_VERSION = 1


@dataclass
class WorldModelConfig:
    encoder: dict[str, Any]  # Encoder.get_config()
    adapter: dict[str, Any]  # Adapter.get_config()
    dit: dict[str, Any]  # DiTConfig.to_dict()
    objective: dict[str, Any]  # {"type": "flow_matching", **FlowMatchingConfig}
    latent_mean: list[float]  # per channel of the adapter's latent, for normalisation
    latent_std: list[float]
    action_offset: list[float]  # raw action -> (raw - offset) / scale, per raw action dimension
    action_scale: list[float]
    sim_steps_per_frame: int = 1
    fps: float = 10.0  # simulator steps per second
    action_layout: dict[str, Any] | None = None  # ActionLayout.to_dict(); None: affine offset/scale only
    action_mode: str = "concat"  # concat | sampled: how a step's action comes from its sim steps' actions
    rigid_groups: list[list[int]] = field(default_factory=list)  # tokens kept rigid while sampling (rigid.py)
    meta: dict[str, Any] = field(default_factory=dict)  # provenance: data, recipe, training manifest
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.action_mode not in ACTION_MODES:
            raise InputError(
                f"action_mode={self.action_mode!r} is unknown: use one of {', '.join(ACTION_MODES)}"
            )

    @property
    def raw_action_dim(self) -> int:
        return len(self.action_offset)

    @property
    def action_dim(self) -> int:
        return step_action_dim(self.raw_action_dim, self.sim_steps_per_frame, self.action_mode)


class WorldModel(nn.Module):
    """Imagines the next frames of B rollouts at once; `reset` then `step` (alias `generate_chunk`)."""

    def __init__(self, config: WorldModelConfig, encoder: nn.Module, adapter: nn.Module, dit: DiT) -> None:
        super().__init__()
        self.config = config
        self.encoder, self.adapter, self.dit = encoder, adapter, dit
        self.directory: Path | None = None  # where `from_pretrained` read it from (provenance for outputs)
        rows, cols = dit.config.tokens_grid
        self.objective = build_objective(config.objective, rows * cols, dit.config.in_channels)
        self.register_buffer("latent_mean", torch.tensor(config.latent_mean, dtype=torch.float32))
        self.register_buffer("latent_std", torch.tensor(config.latent_std, dtype=torch.float32))
        if dit.config.token_geometry:
            _check_position_stats(dit.config, config)
        self.rigid = rigid_groups(
            config.rigid_groups, rows * cols, dit.config.token_geometry, config.latent_mean, config.latent_std
        )
        self.action_layout = (
            ActionLayout.from_dict(config.action_layout)
            if config.action_layout
            else ActionLayout.affine(config.action_offset, config.action_scale)
        )
        self._state: _RolloutState | None = None

    # ---- what it expects -------------------------------------------------------------------------------------
    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def num_views(self) -> int:
        return int(self.dit.config.num_views)

    @property
    def image_size(self) -> tuple[int, int]:
        """Frame size it takes and gives: `(H, views * W)` for the encoder's `(H, W)`."""
        h, w = self.encoder.image_size
        return h, self.num_views * w

    @property
    def context_frames(self) -> int:
        """Frames the temporal attention sees, the new one included (the sliding window)."""
        return self.dit.config.max_frames

    @property
    def device(self) -> torch.device:
        return self.latent_mean.device

    # ---- latents <-> frames ----------------------------------------------------------------------------------
    @torch.no_grad()
    @single_cpu_thread
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """`[B, T, 3, H, W]` in [0, 1] -> normalised latents `[B, T, h, w, C]`."""
        b, t = frames.shape[:2]
        flat = frames.reshape(b * t, *frames.shape[2:])
        views = flat.chunk(self.num_views, dim=-1)  # each view through the encoder and adapter on its own
        latents = torch.cat([self.adapter.encode(self.encoder.encode(v)) for v in views], dim=2)
        latents = (latents.float() - self.latent_mean) / self.latent_std
        return latents.reshape(b, t, *latents.shape[1:])

    @torch.no_grad()
    @single_cpu_thread
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents `[B, T, h, w, C]` -> frames `[B, T, 3, H, W]` in [0, 1]."""
        b, t = latents.shape[:2]
        z = latents.reshape(b * t, *latents.shape[2:]) * self.latent_std + self.latent_mean
        views = []
        for zv in z.chunk(self.num_views, dim=2):
            if self.adapter.has_pixel_decoder:
                views.append(self.adapter.decode_pixels(zv))
            else:
                views.append(self.encoder.decode(self.adapter.decode(zv)))
        frames = torch.cat(views, dim=-1)
        return frames.clamp(0, 1).reshape(b, t, *frames.shape[1:])

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Raw chunk actions `[..., action_dim]` -> the DiT's action units (the model's `action_layout`)."""
        return self.action_layout.normalize(actions.to(self.device, torch.float32))

    # ---- rollouts --------------------------------------------------------------------------------------------
    @torch.no_grad()
    @single_cpu_thread
    def reset(self, frames: torch.Tensor, use_cache: bool = True, seed: int | None = None) -> None:
        """Start B rollouts from `frames [B, T, 3, H, W]` (T >= 1 real history frames, oldest first)."""
        frames = self._check_frames(frames)
        generator = torch.Generator(device="cpu")
        generator.manual_seed(0 if seed is None else seed)
        latents = self.encode_frames(frames.to(self.device))
        context = SamplingContext.start(latents, self.action_dim, self.context_frames - 1, rigid=self.rigid)
        if use_cache:
            context.fill_cache(self.dit, self.objective)
        self._state = _RolloutState(generator, context)

    @torch.no_grad()
    @single_cpu_thread
    def step(self, actions: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
        """Advance every rollout by one world-model step per action.

        `actions [B, A]` -> frames `[B, 3, H, W]`; `actions [B, K, A]` -> `[B, K, 3, H, W]` (K steps).
        """
        state = self._require_state()
        single = actions.ndim == 2
        actions = self._check_actions(actions[:, None] if single else actions, state.context.batch_size)
        frames = [
            self._generate_frame(self.normalize_actions(actions[:, k]), num_steps)
            for k in range(actions.shape[1])
        ]
        out = torch.stack(frames, dim=1)
        return out[:, 0] if single else out

    generate_chunk = step

    @torch.no_grad()
    @single_cpu_thread
    def set_use_cache(self, enabled: bool) -> None:
        """Switch the running rollouts between the KV cache and recomputing the window, keeping their state.

        Enabling rebuilds the cache from the current context window, so the next frame is the same either way.
        """
        context = self._require_state().context
        if not enabled:
            context.cache = None
        elif context.cache is None:
            context.fill_cache(self.dit, self.objective)

    def _generate_frame(self, action: torch.Tensor, num_steps: int | None) -> torch.Tensor:
        state = self._require_state()
        shape = state.context.latents.shape[2:]
        noise = frame_noise(state.generator, state.context.batch_size, shape).to(self.device)
        window = self.context_frames - 1
        x = denoise_frame(self.dit, self.objective, state.context, action[:, None], noise, window, num_steps)
        return self.decode_latents(x)[:, 0]

    def _require_state(self) -> _RolloutState:
        if self._state is None:
            raise InputError("call reset(frames) before step(actions)")
        return self._state

    # ---- validation at the API edge --------------------------------------------------------------------------
    def _check_frames(self, frames: torch.Tensor) -> torch.Tensor:
        if not isinstance(frames, torch.Tensor):
            raise InputError(f"frames must be a torch.Tensor [B, T, 3, H, W], got {type(frames).__name__}")
        if frames.ndim == 4:
            raise InputError(
                f"frames must be [B, T, 3, H, W] (T history frames), got {tuple(frames.shape)}: add a time axis"
            )
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise InputError(f"frames must be [B, T, 3, H, W] with 3 channels, got {tuple(frames.shape)}")
        if frames.shape[-1] % self.num_views:
            raise InputError(
                f"frames of width {frames.shape[-1]} cannot hold this model's {self.num_views} views side by "
                f"side: resize them to image_size {self.image_size}"
            )
        if not frames.is_floating_point():
            raise InputError(
                f"frames must be float in [0, 1], got {frames.dtype}: divide uint8 frames by 255"
            )
        if not torch.isfinite(frames).all() or frames.min() < 0 or frames.max() > 1:
            raise InputError("frames must be finite and in [0, 1] (LeRobot's image convention)")
        return frames

    def _check_actions(self, actions: torch.Tensor, batch_size: int) -> torch.Tensor:
        if not isinstance(actions, torch.Tensor) or actions.ndim != 3:
            raise InputError(
                f"actions must be a tensor [B, A] or [B, K, A], got {getattr(actions, 'shape', actions)}"
            )
        if actions.shape[0] != batch_size:
            raise InputError(f"actions batch {actions.shape[0]} != {batch_size} rollouts started by reset()")
        if actions.shape[-1] != self.action_dim:
            raise InputError(
                f"action dim {actions.shape[-1]} != world model's action_dim {self.action_dim} (action_mode "
                f"{self.config.action_mode!r}, {self.config.sim_steps_per_frame} sim steps per frame, "
                f"{self.config.raw_action_dim} raw dims): make them with worldmodel.data.actions.step_actions"
            )
        if not torch.isfinite(actions).all():
            raise InputError("actions contain NaN or inf")
        return actions

    # ---- persistence -----------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, repo_id: str | None = None) -> Path:
        """Write config JSON + DiT safetensors (+ encoder/adapter weights when trainable) and the model card
        (`README.md`, titled `repo_id` when given), atomically."""
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            (tmp / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
            save_file({k: v.contiguous() for k, v in self.dit.state_dict().items()}, tmp / WEIGHTS_NAME)
            self.encoder.save_pretrained(tmp / "encoder")
            save_adapter(self.adapter, tmp / "adapter")
            (tmp / CARD_NAME).write_text(model_card(self.config, repo_id))
        return Path(directory)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        commit_message: str = "Upload world model",
    ) -> str:
        """Save to a temporary folder and upload it as Hub model `repo_id` (created if needed); returns the
        commit URL. Needs network and a token with write access (`huggingface-cli login`)."""
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "model", repo_id=repo_id)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                repo_type="model",
                revision=revision,
                commit_message=commit_message,
            )
        return str(getattr(info, "commit_url", info))

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device = "cpu", revision: str | None = None
    ) -> WorldModel:
        """Load a saved world model from a directory or a Hub id (`owner/name`, or `owner/name@revision`).

        A Hub id is read from the local Hugging Face cache first; it is downloaded only when it is not cached
        and `HF_HUB_OFFLINE` is not set, and a missing one raises `MissingWeightsError` naming the fix.
        """
        spec, pinned = split_revision(str(directory))
        directory = resolve_pretrained(spec, "world model", revision=revision or pinned)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise InputError(f"{directory} is not a world-model directory: {CONFIG_NAME} is missing")
        fix = "re-export the model (WorldModel.save_pretrained)"
        try:
            config = WorldModelConfig(**read_json(config_path, fix))
        except TypeError as err:
            raise InputError(f"{config_path} is not a valid world-model config ({err}): {fix}") from err
        if config.format_version != FORMAT_VERSION:
            raise InputError(
                f"{config_path} has format_version {config.format_version}, expected {FORMAT_VERSION}"
            )
        enc_cfg = dict(config.encoder)
        enc_dir = directory / "encoder"
        if enc_dir.is_dir() and any(enc_dir.iterdir()):
            enc_cfg["pretrained"] = str(enc_dir)
        encoder = load_encoder(**enc_cfg)
        adapter = load_adapter(directory / "adapter")
        dit = DiT(DiTConfig(**config.dit))
        load_weights(
            dit,
            directory / WEIGHTS_NAME,
            f"the DiT config in {CONFIG_NAME}",
            fix,
            mismatch_fix=f"keep each model's weights beside its own {CONFIG_NAME}",
        )
        model = cls(config, encoder, adapter, dit)
        model.directory = directory
        return model.to(device).eval()


def _check_position_stats(dit: DiTConfig, config: WorldModelConfig) -> None:
    """Token geometry un-normalises positions with its own copy of the latent statistics: they must agree."""
    stored = (config.latent_mean[:2], config.latent_std[:2])
    if not all(
        torch.allclose(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
        for a, b in zip(stored, (dit.position_mean, dit.position_std), strict=True)
    ):
        raise InputError(
            f"dit.position_mean/std {dit.position_mean}/{dit.position_std} differ from latent_mean/std of "
            f"channels 0:2 {stored[0]}/{stored[1]}: set them from the same statistics"
        )


@dataclass
class _RolloutState:
    """Per-rollout sampling state: the noise generator and the context window (with its KV cache)."""

    generator: torch.Generator
    context: SamplingContext
