"""Shopper segments in two lenses (``core.segments.lenses``): the lifecycle lens
(``assign_lifecycle``: rules on recency, orders and spend relative to the shop) and the taste lens
(``segment_taste``: what shoppers buy and how they shop, from the profile encoder, KMeans or
DBSCAN, chosen by held-out evidence), each described by ``describe_segments`` (qualifying traits,
honest names and descriptions, colours)."""

from core.segments.build_taste import segment_taste
from core.segments.cluster import default_min_samples, knee
from core.segments.describe import PALETTE, UNASSIGNED_COLOR, describe_segments, segment_color
from core.segments.lenses import DEFAULT_LENS, LENS_HELP, LENS_LABELS, LENSES, lens
from core.segments.lifecycle import assign_lifecycle
from core.segments.profiles import NoProfilesError, load_profiles

__all__ = [
    "DEFAULT_LENS",
    "LENSES",
    "LENS_HELP",
    "LENS_LABELS",
    "PALETTE",
    "UNASSIGNED_COLOR",
    "NoProfilesError",
    "assign_lifecycle",
    "default_min_samples",
    "describe_segments",
    "knee",
    "lens",
    "load_profiles",
    "segment_color",
    "segment_taste",
]
