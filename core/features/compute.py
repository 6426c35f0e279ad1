"""Behaviour features per shopper, computed in DuckDB SQL.

``compute_features`` writes one ``user_features`` row per user with a user_id (anonymous events
count for item statistics such as median prices, not for profiles) and the preference shares in
``user_shares``. ``feature_matrix`` turns the features into a standardised numeric matrix for
the profile encoder and segmentation.

Definitions (also in core/store/schema.py):

- orders: distinct baskets with a purchase (basket_id; without baskets the session, else the
  shopper's day, else each purchase event on its own).
- revenue of a purchase line: quantity (1 when missing) x unit price (the item's list price when
  missing); a return line subtracts |quantity| x unit price.
- recency_days: from the shopper's last purchase to the store's last event (NULL: never bought).
- frequency: orders; monetary: net revenue; avg_order_value: gross purchase revenue / orders.
- tenure_days: first to last event; return_rate: returned units / purchased units, capped at 1.
- views_per_purchase: view events / purchase events; NULL where the store has no views at all
  or the shopper never bought.
- basket_size: mean distinct items per order.
- evening_share (18:00-23:59), weekend_share (Saturday, Sunday), mean_hour (hour + minute/60):
  over all the shopper's timed events.
- price_sensitivity: mean over purchase lines of ln(unit price / reference), the reference being
  the median list price of the item's category (its full category path), or, for data without
  categories or list prices, the median unit price paid for that item by everyone.
- holiday_share: share of purchase lines in November-December.
- shares (user_shares) over interaction events (every type except return): 'category' (top level
  of category_path; an item with several paths separated by '|' counts once for each), 'theme'
  (the item's theme label from ``core.themes``, when the run has themes), 'brand', 'price_band' (budget/mid/premium/luxury by the quartiles of item
  prices); over all timed events: 'hour' ('00'..'23') and 'weekday' ('Mon'..'Sun').
- diversity: entropy (bits) of the 'category' shares, or of the 'theme' shares for shops without
  categories; NULL with neither.
- ratings (only in shops with reviews, ``event_reviews``; NULL everywhere otherwise, so the
  columns are left out of every matrix and page): reviews: the shopper's review events (rating
  or text; 0 for shoppers without one); rating_vs_shop: the mean rating they gave minus the
  shop's mean rating (NULL without a rating; 0 in ``feature_matrix``, with the indicator
  ``rated``); low_rating_share: the share of their ratings in the bottom quarter of the scale the
  shop uses (min + (max - min) / 4: 1 or 2 on 1-5; NULL without a rating or when every rating
  is the same).
"""

from __future__ import annotations

import time

import numpy as np

from core.progress import NULL, Progress

FEATURE_COLUMNS = [
    "recency_days", "frequency", "monetary", "avg_order_value", "tenure_days", "return_rate",
    "views_per_purchase", "basket_size", "evening_share", "weekend_share", "mean_hour",
    "price_sensitivity", "diversity", "holiday_share", "reviews", "rating_vs_shop",
    "low_rating_share",
]
RATING_COLUMNS = ("reviews", "rating_vs_shop", "low_rating_share")
# heavy-tailed: log1p (monetary: signed) before standardising
LOG_COLUMNS = {"frequency", "monetary", "avg_order_value", "views_per_purchase", "basket_size",
               "reviews"}
# a NULL here means "never": fill with the largest value seen rather than the median
FILL_MAX = {"recency_days"}
# a NULL here means "no opinion": fill with 0 (the shop's typical) and add an indicator column
FILL_ZERO = {"rating_vs_shop": "rated"}
LOW_RATING = 0.25   # a low rating: in the bottom quarter of the shop's rating scale
# time habits measured over few sessions are mostly chance (a one-off visitor's single session is
# either "weekend" or not): in the model input they are pulled towards the shop's average, as if
# each shopper had also had HABIT_PRIOR_SESSIONS average sessions. Stored values stay as observed.
HABIT_COLUMNS = {"evening_share", "weekend_share", "mean_hour"}
HABIT_PRIOR_SESSIONS = 3.0

