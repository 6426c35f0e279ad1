"""Read-side queries behind the dashboard pages (all SQL runs in DuckDB).

Every function takes a read-only connection (``store.read()`` or a cursor of one) and the run to
read (normally ``core.store.latest_run(con)["run_id"]``). Results are pandas DataFrames or plain
dicts ready to render.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

UNASSIGNED_COLOR = "#9aa0a6"
FALLBACK_COLORS = [
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#FF9DA6",
    "#9D755D", "#BAB0AC", "#1F77B4", "#2CA02C",
]

# Behaviour features (user_features columns) with names a marketer understands.
FEATURE_LABELS: dict[str, str] = {
    "recency_days": "Days since last purchase",
    "frequency": "Orders",
    "monetary": "Net spend",
    "avg_order_value": "Average order value",
    "tenure_days": "Days as a customer",
    "return_rate": "Return rate",
    "views_per_purchase": "Views per purchase",
    "basket_size": "Items per order",
    "evening_share": "Share of activity in the evening",
    "weekend_share": "Share of activity at weekends",
    "mean_hour": "Typical hour of day",
    "price_sensitivity": "Price level vs category (below 0 = cheaper)",
    "diversity": "Category variety",
    "n_events": "Interactions",
    "n_items": "Distinct items",
    "holiday_share": "Share of purchases in November-December",
}
MONEY_FEATURES = {"monetary", "avg_order_value"}
SHARE_FEATURES = {"return_rate", "evening_share", "weekend_share", "holiday_share"}
DIMENSION_LABELS = {
    "category": "Categories", "brand": "Brands", "price_band": "Price bands", "item": "Items",
    "hour": "Hour of day", "weekday": "Day of week",
}


def _df(con, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
    return con.execute(sql, list(params or [])).df()


def _one(con, sql: str, params: Sequence[Any] | None = None):
    row = con.execute(sql, list(params or [])).fetchone()
    return row[0] if row else None


def table_exists(con, name: str) -> bool:
    return bool(_one(con, "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                          "AND table_name = ?", [name]))


def has_rows(con, table: str, run_id: int | None = None) -> bool:
    if not table_exists(con, table):
        return False
    if run_id is None:
        return _one(con, f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)") > 0
    return _one(con, f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE run_id = ? LIMIT 1)",
                [run_id]) > 0


def feature_columns(con, run_id: int) -> list[str]:
    """The behaviour features present (non-NULL somewhere) in this run, in display order."""
    cols = [c for c in FEATURE_LABELS
            if c in {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE "
                                                 "table_name = 'user_features'").fetchall()}]
    if not cols:
        return []
    counts = con.execute(
        "SELECT " + ", ".join(f"count({c})" for c in cols) + " FROM user_features WHERE run_id = ?",
        [run_id]).fetchone()
    return [c for c, n in zip(cols, counts) if n]


# ------------------------------------------------------------------------------------ overview
def latest_build(con) -> dict | None:
    """The run the dashboard serves: the latest complete build."""
    from core.store import latest_run

    return latest_run(con, "build")


def shop_totals(con) -> dict:
    """Users, items, events, baskets, net revenue and the date range of the data."""
    row = con.execute(
        """
        SELECT (SELECT count(DISTINCT user_id) FROM users),
               (SELECT count(DISTINCT item_id) FROM items),
               count(*),
               count(DISTINCT basket_id),
               sum(CASE WHEN event_type = 'purchase' THEN abs(quantity) * unit_price
                        WHEN event_type = 'return' THEN -abs(quantity) * unit_price END),
               min(ts), max(ts),
               count(*) FILTER (WHERE event_type = 'purchase')
        FROM events
        """
    ).fetchone()
    users, items, events, baskets, revenue, first, last, purchases = row
    return {"users": int(users or 0), "items": int(items or 0), "events": int(events or 0),
            "baskets": int(baskets or 0), "revenue": float(revenue or 0.0),
            "first_event": first, "last_event": last, "purchases": int(purchases or 0)}


def data_health(con) -> dict:
    """Rows loaded and quarantined per ingest, quarantine reasons, reconciliation.

    Uses ``core.ingest.status.ingest_summary`` (the ingest stage's own view) when available.
    """
    try:
        from core.ingest.status import ingest_summary

        s = ingest_summary(con)
        ingests = pd.DataFrame(s.get("ingests") or [])
        reasons = s.get("quarantine_reasons") or {}
    except ImportError:
        ingests = _df(con, """
            SELECT ingest_id, source_file, format, rows_read, rows_loaded, rows_quarantined,
                   rows_duplicate,
                   rows_read = rows_loaded + rows_quarantined + rows_duplicate AS reconciles
            FROM ingests ORDER BY ingest_id""")
        reasons = dict(con.execute(
            "SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY 2 DESC").fetchall())
    if ingests.empty:
        ingests = pd.DataFrame(columns=["ingest_id", "source_file", "format", "rows_read",
                                        "rows_loaded", "rows_quarantined", "rows_duplicate",
                                        "reconciles"])
    return {
        "ingests": ingests,
        "quarantine_reasons": reasons,
        "rows_read": int(ingests["rows_read"].sum()) if len(ingests) else 0,
        "rows_loaded": int(ingests["rows_loaded"].sum()) if len(ingests) else 0,
        "rows_quarantined": int(ingests["rows_quarantined"].sum()) if len(ingests) else 0,
        "rows_duplicate": int(ingests["rows_duplicate"].sum()) if len(ingests) else 0,
        "all_reconcile": bool(ingests["reconciles"].all()) if len(ingests) else True,
    }


def segments(con, run_id: int) -> pd.DataFrame:
    """segment_info of a run (one row per segment, largest first), colours filled in."""
    if not table_exists(con, "segment_info"):
        return pd.DataFrame()
    df = _df(con, "SELECT * EXCLUDE (run_id) FROM segment_info WHERE run_id = ? "
                  "ORDER BY segment_id = -1, size DESC, segment_id", [run_id])
    if df.empty:
        return df
    df["color"] = [c if isinstance(c, str) and c.startswith("#") else
                   (UNASSIGNED_COLOR if sid == -1 else FALLBACK_COLORS[i % len(FALLBACK_COLORS)])
                   for i, (sid, c) in enumerate(zip(df["segment_id"], df["color"]))]
    return df


def segment_colors(con, run_id: int) -> dict[int, str]:
    df = segments(con, run_id)
    out = {int(s): c for s, c in zip(df.get("segment_id", []), df.get("color", []))}
    out.setdefault(-1, UNASSIGNED_COLOR)
    return out


def segment_names(con, run_id: int) -> dict[int, str]:
    df = segments(con, run_id)
    out = {int(s): n for s, n in zip(df.get("segment_id", []), df.get("name", []))}
    out.setdefault(-1, "Unassigned")
    return out


# ------------------------------------------------------------------------------------ map
def map_points(con, run_id: int, *, color_by: str | None = None, max_points: int = 50_000,
               ) -> tuple[pd.DataFrame, int]:
    """Points of the segment map with a hover summary: (frame, total number of users on the map).

    Beyond ``max_points`` a deterministic sample (by a hash of the user id) is returned, so the
    map stays responsive; the total tells how many there are in all.
    """
    total = int(_one(con, "SELECT count(*) FROM user_map WHERE run_id = ?", [run_id]) or 0)
    extra = ""
    if color_by and color_by in FEATURE_LABELS:
        extra = f", f.{color_by} AS color_value"
    df = _df(con, f"""
        SELECT m.user_id, m.x, m.y, coalesce(s.segment_id, -1) AS segment_id,
               coalesce(i.name, 'Unassigned') AS segment,
               f.frequency, f.monetary, f.recency_days, f.n_events {extra}
        FROM user_map m
        LEFT JOIN segments s ON s.run_id = m.run_id AND s.user_id = m.user_id
        LEFT JOIN segment_info i ON i.run_id = m.run_id AND i.segment_id = s.segment_id
        LEFT JOIN user_features f ON f.run_id = m.run_id AND f.user_id = m.user_id
        WHERE m.run_id = ?
        ORDER BY hash(m.user_id), m.user_id
        LIMIT ?""", [run_id, int(max_points)])
    return df, total


def _points_in_polygon(x: np.ndarray, y: np.ndarray, px: Sequence[float], py: Sequence[float]) -> np.ndarray:
    """Even-odd rule point-in-polygon, vectorised over the points."""
    px = np.asarray(px, dtype=float)
    py = np.asarray(py, dtype=float)
    inside = np.zeros(len(x), dtype=bool)
    j = len(px) - 1
    for i in range(len(px)):
        xi, yi, xj, yj = px[i], py[i], px[j], py[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < xcross)
        j = i
    return inside


def users_in_region(con, run_id: int, *, box: dict | None = None, lasso: dict | None = None
                    ) -> list[str]:
    """Every user on the map inside a box ({x: [x0, x1], y: [y0, y1]}) or lasso
    ({x: [...], y: [...]} polygon) drawn on it, sampled or not. Sorted user ids."""
    if box:
        x0, x1 = sorted(float(v) for v in box["x"])
        y0, y1 = sorted(float(v) for v in box["y"])
        rows = con.execute(
            "SELECT user_id FROM user_map WHERE run_id = ? AND x BETWEEN ? AND ? "
            "AND y BETWEEN ? AND ? ORDER BY user_id", [run_id, x0, x1, y0, y1]).fetchall()
        return [r[0] for r in rows]
    if lasso:
        xs, ys = list(map(float, lasso["x"])), list(map(float, lasso["y"]))
        if len(xs) < 3:
            return []
        df = _df(con, "SELECT user_id, x, y FROM user_map WHERE run_id = ? AND x BETWEEN ? AND ? "
                      "AND y BETWEEN ? AND ? ORDER BY user_id",
                 [run_id, min(xs), max(xs), min(ys), max(ys)])
        mask = _points_in_polygon(df["x"].to_numpy(), df["y"].to_numpy(), xs, ys)
        return df["user_id"][mask].tolist()
    return []


def selection_user_ids(con, run_id: int, selection: dict | None, *, sampled: bool) -> list[str]:
    """Turn a Plotly selection event (st.plotly_chart(on_select=...)) into user ids.

    When the map shows every user, the selected points' customdata (their user ids) are exact.
    When it shows a sample, the drawn box or lasso is applied to every user instead, so the
    selection holds the users hidden by sampling too.
    """
    if not selection:
        return []
    sel = selection.get("selection", selection)
    boxes, lassos, points = sel.get("box") or [], sel.get("lasso") or [], sel.get("points") or []
    if sampled and (boxes or lassos):
        ids: set[str] = set()
        for b in boxes:
            ids.update(users_in_region(con, run_id, box=b))
        for poly in lassos:
            ids.update(users_in_region(con, run_id, lasso=poly))
        return sorted(ids)
    ids = set()
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            ids.add(str(cd))
    return sorted(ids)


# ------------------------------------------------------------------------------------ groups
def _ids(user_ids: Iterable[str]) -> list[str]:
    return sorted({str(u) for u in user_ids})


def _cte(name: str) -> str:
    """A CTE of the user ids passed as a list parameter (no named registration, so it is safe
    on a connection shared by threads)."""
    return f"{name} AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS user_id)"


def group_summary(con, run_id: int, user_ids: Sequence[str]) -> dict:
    """Size, shares and median behaviour of an ad-hoc group of users against the population."""
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
        FROM _sel LEFT JOIN segments s ON s.user_id = _sel.user_id AND s.run_id = ?
        LEFT JOIN segment_info i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
        GROUP BY ALL ORDER BY users DESC, segment_id""", [ids, UNASSIGNED_COLOR, run_id])
    return {
        "size": len(ids),
        "with_features": int(n or 0),
        "user_share": (int(n or 0) / n_pop) if n_pop else 0.0,
        "revenue": float(rev or 0.0),
        "revenue_share": (float(rev or 0.0) / float(rev_all)) if rev_all else 0.0,
        "segment_mix": mix,
        "features": feature_comparison(con, run_id, user_ids),
    }


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


