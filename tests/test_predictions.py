"""Per-shopper predictions: no look-ahead past the cut-off (hand-made shop with exact dates),
calibration on a synthetic case with known probabilities, the backtest figures on fixed examples,
and the scores of a built demo shop through `segstudio predictions`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.predictions.metrics import (auc, calibration_error, reliability, top_decile_lift,
                                      value_errors)
from core.predictions.models import LikelihoodModel, RecencyBaseline, SpendRateBaseline
from core.predictions.windows import (churn_horizon_days, features_as_of, labels_for,
                                      outcomes_between)

CUT = datetime(2025, 6, 1)

# (event id, shopper, item, type, time, quantity, unit price, basket)
EVENTS = [
    (1, "A", "mug", "purchase", "2025-01-01 00:00", 2, 5.0, "o1"),     # 2 x 5 = 10
    (2, "A", "cup", "purchase", "2025-05-02 00:00", 1, 20.0, "o2"),    # 30 days before the cut
    (3, "A", "mug", "view", "2025-05-31 12:00", 1, None, None),        # 12 hours before the cut
    (4, "B", "mug", "view", "2025-03-01 00:00", 1, None, None),        # B only viewed
    (5, "B", "cup", "cart", "2025-03-01 00:00", 1, None, None),
    (6, "C", "tree", "purchase", "2024-12-01 00:00", 1, 50.0, "o3"),   # one order, 182 days before
    # at or after the cut: must never reach the features
    (7, "A", "tree", "purchase", "2025-06-01 00:00", 1, 50.0, "o4"),
    (8, "B", "mug", "purchase", "2025-06-15 00:00", 3, 5.0, "o5"),
    (9, "D", "mug", "purchase", "2025-06-20 00:00", 1, 5.0, "o6"),     # new after the cut
    (10, "C", "mug", "view", "2025-07-05 00:00", 1, None, None),      # outside a 30-day horizon
]


def _shop(con, events=EVENTS) -> None:
    for e in events:
        con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 1, NULL)", list(e))
    for item in ("mug", "cup", "tree"):
        con.execute("INSERT INTO items VALUES (?, ?, NULL, ?, NULL, NULL, 1)",
                    [item, item.upper(), "Christmas" if item == "tree" else "Kitchen"])


def test_features_use_only_events_before_the_cut(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        f = features_as_of(con, CUT, goal_items=["tree"])
    assert list(f.index) == ["A", "B", "C"]            # D appears only after the cut
    a, b, c = f.loc["A"], f.loc["B"], f.loc["C"]
    assert a["orders"] == 2 and a["spend"] == 30.0 and a["order_value"] == 15.0
    assert a["days_since_order"] == 30.0 and a["days_since_activity"] == 0.5
    assert a["orders_30d"] == 1 and a["orders_90d"] == 1 and a["orders_365d"] == 2
    assert a["gap_days"] == 121.0                      # 1 Jan -> 2 May
    assert a["views"] == 1 and a["items"] == 2 and a["goal_orders"] == 0
    assert b["orders"] == 0 and np.isnan(b["days_since_order"]) and np.isnan(b["spend"])
    assert b["views"] == 1 and b["carts"] == 1 and b["days_since_activity"] == 92.0
    assert c["goal_orders"] == 1 and c["goal_share"] == 1.0 and c["days_since_goal"] == 182.0
    # by construction: deleting everything at or after the cut changes nothing
    with tmp_store.write() as con:
        con.execute("DELETE FROM events WHERE ts >= ?", [CUT])
        g = features_as_of(con, CUT, goal_items=["tree"])
    pd.testing.assert_frame_equal(f, g)


def test_features_of_some_shoppers_are_their_rows_of_everyones(tmp_store):
    """A large shop's windows are computed on a sample: restricted to some shoppers, the
    features are exactly those shoppers' rows of the whole shop's, still without look-ahead."""
    with tmp_store.write() as con:
        _shop(con)
        f = features_as_of(con, CUT, goal_items=["tree"])
        # D has events only after the cut, Z none at all: neither has a row
        g = features_as_of(con, CUT, goal_items=["tree"], users=["C", "A", "D", "Z"])
        none = features_as_of(con, CUT, goal_items=["tree"], users=[])
        con.execute("DELETE FROM events WHERE ts >= ?", [CUT])
        h = features_as_of(con, CUT, goal_items=["tree"], users=["C", "A", "D", "Z"])
        left = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_asof_users'"
                           ).fetchone()[0]
    assert list(g.index) == ["A", "C"]
    pd.testing.assert_frame_equal(g, f.loc[["A", "C"]])
    pd.testing.assert_frame_equal(h, g)
    assert len(none) == 0 and list(none.columns) == list(f.columns)
    assert left == 0


def test_labels_come_from_the_horizon_only(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        f = features_as_of(con, CUT, goal_items=["tree"])
        out = outcomes_between(con, CUT, datetime(2025, 7, 1), goal_items=["tree"])
    assert out.to_dict("index") == {
        "A": {"orders": 1.0, "spend": 50.0, "goal_orders": 1.0},
        "B": {"orders": 1.0, "spend": 15.0, "goal_orders": 0.0},
        "D": {"orders": 1.0, "spend": 5.0, "goal_orders": 0.0}}
    lab = labels_for(f, out)
    assert lab.to_dict("index") == {              # D has no features at the cut: not scored
        "A": {"bought": 1, "spend": 50.0, "bought_goal": 1},
        "B": {"bought": 1, "spend": 15.0, "bought_goal": 0},
        "C": {"bought": 0, "spend": 0.0, "bought_goal": 0}}


def test_churn_horizon_comes_from_the_shops_gaps(tmp_store):
    # 30 shoppers with orders every 10 days, 10 with orders every 40 days: 80th percentile of the
    # 120 gaps (90 of 10 days, 30 of 40 days) is 40 days
    ev, n = [], 0
    for u in range(40):
        gap = 10 if u < 30 else 40
        for k in range(4 if u < 30 else 4):
            n += 1
            ev.append((n, f"u{u}", "mug", "purchase", datetime(2025, 1, 1) + pd.Timedelta(
                days=gap * k), 1, 5.0, f"o{n}"))
    with tmp_store.write() as con:
        _shop(con, ev)
        days, how = churn_horizon_days(con)
    assert days == 40.0
    assert how.startswith("40 days: 80% of repeat orders came within 40 days")


def test_backtest_figures_on_a_fixed_example():
    y = np.array([1, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.05, 0.0, 0.0])
    # positives 0.9, 0.7, 0.1 over 7 negatives: 0.9 beats 7, 0.7 beats 6, 0.1 beats 3 -> 16/21
    assert auc(y, s) == pytest.approx(16 / 21)
    assert auc(y, np.zeros(10)) == 0.5                  # ties count half
    assert top_decile_lift(y, s) == pytest.approx(1 / 0.3)   # top 1 of 10 is a positive
    p = np.array([0.05, 0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95, 0.5, 0.5])
    yy = np.array([0, 0, 0, 1, 1, 1, 1, 0, 1, 0])
    bins = reliability(yy, p)
    assert [(b["bin"], b["shoppers"], b["observed"]) for b in bins] == [
        (0, 2, 0.0), (1, 2, 0.5), (5, 2, 0.5), (9, 4, 0.75)]
    # |0.05-0| * 2 + |0.15-0.5| * 2 + |0.5-0.5| * 2 + |0.95-0.75| * 4 = 0.1 + 0.7 + 0 + 0.8
    assert calibration_error(yy, p) == pytest.approx(1.6 / 10)
    assert value_errors([0, 10, 20], [5, 5, 5]) == pytest.approx(
        {"mae": 25 / 3, "rmse": np.sqrt(275 / 3), "predicted_total": 15, "actual_total": 30})


def test_calibrated_probabilities_match_known_ones():
    # a known truth: P(buy) = 0.05 + 0.9 * x for x uniform in [0, 1]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 20_000)
    noise = rng.normal(0, 1, 20_000)
    y = (rng.uniform(0, 1, 20_000) < 0.05 + 0.9 * x).astype(int)
    X = pd.DataFrame({"x": x, "noise": noise})
    m = LikelihoodModel(seed=0).fit(X.iloc[:10_000], y[:10_000])
    p = m.predict_proba(X.iloc[10_000:])
    truth = 0.05 + 0.9 * x[10_000:]
    assert np.abs(p - truth).mean() < 0.04
    assert calibration_error(y[10_000:], p) < 0.03
    assert auc(y[10_000:], p) == pytest.approx(auc(y[10_000:], truth), abs=0.01)


def test_baselines():
    X = pd.DataFrame({"days_since_order": [1.0, 50.0, np.nan], "spend": [100.0, np.nan, 30.0],
                      "tenure_days": [200.0, 10.0, 60.0]})
    b = RecencyBaseline("days_since_order", increasing=True)
    assert list(b.rank_score(X)) == [1.0, 50.0, 51.0]   # never ordered: older than everyone
    b.fit(X, np.array([0, 1, 1]))
    assert list(b.predict_proba(X)) == [0.0, 1.0, 1.0]
    # spend per day over max(tenure, horizon) days, times the horizon (30)
    assert list(SpendRateBaseline(30).predict(X)) == pytest.approx([15.0, 0.0, 15.0])


def test_built_demo_has_scores_that_beat_their_baselines(built_demo_store, capsys):
    from core.cli import main

    assert main(["predictions", "--json", "--db", str(built_demo_store.path)]) == 0
    got = json.loads(capsys.readouterr().out)
    scores = got["scores"]
    assert set(scores) == {"purchase", "churn", "value"}   # no goal set: no goal score
    assert scores["purchase"]["horizon_days"] == 30.0
    for name in ("purchase", "churn"):
        auc_ = scores[name]["metrics"]["auc"]
        assert auc_["model"] > auc_["baseline"] and auc_["model_better"] is True
        lo, hi = auc_["model_95"]
        assert lo < auc_["model"] < hi
    assert scores["value"]["metrics"]["mae"]["model_better"] is True
    con = built_demo_store.read()
    try:
        n_users = con.execute("SELECT count(DISTINCT user_id) FROM user_features WHERE run_id = "
                              "(SELECT max(run_id) FROM prediction_backtest)").fetchone()[0]
        rows = con.execute("SELECT score, count(*), min(percentile) > 0, max(percentile), "
                           "min(value) >= 0, max(value) <= 1 FROM predictions GROUP BY score "
                           "ORDER BY score").fetchall()
    finally:
        con.close()
    by = {r[0]: r[1:] for r in rows}
    # percentiles run up to 100 (tied probabilities share their average rank)
    assert by["purchase"][0] == n_users and 99 < by["purchase"][2] <= 100.0
    assert by["purchase"][3] and by["purchase"][4] and by["churn"][4]


def test_the_encoder_for_predictions_learns_only_from_before_the_cut(tmp_store, monkeypatch):
    import core.encoder.train as train_mod
    from core.predictions.encoded import AsOfEncoder, kept_before

    with tmp_store.write() as con:
        _shop(con)
        # interactions before 1 June: A 3 (two orders and a view), B 2, C 1; D none
        assert kept_before(con, CUT) == {"A": 3, "B": 2, "C": 1, "D": 0}
        seen = {}
        real = train_mod.prepare_training

        def spy(con_, **kw):
            seen.update(kw["cutoffs"])
            return real(con_, **kw)

        monkeypatch.setattr(train_mod, "prepare_training", spy)
        e = AsOfEncoder(dims=2, device="cpu", params={"max_epochs": 1}).fit(con, 5, CUT)
        assert seen == {"A": 3, "B": 2, "C": 1, "D": 0}     # the training histories stop there
        left = con.execute("SELECT count(*) FROM model_checkpoints WHERE run_id < 0").fetchone()[0]
        assert left == 0                                   # the temporary encoder is gone
        z = e.transform(con, CUT)
        # restricted to some shoppers, and in chunks of one: the same vectors for those shoppers
        # (the components stay the first call's)
        some = e.transform(con, CUT, users=["C", "D", "A"], chunk=1)
        assert kept_before(con, CUT, users=["C", "D", "Z"]) == {"C": 1, "D": 0}
    assert list(z.index) == ["A", "B", "C"] and list(z.columns) == ["taste_1", "taste_2"]
    assert list(some.index) == ["C", "A"]                   # D has no history before the cut
    np.testing.assert_allclose(some.to_numpy(), z.loc[["C", "A"]].to_numpy(), rtol=1e-5,
                               atol=1e-6)


def test_a_shopper_with_nothing_new_between_cut_offs_is_not_encoded_again(tmp_store,
                                                                          monkeypatch):
    """The predictions describe every shopper at ~11 cut-offs; a shopper with no interaction
    between two of them has the same history at both, so their vector is read again, not
    recomputed: the same figures as encoding everyone at every cut-off."""
    import core.encoder.runtime as rt
    from core.predictions.encoded import AsOfEncoder

    with tmp_store.write() as con:
        _shop(con)
        enc = AsOfEncoder(dims=2, device="cpu", params={"max_epochs": 1})
        monkeypatch.setenv("SEGSTUDIO_IN_PROCESS", "1")
        enc.fit(con, 5, CUT)
        encoded, real = [], rt._pooled

        def spy(model, seq, *a, **k):
            encoded.append(len(seq.user_ids))
            return real(model, seq, *a, **k)

        monkeypatch.setattr(rt, "_pooled", spy)
        late = datetime(2025, 6, 16)   # A bought (1 June) and B bought (15 June) since CUT
        first, again, later = (enc.transform(con, c) for c in (CUT, CUT, late))
        fresh = AsOfEncoder(dims=2, device="cpu", params={"max_epochs": 1})
        fresh.model_, fresh.p_, fresh.seq_, fresh.device_, fresh.seed = \
            enc.model_, enc.p_, enc.seq_, enc.device_, enc.seed
        fresh.pca_, fresh.pos_ = enc.pca_, None
        uncached = fresh.transform(con, late)
    # all four (D has no history); nobody again at the same cut (no pass at all); then A and B
    assert encoded == [4, 2, 4]
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(later, uncached)
    assert later.loc["C"].equals(first.loc["C"]) and not later.loc["A"].equals(first.loc["A"])


def test_the_predictions_encoder_trains_in_the_background_to_the_same_weights(tmp_store,
                                                                             monkeypatch):
    """The build starts the predictions' encoder early in a background worker (the second core
    trains it while the build's own encoder trains): the same weights as training it in the
    build process, and a worker that dies still leaves an encoder, trained here."""
    from concurrent.futures import Future

    from core.predictions.encoded import AsOfEncoder

    def weights(e):
        return {k: v.detach().numpy().copy() for k, v in e.model_.state_dict().items()}

    with tmp_store.write() as con:
        _shop(con)
        here = AsOfEncoder(dims=2, device="cpu", params={"max_epochs": 2})
        monkeypatch.setenv("SEGSTUDIO_IN_PROCESS", "1")
        here.fit(con, 5, CUT)
        monkeypatch.delenv("SEGSTUDIO_IN_PROCESS")
        there = AsOfEncoder(dims=2, device="cpu", params={"max_epochs": 2}).start(con, CUT)
        assert there.future_ is not None                  # 2+ cores: a worker took it
        there.fit(con, 5, CUT)
        dead = AsOfEncoder(dims=2, device="cpu", params={"max_epochs": 2}).start(con, CUT)
        dead.future_.result()
        dead.future_ = Future()
        dead.future_.set_exception(RuntimeError("worker killed"))
        dead.fit(con, 5, CUT)
        left = con.execute("SELECT count(*) FROM model_checkpoints WHERE run_id < 0").fetchone()[0]
    assert here.trained_in_ == "build process" and there.trained_in_ == "background worker"
    assert dead.trained_in_ == "build process (background worker failed: RuntimeError)"
    for other in (there, dead):
        w0, w1 = weights(here), weights(other)
        assert w0.keys() == w1.keys()
        for k in w0:
            np.testing.assert_array_equal(w0[k], w1[k])
    assert left == 0


class _SpyEncoder:
    """Stands in for the trained ``AsOfEncoder`` in the predictions stage: records the cut-off
    and shoppers of every ``transform`` and describes a shopper by one figure of their own."""

    train_metrics_ = {"train_seconds": 0.0}
    trained_in_ = "test"

    def __init__(self):
        self.calls = []

    def fit(self, con, run_id, train_before):
        self.trained_before = train_before
        return self

    def transform(self, con, cut, users=None):
        self.calls.append((cut, None if users is None else list(users)))
        f = features_as_of(con, cut, users=users)
        return pd.DataFrame({"taste_1": np.log1p(f["views"])}, index=f.index)


@pytest.fixture()
def demo_copy(demo_store, tmp_path):
    """A writable copy of the 600-shopper demo shop (unbuilt: the predictions stage alone)."""
    import shutil

    from core.store import Store

    shutil.copyfile(demo_store.path, tmp_path / "demo.duckdb")
    return Store(tmp_path / "demo.duckdb")


def test_the_encoders_components_see_no_held_out_horizon(demo_copy):
    """The encoder's principal components are fitted on the first window it describes: that
    must be the date the encoder was trained before, before every score's held-out horizon."""
    from core.predictions import build_predictions
    from core.predictions.windows import data_end

    spy = _SpyEncoder()
    with demo_copy.write() as con:
        m = build_predictions(con, 1, seed=7, encoder={}, started=spy)
        end = data_end(con)
    horizons = [s["horizon_days"] for s in m["scores"].values()]
    assert set(m["scores"]) == {"purchase", "churn", "value"} and len(set(horizons)) == 2
    first_cut = spy.calls[0][0]
    assert first_cut == spy.trained_before == min(end - timedelta(days=h) for h in horizons)
    assert m["encoder"]["trained_before"] == str(first_cut)
    assert max(c for c, _ in spy.calls) == end               # the scores, as of the end


