"""Segmentation and segment descriptions.

Synthetic blobs (planted clusters) give exact checks of the clustering; a hand-made six-shopper
shop gives exact trait figures (support, population support, lift); the demo shop checks that
KMeans recovers the planted shopper types.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from core.segments import (
    PALETTE,
    UNASSIGNED_COLOR,
    NoProfilesError,
    describe_segments,
    knee,
    segment_color,
    segment_users,
)
from core.segments.describe import _distinct_names, title_keyword


def _put_profiles(con, X, run_id: int = 1) -> list[str]:
    ids = [f"u{i:04d}" for i in range(len(X))]
    con.register("_p", pa.table({"user_id": ids, "vector": [list(map(float, x)) for x in X]}))
    con.execute(f"INSERT INTO profiles SELECT {run_id}, user_id, vector::FLOAT[] FROM _p")
    con.unregister("_p")
    return ids


def _labels(con, run_id: int = 1) -> np.ndarray:
    return np.array([r[0] for r in con.execute(
        "SELECT segment_id FROM segments WHERE run_id = ? ORDER BY user_id", [run_id]).fetchall()])


@pytest.fixture()
def blobs4():
    return make_blobs(n_samples=400, centers=4, n_features=8, cluster_std=1.0, random_state=0)


# ----------------------------------------------------------------------------- KMeans
def test_kmeans_chooses_the_planted_k_and_recovers_the_blobs(tmp_store, blobs4):
    X, y = blobs4
    with tmp_store.write() as con:
        _put_profiles(con, X)
        m = segment_users(con, 1, method="kmeans", seed=42)
        labels = _labels(con)
    assert m["method"] == "kmeans" and m["k"] == 4 and m["k_chosen_by"] == "silhouette"
    assert adjusted_rand_score(y, labels) == 1.0
    # the elbow chart: one row per k in the range, the best silhouette at the planted k
    assert [r["k"] for r in m["k_scan"]] == list(range(2, 13))
    best = max(m["k_scan"], key=lambda r: r["silhouette"])
    assert best["k"] == 4 and best["silhouette"] == pytest.approx(m["silhouette"], abs=1e-6)
    inertia = [r["inertia"] for r in m["k_scan"]]
    assert inertia[2] < 0.25 * inertia[1]  # the elbow: k=4 drops the within-segment spread
    assert 0.7 < m["silhouette"] <= 1.0
    assert 0.0 < m["davies_bouldin"] < 0.5
    assert m["stability_ari"] == 1.0
    assert m["sizes"] == {0: 100, 1: 100, 2: 100, 3: 100}
    assert m["noise_share"] == 0.0 and m["n_users"] == 400


def test_user_set_k_and_ids_ordered_by_size_with_distances(tmp_store):
    X, y = make_blobs(n_samples=[50, 200, 100], n_features=4, cluster_std=0.5, random_state=3)
    with tmp_store.write() as con:
        ids = _put_profiles(con, X)
        m = segment_users(con, 1, k=3, seed=1)
        rows = con.execute("SELECT user_id, segment_id, distance FROM segments WHERE run_id = 1 "
                           "ORDER BY user_id").fetchall()
    assert m["k"] == 3 and m["k_chosen_by"] == "user"
    assert m["sizes"] == {0: 200, 1: 100, 2: 50}
    labels = np.array([r[1] for r in rows])
    assert adjusted_rand_score(y, labels) == 1.0
    assert [r[0] for r in rows] == ids
    # distance = Euclidean distance to the mean of the segment's profiles
    dist = np.array([r[2] for r in rows])
    Xf = X.astype(np.float32)
    for s in range(3):
        centre = Xf[labels == s].mean(axis=0)
        np.testing.assert_allclose(dist[labels == s], np.linalg.norm(Xf[labels == s] - centre, axis=1),
                                   rtol=1e-5)


def test_same_seed_same_segments_and_rerun_replaces(tmp_store):
    X, _ = make_blobs(n_samples=300, centers=5, n_features=6, cluster_std=2.5, random_state=11)
    with tmp_store.write() as con:
        _put_profiles(con, X)
        m1 = segment_users(con, 1, seed=5)
        a = con.execute("SELECT * FROM segments WHERE run_id = 1 ORDER BY user_id").fetchall()
        m2 = segment_users(con, 1, seed=5)
        b = con.execute("SELECT * FROM segments WHERE run_id = 1 ORDER BY user_id").fetchall()
    assert a == b and len(b) == 300
    assert m1["k_scan"] == m2["k_scan"] and m1["sizes"] == m2["sizes"]


def test_large_scan_uses_a_sample(tmp_store, blobs4):
    X, y = blobs4
    with tmp_store.write() as con:
        _put_profiles(con, X)
        m = segment_users(con, 1, k_range=(3, 5), scan_size=200, sample_size=150)
        labels = _labels(con)
    assert m["k_scan_sample"] == 200 and m["silhouette_sample"] == 150 and m["k"] == 4
    assert adjusted_rand_score(y, labels) == 1.0


def test_bad_arguments_and_missing_profiles(tmp_store, blobs4):
    X, _ = blobs4
    with tmp_store.write() as con:
        with pytest.raises(NoProfilesError, match="run 1 has no rows in the `profiles`|Run 1"):
            segment_users(con, 1)
        _put_profiles(con, X[:10])
        with pytest.raises(ValueError, match="method must be"):
            segment_users(con, 1, method="hdbscan")
        with pytest.raises(ValueError, match="k must be between 2"):
            segment_users(con, 1, k=10)
        with pytest.raises(ValueError, match="k_range"):
            segment_users(con, 1, k_range=(5, 3))


# ----------------------------------------------------------------------------- DBSCAN
def test_knee_of_a_k_distance_curve():
    flat_then_steep = np.concatenate([np.linspace(0, 1, 90), np.linspace(5, 50, 10)])
    assert knee(flat_then_steep) == 1.0
    # one extreme outlier does not move the knee
    assert knee(np.append(flat_then_steep, 1e6)) == 1.0
    assert knee([2.0, 2.0, 2.0]) == 2.0


def test_dbscan_finds_blobs_and_leaves_outliers_unassigned(tmp_store):
    X, y = make_blobs(n_samples=300, centers=[[0, 0], [6, 0], [0, 6]], cluster_std=0.5,
                      random_state=2)
    outliers = np.array([[20, 20], [-15, 12], [14, -14], [-12, -12], [25, -3],
                         [-20, 3], [3, 22], [10, 25], [-25, -20], [18, 8]], dtype=float)
    X = np.vstack([X, outliers])
    with tmp_store.write() as con:
        _put_profiles(con, X)
        m = segment_users(con, 1, method="dbscan", seed=3)
        rows = con.execute("SELECT segment_id, distance FROM segments WHERE run_id = 1 "
                           "ORDER BY user_id").fetchall()
    labels = np.array([r[0] for r in rows])
    assert (labels[300:] == -1).all()
    assert all(r[1] is None for r in rows if r[0] == -1)
    kept = labels[:300] >= 0
    assert kept.mean() > 0.95
    assert adjusted_rand_score(y[kept], labels[:300][kept]) == 1.0
    assert m["method"] == "dbscan" and m["k"] == 3 and m["eps_chosen_by"] == "k-distance knee"
    assert 0 < m["eps"] < 6 and m["min_samples"] == 4 and m["space"] == "profile"
    assert m["sizes"][-1] == int((labels == -1).sum()) >= 10
    assert m["noise_share"] == pytest.approx((labels == -1).mean())
    assert 0.7 < m["silhouette"] <= 1 and m["davies_bouldin"] > 0
    assert 0.9 <= m["stability_ari"] <= 1.0
    assert len(m["k_distance"]) == 100 and m["k_scan"] == []
    sizes = [m["sizes"][s] for s in range(3)]
    assert sizes == sorted(sizes, reverse=True)


def test_dbscan_on_wide_profiles_uses_pca_and_fits_on_a_sample(tmp_store):
    X, y = make_blobs(n_samples=600, centers=3, n_features=48, cluster_std=1.0, random_state=4)
    with tmp_store.write() as con:
        _put_profiles(con, X)
        m = segment_users(con, 1, method="dbscan", dbscan_fit_size=300, seed=1)
        labels = _labels(con)
    assert m["space"].startswith("pca-16") and m["fit_size"] == 300 and m["k"] == 3
    kept = labels >= 0
    assert kept.mean() > 0.9
    assert adjusted_rand_score(y[kept], labels[kept]) == 1.0


# ----------------------------------------------------------------------------- describe
def _tiny_shop(con) -> None:
    """Six shoppers: u1-u3 in segment 0, u4-u5 in segment 1, u6 unassigned."""
    con.execute("""INSERT INTO items VALUES
        ('i1', 'LUNCH BAG RED', NULL, 'Home > Decor', 'Acme', 5, 1),
        ('i2', 'Mug', NULL, 'Kitchen > Mugs', 'Bolt', 8, 1),
        ('i3', 'Candle', NULL, 'Home > Candles', 'Bolt', 12, 1)""")
    buys = [("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u3", "i3"), ("u4", "i2"), ("u5", "i2"),
            ("u5", "i3"), ("u6", "i1")]
    for n, (u, i) in enumerate(buys):
        con.execute("INSERT INTO events VALUES (?, ?, ?, 'purchase', TIMESTAMP '2025-03-01', 1, 5, "
                    "?, NULL, 1, NULL)", [n, u, i, f"b{n}"])
    # a view is not a purchase: it must not count
    con.execute("INSERT INTO events VALUES (99, 'u4', 'i1', 'view', TIMESTAMP '2025-03-01', 1, 5, "
                "NULL, NULL, 1, NULL)")
    seg = [("u1", 0, 0.5), ("u2", 0, 0.1), ("u3", 0, 0.3), ("u4", 1, 0.2), ("u5", 1, 0.1),
           ("u6", -1, None)]
    con.executemany("INSERT INTO segments VALUES (1, ?, ?, ?)", seg)
    bands = [("u1", "budget", 0.6), ("u1", "mid", 0.4), ("u2", "mid", 1.0), ("u3", "budget", 0.5),
             ("u3", "mid", 0.5), ("u4", "luxury", 1.0), ("u5", "luxury", 0.7),
             ("u5", "budget", 0.3), ("u6", "mid", 1.0)]
    con.executemany("INSERT INTO user_shares VALUES (1, ?, 'price_band', ?, ?)", bands)
    money = {"u1": 10, "u2": 20, "u3": 30, "u4": 40, "u5": 0, "u6": 100}
    freq = {"u1": 2, "u2": 1, "u3": 1, "u4": 1, "u5": 2, "u6": 1}
    rec = {"u1": 5, "u2": 10, "u3": 40, "u4": 3, "u5": 7, "u6": 1}
    con.executemany(
        "INSERT INTO user_features (run_id, user_id, recency_days, frequency, monetary) "
        "VALUES (1, ?, ?, ?, ?)", [[u, rec[u], freq[u], money[u]] for u in money])


def test_traits_support_and_lift_exact_on_a_hand_made_shop(tmp_store):
    with tmp_store.write() as con:
        _tiny_shop(con)
        m = describe_segments(con, 1, min_support=0.0, min_count=1, top_n=None)
        got = {(s, d, v): (sup, pop, lift) for s, d, v, sup, pop, lift in con.execute(
            "SELECT segment_id, dimension, value, support, population_support, lift "
            "FROM segment_traits WHERE run_id = 1").fetchall()}
        info = {r[0]: r for r in con.execute(
            "SELECT segment_id, name, description, color, size, user_share, revenue_share, "
            "recency_median, frequency_median, monetary_median, representative_users "
            "FROM segment_info WHERE run_id = 1").fetchall()}
    expected = {
        (0, "item", "i1"): (2 / 3, 1 / 2, 4 / 3), (0, "item", "i2"): (1 / 3, 1 / 2, 2 / 3),
        (0, "item", "i3"): (1 / 3, 1 / 3, 1.0), (1, "item", "i2"): (1.0, 1 / 2, 2.0),
        (1, "item", "i3"): (1 / 2, 1 / 3, 1.5), (-1, "item", "i1"): (1.0, 1 / 2, 2.0),
        (0, "category", "Home"): (1.0, 5 / 6, 1.2), (0, "category", "Kitchen"): (1 / 3, 1 / 2, 2 / 3),
        (1, "category", "Home"): (1 / 2, 5 / 6, 0.6), (1, "category", "Kitchen"): (1.0, 1 / 2, 2.0),
        (-1, "category", "Home"): (1.0, 5 / 6, 1.2),
        (0, "brand", "Acme"): (2 / 3, 1 / 2, 4 / 3), (0, "brand", "Bolt"): (2 / 3, 2 / 3, 1.0),
        (1, "brand", "Bolt"): (1.0, 2 / 3, 1.5), (-1, "brand", "Acme"): (1.0, 1 / 2, 2.0),
        # main price band: u1 budget, u2 mid, u3 budget (tie -> alphabetical), u4 u5 luxury, u6 mid
        (0, "price_band", "budget"): (2 / 3, 1 / 3, 2.0), (0, "price_band", "mid"): (1 / 3, 1 / 3, 1.0),
        (1, "price_band", "luxury"): (1.0, 1 / 3, 3.0), (-1, "price_band", "mid"): (1.0, 1 / 3, 3.0),
    }
    assert set(got) == set(expected)
    for key, val in expected.items():
        assert got[key] == pytest.approx(val), key
    assert m["n_segments"] == 2 and m["n_traits"] == len(expected)
    # sizes, shares, RFM medians, representatives nearest the centre, colours
    assert info[0][4:10] == (3, pytest.approx(0.5), pytest.approx(0.3), 10.0, 1.0, 20.0)
    assert info[1][4:10] == (2, pytest.approx(1 / 3), pytest.approx(0.2), 5.0, 1.5, 20.0)
    assert info[-1][4:7] == (1, pytest.approx(1 / 6), pytest.approx(0.5))
    assert info[0][10] == ["u2", "u3", "u1"] and info[1][10] == ["u5", "u4"]
    assert info[0][3] == PALETTE[0] and info[1][3] == PALETTE[1] and info[-1][3] == UNASSIGNED_COLOR
    assert info[-1][1] == "Unassigned"
    names = [r[1] for r in info.values()]
    assert len(set(names)) == 3 and all(n.strip() for n in names)
    assert all(r[2] for r in info.values())


def test_rerun_replaces_and_top_n_limits_traits(tmp_store):
    with tmp_store.write() as con:
        _tiny_shop(con)
        describe_segments(con, 1, min_support=0.0, min_count=1, top_n=1)
        describe_segments(con, 1, min_support=0.0, min_count=1, top_n=1)
        per = con.execute("SELECT segment_id, dimension, count(*) FROM segment_traits "
                          "WHERE run_id = 1 GROUP BY ALL").fetchall()
        n_info = con.execute("SELECT count(*) FROM segment_info WHERE run_id = 1").fetchone()[0]
    assert n_info == 3 and all(c == 1 for _, _, c in per)


def test_names_are_distinct_and_deterministic():
    rows = [
        {"segment_id": 0, "base_name": "Bargain hunters", "qualifiers": ["Garden"]},
        {"segment_id": 1, "base_name": "Bargain hunters", "qualifiers": ["Garden", "Kitchen"]},
        {"segment_id": 2, "base_name": "Bargain hunters", "qualifiers": []},
        {"segment_id": 3, "base_name": "Everyday shoppers", "qualifiers": []},
        # behaviour words tell apart segments without distinguishing categories
        {"segment_id": 4, "base_name": "One-off shoppers", "qualifiers": ["rare", "weekend"]},
        {"segment_id": 5, "base_name": "One-off shoppers", "qualifiers": ["rare", "evening"]},
    ]
    assert _distinct_names(rows) == {
        0: "Bargain hunters (Garden)", 1: "Bargain hunters (Kitchen)", 2: "Bargain hunters 1",
        3: "Everyday shoppers", 4: "One-off shoppers (weekend)", 5: "One-off shoppers (evening)",
    }


def test_title_keyword_for_shops_without_categories():
    titles = [("LUNCH BAG RED RETROSPOT", 3.0), ("LUNCH BAG BLACK SKULL", 2.0),
              ("JUMBO BAG PINK POLKADOT", 1.0), ("LUNCH BAG SUKI DESIGN", 1.0)]
    assert title_keyword(titles) == "Lunch bag"
    assert title_keyword([("PARTY BUNTING", 1.0)]) == "Party bunting"
    assert title_keyword([]) is None


def test_blob_segments_get_distinct_names_and_palette_colours(tmp_store, blobs4):
    X, _ = blobs4
    with tmp_store.write() as con:
        _put_profiles(con, X)
        segment_users(con, 1, k=4)
        m = describe_segments(con, 1)
        rows = con.execute("SELECT segment_id, name, color, description FROM segment_info "
                           "WHERE run_id = 1 ORDER BY segment_id").fetchall()
    names = [r[1] for r in rows]
    assert len(set(names)) == 4 and all(n.strip() for n in names)
    assert [r[2] for r in rows] == PALETTE[:4] == [segment_color(i) for i in range(4)]
    assert segment_color(-1) == UNASSIGNED_COLOR and len(set(PALETTE)) == len(PALETTE)
    assert m["names"] == {r[0]: r[1] for r in rows}


def test_shop_without_categories_is_named_from_item_titles(tmp_store):
    """Online Retail style: items have titles only; names come from distinguishing titles."""
    titles = {"i1": "LUNCH BAG RED RETROSPOT", "i2": "LUNCH BAG BLACK SKULL",
              "i3": "LUNCH BAG SUKI DESIGN", "i4": "WHITE HANGING HEART T-LIGHT HOLDER",
              "i5": "RED HANGING HEART T-LIGHT HOLDER", "i6": "GLASS STAR T-LIGHT HOLDER"}
    with tmp_store.write() as con:
        con.executemany("INSERT INTO items VALUES (?, ?, NULL, NULL, NULL, NULL, 1)",
                        list(titles.items()))
        n = 0
        for seg, items in ((0, ["i1", "i2", "i3"]), (1, ["i4", "i5", "i6"])):
            for u in range(5):
                uid = f"s{seg}u{u}"
                con.execute("INSERT INTO segments VALUES (1, ?, ?, ?)", [uid, seg, u / 10])
                for it in items[: 2 + u % 2]:
                    n += 1
                    con.execute("INSERT INTO events VALUES (?, ?, ?, 'purchase', NULL, 1, 2.5, "
                                "?, NULL, 1, NULL)", [n, uid, it, f"b{n}"])
        m = describe_segments(con, 1)
        dims = {r[0] for r in con.execute("SELECT DISTINCT dimension FROM segment_traits").fetchall()}
    assert m["names"] == {0: "Lunch bag fans", 1: "Light holder fans"}
    assert dims == {"item"}


# ----------------------------------------------------------------------------- the demo shop
# planted shopper type -> what its segment should be called
_PLANTED_NAMES = {
    "bargain_hunter": "Bargain hunters",
    "loyal_high_spender": "Loyal high spenders",
    "holiday_gift_buyer": "Holiday gift buyers",
    "category_specialist": "Kitchen specialists",
    "night_owl_browser": "Night owl",
    "one_off_visitor": "one-off shoppers",
}


@pytest.mark.slow  # uses the built demo shop (trains the encoder)
def test_kmeans_recovers_the_demo_shops_planted_shopper_types(built_demo_store):
    from core.store import latest_run

    con = built_demo_store.read()
    try:
        run = latest_run(con)
        run_id = run["run_id"]
        rows = con.execute(
            "SELECT t.shopper_type, s.segment_id, i.name FROM segments s "
            "JOIN demo_truth t USING (user_id) "
            "JOIN segment_info i ON i.run_id = s.run_id AND i.segment_id = s.segment_id "
            "WHERE s.run_id = ? ORDER BY s.user_id", [run_id]).fetchall()
        names = [r[0] for r in con.execute(
            "SELECT name FROM segment_info WHERE run_id = ?", [run_id]).fetchall()]
    finally:
        con.close()
    assert len(rows) == 600
    truth, labels = [r[0] for r in rows], [r[1] for r in rows]
    ari = adjusted_rand_score(truth, labels)
    assert ari >= 0.8, f"ARI {ari:.3f} between KMeans segments and the planted shopper types"
    seg = run["metrics"]["segments"]
    assert seg["method"] == "kmeans" and seg["k_chosen_by"] == "silhouette"
    k_min, k_max = run["params"]["k_range"]
    assert 6 <= seg["k"] <= 8 and [r["k"] for r in seg["k_scan"]] == list(range(k_min, k_max + 1))
    assert 0.2 < seg["silhouette"] <= 1 and seg["davies_bouldin"] > 0
    assert 0.8 <= seg["stability_ari"] <= 1
    sizes = [seg["sizes"][str(s)] for s in range(seg["k"])]  # JSON keys are strings
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 600
    assert len(set(names)) == len(names) and all(n.strip() for n in names)
    # each planted type's main segment carries the marketer's name for that type
    for shopper_type, expected in _PLANTED_NAMES.items():
        main = Counter(n for t, _, n in rows if t == shopper_type).most_common(1)[0][0]
        assert expected.lower() in main.lower(), (shopper_type, main)
