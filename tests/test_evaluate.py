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
    # u1 (3 baskets) is the only shopper with a hold-out; E in the last basket is new to them
    assert out["users_evaluated"] == {"repeats": 1, "new_items": 1}
    assert "below 200" in out["warning"]
    for name in ("popularity", "segment_popularity", "repeat", "item_knn", "tifu_knn", "hybrid"):
        for mode in ("repeats", "new_items"):
            m = out["recommenders"][name]["lists"][mode]
            for key in ("recall10", "ndcg10", "hitrate10", "mrr10", "coverage"):
                assert 0.0 <= m[key] <= 1.0
            # one shopper: every bootstrap resample is that shopper
            assert m["ndcg10_ci"] == [pytest.approx(m["ndcg10"])] * 2
    # the bandit replay ran over the same shopper, one step, one segment
    b = out["bandit"]["new_items"]
    assert b["shoppers"] == 1 and "hybrid" not in b["arms"]
    assert b["totals"]["uniform random"] == pytest.approx(
        np.mean([out["recommenders"][a]["lists"]["new_items"]["hitrate10"] for a in b["arms"]]))
    assert sum(sum(s["pulls"].values()) for s in b["segments"].values()) == 1
    con = store.read()
    df = read_evaluations(con, run_id, "basket")
    assert set(df["recommender"]) >= {"popularity", "repeat", "item_knn", "hybrid"}
    hy = json.loads(df[df["recommender"] == "hybrid"]["params"].iloc[0])
    assert hy["holdout"] == "basket" and "weights" in hy
    con.close()
    # interaction hold-out: u1, u2 and u3 each have >= 2 purchases
    with store.write() as con:
        out = evaluate_recommenders(con, run_id, holdout="interaction", seed=1)
    assert out["users_eligible"] == 3 and out["users_evaluated"]["repeats"] == 3
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


# ---------------------------------------------------------------------------- intervals
def test_bootstrap_interval_on_fixed_examples():
    from core.evaluate.metrics import bootstrap_interval, bootstrap_weights

    # two shoppers scoring 0 and 1: resample means are 0, 0.5, 1 with probability 1/4, 1/2,
    # 1/4, so the 95 % percentile interval is [0, 1]; a constant gives a zero-width interval
    W = bootstrap_weights(2, 4000, seed=0)
    assert bootstrap_interval(np.array([0.0, 1.0]), W) == (0.0, 1.0)
    assert bootstrap_interval(np.array([0.3, 0.3]), W) == pytest.approx((0.3, 0.3))
    # 400 shoppers, 100 hits: close to the normal interval 0.25 +- 1.96 sqrt(.25 .75 / 400)
    v = np.r_[np.ones(100), np.zeros(300)]
    lo, hi = bootstrap_interval(v, bootstrap_weights(400, 4000, seed=1))
    half = 1.96 * math.sqrt(0.25 * 0.75 / 400)
    assert lo == pytest.approx(0.25 - half, abs=0.006)
    assert hi == pytest.approx(0.25 + half, abs=0.006)


# ---------------------------------------------------------------------------- leakage
T0 = __import__("datetime").datetime(2024, 1, 1)