def _run_stage(store, monkeypatch, limit, encoder=None):
    """The predictions stage on ``store`` with the window-sample threshold at ``limit``; returns
    (metrics, every features_as_of call as (cut, shoppers or None), stored predictions, end)."""
    import core.predictions.stage as stage
    from core.predictions.windows import data_end, data_start

    monkeypatch.setattr(stage, "MAX_WINDOW_SHOPPERS", limit)
    calls, real = [], stage.features_as_of

    def spy(con, cut, goal_items=None, users=None):
        calls.append((cut, None if users is None else list(users)))
        return real(con, cut, goal_items, users=users)

    monkeypatch.setattr(stage, "features_as_of", spy)
    held, score = {}, stage._score

    def held_at_start(w, name, *args):
        held[name] = sorted(w._f)                  # the windows cached as the score begins
        return score(w, name, *args)

    monkeypatch.setattr(stage, "_score", held_at_start)
    with store.write() as con:
        m = stage.build_predictions(con, 1, seed=7, encoder=None if encoder is None else {},
                                    started=encoder)
        stored = con.execute("SELECT * FROM predictions WHERE run_id = 1 ORDER BY score, user_id"
                             ).df()
        m["_held"], m["_end"], m["_start"] = held, data_end(con), data_start(con)
    return m, calls, stored, m.pop("_end")


