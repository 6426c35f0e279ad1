"""Recommenders and previews on a tiny hand-made store with known co-occurrences."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.recommend import (
    HybridRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    RepeatRecommender,
    SegmentPopularityRecommender,
    ShopData,
    fit_recommenders,
)
from core.recommend.previews import (
    PreviewError,
    get_engine,
    parse_price_cap,
    preview_history,
    preview_persona,
    preview_segment,
    preview_user,
)
from core.store import Store, finish_run, start_run

T0 = datetime(2024, 1, 1, 10, 0)
ITEMS = [  # item_id, title, price, fake text vector
    ("A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.5, [1.0, 0.0, 0.0]),
    ("B", "Red retrospot cake stand", 12.0, [0.95, 0.31, 0.0]),
    ("C", "Christmas candle set", 4.0, [0.8, 0.6, 0.0]),
    ("D", "Garden spade", 8.0, [0.0, 0.0, 1.0]),
    ("E", "Paper napkins", 1.5, [0.0, 1.0, 0.0]),
    ("F", "Discontinued mug", 3.0, [0.99, 0.14, 0.0]),
    ("POST", "POSTAGE", 5.0, [1.0, 0.01, 0.0]),     # a charge, not merchandise
]
# basket, user, day, items
BASKETS = [
    ("b1", "u1", 1, ["A", "B"]),
    ("b2", "u2", 2, ["A", "B", "C"]),
    ("b3", "u3", 3, ["A", "C"]),
    ("b4", None, 4, ["A", "D", "X", "POST"]),   # X: not in the catalogue
    ("b6", "u1", 8, ["A"]),
    ("b5", "u1", 10, ["C", "E"]),
    ("b7", None, -200, ["F"]),          # F: last sold long ago -> not available
]


def make_store(tmp_path, name="tiny.duckdb"):
    """Co-occurrences: A is in 5 baskets (b1 b2 b3 b4 b6), C in 3 (b2 b3 b5), B in 2 (b1 b2),
    so P(B|A) = 40%, P(C|A) = 40%, P(D|A) = 20%, P(B|C) = P(E|C) = 33%, P(A|C) = 67%.
    u2 returned E without buying it."""
    store = Store(tmp_path / name)
    rows = []
    eid = 0
    for b, u, day, items in BASKETS:
        for it in items:
            eid += 1
            rows.append((eid, u, it, "purchase", T0 + timedelta(days=day), 1.0, 1.0, b))
    eid += 1
    rows.append((eid, "u2", "E", "return", T0 + timedelta(days=5), -1.0, 1.5, "C1"))
    ev = pd.DataFrame(rows, columns=["event_id", "user_id", "item_id", "event_type", "ts",
                                     "quantity", "unit_price", "basket_id"])
    it = pd.DataFrame([(i, t, p) for i, t, p, _ in ITEMS], columns=["item_id", "title", "price"])
    vec = pd.DataFrame({"item_id": [i for i, *_ in ITEMS],
                        "v": [list(np.array(v) / np.linalg.norm(v)) for *_, v in ITEMS]})
    from core.embed import ITEM_TEXT_SQL

    with store.write() as con:
        con.register("ev", ev)
        con.register("it", it)
        con.register("vec", vec)
        con.execute("INSERT INTO events SELECT event_id, user_id, item_id, event_type, ts, "
                    "quantity, unit_price, basket_id, NULL, 1, NULL FROM ev")
        con.execute("INSERT INTO items SELECT item_id, title, NULL, NULL, NULL, price, 1 FROM it")
        con.execute("INSERT INTO users SELECT DISTINCT user_id, NULL, NULL, 1 FROM ev "
                    "WHERE user_id IS NOT NULL")
        con.execute(f"INSERT INTO item_embeddings SELECT 'fake', sha256({ITEM_TEXT_SQL}), "
                    "CAST(v.v AS FLOAT[]) FROM items i JOIN vec v USING (item_id)")
        run_id = start_run(con, "build", {"text_model": "fake"})
        con.execute(f"INSERT INTO segments VALUES ({run_id}, 'u1', 0, 0), ({run_id}, 'u2', 0, 0),"
                    f" ({run_id}, 'u3', 1, 0)")
        con.execute(f"INSERT INTO segment_info (run_id, segment_id, name, size) VALUES "
                    f"({run_id}, 0, 'Holiday gift buyers', 2), ({run_id}, 1, 'Candle lovers', 1)")
        finish_run(con, run_id, {})
    return store, run_id


@pytest.fixture()
def shop(tmp_path):
    store, run_id = make_store(tmp_path)
    con = store.read()
    data = ShopData.load(con, run_id)
    yield con, run_id, data
    con.close()


def ids(recs):
    return [r.item_id for r in recs]


def test_data_catalogue_availability_and_returns(shop):
    con, run_id, data = shop
    assert data.item_ids == ["A", "B", "C", "D", "E", "F", "POST"]   # X is not in the catalogue
    assert data.active.tolist() == [True, True, True, True, True, False, False]
    assert data.titles[0] == "White hanging heart t-light holder"
    u2 = data.user_index["u2"]
    assert data.user_returned_only[u2, data.item_index["E"]]
    assert data.user_counts[data.user_index["u1"], 0] == 2     # A in b1 and b6
    # baskets are numbered by time (then key), whatever order the store returns them in: the
    # same store gives the same neighbours' sums, so the same evaluation, every run
    assert (np.diff(data.basket_days) <= 0).all() and data.basket_days[0] > data.basket_days[-1]


def test_popularity_order_and_reason(shop):
    con, run_id, data = shop
    pop = PopularityRecommender().fit(con, run_id, data)
    recs = pop.recommend([], n=10)
    assert ids(recs) == ["A", "C", "B", "D", "E"]   # F unavailable, POST a charge, X unknown
    assert recs[0].reason == "a shop best seller: in 5 baskets (#1 in the shop)"
    assert [r.score for r in recs] == [5, 3, 2, 1, 1]


def test_exclusion_of_bought_and_returned_and_repeat_option(shop):
    con, run_id, data = shop
    pop = PopularityRecommender().fit(con, run_id, data)
    # u2 bought A, B, C and returned E (never bought): only D is left
    assert ids(pop.recommend(None, user_id="u2")) == ["D"]
    assert ids(pop.recommend(None, user_id="u2", repeat=True)) == ["A", "C", "B", "D"]
    assert ids(pop.recommend(None, user_id="u2", exclude=["D"])) == []
    # an explicit history works the same way
    hist = [("A", "purchase", T0), ("E", "return", T0)]
    assert ids(pop.recommend(hist)) == ["C", "B", "D"]


def test_item_knn_conditional_probability_reasons(shop):
    con, run_id, data = shop
    knn = ItemKNNRecommender().fit(con, run_id, data)
    A, B, C, E = (data.item_index[x] for x in "ABCE")
    assert knn.P[A, B] == pytest.approx(2 / 5)
    assert knn.P[C, E] == pytest.approx(1 / 3)
    assert knn.P[C, A] == pytest.approx(2 / 3)
    recs = knn.recommend(None, user_id="u3")                  # u3 bought A and C on day 3
    assert ids(recs) == ["B", "E", "D"]
    assert recs[0].reason == ("in 40% of baskets that contain White hanging heart t-light holder, "
                              "which this shopper bought")
    assert recs[1].reason == ("in 33% of baskets that contain Christmas candle set, which this "
                              "shopper bought")
    assert recs[2].reason == ("in 20% of baskets that contain White hanging heart t-light holder, "
                              "which this shopper bought")
    # the two contributions add up: 0.4 + 1/3 for B, scaled by the recency weight
    w = 0.5 ** (7 / 30)
    assert recs[0].score == pytest.approx(w * (0.4 + 1 / 3), rel=1e-4)


def test_item_knn_dense_and_sparse_products_give_identical_scores(shop, monkeypatch):
    """A small, dense catalogue scores through a dense copy of P (faster); a large or sparse one
    keeps the sparse product. Both give the same scores, bit for bit."""
    import core.recommend.recommenders as R
    from core.recommend.recommenders import batch_for_users

    con, run_id, data = shop
    dense = ItemKNNRecommender().fit(con, run_id, data)
    assert dense.P_dense is not None and np.array_equal(dense.P_dense, dense.P.toarray())
    monkeypatch.setattr(R, "DENSE_KNN_MAX_ITEMS", data.n_items - 1)   # too many items
    sparse = ItemKNNRecommender().fit(con, run_id, data)
    assert sparse.P_dense is None
    monkeypatch.setattr(R, "DENSE_KNN_MAX_ITEMS", 6_000)
    monkeypatch.setattr(R, "DENSE_KNN_FROM", 1.01)                    # too few pairs
    assert ItemKNNRecommender().fit(con, run_id, data).P_dense is None
    batch = batch_for_users(data, np.arange(len(data.user_ids)))
    a, b = dense.scores(batch), sparse.scores(batch)
    assert a.shape == (len(data.user_ids), data.n_items) and a.dtype == b.dtype == np.float32
    assert np.array_equal(a, b) and a.max() > 0
    assert ids(dense.recommend(None, user_id="u3")) == ids(sparse.recommend(None, user_id="u3")) \
        == ["B", "E", "D"]


def test_repeat_purchase(shop):
    con, run_id, data = shop
    rep = RepeatRecommender().fit(con, run_id, data)
    recs = rep.recommend(None, user_id="u1")
    assert ids(recs) == ["A", "C", "E", "B"]
    assert recs[0].reason == "this shopper bought it twice, last on 09 Jan 2024"
    assert recs[3].reason == "this shopper bought it once, last on 02 Jan 2024"


def test_segment_popularity(shop):
    con, run_id, data = shop
    seg = SegmentPopularityRecommender().fit(con, run_id, data)
    recs = seg.recommend([], segment_id=0)
    assert ids(recs) == ["A", "C", "B", "E"]
    assert recs[3].reason == ("bought by 50% of shoppers in Holiday gift buyers, 1.5x the shop "
                              "average")
    assert recs[0].reason == "bought by 100% of shoppers in Holiday gift buyers"


def test_hybrid_and_all_recommenders(shop):
    con, run_id, data = shop
    recs = fit_recommenders(con, run_id, data)
    assert "encoder" not in recs                           # no checkpoint in this store
    hy = recs["hybrid"]
    assert isinstance(hy, HybridRecommender)
    out = hy.recommend(None, user_id="u3", n=3)
    assert ids(out)[0] == "B"
    assert out[0].reason.startswith("in ") and "which this shopper bought" in out[0].reason
    assert all(r.item_id not in ("A", "C", "F", "X") for r in out)


def test_previews(tmp_path):
    store, run_id = make_store(tmp_path)
    con = store.read()
    p = preview_user(con, run_id, "u3", recommender="item_knn")
    assert p["segment_name"] == "Candle lovers"
    assert [r["item_id"] for r in p["recommendations"]] == ["B", "E", "D"]
    assert p["recommendations"][0]["price"] == 12.0
    assert preview_user(con, run_id, "nobody")["basis"] == "fallback"
    s = preview_segment(con, run_id, 0, n=2)
    assert s["segment_name"] == "Holiday gift buyers" and s["size"] == 2
    assert [r["item_id"] for r in s["recommendations"]] == ["A", "C"]
    h = preview_history(con, run_id, user_id="u3", remove=["C"], add=["D"],
                        recommender="item_knn")
    assert "C" in h["entered"]                             # no longer bought -> recommendable
    assert all(r["item_id"] != "D" for r in h["after"])    # now bought -> excluded
    with pytest.raises(PreviewError, match="not in the catalogue"):
        preview_history(con, run_id, user_id="u3", add=["X"])
    # the engine is cached per store and run
    assert get_engine(con, run_id) is get_engine(con, run_id)
    con.close()


class FakeEmbedder:
    def encode(self, texts):
        return np.array([[1.0, 0.0, 0.0]] * len(texts), dtype=np.float32)


def test_persona_price_cap_and_nearest_segment(tmp_path):
    store, run_id = make_store(tmp_path)
    con = store.read()
    out = preview_persona(con, run_id, "gift shopper looking for Christmas candles under 5 pounds",
                          embedder=FakeEmbedder()).to_dict()
    assert out["price_cap"] == 5.0
    # "gift" is in no title of this tiny catalogue: left out of the search, and said so
    assert out["query"] == "Christmas candles decoration"
    assert out["occasions"] == ["Christmas"] and out["ignored"] == ["gift"]
    assert out["understood"].startswith("price at most £5.00 · occasion: Christmas")
    got = [r["item_id"] for r in out["recommendations"]]
    assert got == ["A", "C", "E"]              # B (12.0) and D (8.0) cost more; F unavailable
    assert all(r["price"] <= 5.0 for r in out["recommendations"])
    assert out["recommendations"][0]["reason"].startswith("matches")
    # segment 0 (u1 u2: A B C E) vs 1 (u3: A C); both lean to [1, 0, 0]
    assert out["nearest_segment"]["segment_id"] in (0, 1)
    no_cap = preview_persona(con, None, "candles", embedder=FakeEmbedder())  # latest build
    assert no_cap.price_cap is None
    assert [r["item_id"] for r in no_cap][:2] == ["A", "B"]
    con.close()


PHRASINGS = [  # text, (min, max), occasions, ignored words
    ("gift shopper looking for Christmas decorations under 10 pounds", (None, 10.0),
     ["Christmas"], []),
    ("over £50", (50.0, None), [], []),
    ("nothing over £2", (None, 2.0), [], []),
    ("not more than 3 pounds", (None, 3.0), [], []),
    ("between £5 and £10", (5.0, 10.0), [], []),
    ("from £10 to £5", (5.0, 10.0), [], []),
    ("scarves £5-£10", (5.0, 10.0), [], []),
    ("Valentine hearts £5 to 8", (5.0, 8.0), ["Valentine's Day"], []),
    ("around £15", (12.0, 18.0), [], []),
    ("candles about 20 quid", (16.0, 24.0), [], []),
    ("a £15 present for mum", (12.0, 18.0), ["Mother's Day"], ["present"]),
    ("at least 1 pound but no more than 3 pounds", (1.0, 3.0), [], []),
    ("wedding gifts above $30", (30.0, None), ["Wedding"], []),
    ("cheaper than 4,50 euros", (None, 4.5), [], []),
    ("birthday party bags max 7.50", (None, 7.5), ["Birthday", "Party"], []),
    ("flibbertigibbet scarf under £20", (None, 20.0), [], ["flibbertigibbet"]),
    ("christmas 2011 decorations", (None, None), ["Christmas"], []),
    ("lunch boxes for school", (None, None), ["Back to school"], []),
]


@pytest.mark.parametrize("text,price,occasions,ignored", PHRASINGS)
def test_persona_parser_phrasings(text, price, occasions, ignored):
    from core.recommend.persona import parse_persona, vocabulary_of

    vocab = vocabulary_of(["Christmas decoration", "Wool scarf", "Heart gift bag", "Party bag",
                           "Lunch box", "Scented candle", "Wedding gift"])
    it = parse_persona(text, vocabulary=vocab, themes={"Heart": ["heart", "love"]})
    assert (it.min_price, it.max_price) == price
    assert it.occasions == occasions
    assert it.ignored == ignored
    # the price words never reach the search
    assert "£" not in it.query and "pounds" not in it.query


def test_non_merchandise_is_never_recommended(monkeypatch):
    from core.recommend.data import non_merchandise_matcher

    m = non_merchandise_matcher()
    excluded = ["Dotcomgiftshop Gift Voucher £20.00", "PACKING CHARGE", "Next Day Carriage",
                "POSTAGE", "DOTCOM POSTAGE", "Manual", "Bank Charges", "AMAZON FEE",
                "Adjust bad debt", "SAMPLES", "CRUK Commission", "Discount"]
    kept = ["FRENCH CARRIAGE LANTERN", "BLACK BAROQUE CARRIAGE CLOCK", "KENSINGTON COFFEE SET",
            "Gift bag birthday", "Heart of wicker large"]
    assert all(m.search(t) for t in excluded)
    assert not any(m.search(t) for t in kept)
    # configurable: more phrases, '=' for a whole title, also from SEGSTUDIO_NON_MERCHANDISE
    monkeypatch.setenv("SEGSTUDIO_NON_MERCHANDISE", "loyalty points; =pads to match all cushions")
    m2 = non_merchandise_matcher(["insurance"])
    assert m2.search("Parcel insurance") and m2.search("100 loyalty points")
    assert m2.search("PADS TO MATCH ALL CUSHIONS")
    assert not m2.search("Cushion pads to match all cushions, set of 2")


def test_gift_vouchers_never_reach_a_list(tmp_path):
    store, run_id = make_store(tmp_path)
    with store.write() as con:
        con.execute("INSERT INTO items VALUES ('GV', 'Dotcomgiftshop Gift Voucher £20.00', NULL, "
                    "NULL, NULL, 16.67, 1)")
        con.execute("INSERT INTO events VALUES (9001, 'u3', 'GV', 'purchase', "
                    "TIMESTAMP '2024-01-10 10:00', 5, 16.67, 'b9', NULL, 1, NULL)")
    con = store.read()
    data = ShopData.load(con, run_id)
    assert not data.active[data.item_index["GV"]]
    recs = fit_recommenders(con, run_id, data, encoder=False)
    for name in ("popularity", "item_knn", "hybrid", "tifu_knn", "next_basket"):
        assert "GV" not in ids(recs[name].recommend(user_id="u1", n=10, repeat=True))
    con.close()


@pytest.mark.parametrize("text,cap", [
    ("gift shopper under 10 pounds", 10.0), ("decorations under £10", 10.0),
    ("mugs below 7.50 GBP", 7.5), ("less than £7.50 please", 7.5), ("max 20 quid", 20.0),
    ("presents < £3", 3.0), ("christmas 2011 decorations", None),
])
def test_parse_price_cap(text, cap):
    assert parse_price_cap(text)[0] == cap


def test_cli_recommend(tmp_path, capsys):
    import json

    from core.cli import main

    store, run_id = make_store(tmp_path)
    assert main(["recommend", "--db", str(store.path), "--user", "u3", "--recommender",
                 "item_knn", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert [r["item_id"] for r in js["recommendations"]] == ["B", "E", "D"]
    assert main(["recommend", "--db", str(store.path), "--user", "u3", "--recommender",
                 "item_knn"]) == 0
    assert "of baskets that contain" in capsys.readouterr().out
    assert main(["recommend", "--db", str(store.path), "--user", "nobody"]) == 0
    assert "not in this build's data" in capsys.readouterr().out


@pytest.mark.slow
def test_encoder_recommender_and_hybrid_with_a_trained_encoder(tmp_path):
    """A (tiny, 2-epoch) encoder trained on the hand-made store: the encoder recommender and
    the hybrid use it, and its reasons point at the most similar item of the history."""
    from core.encoder import train_encoder
    from core.evaluate import evaluate_recommenders

    from core.features.holdout import cutoffs, last_basket_split

    store, run_id = make_store(tmp_path)
    with store.write() as con:
        split = last_basket_split(con)  # as the build: u1's last basket kept out, b6 validates
        train_encoder(con, run_id, device="cpu", seed=0, text_model="fake",
                      params={"d": 8, "n_heads": 1, "n_layers": 1, "max_epochs": 2,
                              "threads": 1},
                      cutoffs=cutoffs(split), val_cutoffs=cutoffs(split, "val_cut"))
    con = store.read()
    recs = fit_recommenders(con, run_id, ShopData.load(con, run_id), text_model="fake")
    assert "encoder" in recs
    enc = recs["encoder"]
    out = enc.recommend([("A", "purchase", T0), ("C", "view", T0 + timedelta(days=1))], n=10)
    got = ids(out)
    assert set(got) == {"B", "C", "D", "E"}     # A bought (left out), C only viewed; F unavailable
    b_reason = next(r.reason for r in out if r.item_id == "B")
    assert b_reason == "similar to what this shopper bought: White hanging heart t-light holder"
    assert recs["hybrid"].needs_history
    con.close()
    with store.write() as con:
        res = evaluate_recommenders(con, run_id, holdout="interaction", seed=0)
    # leave-one-out is scored only where the encoder never saw the held-out purchase: u1
    # (u2 and u3 have a single basket, which the encoder trained on)
    assert res["encoder"] == "evaluated" and "encoder" in res["recommenders"]
    assert res["users_left_out_for_encoder"] == 2
    assert res["users_evaluated"]["repeats"] == 1


def test_tifu_knn_vectors_neighbours_and_reasons(shop):
    from core.recommend.tifu import TifuKNNRecommender

    con, run_id, data = shop
    # u1's baskets, newest first: b5 (C, E), b6 (A), b1 (A, B); one group of three, so the
    # weights are 1/3, 0.9/3 and 0.81/3
    t = TifuKNNRecommender(neighbours=1, alpha=0.7).fit(con, run_id, data)
    u1 = t.U_[data.user_index["u1"]].toarray()[0]
    ix = data.item_index
    assert u1[ix["A"]] == pytest.approx((0.9 + 0.81) / 3, abs=1e-6)
    assert u1[ix["B"]] == pytest.approx(0.81 / 3, abs=1e-6)
    assert u1[ix["C"]] == pytest.approx(1 / 3, abs=1e-6) and u1[ix["E"]] == pytest.approx(1 / 3, abs=1e-6)
    # u1's nearest shopper is u2 (A, B, C: cosine 0.860 against u3's 0.811)
    out = t.recommend(user_id="u1", n=4, repeat=True)
    assert ids(out) == ["A", "C", "B", "E"]
    assert out[0].score == pytest.approx(0.7 * 0.57 + 0.3, abs=1e-6)
    assert out[0].reason.startswith("this shopper bought it in 2 of their 3 baskets, last on")
    # u3 (A, C) has u2 as nearest shopper: B is new to u3 and explained by the neighbour
    new = t.recommend(user_id="u3", n=3)
    assert ids(new) == ["B"]
    assert new[0].reason == ("bought by 100% (1) of the 1 shoppers whose baskets are most like "
                             "this shopper's")


def test_next_basket_model_learns_latest_basket_habit(tmp_path):
    """Targets = every shopper's latest basket of the fitted data: the learned model ranks
    those items first (a habit TIFU-kNN alone only partly captures)."""
    from core.evaluate.metrics import per_user_metrics
    from core.recommend.nextbasket import FEATURES, NextBasketRecommender
    from core.recommend.recommenders import batch_for_users
    from test_evaluate import _poison_store

    store, run_id = _poison_store(tmp_path)
    con = store.read()
    data = ShopData.load(con, run_id)
    nb = NextBasketRecommender().fit(con, run_id, data)
    rows = np.arange(len(data.user_ids))
    b = batch_for_users(data, rows)
    latest = b.days.copy()
    mins = np.array([latest[r].data.min() for r in rows])
    T = b.counts.copy()
    T.data = (np.abs(latest.data - np.repeat(mins, np.diff(latest.indptr))) < 0.5).astype(
        np.float32)
    T.eliminate_zeros()
    bad = nb.mask(b, repeat=True)
    model = nb.learn(b, T, bad, repeat=True)
    assert model["features"] == list(FEATURES) and len(model["coef"]) == len(FEATURES)
    # learned block by block (a large catalogue): the same model, figure for figure
    import core.recommend.nextbasket as nbm

    whole, nbm.LEARN_BLOCK = nbm.LEARN_BLOCK, 3 * data.n_items   # blocks of 3 shoppers
    try:
        assert len(rows) > 6 and nb.learn(b, T, bad, repeat=True) == model
    finally:
        nbm.LEARN_BLOCK = whole
    # the evaluation computes the features once for both list types, then learns each on
    # its shoppers' rows: the same model as learning those shoppers from scratch
    cand, X = nb.block_features(b)
    sub = rows[::2]
    assert nb.learn(b.take(slice(0, None, 2)), T[sub], bad[sub], repeat=True,
                    features=(cand[sub], X[sub])) == \
        NextBasketRecommender().fit(con, run_id, data).learn(
            b.take(slice(0, None, 2)), T[sub], bad[sub], repeat=True)
    # fitted with the recommenders, it reads their item-kNN instead of fitting its own
    from core.recommend.recommenders import fit_recommenders

    recs = fit_recommenders(con, run_id, data, encoder=False)
    assert recs["next_basket"].knn_ is recs["item_knn"]
    nb.models = {"repeats": model}
    top = nb.ranked(nb.mode_scores(b, True), bad, 10)
    assert per_user_metrics(top, T, 10)["ndcg"].mean() > 0.95
    con.close()


def _clickstream_store(tmp_path):
    """A clickstream-style shop: sessions of views and carts, purchases in some sessions.
    Buyers b1-b4 buy the mug (M) with the tea (T) or the scarf (S); v1 only viewed the mug
    twice and put the tea in the basket; segment 2 ("Window shoppers") has no buyers."""
    store = Store(tmp_path / "click.duckdb")
    rows, eid = [], 0

    def ev(u, item, kind, day, session):
        nonlocal eid
        eid += 1
        rows.append((eid, u, item, kind, T0 + timedelta(days=day, minutes=eid), 1.0, 3.0,
                     session if kind == "purchase" else None, session))

    for k, (u, other) in enumerate([("b1", "T"), ("b2", "T"), ("b3", "S"), ("b4", "T")]):
        ev(u, "M", "view", k, f"s{u}")
        ev(u, "M", "purchase", k, f"s{u}")
        ev(u, other, "purchase", k, f"s{u}")
    ev("v1", "M", "view", 5, "sv1")
    ev("v1", "M", "view", 6, "sv1b")
    ev("v1", "T", "cart", 6, "sv1b")
    ev("w1", "S", "view", 6, "sw1")
    df = pd.DataFrame(rows, columns=["event_id", "user_id", "item_id", "event_type", "ts",
                                     "quantity", "unit_price", "basket_id", "session_id"])
    items = pd.DataFrame({"item_id": ["M", "T", "S", "G"],
                          "title": ["Enamel mug", "Earl grey tea", "Wool scarf", "Gift voucher"],
                          "price": [6.0, 4.0, 20.0, 25.0]})
    with store.write() as con:
        con.register("df", df)
        con.register("it", items)
        con.execute("INSERT INTO events SELECT event_id, user_id, item_id, event_type, ts, "
                    "quantity, unit_price, basket_id, session_id, 1, NULL FROM df")
        con.execute("INSERT INTO items SELECT item_id, title, NULL, NULL, NULL, price, 1 FROM it")
        con.execute("INSERT INTO users SELECT DISTINCT user_id, NULL, NULL, 1 FROM df")
        run_id = start_run(con, "build", {})
        con.execute(f"INSERT INTO segments VALUES ({run_id}, 'b1', 1, 0), ({run_id}, 'b2', 1, 0),"
                    f" ({run_id}, 'b3', 1, 0), ({run_id}, 'b4', 1, 0), ({run_id}, 'v1', 1, 0),"
                    f" ({run_id}, 'w1', 2, 0)")
        con.execute(f"INSERT INTO segment_info (run_id, segment_id, name, size) VALUES "
                    f"({run_id}, 1, 'Tea lovers', 5), ({run_id}, 2, 'Window shoppers', 1)")
        finish_run(con, run_id, {})
    return store, run_id


def test_every_shopper_is_served_on_a_clickstream_shop(tmp_path, capsys):
    from core.cli import main

    store, run_id = _clickstream_store(tmp_path)
    con = store.read()
    # v1 only browsed: item-kNN from what they looked at, with the reason a marketer reads
    out = preview_user(con, run_id, "v1", recommender="item_knn")
    assert out["basis"] == "browsing" and out["segment_name"] == "Tea lovers"
    assert "has not bought anything yet" in out["note"]
    recs = out["recommendations"]
    # M (viewed, not bought) is in every basket with the tea v1 carted: 1.0 x 0.75 (cart);
    # T is in 3 of the 4 baskets with the mug v1 viewed: 0.75 x 0.4 (view)
    assert [r["item_id"] for r in recs] == ["M", "T", "S"]
    assert recs[0]["reason"] == ("in 100% of baskets that contain Earl grey tea; this shopper "
                                 "put it in the basket once")
    assert recs[1]["reason"] == ("in 75% of baskets that contain Enamel mug; this shopper "
                                 "viewed it twice")
    # the hybrid (default) and a purchase-only recommender both answer, the latter via the hybrid
    hy = preview_user(con, run_id, "v1")
    assert hy["recommendations"] and all(r["reason"] for r in hy["recommendations"])
    rep = preview_user(con, run_id, "v1", recommender="repeat")
    assert rep["recommender"] == "hybrid" and "needs purchases" in rep["note"]
    # an unknown id: the shop's best sellers, labelled as a fallback
    fb = preview_user(con, run_id, "nobody")
    assert fb["basis"] == "fallback" and "not in this build's data" in fb["note"]
    assert [r["item_id"] for r in fb["recommendations"]][:2] == ["M", "T"]
    # a segment without buyers: the shop's best sellers, said so
    seg = preview_segment(con, run_id, 2)
    assert seg["basis"] == "fallback" and "Window shoppers" in seg["note"]
    assert seg["recommendations"][0]["item_id"] == "M"
    with pytest.raises(PreviewError, match="no segment 9"):
        preview_segment(con, run_id, 9)
    con.close()
    assert main(["recommend", "--db", str(store.path), "--user", "v1"]) == 0
    text = capsys.readouterr().out
    assert "has not bought anything yet" in text and "1. " in text
    assert main(["recommend", "--db", str(store.path), "--user", "nobody"]) == 0
    text = capsys.readouterr().out
    assert "(fallback)" in text and "Enamel mug" in text


def test_recommend_page_serves_browsers_and_unknown_ids(tmp_path, monkeypatch):
    from test_dashboard import open_page

    store, run_id = _clickstream_store(tmp_path)
    monkeypatch.setenv("SEGSTUDIO_DB", str(store.path))
    for var in ("SEGSTUDIO_CONFIG", "SEGSTUDIO_CURRENCY", "SEGSTUDIO_SECRETS"):
        monkeypatch.delenv(var, raising=False)
    at = open_page("views/recommend.py")
    at.text_input(key="rec_user_q").input("v1").run()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "has not bought anything yet" in infos
    assert any("this shopper" in c.value for c in at.caption)
    at.text_input(key="rec_user_q").input("nobody").run()
    assert not at.exception
    assert "not in this build's data" in " ".join(i.value for i in at.info)
    assert "Enamel mug" in " ".join(m.value for m in at.markdown)


def test_persona_finds_a_catalogue_item_nobody_has_touched(tmp_path):
    """The build embeds only items with events; a persona that matches an untouched catalogue
    item embeds it on demand (once, cached in the records file) and can recommend it."""
    from core.embed import DEFAULT_MODEL, clear_process_cache, embed_items

    store, run_id = make_store(tmp_path)
    with store.write() as con:
        con.execute("INSERT INTO items (item_id, title, price, ingest_id) VALUES "
                    "('N1', 'Hand-knitted alpaca wool scarf', 4.0, 1), "
                    "('N2', 'Cast iron garden bench', 90.0, 1), "
                    "('N3', 'Alpaca gift voucher', 4.0, 1)")      # not merchandise
        con.execute("DELETE FROM item_embeddings")
        embed_items(con, spare_items=0)
        con.execute("UPDATE runs SET params = ? WHERE run_id = ?",
                    [f'{{"text_model": "{DEFAULT_MODEL}"}}', run_id])
    clear_process_cache()

    def counts():
        with store.read() as c:
            return c.execute("SELECT (SELECT count(*) FROM item_embeddings), "
                             "(SELECT count(*) FROM records.item_embeddings)").fetchall()[0]

    assert counts() == (7, 0)                   # A-F and POST have events (X is no item)
    con = store.read()
    out = preview_persona(con, run_id, "alpaca scarf", n=3)
    assert [r["item_id"] for r in out][0] == "N1"
    assert out[0]["reason"].endswith("new: nobody has looked at it yet; £4.00")
    assert counts() == (7, 1)                   # N1 only: N2 shares no word, N3 is a voucher
    # the engine keeps the vector; a new engine on a new connection reads it from the cache
    assert preview_persona(con, run_id, "alpaca scarf", n=3)[0]["item_id"] == "N1"
    clear_process_cache()
    con2 = store.read()
    again = preview_persona(con2, run_id, "warm alpaca scarf", n=3,
                            engine=get_engine(con2, run_id, refresh=True))
    assert again[0]["item_id"] == "N1" and counts() == (7, 1)
    # a price cap below it leaves it out, like any other item
    assert "N1" not in [r["item_id"] for r in preview_persona(con2, run_id,
                                                              "alpaca scarf under 3 pounds")]
    con.close()
    con2.close()