def _poison_store(tmp_path, n_users=24):
    """Each shopper has four baskets of shop items; their last basket also holds an item
    T<u> and the basket before it an item V<u>, bought nowhere else. Anything a model learned
    about T<u> could only come from a held-out basket."""
    from datetime import timedelta

    import pandas as pd

    from core.store import Store, finish_run, start_run

    store = Store(tmp_path / "poison.duckdb")
    rng = np.random.default_rng(0)
    shop = [f"S{i}" for i in range(12)]
    rows, eid = [], 0
    for u in range(n_users):
        for b in range(4):
            items = list(rng.choice(shop, size=3, replace=False))
            if b == 3:
                items.append(f"T{u}")
            if b == 2:
                items.append(f"V{u}")
            for it in items:
                eid += 1
                rows.append((eid, f"u{u}", it, "purchase", T0 + timedelta(days=10 * b + u % 5),
                             1.0, 2.0, f"b{u}_{b}"))
            eid += 1
            rows.append((eid, f"u{u}", items[0], "view", T0 + timedelta(days=10 * b + u % 5,
                                                                       hours=1), 1.0, 2.0, None))
    ev = pd.DataFrame(rows, columns=["event_id", "user_id", "item_id", "event_type", "ts",
                                     "quantity", "unit_price", "basket_id"])
    items = shop + [f"T{u}" for u in range(n_users)] + [f"V{u}" for u in range(n_users)]
    it = pd.DataFrame({"item_id": items, "title": [f"Thing {x}" for x in items]})
    with store.write() as con:
        con.register("ev", ev)
        con.register("it", it)
        con.execute("INSERT INTO events SELECT event_id, user_id, item_id, event_type, ts, "
                    "quantity, unit_price, basket_id, NULL, 1, NULL FROM ev")
        con.execute("INSERT INTO items SELECT item_id, title, NULL, NULL, NULL, 2.0, 1 FROM it")
        con.execute("INSERT INTO users SELECT DISTINCT user_id, NULL, NULL, 1 FROM ev")
        run_id = start_run(con, "build", {})
        con.execute(f"INSERT INTO segments SELECT {run_id}, user_id, "
                    "CAST(regexp_extract(user_id, '[0-9]+') AS INT) % 2, 0 FROM users")
        con.execute(f"INSERT INTO segment_info (run_id, segment_id, name, size) VALUES "
                    f"({run_id}, 0, 'Even', {n_users // 2}), ({run_id}, 1, 'Odd', {n_users // 2})")
        finish_run(con, run_id, {})
    return store, run_id


def _poison(data, prefix):
    return np.array([j for j, x in enumerate(data.item_ids) if x.startswith(prefix)])


def test_no_heldout_event_reaches_any_fitted_model(tmp_path, monkeypatch):
    """By construction: record every data set a model is fitted on and every history scored,
    and the encoder's training windows; the test items T<u> appear in none of them, and the
    validation items V<u> not in the data the hybrid's weights were tuned with."""
    from core.encoder import train_encoder
    from core.features.holdout import cutoffs, last_basket_split
    from core.recommend import recommenders as R

    store, run_id = _poison_store(tmp_path)
    import core.encoder.data as ed

    seen_windows = []
    real_windows = ed.windows

    def spy_windows(seq, spans, L):
        out = real_windows(seq, spans, L)
        seen_windows.append(out)
        return out

    monkeypatch.setattr(ed, "windows", spy_windows)
    fitted, scored = [], []
    real_fit = R.Recommender.fit

    def spy_fit(self, con, rid, data=None):
        out = real_fit(self, con, rid, data)
        fitted.append((self.name, self.data))
        return out

    monkeypatch.setattr(R.Recommender, "fit", spy_fit)
    real_hist = R.ShopData.histories

    def spy_hist(self, con, users):
        h = real_hist(self, con, users)
        scored.extend(h.values())
        return h

    monkeypatch.setattr(R.ShopData, "histories", spy_hist)
    with store.write() as con:
        split = last_basket_split(con)
        assert len(split) == 24 and split["val_cut"].notna().all()
        train_encoder(con, run_id, device="cpu", seed=1,
                      params={"d": 16, "max_epochs": 2, "max_target_passes": None},
                      cutoffs=cutoffs(split), val_cutoffs=cutoffs(split, "val_cut"))
        out = evaluate_recommenders(con, run_id, holdout="basket", seed=1, n_boot=50)
    assert out["encoder"] == "evaluated"
    # the encoder: no T or V item among its training inputs or targets
    from core.encoder.data import vocabulary

    con = store.read()
    vocab = vocabulary(con)
    con.close()
    tv = {i for i, x in enumerate(vocab) if x[0] in "TV"}
    assert seen_windows, "the encoder's training windows were not observed"
    items, _, _, targets = seen_windows[-1]
    assert not (set(np.unique(items[items > 0] - 1).tolist()) & tv)
    assert not (set(np.unique(targets[targets >= 0]).tolist()) & tv)
    # every fitted model: no T item in any basket, purchase count or (scored) history
    names = {n for n, _ in fitted}
    assert {"popularity", "repeat", "item_knn", "tifu_knn", "segment_popularity",
            "encoder", "hybrid"} <= names
    for _, d in fitted:
        T = _poison(d, "T")
        assert d.baskets[:, T].sum() == 0 and d.user_counts[:, T].sum() == 0
    assert scored and not any(str(e[0]).startswith("T") for h in scored for e in h)
    # the validation fit (first) has no V item either; the test fit (last) does
    assert fitted[0][1].baskets[:, _poison(fitted[0][1], "V")].sum() == 0
    assert fitted[-1][1].baskets[:, _poison(fitted[-1][1], "V")].sum() == 24


