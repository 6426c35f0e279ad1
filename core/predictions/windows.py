"""What a shopper looked like at a cut-off, and what they did in the horizon after it.

Every prediction is learned and checked on windows of the shop's own history:

    features as of T   <- only events with ts < T
    labels in (T, T+H] <- only events with T <= ts < T + H

``features_as_of`` reads nothing at or after its cut-off, by construction: the events view it reads
is filtered on ``ts < $cut`` with the cut-off as a parameter, so a fitted model never sees the horizon
it is judged on (tests/test_predictions.py checks this on a hand-made shop with exact dates).
Restricted to some shoppers (``users``: a large shop's windows are computed on a sample), the same
view is only narrowed further, to those shoppers' events, before anything is counted.

A *purchase* is an order: the distinct baskets (``BASKET_KEY_SQL``) of purchase events; revenue is
quantity x unit price of purchase events (returns are their own event type and not counted).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from core.features.holdout import BASKET_KEY_SQL

# Feature name -> words for a marketer (the shopper profile shows the top reasons in these words).
FEATURE_WORDS = {
    "days_since_order": "days since the last order",
    "days_since_activity": "days since the last visit",
    "tenure_days": "days since the first visit",
    "orders": "orders so far",
    "orders_30d": "orders in the last 30 days",
    "orders_90d": "orders in the last 90 days",
    "orders_365d": "orders in the last 365 days",
    "spend": "spend so far",
    "spend_90d": "spend in the last 90 days",
    "order_value": "average order value",
    "gap_days": "typical days between orders",
    "items": "different items bought",
    "views": "items viewed",
    "views_30d": "items viewed in the last 30 days",
    "carts": "cart adds and favourites",
    "returns": "returns",
    "goal_orders": "orders with the goal's items",
    "goal_share": "share of purchases from the goal",
    "days_since_goal": "days since buying from the goal",
}
FEATURES = list(FEATURE_WORDS)


def data_end(con) -> datetime | None:
    """The moment just after the last timed event: the end of the shop's history."""
    t = con.execute("SELECT max(ts) FROM events WHERE user_id IS NOT NULL").fetchone()[0]
    return None if t is None else t + timedelta(seconds=1)


def data_start(con) -> datetime | None:
    return con.execute("SELECT min(ts) FROM events WHERE user_id IS NOT NULL").fetchone()[0]


# Revenue in exact decimals (to a millionth): DuckDB adds floating-point numbers in whatever order
# its threads finish, so float sums differed in the last bits from run to run, and the trees'
# split points with them (purchase probabilities moved by up to 0.15 between two runs of the same
# demo build). Prices and quantities are finite and bounded (core.ingest.sanity).
REV = "CAST(quantity * unit_price AS DECIMAL(38, 6))"


def _goal_sql(goal_items: list[str] | None) -> tuple[str, dict]:
    if not goal_items:
        return "false", {}
    return "list_contains($goal, item_id)", {"goal": sorted(goal_items)}


def shoppers_with_events(con) -> list[str]:
    """Every shopper with a timed event, sorted: those ``features_as_of(data_end(con))`` has."""
    return [str(u) for u in con.execute(
        "SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL AND ts IS NOT NULL "
        "ORDER BY user_id").fetchnumpy()["user_id"]]


@contextmanager
def only_users(con, users: list[str] | None, name: str = "_asof_users"):
    """A SQL condition on ``user_id`` keeping ``users`` (a semi-join on them, registered as
    ``name`` while the block runs); "true" for everyone (None), "false" for no one."""
    if users is None or len(users) == 0:
        yield "true" if users is None else "false"
        return
    con.register(name, pd.DataFrame({"user_id": pd.Series(list(users), dtype=object)}))
    try:
        yield f"user_id IN (SELECT user_id FROM {name})"
    finally:
        con.unregister(name)


def features_as_of(con, cut: datetime, goal_items: list[str] | None = None,
                   users: list[str] | None = None) -> pd.DataFrame:
    """One row per shopper with any event before ``cut`` (index user_id, sorted), the FEATURES
    columns; NaN where a figure does not exist (no order yet: days since order). ``users``: only
    these shoppers (their events alone are read and counted: the same rows as for everyone)."""
    with only_users(con, users) as who:
        return _features(con, cut, goal_items, who)


