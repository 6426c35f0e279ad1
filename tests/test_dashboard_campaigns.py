"""The pages for time, campaigns and predictions (Streamlit AppTest) on the hand-made store of
test_explore: trends and migration between two builds, the segment builder's live count, saving
and freezing an audience with a hold-out, and prediction scores on the profile, map and Model page."""

from __future__ import annotations

from test_dashboard import metric, open_page, texts
from test_explore import USERS


def _second_build(store, moved=("u06",)) -> None:
    """Build 2: the same shoppers, with ``moved`` now in the other taste segment."""
    with store.write() as con:
        con.execute("INSERT INTO runs (run_id, kind, status, started_at, finished_at, params, "
                    "metrics) SELECT 2, kind, status, started_at, finished_at, params, metrics "
                    "FROM runs WHERE run_id = 1")
        for t in ("user_features", "lifecycle_segments", "segment_info", "lifecycle_info",
                  "user_map", "profiles", "theme_info", "item_themes", "user_shares",
                  "segment_traits"):
            con.execute(f"INSERT INTO {t} SELECT * REPLACE (2 AS run_id) FROM {t} WHERE run_id = 1")
        con.execute("INSERT INTO segments SELECT 2, user_id, CASE WHEN list_contains(?, user_id) "
                    "THEN 1 - segment_id ELSE segment_id END, distance FROM segments "
                    "WHERE run_id = 1", [list(moved)])


def test_changes_page_shows_trends_and_asks_for_a_second_build(tiny_db):
    at = open_page("views/changes.py")
    t = texts(at)
    assert "Trends" in t and "One build so far" in t
    assert len(at.get("plotly_chart")) == 1


def test_migration_between_two_builds(tiny_db):
    _second_build(tiny_db)
    at = open_page("views/changes.py")
    assert metric(at, "In both builds") == "12"
    assert metric(at, "Stayed") == "11" and metric(at, "Moved") == "1"
    assert metric(at, "New shoppers") == "0"
    assert len(at.get("plotly_chart")) == 2          # the trend and the Sankey
    flows = at.dataframe[-1].value
    gift_to_kitchen = flows[(flows["from_segment"] == "Gift buyers")
                            & (flows["to_segment"] == "Kitchen regulars")]
    assert gift_to_kitchen["shoppers"].tolist() == [1]