def test_encoder_trained_on_heldout_baskets_is_not_evaluated(tmp_path):
    from core.encoder import train_encoder

    store, run_id = _poison_store(tmp_path)
    with store.write() as con:
        train_encoder(con, run_id, device="cpu", seed=1,
                      params={"d": 16, "max_epochs": 1, "max_target_passes": None})
        out = evaluate_recommenders(con, run_id, holdout="basket", seed=1, n_boot=50)
    assert "encoder" not in out["recommenders"]
    assert out["encoder"].startswith("not evaluated: its training data included baskets")


def test_model_page_states_the_protocol_and_intervals(tmp_path, monkeypatch):
    from test_dashboard import open_page

    store, run_id = make_store(tmp_path)
    with store.write() as con:
        evaluate_recommenders(con, run_id, holdout="basket", seed=1, n_boot=50)
    monkeypatch.setenv("SEGSTUDIO_DB", str(store.path))
    at = open_page("views/model.py")
    captions = "\n".join(c.value for c in at.caption)
    assert "fitted only on what happened before each shopper's hidden basket" in captions
    assert "worked out again from their earlier purchases" in captions
    assert "New items only (what the app shows)" in captions
    assert any("below 200" in w.value for w in at.warning)
    df = at.dataframe[0].value
    assert "NDCG@10 95 % range" in df.columns and len(df) == 7  # no encoder here


def test_held_out_basket_starts_at_its_session(tmp_path):
    """Clickstream: the views and carts just before a purchase in the same session are held out
    with the basket (they would give it away); data without sessions keeps the purchase cut."""
    import pandas as pd

    from core.evaluate.splits import build_split
    from core.features.holdout import last_basket_split
    from core.store import Store

    store = Store(tmp_path / "s.duckdb")
    ev = [  # user, item, type, minute, session, basket
        ("u1", "A", "view", 0, "s1", None), ("u1", "A", "purchase", 1, "s1", "o1"),
        ("u1", "B", "view", 60, "s2", None), ("u1", "B", "cart", 61, "s2", None),
        ("u1", "B", "purchase", 62, "s2", "o2"), ("u1", "C", "purchase", 63, "s2", "o2"),
        ("u2", "A", "purchase", 5, None, "o3"), ("u2", "B", "view", 70, None, None),
        ("u2", "B", "purchase", 71, None, "o4"),
    ]
    df = pd.DataFrame([(i + 1, u, it, t, T0 + pd.Timedelta(minutes=m), 1.0, 1.0, b, s)
                       for i, (u, it, t, m, s, b) in enumerate(ev)],
                      columns=["event_id", "user_id", "item_id", "event_type", "ts", "quantity",
                               "unit_price", "basket_id", "session_id"])
    with store.write() as con:
        con.register("df", df)
        con.execute("INSERT INTO events SELECT event_id, user_id, item_id, event_type, ts, "
                    "quantity, unit_price, basket_id, session_id, 1, NULL FROM df")
        con.execute("INSERT INTO items VALUES ('A', 'a', NULL, NULL, NULL, 1, 1), "
                    "('B', 'b', NULL, NULL, NULL, 1, 1), ('C', 'c', NULL, NULL, NULL, 1, 1)")
        plain = last_basket_split(con)
        split = build_split(con)
    assert plain.loc["u1", "test_cut"] == 5 and split.loc["u1", "test_cut"] == 3
    assert split.loc["u1", "test_items"] == ["B", "C"]
    # u2 has no sessions: the cut stays at the purchase (its view before it stays visible)
    assert split.loc["u2", "test_cut"] == plain.loc["u2", "test_cut"] == 3