def _features(con, cut: datetime, goal_items: list[str] | None, who: str) -> pd.DataFrame:
    goal, gp = _goal_sql(goal_items)
    q = f"""
        WITH e AS (
            SELECT user_id, item_id, event_type, ts,
                   CASE WHEN event_type = 'purchase' THEN {REV} END AS rev,
                   {BASKET_KEY_SQL} AS bk, {goal} AS is_goal
            FROM events WHERE user_id IS NOT NULL AND ts IS NOT NULL AND ts < $cut AND {who}),
        o AS (
            SELECT user_id, bk, min(ts) AS t, sum(rev) AS rev, bool_or(is_goal) AS goal
            FROM e WHERE event_type = 'purchase' GROUP BY ALL),
        ou AS (
            SELECT user_id, count(*) AS orders,
                   count(*) FILTER (t >= $cut - INTERVAL 30 DAY) AS orders_30d,
                   count(*) FILTER (t >= $cut - INTERVAL 90 DAY) AS orders_90d,
                   count(*) FILTER (t >= $cut - INTERVAL 365 DAY) AS orders_365d,
                   sum(rev) AS spend, sum(rev) FILTER (t >= $cut - INTERVAL 90 DAY) AS spend_90d,
                   min(t) AS first_order, max(t) AS last_order,
                   count(*) FILTER (goal) AS goal_orders, max(t) FILTER (goal) AS last_goal
            FROM o GROUP BY user_id),
        eu AS (
            SELECT user_id, min(ts) AS first_ts, max(ts) AS last_ts,
                   count(*) FILTER (event_type IN ('view', 'click')) AS views,
                   count(*) FILTER (event_type IN ('view', 'click')
                                    AND ts >= $cut - INTERVAL 30 DAY) AS views_30d,
                   count(*) FILTER (event_type IN ('cart', 'favorite')) AS carts,
                   count(*) FILTER (event_type = 'return') AS returns,
                   count(DISTINCT item_id) FILTER (event_type = 'purchase') AS items,
                   count(*) FILTER (event_type = 'purchase') AS lines,
                   count(*) FILTER (event_type = 'purchase' AND is_goal) AS goal_lines
            FROM e GROUP BY user_id)
        SELECT eu.user_id,
               date_diff('second', ou.last_order, $cut::TIMESTAMP) / 86400.0 AS days_since_order,
               date_diff('second', eu.last_ts, $cut::TIMESTAMP) / 86400.0 AS days_since_activity,
               date_diff('second', eu.first_ts, $cut::TIMESTAMP) / 86400.0 AS tenure_days,
               coalesce(ou.orders, 0) AS orders, coalesce(ou.orders_30d, 0) AS orders_30d,
               coalesce(ou.orders_90d, 0) AS orders_90d,
               coalesce(ou.orders_365d, 0) AS orders_365d,
               ou.spend::DOUBLE AS spend, coalesce(ou.spend_90d, 0)::DOUBLE AS spend_90d,
               ou.spend / ou.orders AS order_value,
               CASE WHEN ou.orders > 1 THEN date_diff('second', ou.first_order, ou.last_order)
                    / 86400.0 / (ou.orders - 1) END AS gap_days,
               eu.items, eu.views, eu.views_30d, eu.carts, eu.returns,
               coalesce(ou.goal_orders, 0) AS goal_orders,
               CASE WHEN eu.lines > 0 THEN eu.goal_lines / eu.lines END AS goal_share,
               date_diff('second', ou.last_goal, $cut::TIMESTAMP) / 86400.0 AS days_since_goal
        FROM eu LEFT JOIN ou USING (user_id)
        ORDER BY eu.user_id
    """
    df = con.execute(q, {**gp, "cut": cut}).df().set_index("user_id")
    df.index = df.index.astype(str)
    return df[FEATURES].astype(float)