WEEKDAYS = "['Sun','Mon','Tue','Wed','Thu','Fri','Sat']"

# An item's top-level categories: category_path may hold several paths separated by '|'
# ('Comedy|Drama', 'Home > Kitchen|Gifts'); each path's first level counts (multi-valued).
CATEGORIES_SQL = ("list_distinct(list_filter(list_transform(string_split(coalesce(category_path, "
                  "''), '|'), lambda x: nullif(trim(split_part(x, ' > ', 1)), '')), "
                  "lambda x: x IS NOT NULL))")


def _x(con, sql: str, params=None) -> None:
    con.execute(sql, params or [])
    con.complete()


def compute_features(con, run_id: int, progress: Progress = NULL, *, events: str = "events",
                     features_table: str = "user_features",
                     shares_table: str = "user_shares") -> dict:
    """Write ``user_features`` and ``user_shares`` for ``run_id``; returns metrics.

    ``events`` may name another relation with the columns of ``events`` (e.g. a view of the
    events before each shopper's held-out basket) and the ``*_table`` arguments other tables
    shaped like ``user_features`` / ``user_shares``: features "as of" a cut, with no look-ahead."""
    t0 = time.perf_counter()
    for c in ("holiday_share", "reviews", "rating_vs_shop", "low_rating_share"):
        _x(con, f"ALTER TABLE {features_table} ADD COLUMN IF NOT EXISTS {c} DOUBLE")
    _x(con, f"DELETE FROM {features_table} WHERE run_id = ?", [run_id])
    _x(con, f"DELETE FROM {shares_table} WHERE run_id = ?", [run_id])
    steps = 4
    with progress.stage("Behaviour features", total=steps) as bar:
        # one row per item (the latest ingest wins), with a reference price for comparisons
        _x(con, f"""
            CREATE OR REPLACE TEMP TABLE _fx_items AS
            WITH it AS (
                SELECT DISTINCT ON (item_id) item_id, category_path,
                       {CATEGORIES_SQL} AS categories,
                       nullif(trim(brand), '') AS brand,
                       CASE WHEN price > 0 THEN price END AS price
                FROM items ORDER BY item_id, ingest_id DESC NULLS LAST
            ),
            paid AS (
                SELECT item_id, median(unit_price) AS median_paid
                FROM {events} WHERE event_type = 'purchase' AND unit_price > 0 GROUP BY item_id
            ),
            cat AS (
                SELECT category_path, median(price) AS cat_median
                FROM it WHERE category_path IS NOT NULL AND price IS NOT NULL GROUP BY 1
            ),
            allitems AS (
                SELECT item_id FROM it UNION SELECT item_id FROM paid
            )
            SELECT a.item_id, it.categories, th.label AS theme, it.brand,
                   coalesce(it.price, paid.median_paid) AS item_price,
                   coalesce(cat.cat_median, paid.median_paid) AS ref_price
            FROM allitems a LEFT JOIN it USING (item_id) LEFT JOIN paid USING (item_id)
            LEFT JOIN cat ON cat.category_path = it.category_path
            LEFT JOIN (SELECT t.item_id, i.label FROM item_themes t
                       JOIN theme_info i USING (run_id, theme_id) WHERE t.run_id = ?) th
              ON th.item_id = a.item_id
        """, [run_id])
        _x(con, """
            CREATE OR REPLACE TEMP TABLE _fx_bands AS
            SELECT quantile_cont(item_price, 0.25) AS q1, quantile_cont(item_price, 0.5) AS q2,
                   quantile_cont(item_price, 0.75) AS q3
            FROM _fx_items WHERE item_price > 0
        """)
        # shoppers get a small integer key: grouping on it is much faster than on strings
        _x(con, f"""
            CREATE OR REPLACE TEMP TABLE _fx_users AS
            SELECT user_id, CAST(row_number() OVER (ORDER BY user_id) AS INTEGER) AS uk
            FROM (SELECT DISTINCT user_id FROM {events} WHERE user_id IS NOT NULL)
        """)
        _x(con, f"""
            CREATE OR REPLACE TEMP TABLE _fx AS
            SELECT u.uk, e.item_id, e.event_type, e.ts,
                   CAST(hour(e.ts) AS TINYINT) AS hr, CAST(minute(e.ts) AS TINYINT) AS mi,
                   CAST(dayofweek(e.ts) AS TINYINT) AS dow, CAST(month(e.ts) AS TINYINT) AS mon,
                   coalesce(e.quantity, 1) AS qty,
                   coalesce(e.unit_price, i.item_price) AS price,
                   CASE WHEN e.event_type = 'purchase' THEN
                       coalesce(e.basket_id, e.session_id, 'd' || strftime(e.ts, '%Y-%m-%d'),
                                'e' || e.event_id) END AS order_key,
                   i.categories, i.theme, i.brand, i.ref_price,
                   CASE WHEN i.item_price IS NULL OR b.q1 IS NULL THEN NULL
                        WHEN i.item_price < b.q1 THEN 'budget'
                        WHEN i.item_price < b.q2 THEN 'mid'
                        WHEN i.item_price < b.q3 THEN 'premium'
                        ELSE 'luxury' END AS price_band
            FROM {events} e JOIN _fx_users u USING (user_id)
            LEFT JOIN _fx_items i USING (item_id) CROSS JOIN _fx_bands b
        """)
        bar.advance(1)

        # preference shares
        for dim, expr, where in [
            ("category", "unnest(categories)", "event_type <> 'return' AND len(categories) > 0"),
            ("theme", "theme", "event_type <> 'return' AND theme IS NOT NULL"),
            ("brand", "brand", "event_type <> 'return' AND brand IS NOT NULL"),
            ("price_band", "price_band", "event_type <> 'return' AND price_band IS NOT NULL"),
            ("hour", "hr", "hr IS NOT NULL"),
            ("weekday", "dow", "dow IS NOT NULL"),
        ]:
            inner = f"SELECT uk, {expr} AS v FROM _fx WHERE {where}"
            label = {"hour": "lpad(CAST(v AS VARCHAR), 2, '0')",
                     "weekday": f"{WEEKDAYS}[v + 1]"}.get(dim, "v")
            _x(con, f"""
                INSERT INTO {shares_table}
                SELECT ?, u.user_id, '{dim}', {label}, s.n / t.total
                FROM (SELECT uk, v, count(*) AS n FROM ({inner}) GROUP BY ALL) s
                JOIN (SELECT uk, count(*) AS total FROM ({inner}) GROUP BY uk) t USING (uk)
                JOIN _fx_users u USING (uk)
            """, [run_id])
        bar.advance(1)

        n_reviews, shop_rating, low_rating = _rating_scale(con, events)
        rated = "avg(r.rating) - ?" if shop_rating is not None else "NULL"
        low = ("avg(CASE WHEN r.rating <= ? THEN 1.0 ELSE 0.0 END) FILTER (r.rating IS NOT NULL)"
               if low_rating is not None else "NULL")
        has_views = con.execute(
            f"SELECT count(*) > 0 FROM (SELECT 1 FROM {events} WHERE event_type = 'view' LIMIT 1)"
        ).fetchall()[0][0]
        _x(con, f"""
            INSERT INTO {features_table} BY NAME
            WITH last AS (SELECT max(ts) AS last_ts FROM {events}),
            agg AS (
                SELECT uk,
                    max(ts) FILTER (event_type = 'purchase') AS last_purchase,
                    sum(qty * price) FILTER (event_type = 'purchase') AS gross,
                    sum(abs(qty) * price) FILTER (event_type = 'return') AS returned_value,
                    sum(qty) FILTER (event_type = 'purchase') AS units,
                    sum(abs(qty)) FILTER (event_type = 'return') AS returned_units,
                    count(*) FILTER (event_type = 'view') AS views,
                    count(*) FILTER (event_type = 'purchase') AS purchases,
                    date_diff('second', min(ts), max(ts)) / 86400.0 AS tenure_days,
                    avg(CASE WHEN hr >= 18 THEN 1.0 ELSE 0.0 END) AS evening_share,
                    avg(CASE WHEN dow IN (0, 6) THEN 1.0 ELSE 0.0 END) AS weekend_share,
                    avg(hr + mi / 60.0) AS mean_hour,
                    avg(ln(price / ref_price)) FILTER (
                        event_type = 'purchase' AND price > 0 AND ref_price > 0) AS price_sensitivity,
                    avg(CASE WHEN mon IN (11, 12) THEN 1.0 ELSE 0.0 END) FILTER (
                        event_type = 'purchase') AS holiday_share,
                    count(*) AS n_events,
                    count(DISTINCT item_id) AS n_items
                FROM _fx GROUP BY uk
            ),
            lines AS (  -- distinct (order, item) purchase lines
                SELECT uk, order_key FROM _fx WHERE event_type = 'purchase'
                GROUP BY uk, order_key, item_id
            ),
            orders AS (
                SELECT uk, count(DISTINCT order_key) AS orders, count(*) AS lines
                FROM lines GROUP BY uk
            ),
            div AS (  -- over categories; over themes for shops without categories
                SELECT user_id, -sum(share * log2(share)) AS diversity
                FROM {shares_table} WHERE run_id = ? AND dimension = (
                    SELECT CASE WHEN count(*) > 0 THEN 'category' ELSE 'theme' END
                    FROM {shares_table} WHERE run_id = ? AND dimension = 'category')
                GROUP BY user_id
            ),
            rev AS (
                SELECT u.uk, count(*) AS reviews, {rated} AS rating_vs_shop,
                       {low} AS low_rating_share
                FROM {events} e JOIN event_reviews r USING (event_id)
                JOIN _fx_users u USING (user_id) GROUP BY u.uk
            )
            SELECT ? AS run_id, u.user_id,
                date_diff('second', a.last_purchase, last.last_ts) / 86400.0 AS recency_days,
                CAST(coalesce(o.orders, 0) AS DOUBLE) AS frequency,
                coalesce(a.gross, 0) - coalesce(a.returned_value, 0) AS monetary,
                a.gross / nullif(o.orders, 0) AS avg_order_value,
                a.tenure_days,
                CASE WHEN a.units > 0 THEN least(coalesce(a.returned_units, 0) / a.units, 1.0) END
                    AS return_rate,
                CASE WHEN {bool(has_views)} THEN a.views / nullif(a.purchases, 0) END
                    AS views_per_purchase,
                o.lines / nullif(o.orders, 0) AS basket_size,
                a.evening_share, a.weekend_share, a.mean_hour, a.price_sensitivity,
                CASE WHEN d.diversity IS NOT NULL THEN greatest(d.diversity, 0.0) END AS diversity,
                a.n_events, a.n_items, a.holiday_share,
                CASE WHEN {n_reviews > 0} THEN CAST(coalesce(rv.reviews, 0) AS DOUBLE) END
                    AS reviews,
                rv.rating_vs_shop, rv.low_rating_share
            FROM agg a JOIN _fx_users u USING (uk) CROSS JOIN last
            LEFT JOIN orders o USING (uk) LEFT JOIN div d ON d.user_id = u.user_id
            LEFT JOIN rev rv USING (uk)
            ORDER BY u.user_id
        """, [run_id, run_id] + [x for x in (shop_rating, low_rating) if x is not None]
            + [run_id])
        bar.advance(1)
        stats = con.execute(
            "SELECT count(*), " + ", ".join(f"count({c})" for c in FEATURE_COLUMNS)
            + f" FROM {features_table} WHERE run_id = ?", [run_id]).fetchall()[0]
        n_shares = con.execute(f"SELECT count(*) FROM {shares_table} WHERE run_id = ?",
                               [run_id]).fetchall()[0][0]
        for t in ("_fx", "_fx_items", "_fx_bands", "_fx_users"):
            _x(con, f"DROP TABLE IF EXISTS {t}")
        bar.advance(1)
    n_users = int(stats[0])
    return {
        "n_users": n_users,
        "n_share_rows": int(n_shares),
        "has_views": bool(has_views),
        # (a shop without reviews has no rating columns by design: not data that is missing)
        "features_all_null": [c for c, n in zip(FEATURE_COLUMNS, stats[1:]) if n_users and n == 0
                              and (n_reviews or c not in RATING_COLUMNS)],
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _rating_scale(con, events: str) -> tuple[int, float | None, float | None]:
    """(reviews by shoppers, the shop's mean rating, the highest rating that counts as low):
    None where there are no ratings (and no low ones when every rating is the same)."""
    n, mean, lo, hi = con.execute(
        f"SELECT count(*), avg(r.rating), min(r.rating), max(r.rating) FROM {events} e "
        "JOIN event_reviews r USING (event_id) WHERE e.user_id IS NOT NULL").fetchall()[0]
    low = lo + LOW_RATING * (hi - lo) if lo is not None and hi > lo else None
    return int(n), (float(mean) if mean is not None else None), low


def feature_matrix(con, run_id: int, columns: list[str] | None = None, *,
                   table: str = "user_features", events: str = "events"):
    """Standardised behaviour features: ``(user_ids, X float32, names)``, rows ordered by user_id.

    NULLs are filled (recency with the largest value: "never bought"; others with the median),
    heavy-tailed columns are log-transformed, then each column is standardised to mean 0 and
    standard deviation 1. Columns without information (all NULL or constant) are dropped, so
    ``names`` says which columns ``X`` holds. ``table`` / ``events``: see ``compute_features``.
    """
    cols = list(columns or FEATURE_COLUMNS)
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()}
    cols = [c for c in cols if c in have]
    df = con.execute(
        f"SELECT user_id, {', '.join(cols)} FROM {table} WHERE run_id = ? ORDER BY user_id",
        [run_id],
    ).df()
    user_ids = [str(u) for u in df["user_id"]]
    sessions = _session_counts(con, user_ids, events) if HABIT_COLUMNS & set(cols) else None
    out, names = [], []
    for c in cols:
        x = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = ~np.isnan(x)
        if not ok.any():
            continue
        if c in HABIT_COLUMNS:
            pop = np.nanmean(x)
            x = np.where(ok, (sessions * x + HABIT_PRIOR_SESSIONS * pop)
                         / (sessions + HABIT_PRIOR_SESSIONS), x)
        if c in LOG_COLUMNS:
            x = np.sign(x) * np.log1p(np.abs(x))
        fill = np.nanmax(x) if c in FILL_MAX else 0.0 if c in FILL_ZERO else np.nanmedian(x)
        if c in FILL_ZERO and not ok.all():
            flag = ok.astype(np.float64)
            out.append((flag - flag.mean()) / flag.std())
            names.append(FILL_ZERO[c])
        x = np.where(ok, x, fill)
        sd = x.std()
        if not np.isfinite(sd) or sd < 1e-9:
            continue
        out.append((x - x.mean()) / sd)
        names.append(c)
    X = np.stack(out, axis=1).astype(np.float32) if out else np.zeros((len(user_ids), 0), np.float32)
    return user_ids, X, names


def _session_counts(con, user_ids: list[str], events: str = "events") -> np.ndarray:
    """Timed sessions per shopper (the session id, else the calendar day), in ``user_ids`` order;
    the evidence behind the time-habit features."""
    rows = dict(con.execute(
        f"""
        SELECT user_id, count(DISTINCT coalesce(session_id, CAST(CAST(ts AS DATE) AS VARCHAR)))
        FROM {events} WHERE user_id IS NOT NULL AND ts IS NOT NULL GROUP BY user_id
        """
    ).fetchall())
    return np.array([rows.get(u, 0) for u in user_ids], dtype=np.float64)
