"""Groups of shoppers (a segment, a saved segment, a map selection): their size, behaviour,
what sets them apart, and two or more of them side by side (Compare)."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from core.explore.base import (FEATURE_LABELS, PRICE_BAND_ORDER, UNASSIGNED_COLOR, WEEKDAY_ORDER,
                               _cte, _df, _ids, _one, feature_columns, in_scope, lens_tables,
                               members_sql)


def segment_user_ids(con, run_id: int, segment_id: int, *, lens: str = "taste",
                     scope=None) -> list[str]:
    """The members of a segment of ``lens`` (in the scope), sorted."""
    sub, params = members_sql(run_id, lens, scope)
    return [r[0] for r in con.execute(
        f"SELECT user_id FROM ({sub}) WHERE segment_id = ? ORDER BY user_id",
        [*params, int(segment_id)]).fetchall()]


def feature_comparison(con, run_id: int, user_ids: Sequence[str]) -> pd.DataFrame:
    """Median of every behaviour feature in the group vs the whole shop."""
    cols = feature_columns(con, run_id)
    if not cols:
        return pd.DataFrame(columns=["feature", "label", "group", "population"])
    g = con.execute(f"WITH {_cte('_fsel')} SELECT " + ", ".join(f"median({c})" for c in cols) +
                    " FROM user_features JOIN _fsel USING (user_id) WHERE run_id = ?",
                    [_ids(user_ids), run_id]).fetchall()[0]
    p = con.execute("SELECT " + ", ".join(f"median({c})" for c in cols) +
                    " FROM user_features WHERE run_id = ?", [run_id]).fetchall()[0]
    return pd.DataFrame({"feature": cols, "label": [FEATURE_LABELS[c] for c in cols],
                         "group": list(g), "population": list(p)})


def busiest_hours(con, run_id: int, user_ids: Sequence[str] | None = None, width: int = 2
                  ) -> str | None:
    """The group's (or the whole shop's) busiest ``width`` hours as clock times, "14:00–16:00",
    when they clearly stand out (``core.segments.naming.peak_hours``); None otherwise."""
    from core.segments.naming import peak_hours

    if user_ids is None:
        rows = con.execute("SELECT value, sum(share) FROM user_shares WHERE run_id = ? AND "
                           "dimension = 'hour' GROUP BY value", [run_id]).fetchall()
    else:
        rows = con.execute(f"""WITH {_cte('_hsel')} SELECT value, sum(share) FROM user_shares
                               JOIN _hsel USING (user_id) WHERE run_id = ? AND dimension = 'hour'
                               GROUP BY value""", [_ids(user_ids), run_id]).fetchall()
    peak = peak_hours({str(v): float(s) for v, s in rows}, width=width)
    return peak.replace("-", "–") if peak else None


def group_summary(con, run_id: int, user_ids: Sequence[str], *, lens: str = "taste") -> dict:
    """Size, shares and median behaviour of an ad-hoc group of users against the population,
    and its mix of the lens's segments."""
    L = lens_tables(lens)
    ids = _ids(user_ids)
    n_pop = int(_one(con, "SELECT count(*) FROM user_features WHERE run_id = ?", [run_id]) or 0)
    n, rev, rev_all = con.execute(f"""
        WITH {_cte('_sel')}
        SELECT count(*), sum(f.monetary),
               (SELECT sum(monetary) FROM user_features WHERE run_id = ?)
        FROM user_features f JOIN _sel USING (user_id) WHERE f.run_id = ?""",
                                  [ids, run_id, run_id]).fetchall()[0]
    mix = _df(con, f"""
        WITH {_cte('_sel')}
        SELECT coalesce(s.segment_id, -1) AS segment_id, coalesce(i.name, 'Unassigned') AS segment,
               coalesce(i.color, ?) AS color, count(*) AS users
        FROM _sel LEFT JOIN {L.members} s ON s.user_id = _sel.user_id AND s.run_id = ?
        LEFT JOIN {L.info} i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
        GROUP BY ALL ORDER BY users DESC, segment_id""", [ids, UNASSIGNED_COLOR, run_id])
    return {
        "size": len(ids),
        "with_features": int(n or 0),
        "user_share": (int(n or 0) / n_pop) if n_pop else 0.0,
        "revenue": float(rev or 0.0),
        "revenue_share": (float(rev or 0.0) / float(rev_all)) if rev_all else 0.0,
        "segment_mix": mix,
        "features": feature_comparison(con, run_id, user_ids),
        "busiest_hours": busiest_hours(con, run_id, ids),
    }