def group_traits(con, run_id: int, user_ids: Sequence[str], *,
                 dimensions: Sequence[str] = ("category", "brand", "price_band"),
                 top: int = 8, min_users: int = 3) -> pd.DataFrame:
    """What sets a group apart: per preference dimension, the values whose share of the group's
    activity most exceeds the shop-wide share (lift = group share / shop share).

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
        WHERE g.users >= ?
        ORDER BY g.dimension, lift DESC""",
             [ids, run_id, run_id, run_id, list(dimensions), run_id, list(dimensions),
              min(min_users, max(1, len(ids)))])
    if df.empty:
        return df
    return df.groupby("dimension", sort=False).head(top).reset_index(drop=True)


def segment_user_ids(con, run_id: int, segment_id: int) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT user_id FROM segments WHERE run_id = ? AND segment_id = ? ORDER BY user_id",
        [run_id, int(segment_id)]).fetchall()]


# ------------------------------------------------------------------------------------ segment detail
def segment_traits(con, run_id: int, segment_id: int, *, top: int = 10) -> pd.DataFrame:
    """segment_traits for one segment, strongest lift first per dimension; items get titles."""
    if not table_exists(con, "segment_traits"):
        return pd.DataFrame()
    df = _df(con, """
        SELECT t.dimension, t.value,
               CASE WHEN t.dimension = 'item' THEN coalesce(it.title, t.value) ELSE t.value END AS label,
               t.support, t.population_support, t.lift
        FROM segment_traits t
        LEFT JOIN (SELECT item_id, any_value(title) AS title FROM items GROUP BY item_id) it
               ON t.dimension = 'item' AND it.item_id = t.value
        WHERE t.run_id = ? AND t.segment_id = ?
        ORDER BY t.dimension, t.lift DESC NULLS LAST, t.support DESC""", [run_id, int(segment_id)])
    if df.empty:
        return df
    return df.groupby("dimension", sort=False).head(top).reset_index(drop=True)


