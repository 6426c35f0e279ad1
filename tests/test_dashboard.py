"""Every dashboard page renders without exceptions and shows its key content (Streamlit AppTest).

Runs on the hand-made store of test_explore (exact figures) and on the built demo shop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from test_explore import USERS

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = ["views/overview.py", "views/segment_map.py", "views/segment_detail.py", "views/compare.py",
         "views/user_profile.py", "views/rules.py", "views/recommend.py", "views/export.py",
         "views/model.py"]


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


def test_currency_is_a_setting(tiny_db, monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_CURRENCY", "€")
    at = open_page("views/overview.py")
    assert metric(at, "Net revenue") == "€258.00"


def test_every_page_renders(tiny_db):
    for page in PAGES:
        at = open_page(page)
        assert texts(at), page


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
    assert at.selectbox(key="map_color_by").options[0] == "Segment"
    at.selectbox(key="map_color_by").select("Net spend").run()
    assert not at.exception


def test_segment_detail_and_profile_content(tiny_db):
    at = open_page("views/segment_detail.py", {"segment_id": 1})
    assert "Kitchen regulars" in texts(at) and metric(at, "Shoppers") == "6"
    at = open_page("views/user_profile.py", {"profile_user": "u07"})
    t = texts(at)
    assert "Shopper u07" in t and "Kitchen regulars" in t
    assert metric(at, "Orders") == "2"


def test_rules_filters(tiny_db):
    at = open_page("views/rules.py")
    assert "4 rules" in texts(at)
    at.text_input(key="rules_search").input("teapot").run()
    assert "2 rules" in texts(at)
    at.text_input(key="rules_search").input("no such thing").run()
    assert "No rules match" in texts(at)


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
