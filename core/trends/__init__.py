"""Figures over time: revenue, orders, active, buying and new shoppers per month (or week), for
the whole shop or one segment of either lens, within an optional date range.

The period is a calendar month when the data (in the range) spans more than 180 days, else an ISO
week (starting Monday). A shopper is *active* in a period with any event in it, *buying* with an
order, and *new* in the period of their first event ever (not only within the range). Revenue is
quantity x unit price of purchase events; orders are distinct baskets (``BASKET_KEY_SQL``).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.features.holdout import BASKET_KEY_SQL
from core.store.schema import LENS_TABLES

GRAINS = ("month", "week")


def choose_grain(con, start: datetime | None = None, end: datetime | None = None) -> str:
    lo, hi = con.execute(
        "SELECT min(ts), max(ts) FROM events WHERE ts IS NOT NULL AND (? IS NULL OR ts >= ?) "
        "AND (? IS NULL OR ts < ?)", [start, start, end, end]).fetchone()
    if lo is None:
        return "month"
    return "month" if (hi - lo).days > 180 else "week"


def trends(con, *, run_id: int | None = None, lens: str = "taste", segment_id: int | None = None,
           start: datetime | None = None, end: datetime | None = None,
           grain: str | None = None) -> pd.DataFrame:
    """One row per period (oldest first): period (its first day), revenue, orders,
    active_shoppers, buying_shoppers, new_shoppers. ``segment_id`` needs ``run_id``."""
    grain = grain or choose_grain(con, start, end)
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS} (got {grain!r}).")
    who, params = "", []
    if segment_id is not None:
        if run_id is None:
            raise ValueError("segment_id needs the build (run_id) it belongs to.")
        members = LENS_TABLES[lens][0]
        who = (f"AND user_id IN (SELECT user_id FROM {members} WHERE run_id = ? "
               "AND segment_id = ?)")
        params = [run_id, segment_id]
    df = con.execute(
        f"""
        WITH firsts AS (SELECT user_id, date_trunc('{grain}', min(ts)) AS p0 FROM events
                        WHERE user_id IS NOT NULL AND ts IS NOT NULL GROUP BY user_id),
        e AS (SELECT user_id, event_type, date_trunc('{grain}', ts) AS period,
                     CASE WHEN event_type = 'purchase' THEN quantity * unit_price END AS rev,
                     CASE WHEN event_type = 'purchase' THEN {BASKET_KEY_SQL} END AS bk
              FROM events
              WHERE ts IS NOT NULL AND (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?) {who})
        SELECT e.period, coalesce(sum(rev), 0) AS revenue, count(DISTINCT bk) AS orders,
               count(DISTINCT e.user_id) AS active_shoppers,
               count(DISTINCT e.user_id) FILTER (event_type = 'purchase') AS buying_shoppers,
               count(DISTINCT e.user_id) FILTER (firsts.p0 = e.period) AS new_shoppers
        FROM e LEFT JOIN firsts USING (user_id)
        GROUP BY e.period ORDER BY e.period
        """, [start, start, end, end, *params]).df()
    df["period"] = pd.to_datetime(df["period"])
    for c in ("orders", "active_shoppers", "buying_shoppers", "new_shoppers"):
        df[c] = df[c].astype(int)
    df["revenue"] = df["revenue"].round(2)
    df.attrs["grain"] = grain
    return df


def shopper_activity(con, user_id: str, grain: str | None = None) -> pd.DataFrame:
    """One shopper's interactions per period and kind: period, event_type, events, spend (net of
    purchases, for the purchase rows). The period is a month over spans above 180 days, else a week."""
    lo, hi = con.execute("SELECT min(ts), max(ts) FROM events WHERE user_id = ? AND ts IS NOT NULL",
                         [str(user_id)]).fetchone()
    if lo is None:
        return pd.DataFrame(columns=["period", "event_type", "events", "spend"])
    grain = grain or ("month" if (hi - lo).days > 180 else "week")
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS} (got {grain!r}).")
    df = con.execute(
        f"""SELECT date_trunc('{grain}', ts) AS period, event_type, count(*) AS events,
                   coalesce(sum(quantity * unit_price) FILTER (event_type = 'purchase'), 0) AS spend
            FROM events WHERE user_id = ? AND ts IS NOT NULL
            GROUP BY ALL ORDER BY period, event_type""", [str(user_id)]).df()
    df["period"] = pd.to_datetime(df["period"])
    df["events"] = df["events"].astype(int)
    df.attrs["grain"] = grain
    return df