def feature_distribution(con, run_id: int, feature: str, segment_id: int | None = None,
                         sample: int = 20_000) -> pd.DataFrame:
    """Values of one behaviour feature for a segment's members and for the whole shop
    (a deterministic sample of at most ``sample`` users each). Columns: group, value."""
    if feature not in FEATURE_LABELS:
        raise ValueError(f"unknown feature {feature!r}; choose one of {', '.join(FEATURE_LABELS)}")
    pop = _df(con, f"""SELECT 'Whole shop' AS "group", {feature} AS value FROM user_features
                       WHERE run_id = ? AND {feature} IS NOT NULL
                       ORDER BY hash(user_id) LIMIT ?""", [run_id, sample])
    if segment_id is None:
        return pop
    seg = _df(con, f"""SELECT 'Segment' AS "group", f.{feature} AS value FROM user_features f
                       JOIN segments s ON s.run_id = f.run_id AND s.user_id = f.user_id
                       WHERE f.run_id = ? AND s.segment_id = ? AND f.{feature} IS NOT NULL
                       ORDER BY hash(f.user_id) LIMIT ?""", [run_id, int(segment_id), sample])
    return pd.concat([seg, pop], ignore_index=True)


def top_items(con, run_id: int, user_ids: Sequence[str] | None = None, *, segment_id: int | None = None,
              n: int = 10) -> pd.DataFrame:
    """Most bought items of a group (or segment, or the whole shop): buyers, units, revenue."""
    where, params = "", []
    join = ""
    if segment_id is not None:
        join = "JOIN segments s ON s.user_id = e.user_id AND s.run_id = ? AND s.segment_id = ?"
        params += [run_id, int(segment_id)]
    elif user_ids is not None:
        join = "JOIN _isel ON _isel.user_id = e.user_id"
        params = [_ids(user_ids)]
    df = _df(con, f"""
        WITH {_cte('_isel')}
        SELECT e.item_id, any_value(it.title) AS title, any_value(it.category_path) AS category,
               count(DISTINCT e.user_id) AS buyers, sum(abs(e.quantity)) AS units,
               sum(abs(e.quantity) * e.unit_price) AS revenue
        FROM events e {join}
        LEFT JOIN (SELECT item_id, any_value(title) AS title, any_value(category_path) AS category_path
                   FROM items GROUP BY item_id) it ON it.item_id = e.item_id
        WHERE e.event_type = 'purchase' {where}
        GROUP BY e.item_id ORDER BY buyers DESC, revenue DESC NULLS LAST, e.item_id LIMIT ?""",
             ([[]] if not params or segment_id is not None else []) + params + [n])
    return df