def group_traits(con, run_id: int, user_ids: Sequence[str], *,
                 dimensions: Sequence[str] = ("category", "theme", "brand", "price_band"),
                 top: int = 8, min_users: int = 3, min_lift: float = 1.0) -> pd.DataFrame:
    """What sets an ad-hoc group apart: per preference dimension, the values whose share of the
    group's activity most exceeds the shop-wide share (lift = group share / shop share; only
    values above ``min_lift``, so nothing the group does *less* than the shop is shown).

    Columns: dimension, value, group_share, population_share, lift, users (group members with
    any activity there). Computed from user_shares (mean share over members, 0 where absent).
    """
    ids = _ids(user_ids)
    df = _df(con, f"""
        WITH {_cte('_tsel')}, pop AS (SELECT count(DISTINCT user_id) AS n FROM user_features WHERE run_id = ?),
        grp AS (SELECT count(DISTINCT f.user_id) AS n FROM user_features f
                JOIN _tsel USING (user_id) WHERE f.run_id = ?),
        p AS (SELECT dimension, value, sum(share) AS s FROM user_shares
              WHERE run_id = ? AND dimension IN (SELECT unnest(?::VARCHAR[])) GROUP BY ALL),
        g AS (SELECT dimension, value, sum(share) AS s, count(DISTINCT u.user_id) AS users
              FROM user_shares u JOIN _tsel USING (user_id)
              WHERE run_id = ? AND dimension IN (SELECT unnest(?::VARCHAR[])) GROUP BY ALL)
        SELECT g.dimension, g.value, g.s / grp.n AS group_share, p.s / pop.n AS population_share,
               (g.s / grp.n) / nullif(p.s / pop.n, 0) AS lift, g.users
        FROM g JOIN p USING (dimension, value), pop, grp
        WHERE g.users >= ? AND (g.s / grp.n) / nullif(p.s / pop.n, 0) > ?
        ORDER BY g.dimension, lift DESC""",
             [ids, run_id, run_id, run_id, list(dimensions), run_id, list(dimensions),
              min(min_users, max(1, len(ids))), float(min_lift)])
    if df.empty:
        return df
    return df.groupby("dimension", sort=False).head(top).reset_index(drop=True)


# ------------------------------------------------------------------------------------ compare
def resolve_group(con, run_id: int, ref: tuple[str, Any], *, lens: str = "taste",
                  scope=None) -> tuple[str, list[str], str | None]:
    """A group reference -> (label, user ids in the scope, colour). ref: ("segment", id) (a
    segment of ``lens``) | ("saved", saved_id) | ("users", [ids])."""
    from core.explore.overview import segments

    kind, val = ref
    if kind == "segment":
        info = segments(con, run_id, lens=lens)
        row = info[info["segment_id"] == int(val)] if not info.empty else info
        name = str(row["name"].iloc[0]) if len(row) else f"Segment {val}"
        color = str(row["color"].iloc[0]) if len(row) else None
        return name, segment_user_ids(con, run_id, int(val), lens=lens, scope=scope), color
    if kind == "saved":
        from core.explore.saved import get_saved, saved_members

        s = get_saved(con, int(val))
        return f"Saved: {s['name']}", in_scope(con, run_id, saved_members(con, int(val), run_id), scope), None
    if kind == "users":
        return "Selection", in_scope(con, run_id, map(str, val), scope), None
    raise ValueError(f"unknown group kind {kind!r}: use 'segment', 'saved' or 'users'")