def test_builder_counts_saves_and_freezes_with_a_holdout(tiny_db):
    at = open_page("views/audiences.py")
    at.selectbox(key="b_kind").set_value("segment").run()
    at.selectbox(key="b_seg").set_value(next(o for o in at.selectbox(key="b_seg").options
                                             if o.startswith("Gift buyers"))).run()
    at.button(key="b_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert metric(at, "Shoppers who match") == "6"
    # narrow it: NOT from France (u01, u04 are French: every third shopper from the first)
    at.selectbox(key="b_kind").set_value("attribute").run()
    at.selectbox(key="b_attr").set_value("country").run()
    at.multiselect(key="b_attr_vals").select("France").run()
    at.checkbox(key="b_not").check().run()
    at.button(key="b_add").click().run()
    assert metric(at, "Shoppers who match") == "4"
    assert "in taste segment 'Gift buyers' and not country is France" in texts(at)
    at.text_input(key="b_save_name").input("Gift buyers outside France").run()
    at.button(key="b_save").click().run()
    assert "Saved 'Gift buyers outside France' (4 shoppers)." in texts(at)
    at.text_input(key="b_aud_name").input("Gift push").run()
    at.slider(key="b_hold").set_value(25).run()
    at.button(key="b_freeze").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Audience 1 'Gift push' frozen." in texts(at)
    con = tiny_db.read()
    try:
        groups = dict(con.execute("SELECT grp, count(*) FROM records.audience_members "
                                  "GROUP BY grp").fetchall())
        saved = con.execute("SELECT definition FROM records.saved_segments").fetchone()[0]
    finally:
        con.close()
    assert groups == {"treated": 3, "holdout": 1}
    assert '"mode": "dynamic"' in saved and '"kind": "attribute"' in saved
    assert "Gift push" in at.selectbox(key="aud_pick").value.name


def _predictions(store) -> None:
    with store.write() as con:
        for i, u in enumerate(USERS):
            p = 0.05 + 0.05 * i
            con.execute("INSERT INTO predictions VALUES (1, ?, 'purchase', ?, ?, ?)",
                        [u, p, 100.0 * (i + 1) / len(USERS),
                         ["orders in the last 90 days: 2"] if u == "u12" else []])
        con.execute("INSERT INTO prediction_backtest VALUES "
                    "(1, 'purchase', 'Likely to buy', 'Probability of at least one order in the "
                    "next 30 days.', 30, 'auc', 0.74, 0.68, 0.72, 0.76, 0.66, 0.70, 4097, 0.337),"
                    "(1, 'purchase', 'Likely to buy', 'Probability of at least one order in the "
                    "next 30 days.', 30, 'lift_top10', 2.43, 1.62, NULL, NULL, NULL, NULL, 4097, "
                    "0.337)")
        con.execute("INSERT INTO prediction_reliability VALUES (1, 'purchase', 'model', 1, 0.15, "
                    "0.14, 900), (1, 'purchase', 'baseline', 1, 0.2, 0.14, 900)")


def test_predictions_on_the_profile_map_and_model_page(tiny_db):
    _predictions(tiny_db)
    at = open_page("views/user_profile.py", {"profile_user": "u12"})
    assert metric(at, "Likely to buy") == "60%"
    assert "top 1% of shoppers · orders in the last 90 days: 2" in texts(at)
    at = open_page("views/segment_map.py")
    assert "Likely to buy (prediction)" in at.selectbox(key="map_color_by").options
    at.selectbox(key="map_color_by").set_value("Likely to buy (prediction)").run()
    assert not at.exception
    at = open_page("views/model.py")
    t = texts(at)
    assert "Predictions" in t and "Tested on 4,097 shoppers, 34% of whom did it." in t
    table = next(d.value for d in at.dataframe if "Baseline" in d.value.columns)
    assert table["Model"].tolist()[:2] == ["0.740 (0.720–0.760)", "2.43×"]
    assert table["Better"].tolist()[:2] == ["model", "model"]


def test_exports_carry_the_prediction_scores(tiny_db):
    from core.explore import export_frame

    _predictions(tiny_db)
    con = tiny_db.read()
    try:
        f = export_frame(con, 1, ["u01", "u12"], ["id", "predictions"])
    finally:
        con.close()
    assert list(f.columns) == ["user_id", "purchase_probability", "purchase_pct"]
    assert f.values.tolist() == [["u01", 0.05, 8.33], ["u12", 0.6, 100.0]]


def test_the_sidebar_date_range_filters_the_figures(tiny_db):
    from datetime import date

    at = open_page("views/overview.py")
    assert metric(at, "Net revenue") == "£258.00" and metric(at, "Orders") == "24"
    # every shopper ordered the same basket once in January and once in February 2024
    at = open_page("views/overview.py", {"date_range": (date(2024, 1, 10), date(2024, 1, 31))})
    assert metric(at, "Net revenue") == "£129.00" and metric(at, "Orders") == "12"
    assert "Figures count only 10 Jan 2024 to 31 Jan 2024" in texts(at)
    at = open_page("views/user_profile.py", {"date_range": (date(2024, 2, 1), date(2024, 2, 19)),
                                             "profile_user": "u01"})
    assert not at.exception


def test_export_page_for_a_campaign_tool_and_its_log(tiny_db):
    at = open_page("views/export.py")
    at.toggle(key="export_campaign").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    preview = at.dataframe[0].value
    assert list(preview.columns)[:3] == ["Exported segment", "Definition", "Customer ID"]
    assert str(preview["Orders"].dtype) == "Int64"
    assert "JSON lines (one payload per shopper)" in at.radio(key="export_format").options
    assert "No exports recorded yet" in texts(at)


def test_recommender_chosen_per_segment_on_the_model_and_recommend_pages(tiny_db):
    import json

    bandit = {"new_items": {
        "shoppers": 150, "arms": ["item_knn", "popularity"], "best_single": "item_knn",
        "totals": {"policy": 40.0, "best single": 36.0, "uniform random": 25.0},
        "curve": {"step": [50, 100, 150], "policy": [12, 27, 40], "best single": [12, 24, 36],
                  "uniform random": [8, 17, 25]},
        "segments": {"Gift buyers": {"choice": "popularity", "shoppers": 70,
                                     "pulls": {"item_knn": 20, "popularity": 50},
                                     "hit_rate": {"item_knn": 0.1, "popularity": 0.3}},
                     "Kitchen regulars": {"choice": "item_knn", "shoppers": 80,
                                          "pulls": {"item_knn": 60, "popularity": 20},
                                          "hit_rate": {"item_knn": 0.35, "popularity": 0.1}}}}}
    with tiny_db.write() as con:
        m = json.loads(con.execute("SELECT metrics FROM runs WHERE run_id = 1").fetchone()[0] or "{}")
        m.setdefault("evaluate", {})["bandit"] = bandit
        con.execute("UPDATE runs SET metrics = ? WHERE run_id = 1", [json.dumps(m)])
    at = open_page("views/model.py")
    t = texts(at)
    assert "Which recommender for which segment" in t
    assert "Hits: chosen per segment 40, best single recommender" in t
    table = next(d.value for d in at.dataframe if "Chosen recommender" in d.value.columns)
    assert table["Segment"].tolist() == ["Kitchen regulars", "Gift buyers"]
    assert table["Times played"].tolist() == [60, 50]
    assert "Only 150 shoppers in the replay" in "\n".join(w.value for w in at.warning)
    at = open_page("views/recommend.py", {"rec_user_q": "u01"})
    assert not at.exception
    toggle = at.toggle(key="rec_bandit")
    assert toggle.label.startswith("Use the recommender chosen for Gift buyers")


def test_money_shows_the_stores_own_currency(tiny_db, monkeypatch):
    with tiny_db.write() as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('currency', '$')")
    at = open_page("views/overview.py")
    assert metric(at, "Net revenue") == "$258.00"
    monkeypatch.setenv("SEGSTUDIO_CURRENCY", "€")          # an explicit setting still wins
    at = open_page("views/overview.py")
    assert metric(at, "Net revenue") == "€258.00"
