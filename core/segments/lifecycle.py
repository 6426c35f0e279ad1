"""The lifecycle lens: every shopper in one lifecycle stage, by documented rules.

Cut-offs are relative to the shop (percentiles over its buyers, computed per build), so a
furniture shop and a grocer both get meaningful stages. "Now" is the store's last event. For
buyers (shoppers with at least one order):

    recent_days  = median of buyers' days since their last order (at least 1)
    lapsed_days  = 75th percentile of buyers' days since their last order
    high value   = net spend at or above the 80th percentile of buyers' net spend
                   (shops without prices: orders at or above the 80th percentile of orders)

(in a shop where nobody has ordered -- a ratings file, a clickstream without purchases -- the same
rules run on *visits* instead of orders: the days, or sessions, a shopper was active, and their
first and last visit; ``basis`` says which) and the first rule that matches gives the stage:

    browsers  "Browsers who never bought"  no order in the data (they viewed, carted, ...)
    new       "New customers"              first order within the last recent_days days
    one_off   "One-off buyers"             exactly one order, longer ago
    loyal     "Loyal high value"           2+ orders, last within recent_days, high value
              ("Loyal frequent buyers" for shops without prices)
    active    "Active repeat buyers"       2+ orders, last within recent_days
    at_risk   "At risk"                    2+ orders, last order recent_days-lapsed_days ago
    lapsed    "Lapsed"                     2+ orders, last order more than lapsed_days ago

``assign_lifecycle(con, run_id)`` writes ``lifecycle_segments`` (distance: how far a member is
from the stage's typical member in standardised log recency/orders/spend, so the most typical
come first) and the rule texts; ``core.segments.describe`` fills the rest of ``lifecycle_info``.
Stage ids and colours are fixed, so a stage looks the same in every build.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

# id, key, name, colour (fixed across builds; greens = healthy, oranges/reds = slipping away)
STAGES = [
    (0, "loyal", "Loyal high value", "#1B7837"),
    (1, "active", "Active repeat buyers", "#5AAE61"),
    (2, "new", "New customers", "#2166AC"),
    (3, "at_risk", "At risk", "#F4A442"),
    (4, "one_off", "One-off buyers", "#9970AB"),
    (5, "lapsed", "Lapsed", "#D6604D"),
    (6, "browsers", "Browsers who never bought", "#B8B8B8"),
]
STAGE_ID = {k: i for i, k, _, _ in STAGES}
STAGE_KEY = {i: k for i, k, _, _ in STAGES}
STAGE_COLOR = {i: c for i, _, _, c in STAGES}
NO_PRICE_NAMES = {"loyal": "Loyal frequent buyers"}
# a shop where nobody ordered: the stages by visits (days or sessions with any activity)
VISIT_NAMES = {"loyal": "Loyal frequent visitors", "active": "Active regular visitors",
               "new": "New visitors", "at_risk": "At risk", "one_off": "One-visit shoppers",
               "lapsed": "Lapsed"}

RECENT_Q, LAPSED_Q, VALUE_Q = 0.5, 0.75, 0.8
MAX_CHECK_SHOPPERS = 100_000  # above this many shoppers the held-out check runs on a sample


def shopper_rfm(con, events: str = "events") -> pd.DataFrame:
    """Per shopper with an id: days since first and last order, orders, net spend, and whether
    the shop has prices at all (column has_prices, the same on every row). ``events`` may name
    a relation shaped like ``events`` (e.g. the events before each shopper's held-out basket).
    Where nobody has ordered, orders and their days are visits' (``basis``: "visits", else
    "orders", the same on every row) and spend is empty."""
    ordered = bool(con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {events} WHERE user_id "
                               "IS NOT NULL AND event_type = 'purchase' LIMIT 1)").fetchone()[0])
    # an order is a basket, else a session, else a day; a visit a session, else a day
    day_or_event = "'d' || strftime(ts, '%Y-%m-%d'), 'e' || event_id"
    if ordered:
        when = "FILTER (event_type = 'purchase')"
        count = f"count(DISTINCT coalesce(basket_id, session_id, {day_or_event})) {when}"
        spend = ("sum(abs(coalesce(quantity, 1)) * unit_price) FILTER (event_type = 'purchase') "
                 "- coalesce(sum(abs(coalesce(quantity, 1)) * unit_price) "
                 "FILTER (event_type = 'return'), 0)")
    else:  # visits: days, or sessions, with any activity
        when = ""
        count = f"count(DISTINCT coalesce(session_id, {day_or_event}))"
        spend = "CAST(NULL AS DOUBLE)"
    rfm = con.execute(
        f"""
        WITH last AS (SELECT max(ts) AS now FROM {events}),
        b AS (
            SELECT user_id, {count} AS orders, min(ts) {when} AS first_order,
                   max(ts) {when} AS last_order, {spend} AS spend
            FROM {events} WHERE user_id IS NOT NULL GROUP BY user_id)
        SELECT b.user_id, b.orders,
               date_diff('second', b.first_order, last.now) / 86400.0 AS days_since_first,
               date_diff('second', b.last_order, last.now) / 86400.0 AS days_since_last,
               b.spend,
               (SELECT count(*) > 0 FROM {events}
                WHERE event_type = 'purchase' AND unit_price > 0) AS has_prices
        FROM b CROSS JOIN last ORDER BY b.user_id
        """
    ).df()
    rfm["basis"] = "orders" if ordered or not len(rfm) else "visits"
    return rfm


def cutoffs(rfm: pd.DataFrame) -> dict:
    """The shop-relative cut-offs (see the module docstring) from ``shopper_rfm``."""
    buyers = rfm[rfm["orders"] > 0]
    has_prices = bool(len(rfm)) and bool(rfm["has_prices"].iloc[0])
    basis = str(rfm["basis"].iloc[0]) if len(rfm) and "basis" in rfm else "orders"
    if buyers.empty:
        return {"buyers": 0, "has_prices": has_prices, "basis": basis}
    rec = buyers["days_since_last"].astype(float)
    out = {
        "buyers": int(len(buyers)),
        "has_prices": has_prices,
        "basis": basis,
        "recent_days": float(max(1.0, np.ceil(rec.quantile(RECENT_Q)))),
        "lapsed_days": float(max(2.0, np.ceil(rec.quantile(LAPSED_Q)))),
    }
    out["lapsed_days"] = max(out["lapsed_days"], out["recent_days"] + 1)
    if has_prices and basis == "orders":
        out["value_by"] = "spend"
        out["high_value"] = float(buyers["spend"].astype(float).quantile(VALUE_Q))
    else:
        out["value_by"] = basis
        out["high_value"] = float(max(2.0, buyers["orders"].astype(float).quantile(VALUE_Q)))
    return out


def stage_of(rfm: pd.DataFrame, cut: dict) -> np.ndarray:
    """Stage id per row of ``shopper_rfm`` by the rules above (first match wins)."""
    orders = rfm["orders"].fillna(0).to_numpy(np.float64)
    first = rfm["days_since_first"].to_numpy(np.float64)
    last = rfm["days_since_last"].to_numpy(np.float64)
    out = np.full(len(rfm), STAGE_ID["browsers"], dtype=np.int64)
    if not cut.get("buyers"):
        return out
    value = (rfm["spend"] if cut["value_by"] == "spend" else rfm["orders"]).fillna(0)
    high = value.to_numpy(np.float64) >= cut["high_value"]
    recent = last <= cut["recent_days"]
    repeat = orders >= 2
    conds = [
        (orders == 0, "browsers"),
        (first <= cut["recent_days"], "new"),
        (orders == 1, "one_off"),
        (repeat & recent & high, "loyal"),
        (repeat & recent, "active"),
        (repeat & (last <= cut["lapsed_days"]), "at_risk"),
        (repeat, "lapsed"),
    ]
    done = np.zeros(len(rfm), dtype=bool)
    for cond, key in conds:
        hit = cond & ~done
        out[hit] = STAGE_ID[key]
        done |= hit
    return out


def _days(x: float) -> str:
    return f"{x:,.0f} day{'' if round(x) == 1 else 's'}"


def rule_texts(cut: dict, currency: str = "£") -> dict[str, str]:
    """Each stage's rule in words, with this build's cut-offs."""
    if not cut.get("buyers"):
        return {"browsers": "No order in the data."}
    r, lap = _days(cut["recent_days"]), _days(cut["lapsed_days"])
    if cut.get("basis") == "visits":
        hv = f"{cut['high_value']:,.0f} or more visits (the top 20% of shoppers)"
        return {
            "new": f"First visit within the last {r} (nobody ordered in this data, so the stages "
                   "count visits: days or sessions with any activity).",
            "one_off": f"Exactly one visit, more than {r} ago.",
            "loyal": f"2 or more visits, the last within {r}, and {hv}.",
            "active": f"2 or more visits, the last within {r} (the most recent half of "
                      f"shoppers visited within {r}).",
            "at_risk": f"2 or more visits, the last between {r} and {lap} ago "
                       f"(a quarter of shoppers have been away longer).",
            "lapsed": f"2 or more visits, the last more than {lap} ago.",
        }
    if cut["value_by"] == "spend":
        hv = f"net spend of {currency}{cut['high_value']:,.0f} or more (the top 20% of buyers)"
    else:
        hv = f"{cut['high_value']:,.0f} or more orders (the top 20% of buyers)"
    return {
        "browsers": "No order in the data: they only viewed, carted or saved items.",
        "new": f"First order within the last {r} (the most recent half of buyers ordered "
               f"within {r}).",
        "one_off": f"Exactly one order, placed more than {r} ago.",
        "loyal": f"2 or more orders, the last within {r}, and {hv}.",
        "active": f"2 or more orders, the last within {r}.",
        "at_risk": f"2 or more orders, the last between {r} and {lap} ago "
                   f"(a quarter of buyers have been away longer).",
        "lapsed": f"2 or more orders, the last more than {lap} ago.",
    }


def stage_names(cut: dict) -> dict[int, str]:
    names = {i: n for i, _, n, _ in STAGES}
    if cut.get("basis") == "visits":
        return {**names, **{STAGE_ID[k]: n for k, n in VISIT_NAMES.items()}}
    if cut.get("value_by") == "orders":
        for key, n in NO_PRICE_NAMES.items():
            names[STAGE_ID[key]] = n
    return names


def _typicality(rfm: pd.DataFrame, stage: np.ndarray) -> np.ndarray:
    """Distance of each shopper from their stage's median member (standardised log scales)."""
    cols = [np.log1p(rfm["orders"].fillna(0).to_numpy(np.float64)),
            np.log1p(np.nan_to_num(rfm["days_since_last"].to_numpy(np.float64), nan=0.0)),
            np.sign(rfm["spend"].fillna(0).to_numpy(np.float64))
            * np.log1p(np.abs(rfm["spend"].fillna(0).to_numpy(np.float64)))]
    Z = np.stack([(c - c.mean()) / (c.std() or 1.0) for c in cols], axis=1)
    d = np.zeros(len(rfm))
    for s in np.unique(stage):
        m = stage == s
        d[m] = np.linalg.norm(Z[m] - np.median(Z[m], axis=0), axis=1)
    return d


