"""Recommended products for a whole list of shoppers (campaign exports): the same lists as the
one-shopper preview, whatever the batch size or engine, in the CLI, the export and the page."""

from __future__ import annotations

import pandas as pd
import pytest

from core.recommend.bulk import BASIS, recommend_shoppers, wide
from core.recommend.previews import get_engine, preview_user
from test_recommend import _clickstream_store

SHOPPERS = ["b1", "b2", "b3", "b4", "v1", "w1", "nobody"]


def _previews(con, run_id, users, recommender, n):
    rows = []
    for u in users:
        p = preview_user(con, run_id, u, n=n, recommender=recommender)
        for rank, r in enumerate(p["recommendations"], 1):
            rows.append((u, rank, r["item_id"], r["reason"], p["recommender"], p["basis"]))
    return rows


@pytest.mark.parametrize("recommender", ["hybrid", "item_knn", "repeat", "tifu_knn",
                                         "segment_popularity", "popularity"])
def test_every_shopper_gets_what_their_preview_shows(tmp_path, monkeypatch, recommender):
    store, run_id = _clickstream_store(tmp_path)
    con = store.read()
    try:
        want = _previews(con, run_id, SHOPPERS, recommender, 3)
        for rows, wave in ((256, 8192), (1, 3)):  # one batch; one shopper a batch, 3 a wave
            monkeypatch.setattr("core.recommend.bulk.MAX_ROWS", rows)
            monkeypatch.setattr("core.recommend.bulk.WAVE", wave)
            monkeypatch.setattr("core.recommend.bulk.CELLS", 1)
            got = recommend_shoppers(con, run_id, SHOPPERS, n=3, recommender=recommender)
            assert list(got.columns) == ["user_id", "rank", "item_id", "title", "score",
                                         "reason", "recommender", "basis"]
            assert list(got[["user_id", "rank", "item_id", "reason", "recommender",
                             "basis"]].itertuples(index=False, name=None)) == want
    finally:
        con.close()


def test_browsers_and_unknown_ids_are_served_and_said_so(tmp_path):
    store, run_id = _clickstream_store(tmp_path)
    con = store.read()
    try:
        got = recommend_shoppers(con, run_id, ["nobody", "v1", "b1"], n=3,
                                 recommender="item_knn")
    finally:
        con.close()
    # kept in the order asked for
    assert got["user_id"].drop_duplicates().tolist() == ["nobody", "v1", "b1"]
    by = {u: g for u, g in got.groupby("user_id")}
    # v1 only browsed: item-kNN from the tea they carted and the mug they viewed twice
    assert by["v1"]["item_id"].tolist() == ["M", "T", "S"]
    assert set(by["v1"]["basis"]) == {"browsing"}
    # an id the build does not know: the best sellers (M, then T), marked as a fallback
    assert by["nobody"]["item_id"].tolist()[:2] == ["M", "T"]
    assert set(by["nobody"]["basis"]) == {"fallback"}
    assert set(by["nobody"]["recommender"]) == {"popularity"}
    assert set(by["b1"]["basis"]) == {"purchases"}
    w = wide(got, 3)
    assert w.loc["v1", "recommended_1"] == "Enamel mug" and w.loc["v1", "recommended_1_id"] == "M"
    assert w.loc["nobody", "recommendation_basis"] == BASIS["fallback"]
    assert list(w.columns) == ["recommended_1", "recommended_1_id", "recommended_2",
                               "recommended_2_id", "recommended_3", "recommended_3_id",
                               "recommendation_basis"]


def test_a_trained_encoder_and_hybrid_give_the_same_lists_in_batches(built_demo_store,
                                                                       monkeypatch):
    """The demo build's hybrid (with the profile encoder): 120 shoppers in batches of 7 equal
    their one-shopper previews, scores to the last digit."""
    con = built_demo_store.read()
    try:
        from core.store import latest_run

        run_id = int(latest_run(con, "build")["run_id"])
        users = [r[0] for r in con.execute(
            "SELECT user_id FROM segments WHERE run_id = ? ORDER BY user_id LIMIT 120",
            [run_id]).fetchall()]
        eng = get_engine(con, run_id)
        assert "encoder" in eng.recs
        monkeypatch.setattr("core.recommend.bulk.MAX_ROWS", 7)
        monkeypatch.setattr("core.recommend.bulk.CELLS", 1)
        monkeypatch.setattr("core.recommend.bulk.WAVE", 50)
        for name in ("hybrid", "encoder"):
            got = recommend_shoppers(con, run_id, users, n=4, recommender=name)
            assert len(got) == 4 * len(users)
            for u in users[::13]:
                p = preview_user(con, run_id, u, n=4, recommender=name)
                g = got[got["user_id"] == u]
                assert g["item_id"].tolist() == [r["item_id"] for r in p["recommendations"]]
                assert g["score"].tolist() == [r["score"] for r in p["recommendations"]]
                assert g["reason"].tolist() == [r["reason"] for r in p["recommendations"]]
    finally:
        con.close()


