"""Shopper segments in two lenses (``core.segments.lenses``): the lifecycle lens
(``assign_lifecycle``: rules on recency, orders and spend relative to the shop) and the taste lens
(``segment_taste``: what shoppers buy and how they shop, from the profile encoder, KMeans or
DBSCAN, chosen by held-out evidence), each described by ``describe_segments`` (qualifying traits,
honest names and descriptions, colours).

Names are imported on first use, so light modules (``core.segments.report``, ``lenses``) do not
load the numerical libraries (``segstudio status`` stays quick).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "segment_taste": "build_taste",
    "default_min_samples": "cluster", "knee": "cluster",
    "PALETTE": "describe", "UNASSIGNED_COLOR": "describe", "describe_segments": "describe",
    "segment_color": "describe",
    "DEFAULT_LENS": "lenses", "LENSES": "lenses", "LENS_HELP": "lenses", "LENS_LABELS": "lenses",
    "lens": "lenses",
    "assign_lifecycle": "lifecycle",
    "NoProfilesError": "profiles", "load_profiles": "profiles",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'core.segments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"core.segments.{mod}"), name)
    globals()[name] = value
    return value