def test_a_large_shops_windows_are_one_sample_and_everyone_is_scored(demo_copy, monkeypatch):
    """Above MAX_WINDOW_SHOPPERS the training and backtest windows are computed on one seeded
    sample of shoppers (the same at every cut-off), the scores still cover every shopper, with
    percentiles among all of them, and the metrics say what was sampled."""
    from core.predictions.stage import _score_cuts, _window_shoppers
    from core.predictions.windows import shoppers_with_events

    spy = _SpyEncoder()
    m, calls, stored, end = _run_stage(demo_copy, monkeypatch, 200, encoder=spy)
    con = demo_copy.read()
    try:
        everyone = shoppers_with_events(con)
        sample, n = _window_shoppers(con, 7)
        assert _window_shoppers(con, 7) == (sample, n) and _window_shoppers(con, 8)[0] != sample
        # how many of the sample had a history before each backtest's cut-off
        con.register("s", pd.DataFrame({"user_id": sample}))
        before = {h: con.execute("SELECT count(DISTINCT user_id) FROM events WHERE user_id IN "
                                 "(SELECT user_id FROM s) AND ts < ?",
                                 [end - timedelta(days=h)]).fetchone()[0]
                  for h in {s["horizon_days"] for s in m["scores"].values()}}
    finally:
        con.close()
    assert len(everyone) == n == 600 and len(sample) == 200 and set(sample) <= set(everyone)
    assert m["sampled"]["shoppers"] == 200 and m["sampled"]["of"] == 600
    assert "sample of 200 of the 600 shoppers" in m["sampled"]["why"]
    # (c) every window before the end was computed on the sample, the final cut on everyone
    windows = [(c, u) for c, u in calls if c < end]
    assert len(windows) >= 6 and all(u == sample for _, u in windows)
    assert [u for c, u in calls if c == end] == [None]
    assert all(u == sample for c, u in spy.calls if c < end)
    assert [u for c, u in spy.calls if c == end] == [None]
    assert spy.calls[0][0] == spy.trained_before                 # components: a training window
    for name, s in m["scores"].items():
        assert s["backtest_shoppers"] <= before[s["horizon_days"]] <= 200
        assert s["training_rows"] <= 200 * 4
        assert s["shoppers_scored"] == 600                       # every demo shopper has ordered
    assert m["scores"]["purchase"]["backtest_shoppers"] == before[30.0]
    # each window was computed once, cached while a score still to come reads it and no longer:
    # the value score (30 days, the last) starts without the churn score's (38 days) windows
    held, start = m.pop("_held"), m.pop("_start")
    cuts = [c for c, _ in windows]
    assert len(cuts) == len(set(cuts)) == len(set().union(
        *(_score_cuts(s["horizon_days"], start, end) for s in m["scores"].values())))
    assert m["scores"]["churn"]["horizon_days"] == 38.0
    assert any((end - c) % timedelta(days=30) for c in held["churn"])   # the encoder's first
    assert held["value"] and not any((end - c) % timedelta(days=30) for c in held["value"])
    # (b) one row per shopper per score, percentiles among all 600 shoppers
    by = stored.groupby("score")
    assert by["user_id"].nunique().to_dict() == by.size().to_dict() == {
        "churn": 600, "purchase": 600, "value": 600}
    for score, g in by:
        expect = g["value"].rank(pct=True, method="average").to_numpy() * 100
        np.testing.assert_allclose(g["percentile"].to_numpy(), expect, rtol=0, atol=1e-9)
        assert 0 < g["percentile"].min() and g["percentile"].max() <= 100.0
    assert by["percentile"].max()["purchase"] > 99


