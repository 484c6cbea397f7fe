"""Encoder registry: one name per latent-space family, each class imported only when asked for.

Adding a family (sd3_vae, rae_dinov2, webssl, siglip2, qwen25vl, vjepa2, cosmos, vavae, ...) is one file that
subclasses `Encoder` plus one line in `ENCODERS`; heavy imports (transformers, vendored code) stay inside that
file, so `import worldmodel.encoders` stays cheap.

Construction convention, relied on by `load_encoder` and by `Encoder.get_config()` round-trips:
- `Class(**kwargs)` builds the encoder (fresh weights for trainable families, or a weightless one);
- `Class.from_pretrained(pretrained, **kwargs)` (only for families with weights) loads a local directory or a
  Hub id through `worldmodel.hub.resolve_pretrained` and raises `MissingWeightsError` when it is absent.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from worldmodel.encoders.base import Encoder, NoDecoderError
from worldmodel.errors import InputError

#: registry name -> "module:Class", imported lazily by `get_encoder_class`
ENCODERS: dict[str, str] = {
    "pixels": "worldmodel.encoders.pixels:PixelsEncoder",
    "conv_vae": "worldmodel.encoders.conv_vae:ConvVAEEncoder",
    "sd3_vae": "worldmodel.encoders.sd3_vae:SD3VAEEncoder",
    "rae_dinov2": "worldmodel.encoders.rae_dinov2:RAEDinov2Encoder",
    "webssl": "worldmodel.encoders.webssl:WebSSLEncoder",
    "siglip2": "worldmodel.encoders.siglip2:SigLIP2Encoder",
    "qwen25vl": "worldmodel.encoders.qwen25vl:Qwen25VLEncoder",
    "vjepa2": "worldmodel.encoders.vjepa2:VJEPA2Encoder",
    "cosmos": "worldmodel.encoders.cosmos:CosmosEncoder",
    "vavae": "worldmodel.encoders.vavae:VAVAEEncoder",
    "object_tokens": "worldmodel.encoders.object_tokens:ObjectTokensEncoder",
}

__all__ = ["ENCODERS", "Encoder", "NoDecoderError", "get_encoder_class", "load_encoder"]


def get_encoder_class(type: str) -> type[Encoder]:
    """The class registered under `type`; `InputError` listing the known names otherwise."""
    if type not in ENCODERS:
        known = ", ".join(sorted(ENCODERS))
        raise InputError(f"unknown encoder type '{type}': choose one of {known}")
    module_name, _, class_name = ENCODERS[type].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_encoder(type: str, pretrained: str | None = None, **kwargs: Any) -> Encoder:
    """Build the encoder `type`, loading weights from `pretrained` (local directory or Hub id) when given.

    `load_encoder(**encoder.get_config())` rebuilds the same latent space. Options the family does not take
    raise `InputError` naming the accepted ones, instead of a bare TypeError deep inside a constructor.
    """
    cls = get_encoder_class(type)
    if pretrained is None:
        _check_kwargs(type, cls.__init__, kwargs)
        return cls(**kwargs)
    loader = getattr(cls, "from_pretrained", None)
    if loader is None:
        raise InputError(f"encoder '{type}' has no weights to load: drop pretrained={pretrained!r}")
    _check_kwargs(type, loader, kwargs)
    return loader(pretrained, **kwargs)


def _check_kwargs(type: str, fn: Any, kwargs: dict[str, Any]) -> None:
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n in params if n not in {"self", "cls", "pretrained"}]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InputError(
            f"encoder '{type}' does not take option(s) {', '.join(unknown)}: accepted are {', '.join(accepted)}"
        )
