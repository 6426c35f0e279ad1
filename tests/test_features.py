"""Behaviour features: exact values on a hand-made shop, real-data shapes, and the demo's types."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from core.features import FEATURE_COLUMNS, compute_features, feature_matrix
from core.features.compute import RATING_COLUMNS
from core.store import Store, start_run

ITEMS = [
    # item_id, title, category_path, brand, price
    ("A", "Heart Tea Light Holder", "Home > Candles > Tea lights", "Willow", 10.0),
    ("B", "Star Tea Light Lantern", "Home > Candles > Tea lights", "Oak", 20.0),
    ("C", "Enamel Mug", "Kitchen > Tableware > Mugs", "Willow", 5.0),
    ("D", "Zinc Planter", "Garden > Planting > Pots", None, 40.0),
]
EVENTS = [
    # user, item, type, ts, quantity, unit_price, basket
    ("u1", "A", "view", "2025-03-01 10:00:00", None, None, None),  # Saturday
    ("u1", "A", "purchase", "2025-03-01 10:05:00", 2, 10.0, "b1"),
    ("u1", "C", "purchase", "2025-03-01 10:05:00", 1, 5.0, "b1"),
    ("u1", "B", "view", "2025-03-10 20:00:00", None, None, None),  # Monday
    ("u1", "B", "purchase", "2025-03-10 20:10:00", 1, 20.0, "b2"),
    ("u1", "A", "return", "2025-03-20 09:00:00", -1, 10.0, "c1"),  # Thursday
    ("u2", "D", "view", "2024-12-15 22:20:00", None, None, None),  # Sunday
    ("u2", "D", "purchase", "2024-12-15 22:30:00", 1, 30.0, "b3"),
    ("u3", "C", "view", "2025-02-05 13:00:00", None, None, None),  # Wednesday
    (None, "A", "purchase", "2025-03-31 12:00:00", 1, 15.0, "b4"),  # anonymous: the last event
]


def _load(store, items, events):
    with store.write() as con:
        for it in items:
            con.execute("INSERT INTO items VALUES (?, ?, NULL, ?, ?, ?, 1)", list(it))
        for n, ev in enumerate(events, 1):
            con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 1, NULL)",
                        [n, *ev])
        for u in sorted({e[0] for e in events if e[0]}):
            con.execute("INSERT INTO users VALUES (?, '{}', NULL, 1)", [u])


def _features(store):
    with store.write() as con:
        run_id = start_run(con, "build", {})
        metrics = compute_features(con, run_id)
    con = store.read()
    cols = ["user_id", *FEATURE_COLUMNS, "n_events", "n_items"]
    rows = con.execute(f"SELECT {', '.join(cols)} FROM user_features WHERE run_id = ? ORDER BY user_id",
                       [run_id]).fetchall()
    feats = {r[0]: dict(zip(cols[1:], r[1:])) for r in rows}
    shares = {}
    for u, dim, v, s in con.execute(
            "SELECT user_id, dimension, value, share FROM user_shares WHERE run_id = ?", [run_id]).fetchall():
        shares.setdefault(u, {}).setdefault(dim, {})[v] = s
    return run_id, metrics, feats, shares, con


@pytest.fixture()
def tiny(tmp_store):
    _load(tmp_store, ITEMS, EVENTS)
    return _features(tmp_store)


def test_exact_values_on_a_hand_made_shop(tiny):
    run_id, metrics, f, shares, _ = tiny
    assert metrics["n_users"] == 3 and set(f) == {"u1", "u2", "u3"}  # anonymous rows: no profile
    u1 = f["u1"]
    # last purchase 2025-03-10 20:10 -> store's last event 2025-03-31 12:00 (an anonymous one)
    assert u1["recency_days"] == pytest.approx(20 + 950 / 1440)
    assert u1["frequency"] == 2
    assert u1["monetary"] == pytest.approx(2 * 10 + 5 + 20 - 10)
    assert u1["avg_order_value"] == pytest.approx(45 / 2)
    assert u1["tenure_days"] == pytest.approx(18 + 23 / 24)
    assert u1["return_rate"] == pytest.approx(1 / 4)
    assert u1["views_per_purchase"] == pytest.approx(2 / 3)
    assert u1["basket_size"] == pytest.approx(1.5)
    assert u1["evening_share"] == pytest.approx(2 / 6)
    assert u1["weekend_share"] == pytest.approx(3 / 6)
    assert u1["mean_hour"] == pytest.approx((10 + 10 + 5 / 60 + 10 + 5 / 60 + 20 + 20 + 10 / 60 + 9) / 6)
    # paid vs the category's median list price: A 10 vs 15, C 5 vs 5, B 20 vs 15
    assert u1["price_sensitivity"] == pytest.approx((math.log(10 / 15) + 0 + math.log(20 / 15)) / 3)
    # category shares over interactions (not the return): Home 4 of 5, Kitchen 1 of 5
    assert shares["u1"]["category"] == pytest.approx({"Home": 0.8, "Kitchen": 0.2})
    assert u1["diversity"] == pytest.approx(-(0.8 * math.log2(0.8) + 0.2 * math.log2(0.2)))
    assert u1["holiday_share"] == 0
    assert (u1["n_events"], u1["n_items"]) == (6, 3)
    # price bands from the quartiles of item prices 5, 10, 20, 40 (8.75, 15, 25)
    assert shares["u1"]["price_band"] == pytest.approx({"mid": 0.4, "premium": 0.4, "budget": 0.2})
    assert shares["u1"]["brand"] == pytest.approx({"Willow": 0.6, "Oak": 0.4})
    assert shares["u1"]["weekday"] == pytest.approx({"Sat": 0.5, "Mon": 2 / 6, "Thu": 1 / 6})
    assert shares["u1"]["hour"] == pytest.approx({"10": 0.5, "20": 2 / 6, "09": 1 / 6})

    u2 = f["u2"]
    assert u2["recency_days"] == pytest.approx(106 - 10.5 / 24)
    assert (u2["frequency"], u2["monetary"], u2["avg_order_value"]) == (1, 30, 30)
    assert u2["tenure_days"] == pytest.approx(10 / 1440)
    assert (u2["return_rate"], u2["views_per_purchase"], u2["basket_size"]) == (0, 1, 1)
    assert (u2["evening_share"], u2["weekend_share"]) == (1, 1)
    assert u2["mean_hour"] == pytest.approx((22 + 20 / 60 + 22.5) / 2)
    assert u2["price_sensitivity"] == pytest.approx(math.log(30 / 40))
    assert (u2["diversity"], u2["holiday_share"]) == (0, 1)
    assert "brand" not in shares["u2"]  # D has no brand

    u3 = f["u3"]  # looked, never bought
    assert (u3["frequency"], u3["monetary"], u3["tenure_days"], u3["diversity"]) == (0, 0, 0, 0)
    for c in ("recency_days", "avg_order_value", "return_rate", "views_per_purchase",
              "basket_size", "price_sensitivity", "holiday_share"):
        assert u3[c] is None, c
    assert (u3["evening_share"], u3["weekend_share"], u3["mean_hour"]) == (0, 0, 13)


def test_feature_matrix_fills_transforms_and_standardises(tiny):
    run_id, _, f, _, con = tiny
    user_ids, X, names = feature_matrix(con, run_id)
    assert user_ids == ["u1", "u2", "u3"]
    assert X.dtype == np.float32 and X.shape == (3, len(names))
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-5)
    assert "frequency" in names and "recency_days" in names
    # recency NULL (never bought) is filled with the largest recency: u3 ranks with u2, above u1
    r = X[:, names.index("recency_days")]
    assert r[2] == pytest.approx(r[1]) and r[1] > r[0]
    # frequency is log1p'ed before standardising
    raw = np.log1p([2.0, 1.0, 0.0])
    np.testing.assert_allclose(X[:, names.index("frequency")], (raw - raw.mean()) / raw.std(), rtol=1e-5)
    # a column with one value for everybody says nothing and is dropped (none here is constant)
    assert all(np.ptp(X, axis=0) > 0)


def test_shop_without_reviews_has_no_rating_columns(tiny):
    run_id, metrics, f, _, con = tiny
    assert all(f[u][c] is None for u in f for c in ("reviews", "rating_vs_shop",
                                                    "low_rating_share"))
    _, _, names = feature_matrix(con, run_id)
    assert not {"reviews", "rating_vs_shop", "low_rating_share", "rated"} & set(names)


# a tiny ratings file (user, item, rating; one review per line, dated a day apart)
RATINGS = [("u1", "A", 5), ("u1", "B", 4), ("u1", "C", 1), ("u2", "A", 2), ("u2", "D", None),
           ("u3", "B", 5), (None, "C", 3)]


def test_rating_behaviour_per_shopper(tmp_store):
    """The shop's mean is over shoppers' ratings: (5+4+1+2+5)/5 = 3.4; the scale used is 1-5,
    so a low rating is 2 or less (1 + 4/4)."""
    events = [(u, it, "review", f"2025-03-{d:02d} 10:00:00", None, None, None)
              for d, (u, it, _) in enumerate(RATINGS, 1)]
    events.append(("u4", "A", "view", "2025-03-20 10:00:00", None, None, None))
    _load(tmp_store, ITEMS, events)
    with tmp_store.write() as con:
        for n, (_, _, rating) in enumerate(RATINGS, 1):
            con.execute("INSERT INTO event_reviews VALUES (?, ?, ?, 1)",
                        [n, rating, "No stars, just words." if rating is None else None])
    run_id, _, f, _, con = _features(tmp_store)
    got = {u: (f[u]["reviews"], f[u]["rating_vs_shop"], f[u]["low_rating_share"]) for u in f}
    assert got["u1"] == (3, pytest.approx(10 / 3 - 3.4), pytest.approx(1 / 3))
    assert got["u2"] == (2, pytest.approx(2 - 3.4), 1.0)     # the text-only review: no rating
    assert got["u3"] == (1, pytest.approx(5 - 3.4), 0.0)
    assert got["u4"] == (0, None, None)                      # never reviewed
    user_ids, X, names = feature_matrix(con, run_id)
    assert {"reviews", "rating_vs_shop", "rated", "low_rating_share"} <= set(names)
    rated = X[:, names.index("rated")]
    np.testing.assert_allclose(rated, (np.array([1, 1, 1, 0]) - 0.75) / np.sqrt(0.1875), rtol=1e-5)
    # no rating -> 0 (the shop's typical) before standardising
    raw = np.array([10 / 3 - 3.4, 2 - 3.4, 5 - 3.4, 0.0])
    np.testing.assert_allclose(X[:, names.index("rating_vs_shop")], (raw - raw.mean()) / raw.std(),
                               rtol=1e-5)


def test_time_habits_of_few_sessions_are_pulled_towards_the_shop_in_the_model_input(tiny):
    from core.features.compute import HABIT_PRIOR_SESSIONS, _session_counts

    run_id, _, f, _, con = tiny
    users, X, names = feature_matrix(con, run_id)
    # sessions (no session ids here: calendar days): u1 on 1, 10 and 20 March; u2 and u3 once
    n = _session_counts(con, users)
    assert users == ["u1", "u2", "u3"] and n.tolist() == [3, 1, 1]
    for col in ("evening_share", "weekend_share", "mean_hour"):
        raw = np.array([f[u][col] for u in users])
        # the stored feature is what the shopper did...
        assert f["u2"]["weekend_share"] == 1.0 and f["u3"]["weekend_share"] == 0.0
        # ...the model sees it shrunk towards the shop's mean by HABIT_PRIOR_SESSIONS sessions
        shrunk = (n * raw + HABIT_PRIOR_SESSIONS * raw.mean()) / (n + HABIT_PRIOR_SESSIONS)
        np.testing.assert_allclose(X[:, names.index(col)], (shrunk - shrunk.mean()) / shrunk.std(),
                                   rtol=1e-5, atol=1e-6)


def test_online_retail_like_shop_without_categories_or_views(tmp_store):
    items = [("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", None, None, None),
             ("22423", "REGENCY CAKESTAND 3 TIER", None, None, None)]
    events = [
        ("17850", "85123A", "purchase", "2010-12-01 08:26:00", 6, 1.0, "536365"),
        ("13047", "85123A", "purchase", "2010-12-01 08:34:00", 6, 3.0, "536367"),
        (None, "85123A", "purchase", "2010-12-01 09:00:00", 6, 2.0, "536368"),
        ("13047", "22423", "purchase", "2010-12-02 10:00:00", 2, 12.75, "536400"),
        ("13047", "22423", "return", "2010-12-05 10:00:00", -1, 12.75, "C536500"),
        ("17850", "22423", "purchase", "2010-12-09 12:50:00", 4, 12.75, "536600"),
    ]
    _load(tmp_store, items, events)
    run_id, metrics, f, shares, con = _features(tmp_store)
    assert metrics["n_users"] == 2 and metrics["has_views"] is False
    assert set(metrics["features_all_null"]) == {"views_per_purchase", "diversity"}
    # no categories: compared with the item's median price paid by everyone (2.0; 12.75)
    assert f["17850"]["price_sensitivity"] == pytest.approx((math.log(1 / 2) + 0) / 2)
    assert f["13047"]["price_sensitivity"] == pytest.approx((math.log(3 / 2) + 0) / 2)
    assert f["13047"]["monetary"] == pytest.approx(18 + 25.5 - 12.75)
    assert f["13047"]["return_rate"] == pytest.approx(1 / 8)
    assert f["17850"]["views_per_purchase"] is None and f["17850"]["diversity"] is None
    assert f["17850"]["recency_days"] == 0
    assert "category" not in shares["17850"] and "brand" not in shares["17850"]
    # price bands come from the items' median paid prices when the catalogue has none
    assert set(shares["17850"]["price_band"]) <= {"budget", "mid", "premium", "luxury"}
    user_ids, X, names = feature_matrix(con, run_id)
    assert user_ids == ["13047", "17850"]
    assert "views_per_purchase" not in names and "diversity" not in names
    assert "holiday_share" not in names  # every purchase is in December: constant, dropped
    assert np.isfinite(X).all()


def test_shop_without_shoppers_gives_no_rows_and_no_crash(tmp_store):
    items = [("whole milk", "whole milk", None, None, None)]
    events = [(None, "whole milk", "purchase", None, None, None, "1"),
              (None, "whole milk", "purchase", None, None, None, "2")]
    _load(tmp_store, items, events)
    run_id, metrics, f, shares, con = _features(tmp_store)
    assert metrics["n_users"] == 0 and f == {} and shares == {}
    user_ids, X, names = feature_matrix(con, run_id)
    assert user_ids == [] and X.shape[0] == 0


def test_recomputing_a_run_replaces_its_rows(tmp_store):
    _load(tmp_store, ITEMS, EVENTS)
    with tmp_store.write() as con:
        run_id = start_run(con, "build", {})
        compute_features(con, run_id)
        compute_features(con, run_id)
        assert con.execute("SELECT count(*) FROM user_features WHERE run_id = ?", [run_id]).fetchall() == [(3,)]


@pytest.fixture(scope="module")
def demo_features(demo_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("feat") / "demo.duckdb"
    shutil.copyfile(demo_store.path, path)
    store = Store(path)
    run_id, metrics, f, shares, con = _features(store)
    truth = dict(con.execute("SELECT user_id, shopper_type FROM demo_truth").fetchall())
    return run_id, metrics, f, shares, con, truth


def test_planted_types_differ_in_the_expected_direction(demo_features):
    _, metrics, f, shares, _, truth = demo_features
    assert metrics["n_users"] == 600 and metrics["features_all_null"] == []

    def mean(t, c):
        return np.mean([f[u][c] for u in f if truth[u] == t and f[u][c] is not None])

    types = sorted(set(truth.values()))
    others = lambda t: [o for o in types if o != t]  # noqa: E731
    assert mean("bargain_hunter", "price_sensitivity") < mean("loyal_high_spender", "price_sensitivity")
    assert mean("bargain_hunter", "price_sensitivity") < -0.5
    for c in ("frequency", "monetary", "avg_order_value", "tenure_days"):
        assert all(mean("loyal_high_spender", c) > mean(o, c) for o in others("loyal_high_spender")), c
    assert all(f[u]["frequency"] == 1 for u in f if truth[u] == "one_off_visitor")
    assert all(mean("one_off_visitor", "views_per_purchase") > mean(o, "views_per_purchase")
               for o in others("one_off_visitor"))
    assert all(mean("holiday_gift_buyer", "holiday_share") > 0.95 > mean(o, "holiday_share")
               for o in others("holiday_gift_buyer"))
    assert all(mean("category_specialist", "diversity") < mean(o, "diversity")
               for o in others("category_specialist"))
    assert all(mean("night_owl_browser", "evening_share") > 0.6 > mean(o, "evening_share")
               for o in others("night_owl_browser"))
    assert all(mean("night_owl_browser", "return_rate") > mean(o, "return_rate")
               for o in others("night_owl_browser"))
    assert all(mean("bargain_hunter", "weekend_share") > mean(o, "weekend_share")
               for o in others("bargain_hunter"))
    # specialists' favourite category is Kitchen, gift buyers' Gifts or Christmas
    top = {u: max(s["category"], key=s["category"].get) for u, s in shares.items()}
    spec = [top[u] for u in top if truth[u] == "category_specialist"]
    assert spec.count("Kitchen") / len(spec) > 0.95
    gift = [top[u] for u in top if truth[u] == "holiday_gift_buyer"]
    assert sum(t in ("Gifts", "Christmas") for t in gift) / len(gift) > 0.95


def test_kmeans_on_behaviour_features_recovers_the_planted_types(demo_features):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    run_id, _, _, _, con, truth = demo_features
    user_ids, X, names = feature_matrix(con, run_id)
    assert names == [c for c in FEATURE_COLUMNS if c not in RATING_COLUMNS]  # no reviews
    y = [truth[u] for u in user_ids]
    labels = KMeans(len(set(y)), n_init=10, random_state=0).fit_predict(X)
    assert adjusted_rand_score(y, labels) >= 0.85


@pytest.mark.slow
def test_online_retail_features_match_known_customers(shared_data, tmp_store):
    from core.ingest import ingest_file

    ingest_file(tmp_store, shared_data / "online_retail" / "online_retail.parquet", "online-retail")
    run_id, metrics, f, shares, con = _features(tmp_store)
    n = con.execute("SELECT count(DISTINCT user_id) FROM events").fetchall()[0][0]
    assert metrics["n_users"] == n > 4300
    assert set(metrics["features_all_null"]) == {"views_per_purchase", "diversity"}
    # 12346 bought 74,215 units once and returned them all
    c = f["12346"]
    assert (c["frequency"], c["monetary"], c["return_rate"]) == (1, 0, 1)
    # 12347: seven invoices, 4,310.00 in all, last one 2011-12-07 15:52 (data ends 12-09 12:50)
    c = f["12347"]
    assert c["frequency"] == 7 and c["monetary"] == pytest.approx(4310.00)
    assert c["recency_days"] == pytest.approx(1 + 20 / 24 + 58 / 1440)
    assert c["views_per_purchase"] is None and c["diversity"] is None
    user_ids, X, names = feature_matrix(con, run_id)
    assert len(user_ids) == n and np.isfinite(X).all()
    assert "price_sensitivity" in names and "return_rate" in names


@pytest.mark.slow
def test_groceries_has_no_shoppers_and_no_crash(shared_data, tmp_store):
    from core.ingest import ingest_file

    ingest_file(tmp_store, shared_data / "groceries" / "groceries.csv", "baskets")
    run_id, metrics, f, shares, con = _features(tmp_store)
    assert metrics["n_users"] == 0 and f == {} and shares == {}
    assert feature_matrix(con, run_id)[1].shape[0] == 0
