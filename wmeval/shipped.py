"""The world models shipped with the package, by the names `world_models=[...]` accepts for them."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
#: name -> directory: `shipped` is the pixel DiT every command defaults to; `shipped_tokens` the object-token
#: world model trained on play data, which the demo ranks beside it
SHIPPED = {"shipped": ASSETS / "pusht_world_model", "shipped_tokens": ASSETS / "pusht_token_world_model"}
SHIPPED_WORLD_MODEL = SHIPPED["shipped"]


def shipped_path(spec: str) -> Path:
    """The directory `spec` names: a shipped model's, or `spec` itself as a path."""
    return SHIPPED.get(spec, Path(spec))