def order_values(df: pd.DataFrame, dimension: str, col: str = "value") -> pd.DataFrame:
    """Rows in the natural order of the dimension's values: price bands cheapest first, hours
    and weekdays in time order; other dimensions unchanged."""
    orders = {"price_band": PRICE_BAND_ORDER, "weekday": WEEKDAY_ORDER,
              "hour": tuple(f"{h:02d}" for h in range(24))}
    if dimension not in orders or df.empty:
        return df
    rank = {v: i for i, v in enumerate(orders[dimension])}
    return df.sort_values(col, key=lambda s: s.map(lambda v: rank.get(v, len(rank))),
                          kind="stable").reset_index(drop=True)


def _item_shares(con, ids: list[str]) -> pd.DataFrame:
    """Share of the group's shoppers who bought each item (value = item title)."""
    return _df(con, f"""
        WITH {_cte('_csel')}
        SELECT coalesce(any_value(it.title), e.item_id) AS value,
               count(DISTINCT e.user_id) / nullif((SELECT count(*) FROM _csel), 0) AS share
        FROM events e JOIN _csel USING (user_id)
        LEFT JOIN (SELECT item_id, any_value(title) AS title FROM items GROUP BY item_id) it
               ON it.item_id = e.item_id
        WHERE e.event_type = 'purchase' GROUP BY e.item_id""", [ids])


def compare_groups(con, run_id: int, refs: Sequence[tuple[str, Any]], *,
                   dimension: str = "category", top: int = 8, lens: str = "taste",
                   scope=None) -> dict:
    """Side-by-side figures for two or more groups (each within the scope).

    Returns {"summary": one row per group (size, share, revenue share, median RFM, busiest
    hours...), "features": long frame (group, feature, label, value), "shares": long frame of
    the dimension's value shares (group, value, share) for the values that lead in any group}.
    ``dimension``: a preference dimension (category, theme, brand, price_band) - share of each
    group's activity - or "item": share of each group's shoppers who bought the item. Price
    bands come cheapest first (all of them); other values by their lead."""
    summary, feats, shares = [], [], []
    for ref in refs:
        label, ids, color = resolve_group(con, run_id, ref, lens=lens, scope=scope)
        s = group_summary(con, run_id, ids, lens=lens)
        f = s["features"].set_index("feature")["group"].to_dict()
        summary.append({"group": label, "color": color, "users": s["size"],
                        "user_share": s["user_share"], "revenue_share": s["revenue_share"],
                        "median_orders": f.get("frequency"), "median_spend": f.get("monetary"),
                        "median_recency_days": f.get("recency_days"),
                        "median_order_value": f.get("avg_order_value"),
                        "busiest_hours": s["busiest_hours"]})
        for feat, v in f.items():
            feats.append({"group": label, "feature": feat, "label": FEATURE_LABELS[feat], "value": v})
        if dimension == "item":
            d = _item_shares(con, _ids(ids))
        else:
            d = _df(con, f"""
                WITH {_cte('_csel')}
                SELECT value, sum(share) / nullif((SELECT count(*) FROM _csel), 0) AS share
                FROM user_shares JOIN _csel USING (user_id)
                WHERE run_id = ? AND dimension = ? GROUP BY value""", [_ids(ids), run_id, dimension])
        d.insert(0, "group", label)
        shares.append(d)
    sh = pd.concat(shares, ignore_index=True) if shares else pd.DataFrame(columns=["group", "value", "share"])
    if not sh.empty and dimension != "price_band":
        lead = (sh.sort_values(["share", "value"], ascending=[False, True])
                .groupby("group").head(top)["value"].unique())
        sh = sh[sh["value"].isin(lead)]
        best = sh.groupby("value")["share"].max().sort_values(ascending=False, kind="stable")
        rank = {v: i for i, v in enumerate(best.index)}
        sh = sh.assign(_r=sh["value"].map(rank)).sort_values(["_r"], kind="stable").drop(columns="_r")
    sh = order_values(sh.reset_index(drop=True), dimension)
    return {"summary": pd.DataFrame(summary), "features": pd.DataFrame(feats), "shares": sh}