def user_summaries(con, run_id: int, user_ids: Sequence[str]) -> pd.DataFrame:
    """One line per user: segment, orders, spend, recency, country-like attributes."""
    return _df(con, f"""
        WITH {_cte('_usel')}
        SELECT _usel.user_id, coalesce(i.name, 'Unassigned') AS segment,
               f.frequency AS orders, f.monetary AS spend, f.recency_days,
               f.avg_order_value, u.attributes
        FROM _usel
        LEFT JOIN user_features f ON f.run_id = ? AND f.user_id = _usel.user_id
        LEFT JOIN segments s ON s.run_id = ? AND s.user_id = _usel.user_id
        LEFT JOIN segment_info i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
        LEFT JOIN (SELECT user_id, any_value(attributes) AS attributes FROM users GROUP BY user_id) u
               ON u.user_id = _usel.user_id
        ORDER BY _usel.user_id""", [_ids(user_ids), run_id, run_id])


def segment_detail(con, run_id: int, segment_id: int) -> dict:
    """Everything the segment page shows except charts of distributions."""
    info = segments(con, run_id)
    row = info[info["segment_id"] == int(segment_id)]
    if row.empty:
        raise KeyError(f"segment {segment_id} is not in build {run_id}")
    info_row = row.iloc[0].to_dict()
    reps = info_row.get("representative_users")
    reps = list(reps) if reps is not None else []
    return {
        "info": info_row,
        "traits": segment_traits(con, run_id, segment_id),
        "top_items": top_items(con, run_id, segment_id=segment_id),
        "representatives": user_summaries(con, run_id, reps[:10]) if reps else pd.DataFrame(),
        "rules": rules_table(con, run_id, segment_id=int(segment_id), limit=50),
        "features": feature_comparison(con, run_id, segment_user_ids(con, run_id, segment_id)),
    }


