"""Shopper segments: clustering profiles (``segment_users``) and describing segments
(``describe_segments``: names, descriptions, colours, traits)."""

from core.segments.cluster import default_min_samples, knee, segment_users
from core.segments.describe import PALETTE, UNASSIGNED_COLOR, describe_segments, segment_color
from core.segments.profiles import NoProfilesError, load_profiles

__all__ = [
    "PALETTE",
    "UNASSIGNED_COLOR",
    "NoProfilesError",
    "default_min_samples",
    "describe_segments",
    "knee",
    "load_profiles",
    "segment_color",
    "segment_users",
]
