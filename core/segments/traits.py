"""What sets a segment apart: traits that are over-represented, common and significant.

A shopper *has* a trait when, over the run's data:

* theme / category / brand / item - they bought an item of it (shops without purchases: they
  interacted with one). An item with several categories counts for each; a mixed theme (no
  word names a quarter of its items, ``core.themes.label``) is no trait;
* price_band - it is their main price band (largest share of their activity);
* behaviour - a habit flag from their features (``BEHAVIOURS``), e.g. "mostly shops in the
  evening": at least half their activity 18:00-24:00, or (shops with ratings) "rates items lower
  than the typical shopper": a mean rating half a point or more below the shop's.

For every segment and candidate trait held by at least one member (c members of the segment's
n; K of all N segmented shoppers):

    support = c / n,  population_support = K / N,  lift = support / population_support
    p = P(X >= c), X ~ Hypergeometric(N, K, n)   (one-sided Fisher exact test: segment vs rest)

A trait *qualifies* when lift >= 1.5, it is held by at least 10 % of the members or at least 30 of
them, and p x (number of candidates tried in the build, over every segment) < 0.05 (Bonferroni).
Only qualifying traits are stored (``*_traits``, with members and the corrected p), at most
``top_n`` per segment and dimension by lift, so nothing bought *less* than in the shop is ever
shown as what sets a segment apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from core.features.compute import CATEGORIES_SQL
from core.segments.lenses import Lens
from core.themes.label import MIXED

MIN_LIFT = 1.5
MIN_SUPPORT = 0.10
MIN_MEMBERS = 30
ALPHA = 0.05

# key: (label, SQL condition over user_features f, with shop medians m.<col>)
BEHAVIOURS = {
    "evening": ("Mostly shops in the evening (18:00-24:00)", "f.evening_share >= 0.5"),
    "weekend": ("Mostly shops at weekends", "f.weekend_share >= 0.5"),
    "big_baskets": ("Big baskets (twice the shop's median items per order or more)",
                    "f.basket_size >= 2 * m.basket_size"),
    "bargain": ("Pays 15% or more below the usual price",
                "f.price_sensitivity <= ln(0.85)"),
    "premium": ("Pays 15% or more above the usual price",
                "f.price_sensitivity >= ln(1.15)"),
    "holiday": ("Buys mostly in November-December", "f.holiday_share >= 0.5 AND m.long_span"),
    "returns": ("Returns 20% or more of what they buy", "f.return_rate >= 0.2"),
    "browsing": ("Views twice as much per purchase as the typical buyer, or more",
                 "f.views_per_purchase >= 2 * m.views_per_purchase"),
    # shops with ratings only (rating_vs_shop is NULL elsewhere): the mean rating they give
    # against the shop's mean
    "rates_low": ("Rates items lower than the typical shopper (half a point or more)",
                  "f.rating_vs_shop <= -0.5"),
    "rates_high": ("Rates items higher than the typical shopper (half a point or more)",
                   "f.rating_vs_shop >= 0.5"),
}


def _had_sql(lens: Lens, bought: str) -> str:
    flags = "\n            UNION ALL\n".join(
        f"            SELECT f.user_id, 'behaviour', '{key}' FROM f, m WHERE {cond}"
        for key, (_, cond) in BEHAVIOURS.items())
    return f"""
        WITH seg AS (SELECT user_id, segment_id FROM {lens.members} WHERE run_id = $run),
        it AS (
            SELECT item_id, any_value({CATEGORIES_SQL}) AS categories,
                   any_value(nullif(trim(brand), '')) AS brand
            FROM items GROUP BY item_id),
        th AS (SELECT t.item_id, i.label FROM item_themes t JOIN theme_info i USING (run_id, theme_id)
               WHERE t.run_id = $run AND NOT starts_with(i.label, '{MIXED}')),
        ub AS (SELECT DISTINCT user_id, item_id FROM events
               WHERE user_id IS NOT NULL AND {bought}),
        f AS (SELECT * FROM user_features WHERE run_id = $run),
        m AS (SELECT median(basket_size) AS basket_size,
                     median(views_per_purchase) AS views_per_purchase,
                     (SELECT date_diff('day', min(ts), max(ts)) >= 270 FROM events) AS long_span
              FROM f),
        had AS (
            SELECT DISTINCT ub.user_id, 'theme' AS dimension, th.label AS value
            FROM ub JOIN th USING (item_id)
            UNION ALL
            SELECT DISTINCT user_id, 'category', unnest(categories) FROM ub JOIN it USING (item_id)
            UNION ALL
            SELECT DISTINCT ub.user_id, 'brand', it.brand FROM ub JOIN it USING (item_id)
            WHERE it.brand IS NOT NULL
            UNION ALL
            SELECT user_id, 'price_band', value FROM user_shares
            WHERE run_id = $run AND dimension = 'price_band'
            QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY share DESC, value) = 1
            UNION ALL
            SELECT user_id, 'item', item_id FROM ub
            UNION ALL
{flags}
        ),
        c AS (SELECT seg.segment_id, had.dimension, had.value, count(*) AS members
              FROM had JOIN seg USING (user_id) GROUP BY ALL)
        SELECT c.segment_id, c.dimension, c.value, c.members,
               sum(c.members) OVER (PARTITION BY c.dimension, c.value) AS holders
        FROM c
    """


def candidate_counts(con, run_id: int, lens: Lens) -> tuple[pd.DataFrame, dict[int, int], int]:
    """(segment, dimension, value, members, holders) for every candidate with a member, the
    segment sizes, and the number of segmented shoppers."""
    has_purchases = con.execute(
        "SELECT EXISTS (SELECT 1 FROM events WHERE event_type = 'purchase' "
        "AND user_id IS NOT NULL)").fetchall()[0][0]
    bought = "event_type = 'purchase'" if has_purchases else "event_type <> 'return'"
    df = con.execute(_had_sql(lens, bought), {"run": int(run_id)}).df()
    sizes = dict(con.execute(
        f"SELECT segment_id, count(*) FROM {lens.members} WHERE run_id = ? GROUP BY 1",
        [int(run_id)]).fetchall())
    return df, {int(k): int(v) for k, v in sizes.items()}, int(sum(sizes.values()))


def qualify(df: pd.DataFrame, sizes: dict[int, int], total: int, *, n_tests: int | None = None,
            min_lift: float = MIN_LIFT, min_support: float = MIN_SUPPORT,
            min_members: int = MIN_MEMBERS, alpha: float = ALPHA) -> pd.DataFrame:
    """Add support, population_support, lift, p_value (Bonferroni-corrected) and ``qualifies``
    to candidate counts; ``n_tests`` defaults to the number of candidate rows."""
    out = df.copy()
    n = out["segment_id"].map(sizes).to_numpy(np.float64)
    c = out["members"].to_numpy(np.float64)
    K = out["holders"].to_numpy(np.float64)
    out["support"] = c / n
    out["population_support"] = K / total
    out["lift"] = out["support"] / out["population_support"]
    m = int(n_tests if n_tests is not None else len(out))
    p = hypergeom.sf(c - 1, total, K, n) if len(out) else np.zeros(0)
    out["p_value"] = np.minimum(1.0, p * max(m, 1))
    out["qualifies"] = ((out["lift"] >= min_lift)
                        & ((out["support"] >= min_support) | (out["members"] >= min_members))
                        & (out["p_value"] < alpha) & (out["segment_id"] >= 0))
    return out


def write_traits(con, run_id: int, lens: Lens, *, top_n: int = 25) -> pd.DataFrame:
    """Compute, qualify and store a lens's traits; returns every candidate with its figures."""
    df, sizes, total = candidate_counts(con, run_id, lens)
    q = qualify(df, sizes, total)
    keep = q[q["qualifies"]].sort_values(
        ["segment_id", "dimension", "lift", "members", "value"],
        ascending=[True, True, False, False, True])
    keep = keep.groupby(["segment_id", "dimension"], sort=False).head(top_n).copy()
    keep["label"] = _labels(con, keep)
    con.execute(f"DELETE FROM {lens.traits} WHERE run_id = ?", [int(run_id)])
    rows = keep[["segment_id", "dimension", "value", "support", "population_support", "lift",
                 "members", "p_value", "label"]]  # noqa: F841 - read by DuckDB
    con.execute(f"""INSERT INTO {lens.traits} (run_id, segment_id, dimension, value, support,
                    population_support, lift, members, p_value, label)
                    SELECT {int(run_id)}, * FROM rows""")
    return q


def _labels(con, traits: pd.DataFrame) -> list[str]:
    items = traits.loc[traits["dimension"] == "item", "value"].astype(str).tolist()
    titles = dict(con.execute(
        "SELECT item_id, any_value(title) FROM items WHERE item_id IN "
        "(SELECT unnest(?::VARCHAR[])) AND title IS NOT NULL GROUP BY item_id", [items]
    ).fetchall()) if items else {}
    out = []
    for dim, value in zip(traits["dimension"], traits["value"]):
        if dim == "item":
            out.append(titles.get(value) or str(value))
        elif dim == "behaviour":
            out.append(BEHAVIOURS[value][0])
        else:
            out.append(str(value))
    return out