# ------------------------------------------------------------------------------------ compare
def resolve_group(con, run_id: int, ref: tuple[str, Any]) -> tuple[str, list[str], str | None]:
    """A group reference -> (label, user ids, colour). ref: ("segment", id) | ("saved", saved_id)
    | ("users", [ids])."""
    kind, val = ref
    if kind == "segment":
        names, colors = segment_names(con, run_id), segment_colors(con, run_id)
        return names.get(int(val), f"Segment {val}"), segment_user_ids(con, run_id, int(val)), \
            colors.get(int(val))
    if kind == "saved":
        from core.explore.saved import saved_members, get_saved

        s = get_saved(con, int(val))
        return f"Saved: {s['name']}", saved_members(con, int(val)), None
    if kind == "users":
        return "Selection", sorted(set(map(str, val))), None
    raise ValueError(f"unknown group kind {kind!r}: use 'segment', 'saved' or 'users'")


def compare_groups(con, run_id: int, refs: Sequence[tuple[str, Any]], *,
                   dimension: str = "category", top: int = 8) -> dict:
    """Side-by-side figures for two or more groups.

    Returns {"summary": one row per group (size, share, revenue share, median RFM...),
    "features": long frame (group, feature, label, value), "shares": long frame of the
    dimension's value shares (group, value, share) for the values that lead in any group}.
    """
    summary, feats, shares = [], [], []
    for ref in refs:
        label, ids, color = resolve_group(con, run_id, ref)
        s = group_summary(con, run_id, ids)
        f = s["features"].set_index("feature")["group"].to_dict()
        summary.append({"group": label, "color": color, "users": s["size"],
                        "user_share": s["user_share"], "revenue_share": s["revenue_share"],
                        "median_orders": f.get("frequency"), "median_spend": f.get("monetary"),
                        "median_recency_days": f.get("recency_days"),
                        "median_order_value": f.get("avg_order_value")})
        for feat, v in f.items():
            feats.append({"group": label, "feature": feat, "label": FEATURE_LABELS[feat], "value": v})
        d = _df(con, f"""
            WITH {_cte('_csel')}
            SELECT value, sum(share) / nullif((SELECT count(*) FROM _csel), 0) AS share
            FROM user_shares JOIN _csel USING (user_id)
            WHERE run_id = ? AND dimension = ? GROUP BY value""", [_ids(ids), run_id, dimension])
        d.insert(0, "group", label)
        shares.append(d)
    sh = pd.concat(shares, ignore_index=True) if shares else pd.DataFrame(columns=["group", "value", "share"])
    if not sh.empty:
        lead = (sh.sort_values("share", ascending=False).groupby("group").head(top)["value"].unique())
        sh = sh[sh["value"].isin(lead)].reset_index(drop=True)
    return {"summary": pd.DataFrame(summary), "features": pd.DataFrame(feats), "shares": sh}