def test_background_evaluation_on_a_snapshot_gives_the_same_figures(tmp_path, monkeypatch):
    """The build evaluates on a snapshot of its store in a background worker while it makes the
    predictions: the same figures and stored rows as evaluating in the build process, the
    snapshot is gone afterwards, and a worker that dies still leaves an evaluation."""
    from concurrent.futures import Future

    from core.evaluate.background import finish_evaluation, start_evaluation

    store, run_id = make_store(tmp_path)

    def figures(out):
        return {n: r["lists"] for n, r in out["recommenders"].items()}

    with store.write() as con:
        here = evaluate_recommenders(con, run_id, holdout="basket", seed=1, write=False)
        job = start_evaluation(con, run_id, holdout="basket", seed=1)
        assert job.future is not None and job.snapshot.exists()  # 2+ cores: a worker took it
        there = finish_evaluation(con, job)
        rows = read_evaluations(con, run_id, "basket")
        dead = start_evaluation(con, run_id, holdout="basket", seed=1)
        dead.future.result()
        dead.future = Future()
        dead.future.set_exception(RuntimeError("worker killed"))
        fallback = finish_evaluation(con, dead)
    assert there["evaluated_in"] == "background worker" and not job.snapshot.exists()
    assert fallback["evaluated_in"] == "build process (background worker failed: RuntimeError)"
    assert figures(there) == figures(here) == figures(fallback)
    assert there["hybrid_weights"] == here["hybrid_weights"]
    assert set(rows["recommender"]) == set(here["recommenders"])
    assert not list(tmp_path.glob("*.eval.tmp*"))


def test_a_very_large_shop_is_evaluated_with_recommenders_fitted_on_a_sample(tmp_path,
                                                                           monkeypatch):
    """Above ``MAX_FIT_SHOPPERS`` (lowered to 12 here) the recommenders of the evaluation are
    fitted on the evaluated shoppers plus a seeded sample of the others: every fitted data set
    holds only those shoppers, the held-out baskets still reach no model, and the result (and
    the build's summary of it) says so."""
    from core.evaluate import splits, summary
    from core.recommend import recommenders as R

    store, run_id = _poison_store(tmp_path)
    monkeypatch.setattr(splits, "MAX_FIT_SHOPPERS", 12)
    fitted = []
    real_fit = R.Recommender.fit

    def spy_fit(self, con, rid, data=None):
        out = real_fit(self, con, rid, data)
        fitted.append(self.data)
        return out

    monkeypatch.setattr(R.Recommender, "fit", spy_fit)
    with store.write() as con:
        n_all = con.execute("SELECT count(DISTINCT user_id) FROM events").fetchone()[0]
        out = evaluate_recommenders(con, run_id, holdout="basket", seed=1, n_boot=50,
                                    max_users=5, tune_users=5)
    assert n_all > 12
    assert out["sample"]["shoppers"] == 12 and out["sample"]["of"] == n_all
    assert summary(out)["sample"] == out["sample"]
    assert fitted and all(len(d.user_ids) <= 12 for d in fitted)
    assert all(d.baskets[:, _poison(d, "T")].sum() == 0 for d in fitted)
    assert out["users_sampled"] == 5 and sum(out["users_evaluated"].values()) > 0


