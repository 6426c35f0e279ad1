"""The build's held-out baskets: each shopper's last basket, kept away from every fitted model.

One definition serves every stage that fits something and is then checked on what shoppers did
next: the profile encoder trains only on events before each shopper's held-out basket, and the
segment quality figures (``core.segments.quality``) score segments on it.

A shopper's events are ordered by time, then event id (the encoder's order); ``pos`` is the
1-based position in that order. A *basket* is a purchase basket (``basket_id``, else the session,
else the shopper's calendar day: ``BASKET_KEY_SQL``). For every shopper with at least two
baskets:

* ``test_cut``: position of the first event of their last basket; that basket and everything the
  shopper did from its first event on is held out;
* ``test_items``: the distinct catalogue items bought in it (sorted);
* ``val_cut`` / ``val_items``: the same for the basket before it (shoppers with three or more
  baskets), for choices made before looking at the test basket (number of segments, method).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BASKET_KEY_SQL = (
    "coalesce(basket_id, 's:' || session_id, "
    "'u:' || user_id || ':' || coalesce(CAST(CAST(ts AS DATE) AS VARCHAR), ''))"
)


def last_basket_split(con) -> pd.DataFrame:
    """One row per shopper with >= 2 purchase baskets, indexed by user_id (sorted): test_cut,
    test_items, val_cut (NaN below 3 baskets), val_items (None below 3 baskets)."""
    pur = con.execute(
        f"""
        WITH ue AS (
            SELECT user_id, item_id, event_type, {BASKET_KEY_SQL} AS bk,
                   row_number() OVER (PARTITION BY user_id
                                      ORDER BY ts NULLS FIRST, event_id) AS pos
            FROM events WHERE user_id IS NOT NULL),
        b AS (
            SELECT user_id, bk, min(pos) AS first_pos FROM ue
            WHERE event_type = 'purchase' GROUP BY ALL),
        r AS (
            SELECT user_id, bk, first_pos,
                   row_number() OVER (PARTITION BY user_id ORDER BY first_pos DESC) - 1 AS k,
                   count(*) OVER (PARTITION BY user_id) AS n_baskets
            FROM b)
        SELECT r.user_id, r.k, r.first_pos,
               list(DISTINCT ue.item_id ORDER BY ue.item_id)
                   FILTER (ue.item_id IN (SELECT item_id FROM items)) AS items
        FROM r JOIN ue ON ue.user_id = r.user_id AND ue.bk = r.bk AND ue.event_type = 'purchase'
        WHERE r.n_baskets >= 2 AND (r.k = 0 OR (r.k = 1 AND r.n_baskets >= 3))
        GROUP BY r.user_id, r.k, r.first_pos
        ORDER BY r.user_id, r.k
        """
    ).df()
    t = pur[pur["k"] == 0].set_index("user_id")
    v = pur[pur["k"] == 1].set_index("user_id")
    out = pd.DataFrame(index=pd.Index(t.index.astype(str), name="user_id"))
    out["test_cut"] = t["first_pos"].to_numpy(np.int64)
    # Every basket's item ids are new string objects in the query's result; the lists keep one
    # object per distinct item instead (820,000 shoppers' split: 2.09 -> 1.49 GB resident).
    one: dict[str, str] = {}
    out["test_items"] = [list(map(one.setdefault, x, x)) if x is not None else []
                         for x in t["items"]]
    out["val_cut"] = v["first_pos"].reindex(t.index).to_numpy(np.float64)
    vi = v["items"].reindex(t.index)
    out["val_items"] = [list(map(one.setdefault, x, x)) if isinstance(x, (list, np.ndarray))
                        else None for x in vi]
    return out.sort_index()


def cutoffs(split: pd.DataFrame, column: str = "test_cut") -> dict[str, int]:
    """{user_id: number of leading events before the cut} for the shoppers that have one."""
    s = split[column].dropna()
    return {str(u): int(c) - 1 for u, c in zip(s.index, s.to_numpy())}


# Up to this many events ``register_events_before`` copies the cut events into a temporary table
# once: its readers (the behaviour features, the lifecycle's RFM) read it 2-6 times, and a view
# ranked every event again each time (Online Retail: 1.0 -> 0.65 s for one window's features).
# Above it (the million-shopper build) the view stays: a copy would hold GBs.
MATERIALISE_BELOW_EVENTS = 2_000_000


def register_events_before(con, name: str, keep: dict[str, int],
                           users: list[str] | None = None) -> str:
    """Create temp relation ``name``: the events, each listed shopper's cut to their first
    ``keep[u]`` (``cutoffs``) in the shopper's event order; others whole. ``users``: only these
    shoppers' events (and events without a shopper), for checks run on a sample of a very large
    shop. A table on a shop under ``MATERIALISE_BELOW_EVENTS`` events, else a view; either way
    ``drop_temp(con, name)`` removes it. Returns ``name``."""
    cut_df = pd.DataFrame({"user_id": pd.Series(list(keep), dtype=object),  # noqa: F841
                           "keep_n": np.fromiter(keep.values(), np.int64, len(keep))})
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_keep AS SELECT * FROM cut_df")
    only = ""
    if users is not None:
        users_df = pd.DataFrame({"user_id": pd.Series(list(users), dtype=object)})  # noqa: F841
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_users AS SELECT * FROM users_df")
        only = (f"WHERE e.user_id IS NULL OR e.user_id IN "
                f"(SELECT user_id FROM {name}_users)")
    small = int(con.execute("SELECT count(*) FROM events").fetchone()[0]) \
        < MATERIALISE_BELOW_EVENTS
    drop_temp(con, name)
    con.execute(
        f"""
        CREATE TEMP {'TABLE' if small else 'VIEW'} {name} AS
        SELECT * EXCLUDE (pos) FROM (
            SELECT e.*, CASE WHEN e.user_id IS NULL THEN NULL ELSE row_number() OVER (
                       PARTITION BY e.user_id ORDER BY e.ts NULLS FIRST, e.event_id) END AS pos
            FROM events e {only}) e
        WHERE e.user_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM {name}_keep k WHERE k.user_id = e.user_id AND e.pos > k.keep_n)
        """)
    return name


def drop_temp(con, name: str) -> None:
    """Drop the temporary table or view ``name`` if there is one (DuckDB's DROP names the kind)."""
    kinds = con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = $n UNION ALL "
        "SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = $n",
        {"n": name}).fetchall()
    for (kind,) in kinds:
        con.execute(f"DROP {kind} {name}")
