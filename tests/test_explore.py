"""core.explore on a tiny hand-made store whose every figure is known."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from core import explore as ex
from core.store import Store, finish_run, latest_run, start_run

# 12 shoppers: u01-u06 in segment 0 ("Gift buyers", left of the map), u07-u12 in segment 1
# ("Kitchen regulars", right). Items: 3 gifts (G1-G3), 3 kitchen items (K1-K3).
ITEMS = [
    ("G1", "Christmas bauble", "Home > Decor > Christmas", "Jolly", 2.5),
    ("G2", "Gift wrap", "Home > Decor > Wrap", "Jolly", 1.0),
    ("G3", "=HYPERLINK(\"x\")", "Home > Decor > Christmas", "Jolly", 4.0),
    ("K1", "Tea mug", "Home > Kitchen > Mugs", "Cosy", 3.0),
    ("K2", "Teapot", "Home > Kitchen > Tea", "Cosy", 12.0),
    ("K3", "Tea towel", "Home > Kitchen > Textiles", "Cosy", 2.0),
]
USERS = [f"u{i:02d}" for i in range(1, 13)]


def make_tiny_store(path) -> Store:
    store = Store(path)
    with store.write() as con:
        for it in ITEMS:
            con.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, 1)",
                        [it[0], it[1], f"{it[1]} for you", it[2], it[3], it[4]])
        for i, u in enumerate(USERS):
            country = "United Kingdom" if i % 3 else "France"
            attrs = {"country": country, "age_band": "-25" if u == "u01" else "25-34"}
            con.execute("INSERT INTO users VALUES (?, ?, TIMESTAMP '2024-01-01', 1)",
                        [u, json.dumps(attrs)])
        eid = 0
        for i, u in enumerate(USERS):
            gift = i < 6
            basket_items = ["G1", "G2"] if gift else ["K1", "K2"]
            if i % 2 == 0:
                basket_items.append("G3" if gift else "K3")
            for b in range(2):  # two orders each
                for it in basket_items:
                    eid += 1
                    price = dict((x[0], x[4]) for x in ITEMS)[it]
                    con.execute(
                        "INSERT INTO events VALUES (?, ?, ?, 'purchase', ?, 1, ?, ?, NULL, 1, ?)",
                        [eid, u, it, f"2024-0{b + 1}-1{i % 10} 1{b}:00:00", price, f"{u}-b{b}", eid])
        con.execute("INSERT INTO ingests VALUES (1, now(), now(), 'tiny.csv', 'events', 'fp', "
                    f"{eid + 2}, {eid}, 2, 0, '{{}}')")
        con.execute("INSERT INTO quarantine VALUES (1, 'tiny.csv', 5, 'ts', 'unparseable date', '{}', 1),"
                    "(1, 'tiny.csv', 9, 'item_id', 'missing item id', '{}', 2)")
        run_id = start_run(con, "build", {"method": "kmeans", "k": 2})
        # features: monetary = spend from the events above (computed here in SQL)
        con.execute("""
            INSERT INTO user_features (run_id, user_id, recency_days, frequency, monetary,
                avg_order_value, tenure_days, return_rate, views_per_purchase, basket_size,
                evening_share, weekend_share, mean_hour, price_sensitivity, diversity, n_events, n_items)
            SELECT ?, user_id, 10 + CAST(right(user_id, 2) AS INT), count(DISTINCT basket_id),
                   sum(quantity * unit_price), sum(quantity * unit_price) / count(DISTINCT basket_id),
                   30, 0.0, NULL, count(*) / count(DISTINCT basket_id), 0.25, 0.5, 10.5, 0.0, 1.0,
                   count(*), count(DISTINCT item_id)
            FROM events GROUP BY user_id""", [run_id])
        con.execute("""
            INSERT INTO user_shares
            SELECT ?, e.user_id, 'category', split_part(i.category_path, ' > ', 2),
                   count(*) / sum(count(*)) OVER (PARTITION BY e.user_id)
            FROM events e JOIN items i USING (item_id) GROUP BY 2, 3, 4""", [run_id])
        con.execute("""
            INSERT INTO user_shares
            SELECT ?, e.user_id, 'brand', i.brand, count(*) / sum(count(*)) OVER (PARTITION BY e.user_id)
            FROM events e JOIN items i USING (item_id) GROUP BY 2, 3, 4""", [run_id])
        for i, u in enumerate(USERS):
            seg = 0 if i < 6 else 1
            x = (-5.0 if seg == 0 else 5.0) + (i % 6) * 0.1
            y = float(i % 6)
            con.execute("INSERT INTO segments VALUES (?, ?, ?, ?)", [run_id, u, seg, 0.1 * i])
            con.execute("INSERT INTO user_map VALUES (?, ?, ?, ?)", [run_id, u, x, y])
            v = [1.0, 0.0, 0.0] if seg == 0 else [0.0, 1.0, 0.0]
            v[2] = 0.01 * i
            con.execute("INSERT INTO profiles VALUES (?, ?, ?)", [run_id, u, v])
        con.execute("""INSERT INTO segment_info (run_id, segment_id, name, description, color, size,
            user_share, revenue_share, recency_median, frequency_median, monetary_median,
            representative_users) VALUES
            (?, 0, 'Gift buyers', 'Decorations and wrap', '#E45756', 6, 0.5, 0.4, 12, 2, 15,
             ['u01', 'u02', 'u03']),
            (?, 1, 'Kitchen regulars', 'Tea things', '#4C78A8', 6, 0.5, 0.6, 18, 2, 40,
             ['u07', 'u08'])""", [run_id, run_id])
        con.execute("""INSERT INTO segment_traits (run_id, segment_id, dimension, value, support,
            population_support, lift) VALUES
            (?, 0, 'category', 'Decor', 1.0, 0.5, 2.0), (?, 0, 'item', 'G1', 1.0, 0.5, 2.0),
            (?, 1, 'category', 'Kitchen', 1.0, 0.5, 2.0)""", [run_id] * 3)
        con.execute("""INSERT INTO rules VALUES
            (?, NULL, ['G1'], ['G2'], 0.5, 1.0, 2.0, 0.25, NULL, 12, NULL),
            (?, NULL, ['K1'], ['K2'], 0.5, 1.0, 2.0, 0.25, NULL, 12, NULL),
            (?, 0, ['G1', 'G2'], ['G3'], 0.5, 0.5, 1.0, 0.0, 1.0, 6, 1.5),
            (?, 1, ['K2'], ['K3'], 0.25, 0.5, 1.0, 0.0, 1.0, 3, 1.2)""", [run_id] * 4)
        con.execute("INSERT INTO training_curve VALUES (?, 1, 2.0, 0.1, 0.2, 1.0), (?, 2, 1.5, 0.2, 0.3, 1.0)",
                    [run_id, run_id])
        con.execute("INSERT INTO evaluations VALUES (?, 'popularity', 0.1, 0.05, 0.2, 0.04, 0.1, 12, '{}'),"
                    "(?, 'hybrid', 0.3, 0.2, 0.5, 0.15, 0.6, 12, '{}')", [run_id, run_id])
        finish_run(con, run_id, {"method": "kmeans", "k": 2, "silhouette": 0.61, "davies_bouldin": 0.4,
                                 "stability_ari": 0.93, "sizes": {"0": 6, "1": 6}, "n_users": 12,
                                 "k_scan": [{"k": 2, "silhouette": 0.61, "inertia": 10.0},
                                            {"k": 3, "silhouette": 0.4, "inertia": 7.0}],
                                 "total_seconds": 1.5})
    return store


@pytest.fixture()
def tiny(tmp_path):
    store = make_tiny_store(tmp_path / "tiny.duckdb")
    con = store.read()
    run_id = latest_run(con)["run_id"]
    yield store, con, run_id
    con.close()


def test_shop_totals_and_data_health(tiny):
    _, con, _ = tiny
    t = ex.shop_totals(con)
    # gift users: 6 x 2 orders x (2.5 + 1.0) + 3 x 2 x 4.0; kitchen: 6 x 2 x 15 + 3 x 2 x 2
    assert t["users"] == 12 and t["items"] == 6
    assert t["revenue"] == pytest.approx(6 * 2 * 3.5 + 3 * 2 * 4.0 + 6 * 2 * 15.0 + 3 * 2 * 2.0)
    assert t["events"] == 12 * 2 * 2 + 6 * 2
    h = ex.data_health(con)
    assert h["rows_loaded"] == t["events"] and h["rows_quarantined"] == 2
    assert h["quarantine_reasons"] == {"unparseable date": 1, "missing item id": 1}
    assert h["all_reconcile"]


def test_segments_colors_and_names(tiny):
    _, con, run_id = tiny
    df = ex.segments(con, run_id)
    assert list(df["name"]) == ["Gift buyers", "Kitchen regulars"]
    assert ex.segment_colors(con, run_id) == {0: "#E45756", 1: "#4C78A8", -1: ex.UNASSIGNED_COLOR}


def test_map_points_carry_user_ids_and_sample_beyond_threshold(tiny):
    _, con, run_id = tiny
    df, total = ex.map_points(con, run_id, color_by="monetary")
    assert total == 12 and len(df) == 12 and set(df["user_id"]) == set(USERS)
    assert {"x", "y", "segment", "color_value", "frequency"} <= set(df.columns)
    small, total = ex.map_points(con, run_id, max_points=5)
    assert total == 12 and len(small) == 5
    again, _ = ex.map_points(con, run_id, max_points=5)
    assert list(small["user_id"]) == list(again["user_id"])  # deterministic sample


def test_selection_from_points_box_and_lasso(tiny):
    _, con, run_id = tiny
    event = {"selection": {"points": [{"customdata": ["u02"], "x": -4.9}, {"customdata": ["u09"]}],
                           "box": [{"x": [-6, 0], "y": [-1, 10]}], "lasso": [], "point_indices": [1, 2]}}
    # full map: the points' own ids
    assert ex.selection_user_ids(con, run_id, event, sampled=False) == ["u02", "u09"]
    # sampled map: the drawn box over every user (the whole left cluster)
    assert ex.selection_user_ids(con, run_id, event, sampled=True) == USERS[:6]
    lasso = {"x": [4, 7, 7, 4], "y": [-1, -1, 2.5, 2.5]}
    assert ex.users_in_region(con, run_id, lasso=lasso) == ["u07", "u08", "u09"]
    assert ex.selection_user_ids(con, run_id, None, sampled=False) == []


def test_group_summary_and_traits(tiny):
    _, con, run_id = tiny
    s = ex.group_summary(con, run_id, USERS[:6])
    assert s["size"] == 6 and s["user_share"] == pytest.approx(0.5)
    gift_rev = 6 * 2 * 3.5 + 3 * 2 * 4.0
    total = gift_rev + 6 * 2 * 15.0 + 3 * 2 * 2.0
    assert s["revenue_share"] == pytest.approx(gift_rev / total)
    assert s["segment_mix"]["users"].tolist() == [6]
    t = ex.group_traits(con, run_id, USERS[:6])
    decor = t[(t.dimension == "category") & (t.value == "Decor")].iloc[0]
    assert decor["group_share"] == pytest.approx(1.0)
    assert decor["population_share"] == pytest.approx(0.5)
    assert decor["lift"] == pytest.approx(2.0)
    assert "Kitchen" not in set(t["value"])


def test_segment_detail_and_compare(tiny):
    _, con, run_id = tiny
    d = ex.segment_detail(con, run_id, 0)
    assert d["info"]["name"] == "Gift buyers"
    assert "Christmas bauble" in set(d["traits"]["label"])
    assert d["top_items"].iloc[0]["buyers"] == 6
    assert list(d["representatives"]["user_id"]) == ["u01", "u02", "u03"]
    assert len(d["rules"]) == 1 and d["rules"].iloc[0]["then_buys"] == '=HYPERLINK("x")'
    c = ex.compare_groups(con, run_id, [("segment", 0), ("segment", 1), ("users", ["u01", "u07"])])
    assert list(c["summary"]["group"]) == ["Gift buyers", "Kitchen regulars", "Selection"]
    assert list(c["summary"]["users"]) == [6, 6, 2]
    sh = c["shares"].set_index(["group", "value"])["share"]
    assert sh[("Gift buyers", "Decor")] == pytest.approx(1.0)
    assert sh[("Selection", "Decor")] == pytest.approx(0.5)
    with pytest.raises(KeyError):
        ex.segment_detail(con, run_id, 7)


def test_user_profile_timeline_preferences_and_similar(tiny):
    _, con, run_id = tiny
    p = ex.user_profile(con, run_id, "u01")
    assert p["segment"] == "Gift buyers" and p["attributes"]["country"] == "France"
    assert p["features"]["frequency"] == 2
    assert ex.user_profile(con, run_id, "nobody") is None
    tl = ex.user_timeline(con, "u01")
    assert len(tl) == 6 and tl.iloc[0]["ts"] > tl.iloc[-1]["ts"]
    pref = ex.user_preferences(con, run_id, "u07", "category")
    row = pref.set_index("value").loc["Kitchen"]
    assert row["user"] == pytest.approx(1.0) and row["segment"] == pytest.approx(1.0)
    assert row["shop"] == pytest.approx(0.5)
    assert list(ex.user_preferences(con, run_id, "u07", "category", 1)["value"]) == ["Kitchen"]
    every = ex.user_preferences(con, run_id, "u07", "category", 1, every_value=True).set_index("value")
    assert every.loc["Decor", "user"] == 0 and every.loc["Decor", "shop"] == pytest.approx(0.5)
    idx = ex.ProfileIndex.load(con, run_id)
    near = idx.nearest("u01", 3)
    assert list(near["user_id"]) == ["u02", "u03", "u04"]  # same segment, closest third coordinate
    assert near["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-3)
    assert ex.find_users(con, "u1") == ["u10", "u11", "u12"]


def test_rules_table_filters_and_graph(tiny):
    _, con, run_id = tiny
    all_rules = ex.rules_table(con, run_id)
    assert len(all_rules) == 4
    shop = ex.rules_table(con, run_id, segment_id=None)
    assert set(shop["if_bought"]) == {"Christmas bauble", "Tea mug"}
    assert set(shop["segment"]) == {"Whole shop"}
    assert list(ex.rules_table(con, run_id, search="teapot")["then_buys"]) == ["Teapot", "Tea towel"]
    assert len(ex.rules_table(con, run_id, min_lift=1.5)) == 2
    assert len(ex.rules_table(con, run_id, segment_id=1)) == 1
    g = ex.rule_graph(all_rules)
    assert set(g["nodes"]["item_id"]) == {"G1", "G2", "G3", "K1", "K2", "K3"}
    assert len(g["edges"]) == 5


def test_model_tables(tiny):
    _, con, run_id = tiny
    h = ex.run_history(con)
    assert h.iloc[0]["silhouette"] == pytest.approx(0.61)
    assert list(ex.k_scan(latest_run(con))["k"]) == [2, 3]
    assert list(ex.training_curve(con, run_id)["epoch"]) == [1, 2]
    assert list(ex.evaluations(con, run_id)["recommender"]) == ["hybrid", "popularity"]


def test_save_list_delete_saved_segments(tiny):
    store, con, run_id = tiny
    sid = ex.save_segment(store, "  Left   cluster ", ["u03", "u01", "u01"], source_run_id=run_id,
                          definition={"box": {"x": [-6, 0]}})
    fresh = store.read()
    saved = ex.list_saved(fresh)
    assert list(saved["name"]) == ["Left cluster"] and int(saved.iloc[0]["size"]) == 2
    assert ex.saved_members(fresh, sid) == ["u01", "u03"]
    assert ex.find_saved(fresh, "left CLUSTER")["saved_id"] == sid
    with pytest.raises(ex.SavedSegmentError, match="already exists"):
        ex.save_segment(store, "Left cluster", ["u05"])
    ex.save_segment(store, "Left cluster", ["u05"], replace=True)
    assert ex.saved_members(store.read(), sid) == ["u05"]
    with pytest.raises(ex.SavedSegmentError, match="empty"):
        ex.save_segment(store, "Nothing", [])
    with pytest.raises(ex.SavedSegmentError, match="name"):
        ex.save_segment(store, "   ", ["u01"])
    assert ex.delete_saved(store, sid) is True
    assert ex.list_saved(store.read()).empty
    assert ex.delete_saved(store, sid) is False
    with pytest.raises(ex.SavedSegmentError, match="No saved segment called 'x'"):
        ex.find_saved(store.read(), "x")


def test_csv_neutralisation_is_exact():
    assert ex.neutralise_cell("=1+1") == "'=1+1"
    assert ex.neutralise_cell("+44 20") == "'+44 20"
    assert ex.neutralise_cell("-25") == "'-25"
    assert ex.neutralise_cell("@SUM(A1)") == "'@SUM(A1)"
    assert ex.neutralise_cell("\t=1") == "'\t=1"
    assert ex.neutralise_cell("Tea = good") == "Tea = good"
    assert ex.neutralise_cell(-3.5) == -3.5
    assert ex.neutralise_cell(None) is None
    df = pd.DataFrame({"user_id": ["=cmd|' /C calc'!A0", "u2"], "spend": [-3.5, 2.0]})
    text = ex.to_csv_bytes(df).decode()
    assert text == "user_id,spend\n'=cmd|' /C calc'!A0,-3.5\nu2,2.0\n"


def test_exports_columns_csv_and_parquet(tiny, tmp_path):
    store, con, run_id = tiny
    df = ex.segment_export(con, run_id, 0, columns=["id", "segment", "rfm", "attributes"])
    assert list(df.columns) == ["user_id", "segment_id", "segment_name", "recency_days", "orders",
                                "spend", "avg_order_value", "age_band", "country"]
    assert list(df["user_id"]) == USERS[:6]
    assert df.iloc[0]["spend"] == pytest.approx(2 * (2.5 + 1.0 + 4.0))
    out = ex.write_export(df, tmp_path / "seg.csv")
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == list(df.columns) and len(rows) == 7
    assert rows[1][7] == "'-25"  # u01's age band starts with '-': neutralised
    pq = ex.write_export(df, tmp_path / "seg.parquet")
    back = pd.read_parquet(pq)
    assert back.iloc[0]["age_band"] == "'-25"  # for spreadsheets (the default) Parquet too
    raw = pd.read_parquet(ex.write_export(df, tmp_path / "raw.parquet", for_spreadsheet=False))
    assert raw.iloc[0]["age_band"] == "-25"  # for another tool: values as they are
    only_ids = ex.export_frame(con, run_id, ["u02", "u01"], columns=["id"])
    assert list(only_ids.columns) == ["user_id"] and list(only_ids["user_id"]) == ["u01", "u02"]
    with pytest.raises(ValueError, match="extension"):
        ex.write_export(df, tmp_path / "seg.xlsx")
    with pytest.raises(ValueError, match="unknown export column"):
        ex.export_frame(con, run_id, ["u01"], columns=["nope"])
    ex.save_segment(store, "Two", ["u01", "u12"])
    assert list(ex.saved_export(store.read(), run_id, "Two")["user_id"]) == ["u01", "u12"]


def test_formatting():
    assert ex.fmt_money(1234567.8) == "£1,234,568"
    assert ex.fmt_money(12.5, "€") == "€12.50"
    assert ex.fmt_money(-3.2) == "-£3.20"
    assert ex.fmt_pct(0.2345) == "23.4%"
    assert ex.fmt_int(12345) == "12,345"
    assert ex.fmt_lift(2.94) == "2.9×"
    assert ex.fmt_money(None) == "–"
    assert ex.fmt_money(float("nan")) == "–"


def test_recommendation_previews_through_core_recommend(tiny):
    from core.explore import recs

    _, con, run_id = tiny
    eng = recs.engine(con, run_id)
    assert {"hybrid", "popularity", "item_knn"} <= set(recs.recommender_names(eng))
    out = recs.preview(eng, "user", con=con, run_id=run_id, user_id="u01",
                       names=("popularity",), n=3)
    assert out["error"] is None
    # u01 bought G1, G2, G3: the best sellers they have not bought are the kitchen items
    assert list(out["recs"]["item_id"]) == ["K1", "K2", "K3"]
    assert out["recs"]["reason"].str.len().min() > 0
    basket = recs.preview(eng, "basket", con=con, run_id=run_id, basket=("K1",),
                          names=("item_knn",), n=3)
    assert basket["recs"]["item_id"].iloc[0] == "K2"  # bought with the tea mug in every basket
    seg = recs.preview(eng, "segment", con=con, run_id=run_id, segment_id=1, n=3)
    assert set(seg["recs"]["item_id"]) <= {"K1", "K2", "K3"}
    # an unknown id gets the shop's best sellers, labelled as a fallback (issue 9)
    new = recs.preview(eng, "user", con=con, run_id=run_id, user_id="nobody", names=("hybrid",))
    assert new["error"] is None and new["info"]["basis"] == "fallback"
    assert "nobody" in new["info"]["note"] and len(new["recs"])
