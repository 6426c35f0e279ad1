"""The segment map: 2-D UMAP coordinates of the shoppers' profile vectors (``build_map``)."""

from core.maps.umap_map import build_map, embed_2d

__all__ = ["build_map", "embed_2d"]
