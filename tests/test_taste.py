"""The taste lens: held-out baskets, signature refinement, quality figures and the choice of k,
with exact figures on hand-made data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from core.features.holdout import cutoffs, last_basket_split, register_events_before
from core.segments import build_taste as bt
from core.segments import quality as qm
from core.segments.fit import fit_taste, order_by_size


def _baskets(con, rows):
    """rows: (user, basket, day, item, type)."""
    for n, (u, b, day, it, typ) in enumerate(rows):
        con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, 1, 2.0, ?, NULL, 1, NULL)",
                    [n, u, it, typ, f"2025-01-{day:02d} 10:00:00", b])
    for it in sorted({r[3] for r in rows}):
        con.execute("INSERT INTO items VALUES (?, ?, NULL, NULL, NULL, NULL, 1)", [it, it.upper()])


def test_each_shoppers_last_basket_is_held_out_exactly(tmp_store):
    rows = [
        ("a", "a1", 1, "x", "purchase"), ("a", "a1", 1, "y", "purchase"),
        ("a", None, 2, "y", "view"),
        ("a", "a2", 3, "z", "purchase"), ("a", "a3", 5, "x", "purchase"),
        ("a", "a3", 5, "w", "purchase"), ("a", None, 6, "q", "view"),
        ("b", "b1", 2, "x", "purchase"), ("b", "b2", 4, "y", "purchase"),
        ("c", "c1", 3, "x", "purchase"),                      # one basket: nothing held out
    ]
    with tmp_store.write() as con:
        _baskets(con, rows)
        split = last_basket_split(con)
        view = register_events_before(con, "_before", cutoffs(split))
        kept = con.execute(f"SELECT user_id, item_id, event_type FROM {view} ORDER BY event_id"
                           ).fetchall()
    # a's events in order: x y (a1), view y, z (a2), x w (a3), view q -> a3 starts at 5
    assert split.to_dict("index") == {
        "a": {"test_cut": 5, "test_items": ["w", "x"], "val_cut": 4.0, "val_items": ["z"]},
        "b": {"test_cut": 2, "test_items": ["y"], "val_cut": pytest.approx(float("nan"),
                                                                         nan_ok=True),
              "val_items": None},
    }
    assert cutoffs(split) == {"a": 4, "b": 1}
    # the held-out basket and everything after it is gone; other shoppers are whole
    assert kept == [("a", "x", "purchase"), ("a", "y", "purchase"), ("a", "y", "view"),
                    ("a", "z", "purchase"), ("b", "x", "purchase"), ("c", "x", "purchase")]


def test_cut_events_are_a_table_on_a_small_shop_a_view_on_a_large_one(tmp_store, monkeypatch):
    """The same rows either way; the name can be registered again as the other kind, and
    ``drop_temp`` removes it."""
    import core.features.holdout as H

    rows = [("a", "a1", 1, "x", "purchase"), ("a", "a2", 3, "z", "purchase"),
            ("a", "a3", 5, "w", "purchase"), ("b", "b1", 2, "x", "purchase"),
            ("b", "b2", 4, "y", "purchase"), ("c", "c1", 3, "x", "purchase")]

    def kinds(con):
        return con.execute(
            "SELECT 'view' FROM duckdb_views() WHERE temporary AND view_name = '_cut' UNION ALL "
            "SELECT 'table' FROM duckdb_tables() WHERE temporary AND table_name = '_cut'"
        ).fetchall()

    with tmp_store.write() as con:
        _baskets(con, rows)
        keep = cutoffs(last_basket_split(con))
        got = {}
        for below, kind in ((7, "table"), (6, "view"), (7, "table")):   # 6 events in the shop
            monkeypatch.setattr(H, "MATERIALISE_BELOW_EVENTS", below)
            name = H.register_events_before(con, "_cut", keep)
            assert kinds(con) == [(kind,)]
            got[kind] = con.execute(f"SELECT user_id, item_id FROM {name} ORDER BY event_id"
                                    ).fetchall()
        H.drop_temp(con, "_cut")
        assert kinds(con) == []
        H.drop_temp(con, "_cut")                        # nothing there: no error
    assert got["table"] == got["view"] == [("a", "x"), ("a", "z"), ("b", "x"), ("c", "x")]


def test_segment_popularity_ndcg_exactly():
    # 4 shoppers, items 0..3; segment 0 = shoppers 0, 1; segment 1 = shoppers 2, 3
    bought = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]], float))
    labels = np.array([0, 0, 1, 1])
    targets = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 1]], float))  # shoppers 0 and 3
    got = qm.segment_popularity_ndcg(labels, bought, np.array([0, 3]), targets, k=2)
    # segment 0 ranks item 0 (share 1) then 1 (0.5): shopper 0's item 1 at rank 2 -> 1/log2(3)
    # segment 1 ranks item 3 (share 1) first: shopper 3's item 3 at rank 1 -> 1
    assert got.tolist() == pytest.approx([1 / np.log2(3), 1.0])
    # whole-shop best-sellers: items 0 and 3 (share 0.5 each, ties by index) -> 0 and 1/log2(3)
    pop = qm.segment_popularity_ndcg(np.zeros(4, int), bought, np.array([0, 3]), targets, k=2)
    assert pop.tolist() == pytest.approx([0.0, 1 / np.log2(3)])
    # unassigned shoppers (-1) get the whole shop's list
    assert qm.segment_popularity_ndcg(np.array([0, 0, 1, -1]), bought, np.array([3]),
                                      targets[1:], k=2).tolist() == pytest.approx([1 / np.log2(3)])


def test_intervals_are_seeded_percentile_bootstraps():
    x = np.array([0.0, 1.0] * 50)
    lo, hi = qm.bootstrap_mean_ci(x, seed=1)
    assert (lo, hi) == qm.bootstrap_mean_ci(x, seed=1) and lo < 0.5 < hi
    assert 0.38 < lo < 0.45 and 0.55 < hi < 0.62
    r = qm.bootstrap_ratio_ci(2 * x, x, seed=1)
    assert r == pytest.approx((2.0, 2.0))


def test_signature_refinement_recovers_two_tastes_and_agrees_with_its_model():
    rng = np.random.default_rng(0)
    n, items = 200, 20
    group = np.repeat([0, 1], n // 2)
    B = np.zeros((n, items))
    for u in range(n):  # group 0 buys items 0-9, group 1 items 10-19 (plus a little noise)
        base = 0 if group[u] == 0 else 10
        B[u, base + rng.choice(10, 4, replace=False)] = 1
        B[u, rng.integers(items)] = 1
    bought = sp.csr_matrix(B)
    Q = sp.csr_matrix(B / B.sum(axis=1, keepdims=True))
    X = np.sqrt(Q.toarray())
    labels, model = fit_taste(X, Q, bought, 2, seed=3, refine=True, signature_size=10)
    assert model.refine and len(model.top_items) == 2
    assert np.array_equal(labels, model.assign(X, Q))
    assert qm.ari(labels, group) == 1.0
    assert {frozenset(t) <= set(range(10)) or frozenset(t) <= set(range(10, 20))
            for t in map(frozenset, model.top_items)} == {True}
    plain, km = fit_taste(X, Q, bought, 2, seed=3, refine=False)
    assert not km.refine and np.array_equal(plain, km.assign(X, Q))
    assert order_by_size(np.array([1, 1, 0, -1, 2, 2, 2])).tolist() == [1, 1, 2, -1, 0, 0, 0]


def test_the_choice_of_k_predictive_then_clear_then_best():
    def opt(cand, k, seed_s, sil, scores):
        s = np.asarray(scores, float)
        return {"candidate": cand, "k": k, "seed_stability": seed_s, "silhouette": sil,
                "val_scores": s, "val_ndcg10": float(s.mean())}

    base = np.linspace(0.1, 0.2, 100)
    options = [
        opt("taste", 3, 0.95, 0.06, base + 0.00),
        opt("taste", 4, 0.95, 0.07, base + 0.02),
        opt("taste", 5, 0.70, 0.20, base + 0.05),       # unstable: not eligible
        opt("taste_habits", 4, 0.99, 0.30, base - 0.09),  # clear, but far below reach
        opt("taste", 6, 0.90, 0.065, base + 0.03),      # best eligible validity
    ]
    chosen = bt._choose(options, given_k=False, val_pop=0.1)
    # best = k6 (0.18 mean); reach = 0.1 + 0.5 * 0.08 = 0.14: k3 (0.15), k4, k6 qualify;
    # clearest silhouette 0.07 (k4), and k6 (0.065) is within 0.02: the better validity wins
    assert (chosen["candidate"], chosen["k"]) == ("taste", 6)
    assert [o["chosen"] for o in options] == [False, False, False, False, True]
    options[1]["silhouette"] = 0.2  # k4 clearly separated now
    assert bt._choose(options, given_k=False, val_pop=0.1)["k"] == 4


def test_no_held_out_purchase_reaches_the_taste_inputs(tmp_store):
    """Every shopper's last basket holds a 'secret' item bought nowhere else: the segments'
    held-out check must not see it in any shopper's history."""
    rows = []
    for u in range(12):
        for b in range(3):
            rows.append((f"u{u:02d}", f"u{u}-{b}", 1 + 3 * b + u % 3, f"i{(u + b) % 5}", "purchase"))
        rows.append((f"u{u:02d}", f"u{u}-2", 7 + u % 3, f"secret{u}", "purchase"))
    with tmp_store.write() as con:
        _baskets(con, rows)
        from core.encoder import train_encoder
        from core.segments.taste import taste_inputs

        split = last_basket_split(con)
        m = train_encoder(con, 1, cutoffs=cutoffs(split), seed=1,
                          params={"max_epochs": 1, "d": 16, "n_heads": 2, "n_layers": 1})
        inp = taste_inputs(con, 1, keep=cutoffs(split))
    secret = [j for j, it in enumerate(inp.item_ids) if it.startswith("secret")]
    assert sorted(i for its in split["test_items"] for i in its if i.startswith("secret")) == \
        sorted(f"secret{u}" for u in range(12))
    assert inp.bought[:, secret].sum() == 0 and inp.counts[:, secret].sum() == 0
    # 12 shoppers x (1 basket item + 1 secret) held out of the encoder's training
    assert m["n_held_out_interactions"] == 24 and m["n_users_with_held_out_basket"] == 12
    assert pd.Series(inp.n_events).tolist() == [2] * 12  # two baskets of one item each


