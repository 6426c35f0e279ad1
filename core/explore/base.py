"""What every read-side query shares: labels, small SQL helpers, and the one place that maps a
segment *lens* (and a *scope* in the other lens) to its tables.

Every query takes a read-only connection (``store.read()`` or a cursor of one) and the run to read
(normally ``core.store.latest_run(con)["run_id"]``). Queries that read segments take
``lens`` ("taste", the default, or "lifecycle") and ``scope``: ``None`` (every shopper) or
``(lens, segment_id)`` - only the shoppers in that segment of (normally) the other lens, e.g.
``("lifecycle", 3)`` to look at at-risk shoppers' taste segments.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import pandas as pd

from core.segments.lenses import DEFAULT_LENS, LENS_LABELS, LENSES, Lens
from core.segments.lenses import lens as _lens

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
    "avg_order_value": "Average order value (before returns)",
    "tenure_days": "Days as a customer",
    "return_rate": "Return rate",
    "views_per_purchase": "Views per purchase",
    "basket_size": "Items per order",
    "evening_share": "Share of activity in the evening",
    "weekend_share": "Share of activity at weekends",
    "mean_hour": "Typical time of day",
    "price_sensitivity": "Price level vs category (below 0 = cheaper)",
    "diversity": "Category variety",
    "n_events": "Interactions",
    "n_items": "Distinct items",
    "holiday_share": "Share of purchases in November-December",
    "reviews": "Reviews written",
    "rating_vs_shop": "Mean rating given vs the shop's (points)",
    "low_rating_share": "Share of low ratings (bottom quarter of the scale)",
}
MONEY_FEATURES = {"monetary", "avg_order_value"}
SHARE_FEATURES = {"return_rate", "evening_share", "weekend_share", "holiday_share",
                  "low_rating_share"}
# Skewed money and count figures: their distributions are drawn on a log scale.
LOG_FEATURES = {"monetary", "avg_order_value", "frequency", "recency_days", "basket_size",
                "n_events", "n_items", "views_per_purchase", "tenure_days"}
DIMENSION_LABELS = {
    "category": "Categories", "theme": "Themes", "brand": "Brands", "price_band": "Price bands",
    "item": "Items", "behaviour": "Shopping habits", "hour": "Hour of day", "weekday": "Day of week",
}
# Preference dimensions that depend on what the data has (hidden when a shop lacks them).
CONTENT_DIMENSIONS = ("category", "theme", "brand", "price_band")
PRICE_BAND_ORDER = ("budget", "mid", "premium", "luxury")
WEEKDAY_ORDER = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


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


def _ids(user_ids: Iterable[str]) -> list[str]:
    return sorted({str(u) for u in user_ids})


def _cte(name: str) -> str:
    """A CTE of the user ids passed as a list parameter (no named registration, so it is safe
    on a connection shared by threads)."""
    return f"{name} AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS user_id)"


# ------------------------------------------------------------------------------------ lenses
def lens_tables(lens: str | None = None) -> Lens:
    """The tables of a lens (``core.store.schema.LENS_TABLES``); unknown lenses are an error."""
    return _lens(lens)


def other_lens(lens: str | None = None) -> str:
    """The lens that is not ``lens`` (taste <-> lifecycle)."""
    name = lens_tables(lens).name
    return next(n for n in LENSES if n != name)


def check_scope(scope) -> tuple[str, int] | None:
    """``None`` or a valid ``(lens, segment_id)``."""
    if scope is None:
        return None
    try:
        name, sid = scope
        return lens_tables(name).name, int(sid)
    except (TypeError, ValueError) as e:
        raise ValueError(f"scope must be (lens, segment id), e.g. ('lifecycle', 3); got {scope!r}"
                         ) from e


def scope_filter(column: str, run_id: int, scope=None) -> tuple[str, list]:
    """SQL condition (`` AND ...``, empty without a scope) keeping rows whose ``column`` (a user
    id) is in the scope segment, and its parameters."""
    sc = check_scope(scope)
    if sc is None:
        return "", []
    L = lens_tables(sc[0])
    return (f" AND {column} IN (SELECT user_id FROM {L.members} WHERE run_id = ? "
            f"AND segment_id = ?)"), [int(run_id), sc[1]]


def members_sql(run_id: int, lens: str | None = None, scope=None) -> tuple[str, list]:
    """A subquery of (user_id, segment_id): the lens's members in run ``run_id`` and in the
    scope, and its parameters. Use as ``FROM ({sql}) s``."""
    L = lens_tables(lens)
    cond, params = scope_filter("user_id", run_id, scope)
    return (f"SELECT user_id, segment_id FROM {L.members} WHERE run_id = ?{cond}",
            [int(run_id), *params])


def scope_ids(con, run_id: int, scope) -> list[str] | None:
    """The user ids of the scope segment (sorted), or None for no scope."""
    sc = check_scope(scope)
    if sc is None:
        return None
    L = lens_tables(sc[0])
    return [r[0] for r in con.execute(f"SELECT user_id FROM {L.members} WHERE run_id = ? AND "
                                      "segment_id = ? ORDER BY user_id", [run_id, sc[1]]).fetchall()]


def in_scope(con, run_id: int, user_ids: Iterable[str], scope) -> list[str]:
    """``user_ids`` restricted to the scope (all of them without one), sorted."""
    ids = _ids(user_ids)
    keep = scope_ids(con, run_id, scope)
    if keep is None:
        return ids
    ks = set(keep)
    return [u for u in ids if u in ks]


__all__ = ["CONTENT_DIMENSIONS", "DEFAULT_LENS", "DIMENSION_LABELS", "FALLBACK_COLORS",
           "FEATURE_LABELS", "LENSES", "LENS_LABELS", "LOG_FEATURES", "MONEY_FEATURES",
           "PRICE_BAND_ORDER", "SHARE_FEATURES", "UNASSIGNED_COLOR", "WEEKDAY_ORDER",
           "check_scope", "feature_columns", "has_rows", "in_scope", "lens_tables",
           "members_sql", "other_lens", "scope_filter", "scope_ids", "table_exists"]


def restrict_events(con, start=None, end=None) -> None:
    """Make this connection read only the events in [start, end) wherever a query names
    ``events`` (a temporary view over the store's table, private to the connection; nothing is
    written), or all of them again when both are None. Figures computed by the build (segments'
    sizes and medians, predictions) keep describing the whole build."""
    if start is None and end is None:
        con.execute("DROP VIEW IF EXISTS temp.main.events")
        return
    from datetime import datetime

    def stamp(v, default):
        v = default if v is None else v
        return datetime.fromisoformat(str(v)).isoformat(sep=" ")   # our own text, never raw input

    db = con.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    lo, hi = stamp(start, "1900-01-01"), stamp(end, "2999-01-01")
    con.execute(f'CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM "{db}".main.events '
                f"WHERE ts >= TIMESTAMP '{lo}' AND ts < TIMESTAMP '{hi}'")
