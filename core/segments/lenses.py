"""Segment lenses: two ways of dividing the same shoppers, stored alike.

* ``lifecycle`` - where a shopper is in their life with the shop (new, active, loyal high value,
  at risk, lapsed, one-off, browsers who never bought), by rules on recency, frequency and value
  relative to the shop (``core.segments.lifecycle``);
* ``taste`` - what they buy and how they shop, learned from the profile encoder and clustered
  with KMeans or DBSCAN (``core.segments.taste``).

Each lens has a membership table (one row per shopper and run), an info table (one row per
segment: name, description, colour, size, shares, medians...) and a traits table (what sets a
segment apart), with the same columns (``core.store.schema.LENS_TABLES``). Code that works on
segments takes a lens name and looks its tables up here.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.store.schema import LENS_TABLES

LENSES = tuple(LENS_TABLES)          # ('taste', 'lifecycle')
DEFAULT_LENS = "taste"
LENS_LABELS = {"taste": "Taste", "lifecycle": "Lifecycle"}
LENS_HELP = {
    "taste": "What shoppers buy and how they shop, learned from their behaviour by the profile "
             "encoder and grouped automatically.",
    "lifecycle": "Where shoppers are in their life with the shop - new, active, loyal, at risk, "
                 "lapsed - by rules on recency, orders and spend relative to this shop.",
}


@dataclass(frozen=True)
class Lens:
    name: str
    members: str
    info: str
    traits: str

    @property
    def label(self) -> str:
        return LENS_LABELS[self.name]


def lens(name: str | None = None) -> Lens:
    """The tables of lens ``name`` (default: taste). Unknown names are an error that lists the
    lenses, so a typo never silently reads the wrong segments."""
    key = (name or DEFAULT_LENS).lower()
    if key not in LENS_TABLES:
        raise ValueError(f"Unknown segment lens {name!r}; use one of: {', '.join(LENSES)}.")
    return Lens(key, *LENS_TABLES[key])