# ------------------------------------------------------------------------------------ users
def find_users(con, query: str = "", limit: int = 20) -> list[str]:
    """User ids starting with (or else containing) ``query``."""
    q = (query or "").strip()
    rows = con.execute("""
        SELECT DISTINCT user_id, starts_with(user_id, ?) AS pre FROM users
        WHERE user_id ILIKE ? ORDER BY pre DESC, length(user_id), user_id LIMIT ?""",
                       [q, f"%{q}%", limit]).fetchall()
    return [r[0] for r in rows]


def user_profile(con, run_id: int, user_id: str) -> dict | None:
    """A shopper's attributes, behaviour, segment and preferences vs segment and shop."""
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
    seg = con.execute("""
        SELECT s.segment_id, coalesce(i.name, 'Unassigned'), coalesce(i.color, ?), i.description
        FROM segments s LEFT JOIN segment_info i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
        WHERE s.run_id = ? AND s.user_id = ?""", [UNASSIGNED_COLOR, run_id, user_id]).fetchone()
    return {
        "user_id": user_id,
        "attributes": attrs,
        "first_seen": urow[1] if urow else None,
        "features": feats.iloc[0].to_dict() if not feats.empty else {},
        "segment_id": int(seg[0]) if seg else None,
        "segment": seg[1] if seg else None,
        "segment_color": seg[2] if seg else None,
        "segment_description": seg[3] if seg else None,
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
                     every_value: bool = False) -> pd.DataFrame:
    """The user's share of activity per value of a dimension vs their segment's and the shop's
    average share. Columns: value, user, segment, shop. The user's ``top`` values, or with
    ``every_value`` all values of the dimension (for hour of day and day of week)."""
    return _df(con, """
        WITH me AS (SELECT value, share FROM user_shares WHERE run_id = ? AND user_id = ? AND dimension = ?),
        seg AS (SELECT segment_id FROM segments WHERE run_id = ? AND user_id = ?),
        members AS (SELECT s.user_id FROM segments s, seg WHERE s.run_id = ? AND s.segment_id = seg.segment_id),
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
        ORDER BY "user" DESC""",
               [run_id, user_id, dimension, run_id, user_id, run_id, run_id, top,
                bool(every_value), run_id, dimension, run_id, dimension, run_id, dimension])