def test_history_matrices_match_a_shopper_by_shopper_reading():
    """``_history`` (vectorised) gives, for shoppers taken out of order and cut at random
    points, exactly what reading each shopper's kept rows one by one gives: counts of purchased
    items, bought flags, and H = the bought items (or, for a shopper who never bought, the items
    they touched other than by returning), each weighted equally."""
    from core.encoder.data import Sequences
    from core.segments.taste import _history

    rng = np.random.default_rng(1)
    n, n_items, buy, ret = 400, 60, 2, 4
    lens = rng.integers(0, 25, n)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    N = int(lens.sum())
    full = Sequences([str(i) for i in range(n)], starts, starts + lens,
                     rng.integers(0, n_items, N), rng.integers(1, 5, N), np.zeros(N, np.int64))
    pick = rng.permutation(n)[:150]
    seq = Sequences([full.user_ids[i] for i in pick], full.starts[pick], full.ends[pick],
                    full.items, full.types, full.gaps)
    ends = seq.starts + (rng.random(150) * (lens[pick] + 1)).astype(int)
    H, B, C = _history(seq, ends, buy, ret, n_items)
    assert H.shape == B.shape == C.shape == (150, n_items)
    for u in range(150):
        items = seq.items[seq.starts[u]:ends[u]]
        types = seq.types[seq.starts[u]:ends[u]]
        want_c = np.bincount(items[types == buy], minlength=n_items)
        np.testing.assert_array_equal(C[u].toarray().ravel(), want_c)
        np.testing.assert_array_equal(B[u].toarray().ravel(), (want_c > 0).astype(float))
        h = set(items[types == buy]) or set(items[types != ret])
        want_h = np.zeros(n_items)
        want_h[list(h)] = 1.0 / len(h) if h else 0.0
        np.testing.assert_allclose(H[u].toarray().ravel(), want_h, rtol=0, atol=1e-15)
    assert (np.diff(B.indptr) == 0).any() and (np.diff(H.indptr) > np.diff(B.indptr)).any()