def test_below_the_threshold_every_shopper_is_in_every_window(demo_copy, monkeypatch):
    """(d) At or below MAX_WINDOW_SHOPPERS nothing is sampled: the windows are everyone's and
    the figures are exactly those of a run with no threshold at all; one shopper more than the
    threshold and the windows are a sample of exactly that many."""
    m, calls, stored, end = _run_stage(demo_copy, monkeypatch, 600)
    m2, _, stored2, _ = _run_stage(demo_copy, monkeypatch, 10**9)
    assert "sampled" not in m and all(u is None for _, u in calls)
    assert m["scores"] == m2["scores"]
    pd.testing.assert_frame_equal(stored, stored2)
    # the whole shop's windows: every shopper with a history before the backtest's cut-off
    assert (m["scores"]["purchase"]["backtest_shoppers"],
            m["scores"]["purchase"]["training_rows"]) == (582, 1849)
    m3, calls3, stored3, _ = _run_stage(demo_copy, monkeypatch, 599)
    assert (m3["sampled"]["shoppers"], m3["sampled"]["of"]) == (599, 600)
    assert all(len(u) == 599 for c, u in calls3 if c < end)
    assert len(stored3) == len(stored) == 1800


def test_push_reasons_are_the_largest_drops_when_a_feature_is_set_to_the_median():
    """``push_reasons`` (which rescored only shoppers not already at the median) names, per
    shopper, the features whose move to the shop's median lowers the probability most (by 0.01
    or more), exactly as rescoring everyone with each feature set to its median does."""
    from core.predictions.models import LikelihoodModel
    from core.predictions.reasons import _fmt, push_reasons

    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"a": rng.integers(0, 5, n).astype(float), "b": rng.random(n),
                      "c": np.where(rng.random(n) < .3, np.nan, rng.random(n)),
                      "d": rng.integers(0, 2, n).astype(float), "e": rng.random(n)})
    y = ((X.a + 3 * X.b + X.d + rng.random(n)) > 3).astype(int).to_numpy()
    model = LikelihoodModel(seed=1).fit(X, y)
    words = {"a": "Orders", "b": "Spend", "c": "Returns", "d": "Carts"}
    got = push_reasons(model, X, words, chunk=1000)
    one = model.model_.calibrated_classifiers_[0]
    cols = list(model.columns_)
    base = one.predict_proba(X[cols].to_numpy(float))[:, 1]
    drops = {}
    for c in words:
        alt = X[cols].copy()
        alt[c] = X[c].median()
        drops[c] = base - one.predict_proba(alt.to_numpy(float))[:, 1]
    for r in range(n):
        ranked = sorted(words, key=lambda c: (-drops[c][r], cols.index(c)))[:2]
        want = [f"{words[c]}: {_fmt(X.at[r, c])}" for c in ranked if drops[c][r] >= 0.01]
        assert got[r] == want, r
    assert sum(map(len, got)) > n // 3   # most shoppers get a reason
    # without the trees' split points or leaves (another model): the plain rescoring
    import core.predictions.reasons as reasons

    assert reasons._split_points(one.estimator, len(cols)) is not None
    assert reasons._trees(one, len(cols), X[cols].to_numpy(float)[:64]) is not None
    plain = getattr(reasons, "_trees"), getattr(reasons, "_split_points")
    reasons._trees = reasons._split_points = lambda *a: None
    try:
        assert push_reasons(model, X, words, chunk=1000) == got
    finally:
        reasons._trees, reasons._split_points = plain


