"""Offline evaluation: exact metrics on hand-made rankings, no leakage, stored results, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from core.evaluate import evaluate_recommenders, read_evaluations, training_data
from core.evaluate.metrics import per_user_metrics, summarise
from core.recommend import ItemKNNRecommender
from test_recommend import make_store


def test_metrics_exact_on_known_ranks():
    # user 0: targets {1, 2}, hits at ranks 1 and 3; user 1: target {7} at rank 4;
    # user 2: target {9}, no hit in the top 10 (and a -1 pad, never a hit).
    top = np.array([
        [2, 5, 1, 0, 3, 4, 6, 8, 10, 11],
        [0, 1, 2, 7, 3, 4, 5, 6, 8, 10],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, -1],
    ])
    T = sp.csr_matrix((np.ones(4), ([0, 0, 1, 2], [1, 2, 7, 9])), shape=(3, 12))
    m = per_user_metrics(top, T, 10)
    ndcg0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["ndcg"] == pytest.approx([ndcg0, 1 / math.log2(5), 0.0], abs=1e-12)
    assert m["recall"] == pytest.approx([1.0, 1.0, 0.0])
    assert m["hit"] == pytest.approx([1.0, 1.0, 0.0])
    assert m["rr"] == pytest.approx([1.0, 0.25, 0.0])
    s = summarise(top, T, n_catalogue=24, k=10)
    assert s["ndcg10"] == pytest.approx((ndcg0 + 1 / math.log2(5)) / 3, abs=1e-12)
    assert s["mrr10"] == pytest.approx(1.25 / 3)
    assert s["hitrate10"] == pytest.approx(2 / 3)
    assert s["coverage"] == pytest.approx(11 / 24)  # items 0..8, 10 and 11: 11 distinct
    assert s["users_evaluated"] == 3


def test_recall_with_more_targets_than_k():
    top = np.arange(10)[None, :]
    T = sp.csr_matrix(np.r_[np.ones(5), np.zeros(5), np.ones(10)][None, :])  # 15 targets, 5 hit
    m = per_user_metrics(top, T, 10)
    assert m["recall"][0] == pytest.approx(5 / 15)
    assert m["ndcg"][0] == pytest.approx(
        sum(1 / math.log2(i + 2) for i in range(5)) / sum(1 / math.log2(i + 2) for i in range(10)))


def test_no_leakage_heldout_basket_not_in_cooccurrence(tmp_path):
    store, run_id = make_store(tmp_path)
    con = store.read()
    data, split = training_data(con, run_id, "basket")
    # u1's last basket (b5: C, E) and u2's last (b2 is their only... u2 has one basket) held out
    assert sorted(split.index) == ["u1"]
    assert split.loc["u1", "test_items"] == ["C", "E"]
    knn = ItemKNNRecommender().fit(con, run_id, data)
    C, E = data.item_index["C"], data.item_index["E"]
    # E was only ever bought with C in the held-out basket: no co-occurrence left
    assert knn.co_counts[C, E] == 0 and knn.P[C, E] == 0
    # C is in b2 and b3 only once b5 is removed
    assert knn.item_baskets[C] == 2
    # and u1's repeat counts no longer include C or E
    u1 = data.user_index["u1"]
    assert data.user_counts[u1, C] == 0 and data.user_counts[u1, E] == 0
    con.close()


def test_evaluate_writes_rows_and_hybrid_weights(tmp_path):
    store, run_id = make_store(tmp_path)
    with store.write() as con:
        out = evaluate_recommenders(con, run_id, holdout="basket", seed=1)
    assert out["users_evaluated"] == 1
    for name in ("popularity", "segment_popularity", "repeat", "item_knn", "hybrid"):
        m = out["recommenders"][name]
        for key in ("recall10", "ndcg10", "hitrate10", "mrr10", "coverage"):
            assert 0.0 <= m[key] <= 1.0
    con = store.read()
    df = read_evaluations(con, run_id, "basket")
    assert set(df["recommender"]) >= {"popularity", "repeat", "item_knn", "hybrid"}
    hy = json.loads(df[df["recommender"] == "hybrid"]["params"].iloc[0])
    assert hy["holdout"] == "basket" and "weights" in hy
    con.close()
    # interaction hold-out: u1, u2 and u3 each have >= 2 purchases
    with store.write() as con:
        out = evaluate_recommenders(con, run_id, holdout="interaction", seed=1)
    assert out["users_eligible"] == 3 and out["users_evaluated"] == 3
    con = store.read()
    assert len(read_evaluations(con, run_id)) == 2 * len(out["recommenders"])
    con.close()


def test_cli_evaluate_and_no_build_error(tmp_path, capsys):
    from core.cli import main

    store, run_id = make_store(tmp_path)
    assert main(["evaluate", "--db", str(store.path), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "NDCG@10" in text and "item_knn" in text
    assert main(["evaluate", "--db", str(store.path), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["run_id"] == run_id and js["recommenders"]

    from core.store import Store

    empty = Store(tmp_path / "empty.duckdb")
    with empty.write():
        pass
    assert main(["evaluate", "--db", str(empty.path)]) == 2
    assert "segstudio build" in capsys.readouterr().err
