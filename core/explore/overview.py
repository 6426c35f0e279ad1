"""The Overview's figures: the shop in numbers, data health, a lens's segments (optionally within
one segment of the other lens), the cross of the two lenses, which dimensions the data has, and
the segments' quality in plain words."""

from __future__ import annotations

import pandas as pd

from core.explore.base import (CONTENT_DIMENSIONS, FALLBACK_COLORS, LENS_LABELS, UNASSIGNED_COLOR,
                               _df, _one, check_scope, lens_tables, members_sql, other_lens,
                               table_exists)
from core.features.holdout import BASKET_KEY_SQL


def latest_build(con) -> dict | None:
    """The run the dashboard serves: the latest complete build."""
    from core.store import latest_run

    return latest_run(con, "build")


def shop_totals(con) -> dict:
    """Users, items, events, orders, net revenue and the date range of the data. An order is a
    basket with a purchase, keyed as every stage keys it (the basket id, else the session, else
    the shopper's day): counting basket ids alone gave 0 orders for a clickstream without them,
    beside segments whose typical member had 3."""
    row = con.execute(
        f"""
        SELECT (SELECT count(DISTINCT user_id) FROM users),
               (SELECT count(DISTINCT item_id) FROM items),
               count(*),
               count(DISTINCT {BASKET_KEY_SQL}) FILTER (WHERE event_type = 'purchase'),
               sum(CASE WHEN event_type = 'purchase' THEN abs(quantity) * unit_price
                        WHEN event_type = 'return' THEN -abs(quantity) * unit_price END),
               min(ts), max(ts),
               count(*) FILTER (WHERE event_type = 'purchase')
        FROM events
        """
    ).fetchone()
    users, items, events, orders, revenue, first, last, purchases = row
    return {"users": int(users or 0), "items": int(items or 0), "events": int(events or 0),
            "orders": int(orders or 0), "revenue": float(revenue or 0.0),
            "first_event": first, "last_event": last, "purchases": int(purchases or 0)}


def data_health(con) -> dict:
    """Rows loaded and quarantined per ingest, quarantine reasons, reconciliation.

    The headline counts are the event files' (an ingest's ``--items`` / ``--users`` / joined
    files reconcile on their own and are never added to event rows), and so are
    ``quarantine_reasons``, which add up to ``rows_quarantined``; the other files' quarantined
    rows are in ``side_quarantine`` (file, reason, rows). From ``core.ingest.status
    .ingest_summary``, the ingest stage's own view.
    """
    from core.ingest.status import ingest_summary

    summary = ingest_summary(con)
    ingests = pd.DataFrame(summary["ingests"])
    # a quarantined row belongs to its ingest's event file unless it names another file
    reasons, side_rows = summary["quarantine_reasons"], summary["side_quarantine"]
    if ingests.empty:
        ingests = pd.DataFrame(columns=["ingest_id", "source_file", "format", "rows_read",
                                        "rows_loaded", "rows_quarantined", "rows_duplicate",
                                        "reconciles"])
    return {
        "ingests": ingests,
        "quarantine_reasons": reasons,
        "side_quarantine": side_rows,
        "rows_read": int(ingests["rows_read"].sum()) if len(ingests) else 0,
        "rows_loaded": int(ingests["rows_loaded"].sum()) if len(ingests) else 0,
        "rows_quarantined": int(ingests["rows_quarantined"].sum()) if len(ingests) else 0,
        "rows_duplicate": int(ingests["rows_duplicate"].sum()) if len(ingests) else 0,
        "all_reconcile": bool(ingests["reconciles"].all()) if len(ingests) else True,
    }


# ------------------------------------------------------------------------------------ segments
def _fill_colors(df: pd.DataFrame) -> pd.DataFrame:
    df["color"] = [c if isinstance(c, str) and c.startswith("#") else
                   (UNASSIGNED_COLOR if sid == -1 else FALLBACK_COLORS[i % len(FALLBACK_COLORS)])
                   for i, (sid, c) in enumerate(zip(df["segment_id"], df["color"]))]
    return df


def segments(con, run_id: int, *, lens: str = "taste", scope=None) -> pd.DataFrame:
    """A lens's segments (one row per segment: the info table's columns plus ``revenue``, the
    members' net spend), largest revenue first, unassigned last, colours filled in.

    With a ``scope`` (a segment of the other lens), ``size``, ``user_share`` (of the scope's
    shoppers), ``revenue`` and ``revenue_share`` (of the scope's revenue) count only the
    shoppers in the scope, and segments with none of them are left out."""
    L = lens_tables(lens)
    if not table_exists(con, L.info):
        return pd.DataFrame()
    info = _df(con, f"SELECT * EXCLUDE (run_id) FROM {L.info} WHERE run_id = ?", [run_id])
    if info.empty:
        return info
    sub, params = members_sql(run_id, lens, scope)
    counts = _df(con, f"""
        SELECT s.segment_id, count(*) AS n, coalesce(sum(f.monetary), 0) AS revenue
        FROM ({sub}) s LEFT JOIN user_features f ON f.run_id = ? AND f.user_id = s.user_id
        GROUP BY s.segment_id""", [*params, run_id])
    df = info.merge(counts, on="segment_id", how="left")
    df["n"] = df["n"].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0).astype(float)
    if check_scope(scope) is not None:
        df = df[df["n"] > 0].copy()
        n_all, rev_all = int(df["n"].sum()), float(df["revenue"].clip(lower=0).sum())
        df["size"] = df["n"]
        df["user_share"] = df["n"] / n_all if n_all else 0.0
        df["revenue_share"] = df["revenue"] / rev_all if rev_all else 0.0
    df = df.drop(columns=["n"])
    df = df.assign(_u=df["segment_id"] == -1).sort_values(
        ["_u", "revenue", "size", "segment_id"], ascending=[True, False, False, True]
    ).drop(columns=["_u"]).reset_index(drop=True)
    return _fill_colors(df)