def test_predictions_made_in_the_background_on_a_snapshot_are_the_same(demo_copy, monkeypatch):
    """The build makes the predictions on a snapshot of its store in a background worker while
    it trains its encoder and fits the segments: the same metrics and stored scores as making
    them in the build process, the snapshot is gone afterwards, a worker that dies still leaves
    the predictions, and a shop above ``BACKGROUND_MAX_SHOPPERS`` makes them in the build."""
    from concurrent.futures import Future

    import core.predictions.background as bg
    from core.predictions.stage import compute_predictions

    monkeypatch.delenv("SEGSTUDIO_IN_PROCESS", raising=False)

    def stored(con):
        return con.execute("SELECT * FROM predictions WHERE run_id = 1 "
                           "ORDER BY score, user_id").df()

    with demo_copy.write() as con:
        here, rows = compute_predictions(con, 1, seed=7)
        job = bg.start_predictions(con, 1, n_shoppers=600, seed=7)
        assert job.future is not None and job.snapshot.exists()  # 2+ cores: a worker took it
        there = bg.finish_predictions(con, job)
        in_worker = stored(con)
        dead = bg.start_predictions(con, 1, n_shoppers=600, seed=7)
        dead.future.result()
        dead.future = Future()
        dead.future.set_exception(RuntimeError("worker killed"))
        fallback = bg.finish_predictions(con, dead)
        after_failure = stored(con)
        monkeypatch.setattr(bg, "BACKGROUND_MAX_SHOPPERS", 599)
        big = bg.start_predictions(con, 1, n_shoppers=600, seed=7)
        assert big.future is None and big.snapshot is None
        in_build = bg.finish_predictions(con, big)
    assert there["made_in"] == "background worker" and not job.snapshot.exists()
    assert fallback["made_in"] == "build process (background worker failed: RuntimeError)"
    assert in_build["made_in"] == "build process"
    assert set(here["scores"]) == {"purchase", "churn", "value"}
    assert there["scores"] == here["scores"] == fallback["scores"] == in_build["scores"]
    expected = (pd.concat(rows[0], ignore_index=True)
                .sort_values(["score", "user_id"], ignore_index=True))
    assert len(in_worker) == len(expected) == 3 * 600
    pd.testing.assert_frame_equal(in_worker[["user_id", "score", "value", "percentile"]],
                                  expected[["user_id", "score", "value", "percentile"]],
                                  check_dtype=False)
    pd.testing.assert_frame_equal(in_worker, after_failure)
    assert not list(demo_copy.path.parent.glob("*.predict.tmp*"))