def assign_lifecycle(con, run_id: int, *, currency: str = "£") -> dict:
    """Write ``lifecycle_segments`` for run ``run_id`` and the stages' names, colours and rules
    into ``lifecycle_info`` (sizes and descriptions follow in ``describe_segments``)."""
    t0 = time.perf_counter()
    run_id = int(run_id)
    rfm = shopper_rfm(con)
    cut = cutoffs(rfm)
    stage = stage_of(rfm, cut)
    dist = _typicality(rfm, stage) if len(rfm) else np.zeros(0)
    members = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan
        "user_id": rfm["user_id"].astype(str), "segment_id": stage.astype(np.int32),
        "distance": dist})
    con.execute("DELETE FROM lifecycle_segments WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM lifecycle_info WHERE run_id = ?", [run_id])
    con.execute(f"INSERT INTO lifecycle_segments SELECT {run_id}, user_id, segment_id, distance "
                "FROM members")
    rules = rule_texts(cut, currency)
    names = stage_names(cut)
    present = sorted(set(stage.tolist()))
    con.executemany(
        "INSERT INTO lifecycle_info (run_id, segment_id, name, color, rule, position) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [[run_id, s, names[s], STAGE_COLOR[s], rules.get(STAGE_KEY[s]), s] for s in present])
    sizes = {int(s): int((stage == s).sum()) for s in present}
    return {"cutoffs": cut, "sizes": sizes, "k": len(present),
            "names": {s: names[s] for s in present},
            "seconds": round(time.perf_counter() - t0, 3)}


def lifecycle_quality(con, split: pd.DataFrame | None = None, *, seed: int = 42) -> dict:
    """The lifecycle lens measured like the taste lens (``core.segments.quality``):

    * stability: the rules are deterministic (seed stability 1); bootstrap stability is the
      adjusted Rand index between the stages given with cut-offs computed on two seeded 80 %
      samples of the shoppers;
    * predictive validity: stages assigned from the events before each shopper's held-out last
      basket (cut-offs recomputed on that data), each stage ranking items by the share of its
      members who bought them before the cut, scored on the held-out baskets (NDCG@10), next to
      whole-shop best-sellers and KMeans on TF-IDF/SVD-64 of purchases with as many segments."""
    from sklearn.cluster import KMeans

    from core.features.holdout import (cutoffs as keep_of, drop_temp, last_basket_split,
                                       register_events_before)
    from core.segments import quality as qm

    rfm = shopper_rfm(con)
    out: dict = {"stability_seed": 1.0}
    if len(rfm) >= 10:
        labs = []
        for i in (0, 1):
            idx = np.random.default_rng(seed + 200 + i).choice(len(rfm), int(0.8 * len(rfm)),
                                                               replace=False)
            labs.append(stage_of(rfm, cutoffs(rfm.iloc[np.sort(idx)])))
        out["stability_bootstrap"] = qm.ari(*labs)
    split = last_basket_split(con) if split is None else split
    if split.empty:
        out["validity"] = None
        return out
    users = None
    if len(rfm) > MAX_CHECK_SHOPPERS:
        # a very large shop: the held-out check runs on a seeded sample of shoppers (their own
        # cut-offs, best-sellers and reference); the stages themselves cover everyone
        pick = np.random.default_rng(seed + 300).choice(len(rfm), MAX_CHECK_SHOPPERS,
                                                        replace=False)
        users = rfm["user_id"].astype(str).to_numpy()[np.sort(pick)].tolist()
        split = split[split.index.isin(users)]
        out["sample"] = {
            "shoppers": MAX_CHECK_SHOPPERS, "of": int(len(rfm)),
            "why": f"the held-out check runs on a random sample of {MAX_CHECK_SHOPPERS:,} of the "
                   f"{len(rfm):,} shoppers (everyone would take many minutes); every shopper "
                   "has a stage"}
    view = register_events_before(con, "_lc_events", keep_of(split, "test_cut"), users=users)
    rfm_t = shopper_rfm(con, events=view)
    stage = stage_of(rfm_t, cutoffs(rfm_t))
    users = rfm_t["user_id"].astype(str).tolist()
    pos = {u: i for i, u in enumerate(users)}
    bought = con.execute(
        f"SELECT user_id, item_id, count(*) AS n FROM {view} "
        "WHERE user_id IS NOT NULL AND event_type = 'purchase' GROUP BY ALL").df()
    drop_temp(con, view)
    items = sorted(set(bought["item_id"]) | {i for its in split["test_items"] for i in its})
    index = {it: j for j, it in enumerate(items)}
    import scipy.sparse as sp

    r = bought["user_id"].map(pos).to_numpy()
    c = bought["item_id"].map(index).to_numpy()
    C = sp.csr_matrix((bought["n"].to_numpy(np.float64), (r, c)), shape=(len(users), len(items)))
    B = (C > 0).astype(np.float64).tocsr()
    ev = [u for u in split.index if u in pos]
    rows = np.array([pos[u] for u in ev], dtype=np.int64)
    T = qm.targets_matrix([split.at[u, "test_items"] for u in ev], index)
    k = max(2, len(np.unique(stage)))
    seg = qm.segment_popularity_ndcg(stage, B, rows, T)
    pop = qm.segment_popularity_ndcg(np.zeros(len(users), np.int64), B, rows, T)
    ref = qm.segment_popularity_ndcg(
        KMeans(k, n_init=4, random_state=seed).fit(qm.tfidf_svd(C, seed=seed)).labels_, B, rows, T)
    out["validity"] = {
        "segments": qm.summary("lifecycle stages", seg, seed),
        "popularity": qm.summary("whole-shop best-sellers", pop, seed),
        "tfidf_kmeans": {**qm.summary(f"KMeans on TF-IDF/SVD-64 of purchases, k={k}", ref, seed),
                         "k": k},
        "ratio_vs_tfidf": float(seg.mean() / ref.mean()) if ref.mean() > 0 else None,
        "ratio_vs_popularity": float(seg.mean() / pop.mean()) if pop.mean() > 0 else None,
    }
    return out