def test_segment_popularity_ndcg_matches_a_shopper_by_shopper_reading():
    """The vectorised NDCG of each shopper's segment list equals reading it shopper by shopper:
    unassigned shoppers get the shop's list, shoppers without held-out items score 0."""
    from core.segments.fit import member_shares, ranked_items

    rng = np.random.default_rng(5)
    n, n_items, k = 400, 60, 10
    bought = sp.csr_matrix((rng.random((n, n_items)) < 0.08).astype(float))
    labels = rng.integers(-1, 4, n)
    rows = np.sort(rng.choice(n, 150, replace=False))
    targets = sp.csr_matrix((rng.random((150, n_items)) < 0.05).astype(float))
    got = qm.segment_popularity_ndcg(labels, bought, rows, targets, k=k)
    overall = np.asarray(bought.mean(axis=0)).ravel()
    tops = ranked_items(member_shares(np.maximum(labels, 0), bought, 4), overall, k)
    shop = ranked_items(overall[None], overall, k)[0]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for r, u in enumerate(rows):
        t = targets[r].indices
        top = shop if labels[u] < 0 else tops[labels[u]]
        want = (disc * np.isin(top, t)).sum() / disc[:min(len(t), k)].sum() if len(t) else 0.0
        assert got[r] == pytest.approx(want, abs=1e-12), r
    assert (got > 0).sum() > 20 and (labels[rows] < 0).any()
