"""Data the world model trains on: the HDF5 latent cache (encode once, train many)."""

from worldmodel.data.latent_cache import FORMAT_VERSION, EpisodeInfo, LatentCache, build_latent_cache

__all__ = ["FORMAT_VERSION", "EpisodeInfo", "LatentCache", "build_latent_cache"]
