"""Segment detail: what sets a segment apart (its stored qualifying traits only), how its members
behave, what they buy, who typifies them, and the rules specific to it."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from core.explore.base import (FEATURE_LABELS, _cte, _df, _ids, check_scope, lens_tables,
                               members_sql, table_exists)
from core.explore.groups import busiest_hours, feature_comparison, segment_user_ids


def segment_traits(con, run_id: int, segment_id: int, *, lens: str = "taste",
                   top: int = 10) -> pd.DataFrame:
    """The segment's stored qualifying traits (``core.segments.traits``: lift >= 1.5, common,
    significant), strongest lift first per dimension, with words for each value (``label``:
    item titles, theme labels, habit descriptions). Nothing with lift under 1 is ever returned.
    Columns: dimension, value, label, support, population_support, lift, members, p_value."""
    L = lens_tables(lens)
    if not table_exists(con, L.traits):
        return pd.DataFrame()
    cols = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE "
                                      "table_name = ?", [L.traits]).fetchall()}
    label = "t.label" if "label" in cols else "NULL"
    members = "t.members" if "members" in cols else "NULL"
    p_value = "t.p_value" if "p_value" in cols else "NULL"
    df = _df(con, f"""
        SELECT t.dimension, t.value,
               coalesce({label}, CASE WHEN t.dimension = 'item' THEN it.title END, t.value) AS label,
               t.support, t.population_support, t.lift, {members} AS members, {p_value} AS p_value
        FROM {L.traits} t
        LEFT JOIN (SELECT item_id, any_value(title) AS title FROM items GROUP BY item_id) it
               ON t.dimension = 'item' AND it.item_id = t.value
        WHERE t.run_id = ? AND t.segment_id = ? AND t.lift > 1
        ORDER BY t.dimension, t.lift DESC NULLS LAST, t.support DESC""", [run_id, int(segment_id)])
    if df.empty:
        return df
    return df.groupby("dimension", sort=False).head(top).reset_index(drop=True)


def feature_distribution(con, run_id: int, feature: str, segment_id: int | None = None,
                         sample: int = 20_000, *, lens: str = "taste", scope=None) -> pd.DataFrame:
    """Values of one behaviour feature for a segment's members (in the scope) and for the whole
    shop (a deterministic sample of at most ``sample`` users each). Columns: group, value."""
    if feature not in FEATURE_LABELS:
        raise ValueError(f"unknown feature {feature!r}; choose one of {', '.join(FEATURE_LABELS)}")
    pop = _df(con, f"""SELECT 'Whole shop' AS "group", {feature} AS value FROM user_features
                       WHERE run_id = ? AND {feature} IS NOT NULL
                       ORDER BY hash(user_id) LIMIT ?""", [run_id, sample])
    if segment_id is None:
        return pop
    sub, params = members_sql(run_id, lens, scope)
    seg = _df(con, f"""SELECT 'Segment' AS "group", f.{feature} AS value FROM user_features f
                       JOIN ({sub}) s ON s.user_id = f.user_id
                       WHERE f.run_id = ? AND s.segment_id = ? AND f.{feature} IS NOT NULL
                       ORDER BY hash(f.user_id) LIMIT ?""",
              [*params, run_id, int(segment_id), sample])
    return pd.concat([seg, pop], ignore_index=True)


def top_items(con, run_id: int, user_ids: Sequence[str] | None = None, *,
              segment_id: int | None = None, n: int = 10, lens: str = "taste",
              scope=None) -> pd.DataFrame:
    """Most bought items of a group (or a segment of ``lens`` in the scope, or the whole shop):
    buyers, units, revenue (NULL where the shop records no prices)."""
    join, params = "", []
    if segment_id is not None:
        sub, sp = members_sql(run_id, lens, scope)
        join = f"JOIN ({sub}) s ON s.user_id = e.user_id AND s.segment_id = ?"
        params = [[], *sp, int(segment_id)]
    elif user_ids is not None:
        join = "JOIN _isel ON _isel.user_id = e.user_id"
        params = [_ids(user_ids)]
    else:
        params = [[]]
    return _df(con, f"""
        WITH {_cte('_isel')}
        SELECT e.item_id, any_value(it.title) AS title, any_value(it.category_path) AS category,
               count(DISTINCT e.user_id) AS buyers, sum(abs(e.quantity)) AS units,
               sum(abs(e.quantity) * e.unit_price) AS revenue
        FROM events e {join}
        LEFT JOIN (SELECT item_id, any_value(title) AS title, any_value(category_path) AS category_path
                   FROM items GROUP BY item_id) it ON it.item_id = e.item_id
        WHERE e.event_type = 'purchase'
        GROUP BY e.item_id ORDER BY buyers DESC, revenue DESC NULLS LAST, e.item_id LIMIT ?""",
               params + [n])


def user_summaries(con, run_id: int, user_ids: Sequence[str], *, lens: str = "taste"
                   ) -> pd.DataFrame:
    """One line per user: segment (of ``lens``), orders, spend, recency, attributes."""
    L = lens_tables(lens)
    return _df(con, f"""
        WITH {_cte('_usel')}
        SELECT _usel.user_id, coalesce(i.name, 'Unassigned') AS segment,
               f.frequency AS orders, f.monetary AS spend, f.recency_days,
               f.avg_order_value, u.attributes
        FROM _usel
        LEFT JOIN user_features f ON f.run_id = ? AND f.user_id = _usel.user_id
        LEFT JOIN {L.members} s ON s.run_id = ? AND s.user_id = _usel.user_id
        LEFT JOIN {L.info} i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
        LEFT JOIN (SELECT user_id, any_value(attributes) AS attributes FROM users GROUP BY user_id) u
               ON u.user_id = _usel.user_id
        ORDER BY _usel.user_id""", [_ids(user_ids), run_id, run_id])


def _representatives(con, run_id: int, info_row: dict, members: list[str], lens: str,
                     n: int = 10) -> pd.DataFrame:
    """The stored representative shoppers that are in the scope; with a scope and none of them
    left, the members closest to the segment's centre (or the first by id)."""
    reps = info_row.get("representative_users")
    reps = [str(r) for r in reps] if reps is not None else []
    keep = set(members)
    reps = [r for r in reps if r in keep][:n]
    if not reps and members:
        L = lens_tables(lens)
        reps = [r[0] for r in con.execute(f"""
            WITH {_cte('_rsel')} SELECT s.user_id FROM {L.members} s JOIN _rsel USING (user_id)
            WHERE s.run_id = ? ORDER BY s.distance NULLS LAST, s.user_id LIMIT ?""",
                                          [members, run_id, n]).fetchall()]
    return user_summaries(con, run_id, reps, lens=lens) if reps else pd.DataFrame()


