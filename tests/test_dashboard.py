"""Every dashboard page renders without exceptions and shows its key content (Streamlit AppTest).

Runs on the hand-made store of test_explore (exact figures) and on the built demo shop.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from test_explore import USERS

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = ["views/overview.py", "views/segment_map.py", "views/segment_detail.py", "views/compare.py",
         "views/user_profile.py", "views/rules.py", "views/recommend.py", "views/export.py",
         "views/model.py", "views/changes.py", "views/audiences.py"]


def open_page(page: str, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for k, v in (state or {}).items():
        at.session_state[k] = v
    if page != "views/overview.py":
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [t.value for t in at.title] + [h.value for h in at.subheader]
    parts += [c.value for c in at.caption] + [i.value for i in at.info] + [s.value for s in at.success]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(map(str, parts))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_overview_shows_totals_segments_and_data_health(tiny_db):
    at = open_page("views/overview.py")
    assert at.title[0].value == "Overview"
    assert metric(at, "Shoppers") == "12" and metric(at, "Net revenue") == "£258.00"
    assert metric(at, "Quarantined") == "2" and metric(at, "Rows read") == "62"
    t = texts(at)
    assert "Gift buyers" in t and "Kitchen regulars" in t and "Every ingest reconciles" in t
    assert "Showing build 1" in t
    # the reasons shown are the event files' (they add up to the Quarantined figure)
    assert "Event files (the Quarantined figure above):" in t
    assert "not counted above" not in t                   # no side file quarantined anything


def test_currency_is_a_setting(tiny_db, monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_CURRENCY", "€")
    at = open_page("views/overview.py")
    assert metric(at, "Net revenue") == "€258.00"


def test_every_page_renders(tiny_db):
    for page in PAGES:
        at = open_page(page)
        assert texts(at), page


def test_every_page_renders_on_the_lifecycle_lens_narrowed_to_a_taste_segment(tiny_db):
    for page in PAGES:
        at = open_page(page, {"lens": "lifecycle", "scope_segment": 1})
        assert at.sidebar.radio(key="lens").value == "lifecycle", page
        if page not in ("views/rules.py", "views/recommend.py", "views/model.py",
                        "views/audiences.py"):
            assert "Only shoppers in the taste segment **Kitchen regulars**" in texts(at), page


def test_map_selection_panel_and_saving(tiny_db):
    from core import explore as ex

    at = open_page("views/segment_map.py", {"selected_users": USERS[:6]})
    t = texts(at)
    assert "Your selection" in t and metric(at, "Shoppers") == "6"
    assert metric(at, "Of all shoppers") == "50.0%"
    at.text_input(key="save_name").input("Left cluster")
    next(b for b in at.button if b.label == "Save as a segment").click()
    at.run()
    assert not at.exception
    assert any("Saved “Left cluster” (6 shoppers)" in s.value for s in at.success)
    con = tiny_db.read()
    assert ex.saved_members(con, ex.find_saved(con, "Left cluster")["saved_id"]) == USERS[:6]
    # the same name again is refused with a helpful message
    next(b for b in at.button if b.label == "Save as a segment").click()
    at.run()
    assert any("already exists" in e.value for e in at.error)
    # ...and the saved segment is offered on Compare and Export
    comp = open_page("views/compare.py")
    assert any("Saved: Left cluster (6 shoppers)" in o for o in comp.multiselect[0].options)
    exp = open_page("views/export.py")
    assert any("Saved: Left cluster" in o for o in exp.selectbox(key="export_source").options)


def test_map_without_selection_invites_one(tiny_db):
    at = open_page("views/segment_map.py")
    assert "Select a group" in texts(at)
    assert at.selectbox(key="map_color_by").options[:3] == ["Taste segment", "Lifecycle stage", "Main theme"]
    at.selectbox(key="map_color_by").select("Net spend").run()
    assert not at.exception


def test_map_names_segments_on_the_map_and_finds_a_shopper(tiny_db):
    import json

    at = open_page("views/segment_map.py")
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = sorted(a["text"] for a in fig["layout"].get("annotations", []))
    assert names == ["<b>Gift buyers</b>", "<b>Kitchen regulars</b>"]
    at.text_input(key="map_find").input("u07").run()
    assert "Shopper u07 is in Kitchen regulars." in texts(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["customdata"][0][0] for t in fig["data"] if t.get("name") == "Found shopper"] == ["u07"]
    at.text_input(key="map_find").input("nobody").run()
    assert "No shopper on this map matches \u201cnobody\u201d." in texts(at)


def test_sampled_map_shades_where_every_shopper_is(tiny_db, monkeypatch):
    import json

    monkeypatch.setenv("SEGSTUDIO_MAP_POINTS", "5")
    at = open_page("views/segment_map.py")
    assert "5 of 12 shoppers are drawn as points" in texts(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    heat = [t for t in fig["data"] if t["type"] == "heatmap"]
    shown = sum(len(t["customdata"]) for t in fig["data"] if t["type"] == "scattergl")
    counts = [int(v.split()[0]) for row in heat[0]["text"] for v in row if v]
    assert shown == 5 and sum(counts) == 12  # the shading counts all 12, not the 5 drawn


def test_segment_detail_and_profile_content(tiny_db):
    at = open_page("views/segment_detail.py", {"segment_id": 1})
    assert "Kitchen regulars" in texts(at) and metric(at, "Shoppers") == "6"
    mix = next(m.value for m in at.markdown if "Its shoppers by lifecycle stage" in m.value)
    assert "Loyal high value 4 (67%)" in mix and "At risk 2 (33%)" in mix
    at = open_page("views/user_profile.py", {"profile_user": "u07"})
    t = texts(at)
    assert "Shopper u07" in t and "Kitchen regulars" in t
    assert metric(at, "Orders") == "2"
    assert "Main theme: Tea time" in t


def test_profile_says_when_the_main_theme_is_a_mixed_group(tiny_db):
    with tiny_db.write() as con:
        con.execute("UPDATE user_shares SET value = 'Mixed: tea, time' WHERE dimension = 'theme' "
                    "AND value = 'Tea time'")
    t = texts(open_page("views/user_profile.py", {"profile_user": "u07"}))
    assert "Main theme: none clear (most of what they bought is in a mixed group of items: " \
        "tea, time)" in t


def test_rules_filters(tiny_db):
    at = open_page("views/rules.py")
    assert "4 rules" in texts(at)
    at.text_input(key="rules_search").input("teapot").run()
    assert "2 rules" in texts(at)
    at.text_input(key="rules_search").input("no such thing").run()
    assert "No rules match" in texts(at)


def test_rules_page_says_when_the_build_found_no_rules(tiny_db):
    """A build that mined the baskets and found no rule says so with its figures, instead of
    promising rules "after the next build"."""
    import json

    with tiny_db.write() as con:
        run_id, m = con.execute("SELECT run_id, metrics FROM runs WHERE kind = 'build' "
                                "ORDER BY run_id DESC LIMIT 1").fetchall()[0]
        m = json.loads(m) if isinstance(m, str) else dict(m or {})
        m["rules"] = {"n_baskets": 1257, "min_support": 0.004, "min_confidence": 0.3,
                      "n_rules": 0, "n_segment_rules": 0}
        con.execute("UPDATE runs SET metrics = ? WHERE run_id = ?", [json.dumps(m), run_id])
        con.execute("DELETE FROM rules WHERE run_id = ?", [run_id])
    t = texts(open_page("views/rules.py"))
    assert "No items are bought together often enough for a rule" in t
    assert ("looked through 1,257 baskets, for the whole shop and each taste segment, and found "
            "no pair of items bought together often enough (in at least 0.4% of baskets, with "
            "the second item in at least 30% of the baskets holding the first)") in t
    assert "not in this build yet" not in t


def test_recommend_page_previews_side_by_side(tiny_db):
    at = open_page("views/recommend.py", {"profile_user": "u01"})
    t = texts(at)
    assert "**Hybrid (blend)**" in t and "**Best sellers**" in t and "1. Tea mug" in t
    at.segmented_control(key="rec_mode").set_value("A segment").run()
    assert not at.exception and "Popular in the segment" in texts(at)


def test_model_page_shows_quality(tiny_db):
    at = open_page("views/model.py")
    assert metric(at, "Silhouette") == "0.610" and metric(at, "Stability (ARI)") == "0.930"


def test_empty_states(tmp_path, monkeypatch):
    from core.store import Store

    monkeypatch.setenv("SEGSTUDIO_DB", str(tmp_path / "none.duckdb"))
    at = open_page("views/overview.py")
    assert "No store yet" in texts(at)
    store = Store(tmp_path / "unbuilt.duckdb")
    with store.write() as con:
        con.execute("INSERT INTO users VALUES ('u1', '{}', NULL, 1)")
    monkeypatch.setenv("SEGSTUDIO_DB", str(store.path))
    for page in PAGES:
        at = open_page(page)
        assert "No build yet: run `segstudio build`" in texts(at), page


@pytest.mark.slow
def test_every_page_on_the_built_demo_shop(built_demo_store, monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_DB", str(built_demo_store.path))
    monkeypatch.delenv("SEGSTUDIO_CURRENCY", raising=False)
    at = open_page("views/overview.py")
    assert metric(at, "Shoppers") == "600"
    assert "Every ingest reconciles" in texts(at)
    for page in PAGES[1:]:
        at = open_page(page)
        assert "No build yet" not in texts(at), page
    con = built_demo_store.read()
    some = [r[0] for r in con.execute("SELECT user_id FROM user_map ORDER BY x LIMIT 40").fetchall()]
    at = open_page("views/segment_map.py", {"selected_users": some})
    assert metric(at, "Shoppers") == "40"


def test_serve_and_export_commands(tiny_db, tmp_path, capsys):
    import csv

    from core.cli import main
    from core.cli.serve import prepare_demo, streamlit_command
    from core.progress import NULL

    # a store with data and a build: --demo leaves it alone
    assert prepare_demo(tiny_db, users=50, seed=1, device="cpu", text_model="x", progress=NULL) == \
        {"generated": False, "built": False}
    cmd = streamlit_command(8600, "localhost")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("dashboard/server.py")
    assert main(["serve", "--db", str(tiny_db.path), "--port", "8600", "--dry-run"]) == 0
    assert "--server.port 8600" in capsys.readouterr().out

    out = tmp_path / "seg1.csv"
    assert main(["export", "--db", str(tiny_db.path), "--segment", "1", "--out", str(out),
                 "--columns", "id", "segment", "--quiet"]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["user_id", "segment_id", "segment_name"] and len(rows) == 7
    other = tmp_path / "other.csv"
    assert main(["export", "--db", str(tiny_db.path), "--segment", "5", "--out", str(other)]) == 2
    assert "Segment 5 is not in build 1 (taste lens)" in capsys.readouterr().err
    assert main(["export", "--db", str(tiny_db.path), "--saved", "Nope", "--out", str(other)]) == 2
    assert "No saved segment called 'Nope'" in capsys.readouterr().err
    assert not other.exists()


# ------------------------------------------------------------------------------ lenses (issue 8)
def serve(store, monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_DB", str(store.path))
    for var in ("SEGSTUDIO_CONFIG", "SEGSTUDIO_CURRENCY", "SEGSTUDIO_SECRETS"):
        monkeypatch.delenv(var, raising=False)


def card_titles(at: AppTest) -> list[str]:
    import re

    return [re.sub(r"<[^>]+>", "", m.value) for m in at.markdown
            if "class=\"seg-card-title\"" in m.value]


def test_lens_switch_changes_the_segments_on_every_page(tiny_db):
    at = open_page("views/overview.py")
    assert card_titles(at) == ["Kitchen regulars", "Gift buyers"]  # most revenue first
    assert at.sidebar.radio(key="lens").value == "taste"
    at.sidebar.radio(key="lens").set_value("lifecycle").run()
    assert not at.exception
    assert card_titles(at) == ["Loyal high value", "At risk", "Active repeat buyers"]
    assert "Lifecycle stages" in texts(at)
    assert "Rule: 2 or more orders, the last 15 to 19 days ago" in texts(at)
    # the choice is kept across pages
    at.switch_page("views/segment_detail.py").run()
    assert not at.exception
    assert at.selectbox(key="detail_segment_lifecycle").options == [
        "Loyal high value (4 shoppers)", "At risk (4 shoppers)", "Active repeat buyers (4 shoppers)"]
    assert "found for each taste segment" in texts(at)  # no lifecycle rules: said, not empty
    at.switch_page("views/compare.py").run()
    assert at.multiselect(key="compare_groups_lifecycle").options[:3] == [
        "Loyal high value (4 shoppers)", "At risk (4 shoppers)", "Active repeat buyers (4 shoppers)"]


def test_overview_cross_table_and_scope_filter(tiny_db):
    at = open_page("views/overview.py")
    assert "Lifecycle × taste" in texts(at)
    table = next(d.value for d in at.dataframe if "Lifecycle × taste" in d.value.columns)
    assert list(table["Lifecycle × taste"]) == [
        "Loyal high value × Kitchen regulars", "At risk × Kitchen regulars",
        "Active repeat buyers × Gift buyers", "At risk × Gift buyers"]
    assert list(table["Shoppers"]) == ["4", "2", "4", "2"]
    assert list(table["Revenue"]) == ["£128.00", "£64.00", "£44.00", "£22.00"]
    # the sidebar narrows every page to one segment of the other lens
    scope = at.sidebar.selectbox(key="scope_segment")
    assert scope.options == ["Everyone", "Loyal high value (4)", "At risk (4)",
                             "Active repeat buyers (4)"]
    scope.select(3).run()
    assert not at.exception
    assert "Only shoppers in the lifecycle stage **At risk**" in texts(at)
    assert [m.value for m in at.metric if m.label == "Revenue"] == ["£64.00", "£22.00"]
    assert [m.value for m in at.metric if m.label == "Shoppers"][-2:] == ["2", "2"]
    # a pair of the cross table is one click away
    at = open_page("views/overview.py")
    at.selectbox(key="cross_pick").select("At risk × Gift buyers").run()
    next(b for b in at.button if b.key == "cross_open").click().run()
    assert not at.exception
    assert "Gift buyers" in texts(at) and metric(at, "Shoppers") == "2"
    assert "Only shoppers in the lifecycle stage **At risk**" in texts(at)


def test_weak_segments_warning_in_plain_words(tmp_path, monkeypatch):
    from test_explore import make_tiny_store

    serve(make_tiny_store(tmp_path / "weak.duckdb", lifecycle_stability=0.55), monkeypatch)
    at = open_page("views/overview.py")
    assert not at.warning  # the taste segments are sound
    at.sidebar.radio(key="lens").set_value("lifecycle").run()
    w = [x.value for x in at.warning]
    assert w == ["Treat these lifecycle stages with care, because they are unstable: refitting moves many "
                 "shoppers (agreement 0.55 on a 0-1 scale; 0.7 or more is sound). Lifecycle stages "
                 "are rules on recency, orders and spend; with little history (few repeat buyers) "
                 "they move easily. Load a longer stretch of history."]
    at.switch_page("views/segment_detail.py").run()
    assert [x.value for x in at.warning] == w
    model = open_page("views/model.py")
    assert any(x.value.startswith("Lifecycle segments are weak: they are unstable")
               for x in model.warning)


def test_dimensions_the_data_lacks_are_hidden(tmp_path, monkeypatch):
    from test_explore import make_tiny_store

    serve(make_tiny_store(tmp_path / "bare.duckdb", bare=True), monkeypatch)
    at = open_page("views/overview.py")
    assert [m.label for m in at.metric][:4] == ["Shoppers", "Items", "Events", "Orders"]
    assert "Net revenue" not in [m.label for m in at.metric]
    assert "Revenue" not in [m.label for m in at.metric]
    assert "records no prices" in texts(at)
    at = open_page("views/compare.py")
    assert at.segmented_control(key="compare_dim").options == ["Themes", "Items"]
    assert "Themes: share of each group's activity" in texts(at)
    at.segmented_control(key="compare_dim").set_value("item").run()
    assert "Items: share of each group's shoppers who bought them" in texts(at)
    assert "median spend" not in texts(at)
    at = open_page("views/segment_detail.py", {"segment_id": 0})
    t = texts(at)
    assert "**Categories**" not in t and "**Brands**" not in t and "**Themes**" in t
    assert "Revenue" not in [m.label for m in at.metric]
    assert metric(at, "Busiest hours") == "10:00–12:00"
    behaviour = next(d.value for d in at.dataframe if "Behaviour (median)" in d.value.columns)
    assert "Net spend" not in set(behaviour["Behaviour (median)"])
    at = open_page("views/user_profile.py", {"profile_user": "u07"})
    assert "**Categories**" not in texts(at) and "**Themes**" in texts(at)
    assert "Net spend" not in [m.label for m in at.metric]
    for page in PAGES:  # and nothing breaks anywhere for want of prices or categories
        open_page(page)


def test_model_page_shows_quality_per_lens_and_lifecycle_rules(tiny_db):
    at = open_page("views/model.py")
    q = next(d.value for d in at.dataframe if "Measure" in d.value.columns).set_index("Measure")
    assert q.loc["Stability between seeds (0-1)", "Taste"] == "0.93"
    assert q.loc["Predicts the next basket: NDCG@10 (95% interval)", "Taste"] == "0.300 (0.290–0.310)"
    assert q.loc["… the whole shop's best-sellers", "Lifecycle"] == "0.200"
    assert q.loc["Segments", "Lifecycle"] == "3"
    assert "**Taste sizes:** Kitchen regulars 6 · Gift buyers 6" in texts(at)
    rules = next(d.value for d in at.dataframe if "Rule" in d.value.columns)
    assert list(rules["Stage"]) == ["Loyal high value", "Active repeat buyers", "At risk"]


def test_a_build_with_one_lens_has_no_switch(tmp_path, monkeypatch):
    from test_explore import make_tiny_store

    store = make_tiny_store(tmp_path / "one.duckdb")
    with store.write() as con:
        con.execute("DELETE FROM lifecycle_segments")
        con.execute("DELETE FROM lifecycle_info")
    serve(store, monkeypatch)
    for page in PAGES:
        at = open_page(page)
        assert not at.sidebar.radio, page
    at = open_page("views/overview.py")
    assert card_titles(at) == ["Kitchen regulars", "Gift buyers"] and "Lifecycle × taste" not in texts(at)
    at = open_page("views/segment_map.py")
    assert at.selectbox(key="map_color_by").options[:2] == ["Taste segment", "Main theme"]


def test_a_link_can_open_a_lens_and_a_filter(tiny_db):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["lens"] = "lifecycle"
    at.query_params["scope"] = "1"  # taste segment 1, Kitchen regulars
    at.run()
    assert not at.exception
    assert card_titles(at) == ["Loyal high value", "At risk"]  # no active kitchen shopper
    assert [m.value for m in at.metric if m.label == "Shoppers"][-2:] == ["4", "2"]
    assert "Only shoppers in the taste segment **Kitchen regulars**" in texts(at)


def test_map_selection_shows_only_what_sets_it_apart(tiny_db):
    at = open_page("views/segment_map.py", {"selected_users": USERS[:6]})
    t = texts(at)
    assert "**Categories**" in t and "**Themes**" in t and "**Brands**" in t
    mixed = open_page("views/segment_map.py", {"selected_users": USERS[:3] + USERS[6:9]})
    assert "Nothing sets these shoppers clearly apart" in texts(mixed)
    assert "**Categories**" not in texts(mixed)


def test_export_page_exports_either_lens(tiny_db):
    at = open_page("views/export.py", {"lens": "lifecycle"})
    src = at.selectbox(key="export_source")
    assert src.options[:3] == ["Lifecycle stage: Loyal high value (4 shoppers)",
                               "Lifecycle stage: At risk (4 shoppers)",
                               "Lifecycle stage: Active repeat buyers (4 shoppers)"]
    src.select("Lifecycle stage: At risk (4 shoppers)").run()
    at.multiselect(key="export_columns").set_value(["id", "segment", "other_segment"]).run()
    assert not at.exception
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["user_id", "segment_id", "segment_name", "taste_segment_id",
                                     "taste_segment_name"]
    assert list(preview["user_id"]) == ["u05", "u06", "u07", "u08"]
    assert set(preview["segment_name"]) == {"At risk"}
    # the preview keeps the file's column names; each header's tooltip says what it holds
    at.multiselect(key="export_columns").set_value(["id", "rfm"]).run()
    helps = {k: v.get("help") for k, v in json.loads(at.dataframe[0].proto.columns).items()}
    assert list(at.dataframe[0].value.columns) == ["user_id", "recency_days", "orders", "spend",
                                                   "avg_order_value"]
    assert helps["avg_order_value"] == "Average order value before returns (£)"
    assert helps["spend"] == "Net spend (£)" and helps["user_id"] == "Customer ID"


def test_model_page_says_which_steps_of_a_very_large_build_were_sampled(tiny_db):
    """A build of a very large shop records what it sampled (the stages' own notes); the Model
    page lists each in words with the share of shoppers, and a small shop's page says nothing."""
    from core.predictions.stage import _sampled_note, encoder_note
    from core.segments.scale import sample_note
    from core.store import update_run_metrics

    at = open_page("views/model.py")
    assert not any("very large" in e.label for e in at.expander)
    with tiny_db.write() as con:
        update_run_metrics(con, 1, {
            "segments": {"sample": sample_note(100_000, 1_000_000)},
            "lifecycle": {"quality": {"sample": {"shoppers": 100_000, "of": 1_000_000,
                                                 "why": "the check runs on a sample"}}},
            "encoder": {"train_sample": {"shoppers": 5_512, "of": 1_000_000,
                                         "why": "one epoch exceeds the budget"}},
            "predictions": {"sampled": _sampled_note(20_000, 1_000_000),
                            "encoder": encoder_note(1_000_000)}})
    at = open_page("views/model.py")
    box = next(e for e in at.expander if "very large" in e.label)
    assert box.label.startswith("This shop is very large: 5 step(s)")
    t = "\n".join(m.value for m in box.markdown)
    assert "- The profile encoder learned from 5,512 of 1,000,000 shoppers (1%)" in t
    assert "- Taste segments were chosen and checked on 100,000 of 1,000,000 shoppers (10%)" in t
    assert "- The lifecycle stages' held-out check used 100,000 of 1,000,000 shoppers (10%)" in t
    assert "- Predictions were trained and backtested on 20,000 of 1,000,000 shoppers (2%)" in t
    assert ("- Predictions left out the shopping-sequence (profile encoder) features: 1,000,000 "
            "shoppers: above 200,000") in t


def test_choice_of_k_chart_draws_each_candidate_on_its_own_line():
    """The Model page's choice-of-k chart: one line per candidate (taste; taste and habits),
    sorted by k, with the chosen option marked. A shop without held-out baskets (a ratings
    file) compared its options by separation, so the chart shows the silhouette, not a zigzag
    of both candidates in one line."""
    import pandas as pd

    from dashboard import charts

    rows = [("taste", 3, 0.56, 1.00, True), ("taste_habits", 3, 0.21, 0.87, False),
            ("taste", 4, 0.39, 0.72, False), ("taste_habits", 4, 0.22, 0.99, False)]
    df = pd.DataFrame(rows, columns=["candidate", "k", "silhouette", "seed_stability", "chosen"])
    fig = charts.k_scan(df, 3)
    lines = {t.name: (list(t.x), list(t.y)) for t in fig.data}
    assert lines["Taste: separation (silhouette)"] == ([3, 4], [0.56, 0.39])
    assert lines["Taste and habits: separation (silhouette)"] == ([3, 4], [0.21, 0.22])
    assert lines["Taste: stability"] == ([3, 4], [1.00, 0.72])
    assert lines["chosen"] == ([3], [0.56])
    assert fig.layout.yaxis.title.text == "Separation (silhouette)"
    # with held-out baskets the lines are the validation NDCG@10, as before
    df["val_ndcg10"] = [0.12, 0.11, 0.13, 0.10]
    lines = {t.name: list(t.y) for t in charts.k_scan(df, 3).data}
    assert lines["Taste: predicts (NDCG@10)"] == [0.12, 0.13] and lines["chosen"] == [0.12]