def test_export_cli_adds_recommended_products(tmp_path, capsys):
    from core.cli import main

    store, run_id = _clickstream_store(tmp_path)
    out = tmp_path / "tea.csv"
    assert main(["export", "--db", str(store.path), "--segment", "1", "--out", str(out),
                 "--columns", "id", "segment", "--recommend", "2", "--campaign", "--quiet"]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["Exported segment", "Definition", "Customer ID",
                                "Segment number", "Segment", "Recommended product 1",
                                "Recommended product 1 (id)", "Recommended product 2",
                                "Recommended product 2 (id)", "Recommended from"]
    assert df["Customer ID"].tolist() == ["b1", "b2", "b3", "b4", "v1"]
    v1 = df[df["Customer ID"] == "v1"].iloc[0]
    con = store.read()
    try:
        want = preview_user(con, run_id, "v1", n=2)["recommendations"]
    finally:
        con.close()
    assert [v1["Recommended product 1 (id)"], v1["Recommended product 2 (id)"]] == \
        [r["item_id"] for r in want]
    assert v1["Recommended from"] == "what they looked at"
    assert set(df["Recommended from"][:4]) == {"their purchases"}
    # bad requests say the fix, and nothing is written
    for args, msg in ((["--recommend", "0"], "give 1 to 20 products per shopper"),
                      (["--recommend", "2", "--workers", "3"], "are for --engine ray")):
        bad = tmp_path / "bad.csv"
        assert main(["export", "--db", str(store.path), "--segment", "1", "--out", str(bad),
                     *args]) == 2
        assert msg in capsys.readouterr().err and not bad.exists()


def test_export_page_adds_recommended_products_and_sends_long_lists_to_the_cli(
        tmp_path, monkeypatch):
    from test_dashboard import open_page

    store, run_id = _clickstream_store(tmp_path)
    monkeypatch.setenv("SEGSTUDIO_DB", str(store.path))
    for var in ("SEGSTUDIO_CONFIG", "SEGSTUDIO_CURRENCY", "SEGSTUDIO_SECRETS"):
        monkeypatch.delenv(var, raising=False)
    at = open_page("views/export.py")
    at.selectbox(key="export_source").set_value(next(
        o for o in at.selectbox(key="export_source").options if "Tea lovers" in o)).run()
    at.multiselect(key="export_columns").select("recommendations").run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="export_n_recs").set_value(2).run()
    preview = at.dataframe[0].value
    assert preview["user_id"].tolist() == ["b1", "b2", "b3", "b4", "v1"]
    con = store.read()
    try:
        want = [preview_user(con, run_id, u, n=2)["recommendations"] for u in preview["user_id"]]
    finally:
        con.close()
    assert preview["recommended_1_id"].tolist() == [w[0]["item_id"] for w in want]
    # each buyer bought two of the three products: one is left to suggest (never the voucher)
    assert [None if pd.isna(t) else t for t in preview["recommended_2"]] == \
        [w[1]["title"] if len(w) > 1 else None for w in want]
    assert [len(w) for w in want] == [1, 1, 1, 1, 2]
    assert preview["recommendation_basis"].tolist()[-1] == "what they looked at"
    # a list longer than the page computes: the columns are left out and the command is given
    from dashboard.bulk_recs import max_shoppers

    assert [max_shoppers(n) for n in (3_927, 50_000, 500_000)] == [20_371, 1_600, 1_000]
    # the clickstream shop has 4 items: 12 scores allow 3 shoppers
    monkeypatch.setattr("dashboard.bulk_recs.BUDGET", 12)
    monkeypatch.setattr("dashboard.bulk_recs.MIN_SHOPPERS", 1)
    at.number_input(key="export_n_recs").set_value(3).run()
    assert not at.exception
    info = " ".join(i.value for i in at.info)
    assert "up to 3 shoppers of this shop; this one has 5" in info
    assert "segstudio export --segment N --out list.csv --recommend 3 --campaign" in info
    assert "recommended_1" not in at.dataframe[0].value.columns
