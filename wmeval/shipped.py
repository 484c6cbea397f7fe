"""Where the PushT world model shipped with the package lives (what `world_models=[shipped]` means)."""

from pathlib import Path

SHIPPED_WORLD_MODEL = Path(__file__).resolve().parent / "assets" / "pusht_world_model"