def segment_detail(con, run_id: int, segment_id: int, *, lens: str = "taste", scope=None) -> dict:
    """Everything the segment page shows except charts of distributions. With a scope, the
    figures are those of the segment's shoppers in the scope (``info`` keeps the segment's
    own description, rule and traits; ``scoped`` has the counts in the scope)."""
    from core.explore.overview import segments
    from core.explore.rules import rules_table

    L = lens_tables(lens)
    info = segments(con, run_id, lens=lens)
    row = info[info["segment_id"] == int(segment_id)] if not info.empty else info
    if row.empty:
        raise KeyError(f"{L.label.lower()} segment {segment_id} is not in build {run_id}")
    info_row = row.iloc[0].to_dict()
    members = segment_user_ids(con, run_id, segment_id, lens=lens, scope=scope)
    scoped = None
    if check_scope(scope) is not None:
        sc = segments(con, run_id, lens=lens, scope=scope)
        r = sc[sc["segment_id"] == int(segment_id)]
        scoped = ({"size": 0, "user_share": 0.0, "revenue": 0.0, "revenue_share": 0.0}
                  if r.empty else r.iloc[0][["size", "user_share", "revenue", "revenue_share"]]
                  .to_dict())
    rules = (rules_table(con, run_id, segment_id=int(segment_id), limit=50)
             if L.name == "taste" else pd.DataFrame())
    return {
        "info": info_row,
        "scoped": scoped,
        "members": len(members),
        "traits": segment_traits(con, run_id, segment_id, lens=lens),
        "top_items": top_items(con, run_id, members) if scoped is not None else
        top_items(con, run_id, segment_id=segment_id, lens=lens),
        "representatives": _representatives(con, run_id, info_row, members, lens),
        "rules": rules,
        "features": feature_comparison(con, run_id, members),
        "busiest_hours": busiest_hours(con, run_id, members),
        "shop_busiest_hours": busiest_hours(con, run_id),
    }
