"""Training: the DiT loop (single process or torchrun DDP), checkpoints and distributed setup."""

from worldmodel.training.distributed import DistInfo, cleanup_distributed, on_main, setup_distributed
from worldmodel.training.trainer import TrainConfig, lr_at, train

__all__ = ["DistInfo", "TrainConfig", "cleanup_distributed", "lr_at", "on_main", "setup_distributed", "train"]