# ------------------------------------------------------------------------------------ rules
def _titles(con, item_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = con.execute("SELECT item_id, any_value(title) FROM items WHERE item_id IN "
                       "(SELECT unnest(?::VARCHAR[])) GROUP BY item_id", [ids]).fetchall()
    return {i: (t or i) for i, t in rows}


def rules_table(con, run_id: int, *, segment_id: int | None | str = "all", min_support: float = 0.0,
                min_confidence: float = 0.0, min_lift: float = 0.0, search: str = "",
                limit: int | None = 2000) -> pd.DataFrame:
    """Association rules with item titles. segment_id: "all" (every rule), None (whole shop
    only) or a segment id. ``search`` matches item ids or titles on either side."""
    if not table_exists(con, "rules"):
        return pd.DataFrame()
    where, params = ["run_id = ?", "support >= ?", "confidence >= ?", "coalesce(lift, 0) >= ?"], \
        [run_id, min_support, min_confidence, min_lift]
    if segment_id is None:
        where.append("segment_id IS NULL")
    elif segment_id != "all":
        where.append("segment_id = ?")
        params.append(int(segment_id))
    df = _df(con, f"""SELECT segment_id, antecedent, consequent, support, confidence, lift, leverage,
                             conviction, count, segment_ratio
                      FROM rules WHERE {' AND '.join(where)}
                      ORDER BY lift DESC NULLS LAST, confidence DESC, support DESC""", params)
    if df.empty:
        df["if_bought"] = []
        df["then_buys"] = []
        return df
    df["antecedent"] = df["antecedent"].map(list)
    df["consequent"] = df["consequent"].map(list)
    titles = _titles(con, [i for lst in df["antecedent"] for i in lst] +
                     [i for lst in df["consequent"] for i in lst])
    df["if_bought"] = df["antecedent"].map(lambda l: " + ".join(titles.get(i, i) for i in l))
    df["then_buys"] = df["consequent"].map(lambda l: " + ".join(titles.get(i, i) for i in l))
    q = (search or "").strip().lower()
    if q:
        hit = (df["if_bought"].str.lower().str.contains(q, regex=False)
               | df["then_buys"].str.lower().str.contains(q, regex=False)
               | df["antecedent"].map(lambda l: any(q == i.lower() for i in l))
               | df["consequent"].map(lambda l: any(q == i.lower() for i in l)))
        df = df[hit]
    names = segment_names(con, run_id)
    df.insert(1, "segment", df["segment_id"].map(lambda s: "Whole shop" if pd.isna(s) else
                                                 names.get(int(s), f"Segment {int(s)}")))
    if limit:
        df = df.head(limit)
    return df.reset_index(drop=True)


def rule_graph(rules: pd.DataFrame, max_rules: int = 60, seed: int = 42) -> dict:
    """Nodes (items, with a 2-D layout) and edges (antecedent item -> consequent item) for the
    strongest rules. Returns {"nodes": DataFrame(item_id, title, x, y, degree),
    "edges": DataFrame(source, target, lift, confidence, support)}."""
    import networkx as nx

    r = rules.head(max_rules)
    g = nx.DiGraph()
    titles: dict[str, str] = {}
    edges = []
    for _, row in r.iterrows():
        ants, cons = list(row["antecedent"]), list(row["consequent"])
        a_titles = row["if_bought"].split(" + ") if len(row["if_bought"].split(" + ")) == len(ants) else ants
        c_titles = row["then_buys"].split(" + ") if len(row["then_buys"].split(" + ")) == len(cons) else cons
        titles.update(zip(ants, a_titles))
        titles.update(zip(cons, c_titles))
        for a in ants:
            for c in cons:
                g.add_edge(a, c)
                edges.append({"source": a, "target": c, "lift": row["lift"],
                              "confidence": row["confidence"], "support": row["support"]})
    if not g.number_of_nodes():
        return {"nodes": pd.DataFrame(columns=["item_id", "title", "x", "y", "degree"]),
                "edges": pd.DataFrame(columns=["source", "target", "lift", "confidence", "support"])}
    pos = nx.spring_layout(g, seed=seed, k=1.5 / max(1, g.number_of_nodes()) ** 0.5)
    nodes = pd.DataFrame([{"item_id": n, "title": titles.get(n, n), "x": float(pos[n][0]),
                           "y": float(pos[n][1]), "degree": g.degree(n)} for n in g.nodes])
    return {"nodes": nodes, "edges": pd.DataFrame(edges)}


# ------------------------------------------------------------------------------------ model & data
def run_history(con) -> pd.DataFrame:
    from core.store import list_runs

    rows = []
    for r in list_runs(con, "build"):
        m = r["metrics"]
        rows.append({"run": r["run_id"], "finished": r["finished_at"], "method": m.get("method"),
                     "segments": m.get("k") or len(m.get("sizes", {}) or {}),
                     "silhouette": m.get("silhouette"), "davies_bouldin": m.get("davies_bouldin"),
                     "stability_ari": m.get("stability_ari"), "shoppers": m.get("n_users"),
                     "seconds": m.get("total_seconds")})
    return pd.DataFrame(rows)


def k_scan(run: dict) -> pd.DataFrame:
    """The k-scan of a run (k, silhouette, inertia), from its segments metrics."""
    m = run.get("metrics") or {}
    scan = m.get("k_scan") or (m.get("segments") or {}).get("k_scan") or []
    return pd.DataFrame(scan)


def training_curve(con, run_id: int) -> pd.DataFrame:
    if not table_exists(con, "training_curve"):
        return pd.DataFrame()
    return _df(con, "SELECT epoch, train_loss, val_ndcg10, val_recall10, seconds FROM training_curve "
                    "WHERE run_id = ? ORDER BY epoch", [run_id])


def evaluations(con, run_id: int) -> pd.DataFrame:
    if not table_exists(con, "evaluations"):
        return pd.DataFrame()
    return _df(con, "SELECT recommender, recall10, ndcg10, hitrate10, mrr10, coverage, users_evaluated, "
                    "params FROM evaluations WHERE run_id = ? ORDER BY ndcg10 DESC NULLS LAST", [run_id])
