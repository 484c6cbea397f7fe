"""What imagines: encoders, adapters, the DiT, objectives, training and the `WorldModel` inference API."""

from worldmodel.world_model import WorldModel, WorldModelConfig

__all__ = ["WorldModel", "WorldModelConfig"]