def segment_colors(con, run_id: int, *, lens: str = "taste") -> dict[int, str]:
    df = segments(con, run_id, lens=lens)
    out = {int(s): c for s, c in zip(df.get("segment_id", []), df.get("color", []))}
    out.setdefault(-1, UNASSIGNED_COLOR)
    return out


def segment_names(con, run_id: int, *, lens: str = "taste") -> dict[int, str]:
    df = segments(con, run_id, lens=lens)
    out = {int(s): n for s, n in zip(df.get("segment_id", []), df.get("name", []))}
    out.setdefault(-1, "Unassigned")
    return out


def lens_cross(con, run_id: int) -> pd.DataFrame:
    """Every (lifecycle stage, taste segment) pair with shoppers in both: ``lifecycle_id``,
    ``lifecycle``, ``taste_id``, ``taste``, ``label`` ("At risk × Heart wicker shoppers"),
    ``users``, ``revenue`` (their net spend), ``user_share`` and ``revenue_share`` (of all
    shoppers in both lenses), largest revenue first."""
    life, taste = lens_tables("lifecycle"), lens_tables("taste")
    cols = ["lifecycle_id", "lifecycle", "taste_id", "taste", "label", "users", "revenue",
            "user_share", "revenue_share"]
    if not all(table_exists(con, t) for t in (life.members, taste.members, life.info, taste.info)):
        return pd.DataFrame(columns=cols)
    df = _df(con, f"""
        SELECT l.segment_id AS lifecycle_id, coalesce(li.name, 'Unassigned') AS lifecycle,
               t.segment_id AS taste_id, coalesce(ti.name, 'Unassigned') AS taste,
               count(*) AS users, coalesce(sum(f.monetary), 0) AS revenue
        FROM {life.members} l
        JOIN {taste.members} t ON t.run_id = l.run_id AND t.user_id = l.user_id
        LEFT JOIN {life.info} li ON li.run_id = l.run_id AND li.segment_id = l.segment_id
        LEFT JOIN {taste.info} ti ON ti.run_id = t.run_id AND ti.segment_id = t.segment_id
        LEFT JOIN user_features f ON f.run_id = l.run_id AND f.user_id = l.user_id
        WHERE l.run_id = ?
        GROUP BY ALL
        ORDER BY revenue DESC, users DESC, lifecycle_id, taste_id""", [run_id])
    if df.empty:
        return pd.DataFrame(columns=cols)
    n, rev = int(df["users"].sum()), float(df["revenue"].clip(lower=0).sum())
    df["label"] = df["lifecycle"] + " × " + df["taste"]
    df["user_share"] = df["users"] / n
    df["revenue_share"] = df["revenue"] / rev if rev else 0.0
    return df[cols]


def dimensions(con, run_id: int) -> list[str]:
    """The content dimensions (categories, themes, brands, price bands) this run has preference
    data for, in display order: the ones the data lacks are hidden, not shown empty."""
    if not table_exists(con, "user_shares"):
        return []
    have = {r[0] for r in con.execute(
        "SELECT DISTINCT dimension FROM user_shares WHERE run_id = ?", [run_id]).fetchall()}
    return [d for d in CONTENT_DIMENSIONS if d in have]


def has_prices(con) -> bool:
    """Whether the shop records what was paid (money figures mean something)."""
    return bool(_one(con, "SELECT count(*) FROM (SELECT 1 FROM events WHERE event_type = "
                          "'purchase' AND unit_price > 0 LIMIT 1)"))


# ------------------------------------------------------------------------------------ quality
LENS_NOUNS = {"taste": "taste segments", "lifecycle": "lifecycle stages"}


def lens_quality(run: dict | None) -> dict[str, dict]:
    """Per lens, from the build's stored metrics (``core.segments.report.lens_report``):
    k, stability (seed, bootstrap), predictive validity with both references, silhouette,
    ``weak`` (plain-words reasons; empty when sound), ``advice`` and ``warning`` (one sentence
    for a marketer, or None)."""
    from core.segments.report import lens_report

    out = lens_report((run or {}).get("metrics") or {})
    for lens, r in out.items():
        r["label"] = LENS_LABELS.get(lens, lens)
        r["warning"] = (f"Treat these {LENS_NOUNS.get(lens, lens)} with care, because "
                        + "; and ".join(r["weak"]) + ".") if r["weak"] else None
    return out


def lens_scope_options(con, run_id: int, lens: str = "taste") -> list[tuple[str, int, int]]:
    """The other lens's segments, to narrow a page to one of them: (name, segment id, size)."""
    other = other_lens(lens)
    df = segments(con, run_id, lens=other)
    if df.empty:
        return []
    return [(str(r.name), int(r.segment_id), int(r.size)) for r in df.itertuples()]