def test_large_forward_passes_use_every_core_only_while_no_background_job_runs(monkeypatch):
    """``inference_threads``: small passes keep the default; a large one takes every core,
    except while a background worker is running a job (which has the other core)."""
    import os
    import time as _t

    from core.engine import background as bg

    monkeypatch.delenv("SEGSTUDIO_IN_PROCESS", raising=False)
    monkeypatch.delenv("SEGSTUDIO_MAP_IN_PROCESS", raising=False)
    if not bg.enabled():
        pytest.skip("one core: no background workers")
    cores = max(1, min(8, os.cpu_count() or 1))
    assert bg.inference_threads(99_999) is None
    assert bg.busy() == 0 and bg.inference_threads(100_000) == cores
    w = bg.worker("test-busy")
    try:
        fut = w.submit("time:sleep", 2.0)
        _t.sleep(0.2)
        assert bg.busy() == 1 and bg.inference_threads(1_000_000) is None
        fut.result(timeout=60)
        assert bg.busy() == 0 and bg.inference_threads(1_000_000) == cores
    finally:
        bg.discard("test-busy")


def _tune_reference(norm, bad, targets, ranker, k=10, grid=(0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
                                                          4.0), passes=2):
    """The hybrid weight tuning written out plainly over whole dense arrays."""
    from core.neighbours import top_k

    names = list(norm)
    tb = (1e-6 * ranker.tiebreak).astype(np.float32)

    def ndcg(w):
        s = np.where(bad, -np.inf, tb[None, :]).astype(np.float32)
        for n in names:
            if w[n] > 0:
                s += np.float32(w[n]) * np.where(bad, np.float32(0), norm[n])
        return float(per_user_metrics(top_k(s, k), targets, k)["ndcg"].mean())

    w, best = None, -1.0
    for n in names:
        cand = {m: float(m == n) for m in names}
        if (v := ndcg(cand)) > best:
            w, best = cand, v
    for _ in range(passes):
        improved = False
        for n in names:
            for g in grid:
                cand = {**w, n: g}
                if g == w[n] or not any(cand.values()):
                    continue
                if (v := ndcg(cand)) > best + 1e-9:
                    best, w, improved = v, cand, True
        if not improved:
            break
    return w, best