def outcomes_between(con, start: datetime, end: datetime, goal_items: list[str] | None = None,
                     users: list[str] | None = None) -> pd.DataFrame:
    """Per shopper who bought in [start, end): orders, spend, goal_orders (index user_id).
    ``users``: only these shoppers."""
    goal, gp = _goal_sql(goal_items)
    with only_users(con, users) as who:
        df = con.execute(
            f"""
            WITH o AS (
                SELECT user_id, {BASKET_KEY_SQL} AS bk, sum({REV}) AS rev,
                       bool_or({goal}) AS goal
                FROM events
                WHERE user_id IS NOT NULL AND event_type = 'purchase' AND ts >= $start
                      AND ts < $end AND {who}
                GROUP BY ALL)
            SELECT user_id, count(*) AS orders, coalesce(sum(rev), 0)::DOUBLE AS spend,
                   count(*) FILTER (goal) AS goal_orders
            FROM o GROUP BY user_id ORDER BY user_id
            """, {**gp, "start": start, "end": end}).df().set_index("user_id")
    df.index = df.index.astype(str)
    return df.astype(float)


def labels_for(features: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Align outcomes to the shoppers in ``features``: bought (0/1), spend, bought_goal (0/1)."""
    o = outcomes.reindex(features.index).fillna(0.0)
    return pd.DataFrame({"bought": (o["orders"] > 0).astype(int),
                         "spend": o["spend"].clip(lower=0.0),
                         "bought_goal": (o["goal_orders"] > 0).astype(int)}, index=features.index)


def churn_horizon_days(con, default: float = 90.0, quantile: float = 0.8,
                       lo: float = 14.0, hi: float = 365.0) -> tuple[float, str]:
    """Days without an order after which a shopper counts as churned, set from the shop's own
    inter-purchase times: the ``quantile`` of the gaps between a shopper's consecutive orders
    (80 % of repeat orders came sooner), kept within [lo, hi]. Returns (days, how it was set)."""
    gaps = con.execute(
        f"""
        WITH o AS (SELECT user_id, {BASKET_KEY_SQL} AS bk, min(ts) AS t FROM events
                   WHERE user_id IS NOT NULL AND event_type = 'purchase' AND ts IS NOT NULL
                   GROUP BY ALL),
        g AS (SELECT date_diff('second', lag(t) OVER (PARTITION BY user_id ORDER BY t), t)
                     / 86400.0 AS gap FROM o)
        SELECT gap FROM g WHERE gap IS NOT NULL AND gap > 0
        """).fetchnumpy()["gap"]
    if len(gaps) < 20:
        return default, f"{default:.0f} days (too few repeat orders to learn from: {len(gaps)})"
    q = float(np.quantile(gaps, quantile))
    days = float(np.clip(round(q), lo, hi))
    return days, (f"{days:.0f} days: {quantile:.0%} of repeat orders came within "
                  f"{q:.0f} days of the previous one ({len(gaps):,} gaps)")


def match_goal(con, run_id: int, goal: str) -> tuple[list[str], str]:
    """Items of a goal named in words: a category (any level, case-insensitive) or an item theme
    whose label or keywords contain the phrase. Returns (item ids, what matched)."""
    phrase = goal.strip().lower()
    if not phrase:
        return [], "no goal"
    cats = con.execute(
        """SELECT DISTINCT item_id FROM items
           WHERE list_contains(list_transform(string_split(
                   replace(coalesce(category_path, ''), ' > ', '|'), '|'),
                   lambda x: lower(trim(x))), ?)""", [phrase]).fetchnumpy()["item_id"]
    if len(cats):
        return sorted(map(str, cats)), f"category '{goal}' ({len(cats):,} items)"
    rows = con.execute(
        """SELECT t.theme_id, any_value(i.label), list(t.item_id) FROM item_themes t
           JOIN theme_info i USING (run_id, theme_id)
           WHERE t.run_id = ? AND (contains(lower(i.label), ?)
                 OR list_contains(list_transform(i.keywords, lambda k: lower(k)), ?))
           GROUP BY t.theme_id ORDER BY t.theme_id""", [run_id, phrase, phrase]).fetchall()
    if rows:
        items = sorted({str(i) for _, _, its in rows for i in its})
        labels = ", ".join(f"'{lab}'" for _, lab, _ in rows)
        return items, f"theme {labels} ({len(items):,} items)"
    titled = con.execute(
        "SELECT DISTINCT item_id FROM items WHERE contains(lower(coalesce(title, '')), ?)",
        [phrase]).fetchnumpy()["item_id"]
    if len(titled):
        return sorted(map(str, titled)), f"items titled '…{goal}…' ({len(titled):,} items)"
    return [], f"nothing in the catalogue matches '{goal}'"
