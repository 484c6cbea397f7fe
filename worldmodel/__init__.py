"""What imagines: encoders, adapters, the DiT, objectives, training and the `WorldModel` inference API.

`WorldModel` is imported lazily so that light users of the package (error types, the CLI's `--help`) do not
pay for importing torch.
"""

from typing import Any

__all__ = ["WorldModel", "WorldModelConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from worldmodel import world_model

        return getattr(world_model, name)
    raise AttributeError(f"module 'worldmodel' has no attribute {name!r}")
