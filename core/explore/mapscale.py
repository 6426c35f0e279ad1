"""The segment map at any size: every shopper as a density layer when only a sample can be drawn
as points, each group's name drawn on the map where its shoppers are, and finding one shopper.

All three read the whole ``user_map`` (in the scope), never the drawn sample, so they stay true at
a million shoppers while the browser gets a fixed amount of data (a ``bins`` x ``bins`` grid, one
label per group, a handful of matches)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.explore.base import _df, lens_tables, scope_filter
from core.explore.mapview import MAP_GROUPINGS, group_sql


def map_density(con, run_id: int, *, bins: int = 160, scope=None) -> dict | None:
    """Shoppers per cell of a ``bins`` x ``bins`` grid over the map (in the scope): {x, y: cell
    centres, z: counts (rows = y, None where empty), total, max}; None when the map is empty."""
    cond, sparams = scope_filter("user_id", run_id, scope)
    ext = con.execute(f"SELECT count(*), min(x), max(x), min(y), max(y) FROM user_map "
                      f"WHERE run_id = ?{cond}", [run_id, *sparams]).fetchone()
    n, x0, x1, y0, y1 = ext
    if not n:
        return None
    bins = max(2, int(bins))
    dx = (x1 - x0) / bins or 1.0
    dy = (y1 - y0) / bins or 1.0
    rows = con.execute(f"""
        SELECT least(floor((x - ?) / ?)::INTEGER, ?) AS i, least(floor((y - ?) / ?)::INTEGER, ?) AS j,
               count(*) FROM user_map WHERE run_id = ?{cond} GROUP BY ALL""",
                       [x0, dx, bins - 1, y0, dy, bins - 1, run_id, *sparams]).fetchall()
    z = np.full((bins, bins), np.nan)
    for i, j, c in rows:
        z[j, i] = c
    return {"x": (x0 + dx * (np.arange(bins) + 0.5)).tolist(),
            "y": (y0 + dy * (np.arange(bins) + 0.5)).tolist(),
            "z": [[None if np.isnan(v) else int(v) for v in row] for row in z],
            "total": int(n), "max": int(np.nanmax(z))}


def map_labels(con, run_id: int, *, color_by: str | None = None, lens: str = "taste",
               scope=None, min_share: float = 0.01) -> pd.DataFrame:
    """One label per group of the map's colouring (a lens's segments, or themes), placed at the
    member nearest the group's median point, so it sits on the group even when the group is
    curved or split: columns group, x, y, shoppers, share. Groups under ``min_share`` of the map
    get none (their names would crowd the map), nor do shoppers in no group; empty for a
    behaviour colouring."""
    grouping = lens if color_by in (None, "segment") else color_by
    if grouping not in MAP_GROUPINGS:
        return pd.DataFrame(columns=["group", "x", "y", "shoppers", "share"])
    extra, join, params = group_sql(grouping, run_id)
    cond, sparams = scope_filter("m.user_id", run_id, scope)
    df = _df(con, f"""
        WITH pts AS (SELECT m.user_id, m.x, m.y {extra} FROM user_map m {join}
                     WHERE m.run_id = ?{cond}),
        mid AS (SELECT "group", median(x) AS mx, median(y) AS my, count(*) AS shoppers
                FROM pts GROUP BY ALL)
        SELECT p."group", arg_min(p.x, (p.x - mid.mx) ^ 2 + (p.y - mid.my) ^ 2) AS x,
               arg_min(p.y, (p.x - mid.mx) ^ 2 + (p.y - mid.my) ^ 2) AS y,
               any_value(mid.shoppers) AS shoppers
        FROM pts p JOIN mid USING ("group") GROUP BY p."group" ORDER BY shoppers DESC, p."group"
        """, [*params, run_id, *sparams])
    total = float(df["shoppers"].sum()) if len(df) else 0.0
    df["share"] = df["shoppers"] / total if total else 0.0
    # shoppers in no group (DBSCAN's noise, no theme) are spread out: a label would mislead
    keep = (df["share"] >= min_share) & ~df["group"].isin(["Unassigned", "No theme"])
    return df[keep].reset_index(drop=True)


def find_on_map(con, run_id: int, query: str, *, lens: str = "taste", limit: int = 5,
                scope=None) -> pd.DataFrame:
    """Shoppers on the map whose id starts with (or else contains) ``query``: user_id, x, y,
    segment (in ``lens``); exact matches first. Empty for an empty query."""
    q = (query or "").strip()
    if not q:
        return pd.DataFrame(columns=["user_id", "x", "y", "segment"])
    L = lens_tables(lens)
    cond, sparams = scope_filter("m.user_id", run_id, scope)
    return _df(con, f"""
        SELECT m.user_id, m.x, m.y, coalesce(i.name, 'Unassigned') AS segment
        FROM user_map m
        LEFT JOIN {L.members} s ON s.run_id = m.run_id AND s.user_id = m.user_id
        LEFT JOIN {L.info} i ON i.run_id = m.run_id AND i.segment_id = s.segment_id
        WHERE m.run_id = ? AND m.user_id ILIKE ?{cond}
        ORDER BY m.user_id <> ?, NOT starts_with(m.user_id, ?), length(m.user_id), m.user_id
        LIMIT ?""", [run_id, f"%{q}%", *sparams, q, q, int(limit)])
