"""Segment Studio core: ingest -> store -> features -> encoder -> segments/maps/rules/recommendations.

``core`` never imports streamlit; the dashboard calls into it.
"""

__version__ = "0.1.0"