def test_weight_tuning_in_blocks_of_shoppers_matches_the_whole_array(monkeypatch):
    """The hybrid's weights are tuned on a subset of rows, block by block, without copying the
    components: the same weights and validation NDCG as over one dense copy of the subset."""
    from types import SimpleNamespace

    from core.evaluate import scoring

    rng = np.random.default_rng(3)
    n_users, n_items = 300, 120
    latent = rng.normal(size=(n_users, 4)) @ rng.normal(size=(4, n_items))
    norm = {"popularity": np.tile(rng.random(n_items, dtype=np.float32), (n_users, 1)),
            "item_knn": (latent + rng.normal(scale=2.0, size=latent.shape)).astype(np.float32),
            "encoder": (latent + rng.normal(scale=1.0, size=latent.shape)).astype(np.float32)}
    bad_all = rng.random((n_users, n_items)) < 0.1
    dense = np.zeros((n_users, n_items), dtype=np.float32)   # each shopper's 3 best-fitting items
    np.put_along_axis(dense, np.argsort(-latent, axis=1)[:, :3], 1.0, axis=1)
    t = sp.csr_matrix(dense * (rng.random((n_users, 1)) < 0.8))   # a fifth hold nothing out
    keep = np.flatnonzero(np.asarray(t.sum(axis=1)).ravel() > 0)
    ranker = SimpleNamespace(tiebreak=rng.random(n_items))
    want = _tune_reference({n: v[keep] for n, v in norm.items()}, bad_all[keep], t[keep], ranker)
    assert 0 < want[1] < 1 and sum(v > 0 for v in want[0].values()) >= 2   # a real blend
    for block in (10**9, n_items * 7):          # one block; blocks of 7 shoppers
        monkeypatch.setattr(scoring, "TUNE_BLOCK", block)
        got = scoring.tune_weights(norm, bad_all[keep], t[keep], ranker, rows=keep)
        assert got[0] == want[0]
        assert got[1] == want[1]
    # a large catalogue's shortlists: each component's best 4 / 12 items per shopper; the
    # shoppers whose blend is not settled on theirs are ranked on the whole catalogue
    monkeypatch.setattr(scoring, "SHORTLIST_FROM", 0)
    full_rows = []
    real = scoring._Shortlist.top

    def counted(self, w, kk, full_top):
        return real(self, w, kk, lambda w_, sel: full_rows.append(len(sel)) or full_top(w_, sel))

    monkeypatch.setattr(scoring._Shortlist, "top", counted)
    settled = {}
    for shortlist in (4, 16, 40):
        monkeypatch.setattr(scoring, "SHORTLIST", shortlist)
        full_rows.clear()
        got = scoring.tune_weights(norm, bad_all[keep], t[keep], ranker, rows=keep)
        assert got == want
        settled[shortlist] = 1 - sum(full_rows) / (len(keep) * max(1, len(full_rows)))
    assert settled[4] == 0 and 0.5 < settled[16] < 0.9 and settled[40] == 1   # every way taken
    # the same tuning from the compact forms the evaluation keeps (``Scores``): a shared row,
    # a mostly-zero component and dense ones, filled in chunks of 64 shoppers
    sparse = np.where(rng.random((n_users, n_items)) < 0.05, norm["item_knn"], 0).astype(np.float32)
    comp = {**norm, "repeat": sparse}
    stored = {}
    for n, v in comp.items():
        stored[n] = scoring.Scores(n_users, n_items)
        for s0 in range(0, n_users, 64):
            stored[n].put(slice(s0, s0 + 64), v[s0:s0 + 64])
        stored[n].done()
        np.testing.assert_array_equal(stored[n].take(keep), v[keep])
    assert {n: s.form for n, s in stored.items()} == {
        "popularity": "shared", "item_knn": "dense", "encoder": "dense", "repeat": "sparse"}
    assert stored["popularity"].nbytes == n_items * 4 + n_users * 8     # one row, and its index
    assert stored["repeat"].nbytes < 0.2 * sparse.nbytes
    for shortlist in (4, 40):
        monkeypatch.setattr(scoring, "SHORTLIST", shortlist)
        assert scoring.tune_weights(stored, bad_all[keep], t[keep], ranker, rows=keep) == \
            scoring.tune_weights(comp, bad_all[keep], t[keep], ranker, rows=keep)


def test_the_evaluation_in_two_threads_gives_the_figures_of_one(built_demo_store, tmp_path,
                                                                 monkeypatch):
    """Up to ``THREADED_ITEMS`` items the evaluation works in two threads (the list types'
    tuning, the next-basket features beside the components' scores, the test shoppers' chunks
    of 256): the whole result is the one of a single thread, figure by figure."""
    import shutil

    from core.evaluate import scoring, validation
    from core.store import Store, latest_run

    path = tmp_path / "threads.duckdb"
    shutil.copyfile(built_demo_store.path, path)
    store = Store(path)

    def evaluated() -> str:
        with store.write() as con:
            out = evaluate_recommenders(con, latest_run(con)["run_id"], write=False, seed=3)
        out.pop("seconds")
        return json.dumps(out, sort_keys=True, default=str)

    two = evaluated()
    monkeypatch.setattr(scoring, "THREADED_ITEMS", 0)
    monkeypatch.setattr(validation, "THREADED_ITEMS", 0)
    one = evaluated()
    assert json.loads(two)["users_sampled"] > scoring.CHUNK    # two chunks to share
    assert two == one
