"""Where the PushT world model shipped with the package lives (what `world_model=shipped` and `wm=shipped` mean)."""

from pathlib import Path

SHIPPED_WORLD_MODEL = Path(__file__).resolve().parent / "assets" / "pusht_world_model"
