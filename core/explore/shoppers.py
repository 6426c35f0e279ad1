"""Shopper profiles: finding a shopper, who they are in both lenses, what they did, and what
they prefer against their segment and the shop."""

from __future__ import annotations

import json

import pandas as pd

from core.explore.base import (LENSES, UNASSIGNED_COLOR, _df, _one, lens_tables, scope_filter,
                               table_exists)


def find_users(con, query: str = "", limit: int = 20, *, run_id: int | None = None,
               scope=None) -> list[str]:
    """User ids starting with (or else containing) ``query``; with a scope (and the run), only
    shoppers in it."""
    q = (query or "").strip()
    cond, params = scope_filter("user_id", run_id, scope) if scope is not None and run_id \
        is not None else ("", [])
    rows = con.execute(f"""
        SELECT DISTINCT user_id, starts_with(user_id, ?) AS pre FROM users
        WHERE user_id ILIKE ?{cond} ORDER BY pre DESC, length(user_id), user_id LIMIT ?""",
                       [q, f"%{q}%", *params, limit]).fetchall()
    return [r[0] for r in rows]


def user_segments(con, run_id: int, user_id: str) -> dict[str, dict]:
    """The shopper's segment in each lens: {lens: {segment_id, name, color, description, rule}}."""
    out = {}
    for name in LENSES:
        L = lens_tables(name)
        if not table_exists(con, L.members):
            continue
        row = con.execute(f"""
            SELECT s.segment_id, coalesce(i.name, 'Unassigned'), coalesce(i.color, ?), i.description,
                   i.rule
            FROM {L.members} s LEFT JOIN {L.info} i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
            WHERE s.run_id = ? AND s.user_id = ?""", [UNASSIGNED_COLOR, run_id, user_id]).fetchone()
        if row:
            out[name] = dict(zip(("segment_id", "name", "color", "description", "rule"), row))
            out[name]["segment_id"] = int(row[0])
    return out


def user_profile(con, run_id: int, user_id: str, *, lens: str = "taste") -> dict | None:
    """A shopper's attributes, behaviour, segments (both lenses; ``segment*`` keys for ``lens``)
    and main theme."""
    urow = con.execute("SELECT any_value(attributes), min(first_seen) FROM users WHERE user_id = ?",
                       [user_id]).fetchone()
    feats = _df(con, "SELECT * EXCLUDE (run_id, user_id) FROM user_features WHERE run_id = ? "
                     "AND user_id = ?", [run_id, user_id])
    if (urow is None or urow[0] is None and urow[1] is None) and feats.empty:
        exists = _one(con, "SELECT count(*) FROM users WHERE user_id = ?", [user_id])
        if not exists:
            return None
    attrs = {}
    if urow and urow[0]:
        try:
            attrs = json.loads(urow[0]) if isinstance(urow[0], str) else dict(urow[0])
        except (ValueError, TypeError):
            attrs = {"attributes": str(urow[0])}
    segs = user_segments(con, run_id, user_id)
    seg = segs.get(lens_tables(lens).name)
    theme = _one(con, "SELECT value FROM user_shares WHERE run_id = ? AND user_id = ? AND "
                      "dimension = 'theme' ORDER BY share DESC, value LIMIT 1", [run_id, user_id]) \
        if table_exists(con, "user_shares") else None
    return {
        "user_id": user_id,
        "attributes": attrs,
        "first_seen": urow[1] if urow else None,
        "features": feats.iloc[0].to_dict() if not feats.empty else {},
        "segments": segs,
        "segment_id": seg["segment_id"] if seg else None,
        "segment": seg["name"] if seg else None,
        "segment_color": seg["color"] if seg else None,
        "segment_description": seg["description"] if seg else None,
        "main_theme": theme,
    }


def user_timeline(con, user_id: str, limit: int = 500) -> pd.DataFrame:
    """The shopper's events, newest first, with item titles."""
    return _df(con, """
        SELECT e.ts, e.event_type, e.item_id, it.title, it.category_path AS category,
               e.quantity, e.unit_price, e.basket_id
        FROM events e
        LEFT JOIN (SELECT item_id, any_value(title) AS title, any_value(category_path) AS category_path
                   FROM items GROUP BY item_id) it ON it.item_id = e.item_id
        WHERE e.user_id = ? ORDER BY e.ts DESC NULLS LAST, e.event_id DESC LIMIT ?""",
               [user_id, limit])


def user_preferences(con, run_id: int, user_id: str, dimension: str, top: int = 10,
                     every_value: bool = False, *, lens: str = "taste") -> pd.DataFrame:
    """The user's share of activity per value of a dimension vs their segment's (in ``lens``)
    and the shop's average share. Columns: value, user, segment, shop. The user's ``top``
    values, or with ``every_value`` all values of the dimension (for hour of day and day of
    week)."""
    from core.explore.groups import order_values

    L = lens_tables(lens)
    df = _df(con, f"""
        WITH me AS (SELECT value, share FROM user_shares WHERE run_id = ? AND user_id = ? AND dimension = ?),
        seg AS (SELECT segment_id FROM {L.members} WHERE run_id = ? AND user_id = ?),
        members AS (SELECT s.user_id FROM {L.members} s, seg WHERE s.run_id = ? AND s.segment_id = seg.segment_id),
        n_seg AS (SELECT count(*) AS n FROM members),
        n_all AS (SELECT count(*) AS n FROM user_features WHERE run_id = ?),
        keep AS (SELECT value FROM (SELECT value FROM me ORDER BY share DESC, value LIMIT ?)
                 UNION SELECT DISTINCT value FROM user_shares WHERE ? AND run_id = ? AND dimension = ?)
        SELECT k.value, coalesce(me.share, 0) AS "user",
               (SELECT sum(u.share) FROM user_shares u JOIN members USING (user_id)
                WHERE u.run_id = ? AND u.dimension = ? AND u.value = k.value) / nullif((SELECT n FROM n_seg), 0) AS segment,
               (SELECT sum(u.share) FROM user_shares u
                WHERE u.run_id = ? AND u.dimension = ? AND u.value = k.value) / nullif((SELECT n FROM n_all), 0) AS shop
        FROM keep k LEFT JOIN me USING (value)
        ORDER BY "user" DESC, k.value""",
             [run_id, user_id, dimension, run_id, user_id, run_id, run_id, top,
              bool(every_value), run_id, dimension, run_id, dimension, run_id, dimension])
    return order_values(df, dimension) if dimension == "price_band" or every_value else df
