"""core.explore on a tiny hand-made store whose every figure is known."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from core import explore as ex
from core.store import Store, finish_run, latest_run, start_run

# 12 shoppers: u01-u06 in segment 0 ("Gift buyers", left of the map), u07-u12 in segment 1
# ("Kitchen regulars", right). Items: 3 gifts (G1-G3), 3 kitchen items (K1-K3), in two themes.
# Lifecycle lens: u01-u04 active (stage 1), u05-u08 at risk (3), u09-u12 loyal (0), so the cross
# of the lenses is Active x Gift 4 shoppers (£44), At risk x Gift 2 (£22), At risk x Kitchen 2
# (£64), Loyal x Kitchen 4 (£128). Spend: gift shoppers u01, u03, u05 £15, the others £7;
# kitchen u07, u09, u11 £34, the others £30. Every event is at 10:00 or 11:00.
ITEMS = [
    ("G1", "Christmas bauble", "Home > Decor > Christmas", "Jolly", 2.5),
    ("G2", "Gift wrap", "Home > Decor > Wrap", "Jolly", 1.0),
    ("G3", "=HYPERLINK(\"x\")", "Home > Decor > Christmas", "Jolly", 4.0),
    ("K1", "Tea mug", "Home > Kitchen > Mugs", "Cosy", 3.0),
    ("K2", "Teapot", "Home > Kitchen > Tea", "Cosy", 12.0),
    ("K3", "Tea towel", "Home > Kitchen > Textiles", "Cosy", 2.0),
]
USERS = [f"u{i:02d}" for i in range(1, 13)]
THEMES = {0: "Christmas gifts", 1: "Tea time"}
STAGE_OF = {**{u: 1 for u in USERS[:4]}, **{u: 3 for u in USERS[4:8]}, **{u: 0 for u in USERS[8:]}}
LIFECYCLE = [  # id, name, colour, rule
    (0, "Loyal high value", "#1B7837", "2 or more orders, the last within 15 days, and net spend "
                                       "of £34.00 or more"),
    (1, "Active repeat buyers", "#5AAE61", "2 or more orders, the last within 15 days"),
    (3, "At risk", "#F4A442", "2 or more orders, the last 15 to 19 days ago"),
]


def make_tiny_store(path, *, bare: bool = False, lifecycle_stability: float = 0.95) -> Store:
    """The hand-made shop. ``bare``: items with titles only (no categories, brands or prices) and
    purchases without prices, as in a shop that records none of them. ``lifecycle_stability``:
    the lifecycle lens's recorded stability (below 0.7 it is weak)."""
    store = Store(path)
    with store.write() as con:
        for it in ITEMS:
            con.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, 1)",
                        [it[0], it[1], f"{it[1]} for you", None if bare else it[2],
                         None if bare else it[3], None if bare else it[4]])
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
                    price = None if bare else dict((x[0], x[4]) for x in ITEMS)[it]
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
        for tid, label in THEMES.items():
            con.execute("INSERT INTO theme_info VALUES (?, ?, ?, NULL, 3, 6, NULL)", [run_id, tid, label])
            con.execute("INSERT INTO item_themes SELECT ?, item_id, ? FROM items WHERE item_id LIKE ?",
                        [run_id, tid, "G%" if tid == 0 else "K%"])
        shares = {"theme": "t.label", "hour": "lpad(CAST(hour(e.ts) AS VARCHAR), 2, '0')"}
        if not bare:
            shares.update({"category": "split_part(i.category_path, ' > ', 2)", "brand": "i.brand"})
        for dim, expr in shares.items():
            con.execute(f"""
                INSERT INTO user_shares
                SELECT ?, e.user_id, '{dim}', {expr}, count(*) / sum(count(*)) OVER (PARTITION BY e.user_id)
                FROM events e JOIN items i USING (item_id)
                JOIN item_themes it ON it.run_id = ? AND it.item_id = e.item_id
                JOIN theme_info t ON t.run_id = it.run_id AND t.theme_id = it.theme_id
                GROUP BY 2, 3, 4""", [run_id, run_id])
        for i, u in enumerate(USERS):
            seg = 0 if i < 6 else 1
            x = (-5.0 if seg == 0 else 5.0) + (i % 6) * 0.1
            y = float(i % 6)
            con.execute("INSERT INTO segments VALUES (?, ?, ?, ?)", [run_id, u, seg, 0.1 * i])
            con.execute("INSERT INTO lifecycle_segments VALUES (?, ?, ?, NULL)",
                        [run_id, u, STAGE_OF[u]])
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
        for sid, name, color, rule in LIFECYCLE:
            members = [u for u in USERS if STAGE_OF[u] == sid]
            con.execute("""INSERT INTO lifecycle_info (run_id, segment_id, name, description, color,
                size, user_share, revenue_share, representative_users, rule, position)
                VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)""",
                        [run_id, sid, name, f"{name}: {rule}.", color, len(members),
                         len(members) / 12, members[:2], rule, sid])
        # what a build stores: categories where the shop has them, themes where it has not
        kind, gift, kitchen = ("theme", *THEMES.values()) if bare else ("category", "Decor", "Kitchen")
        con.execute(f"""INSERT INTO segment_traits (run_id, segment_id, dimension, value, support,
            population_support, lift) VALUES
            (?, 0, '{kind}', ?, 1.0, 0.5, 2.0), (?, 0, 'item', 'G1', 1.0, 0.5, 2.0),
            (?, 1, '{kind}', ?, 1.0, 0.5, 2.0),
            (?, 1, 'item', 'G1', 0.1, 0.5, 0.2)""",  # (lift < 1: never shown)
                    [run_id, gift, run_id, run_id, kitchen, run_id])
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
                                 "total_seconds": 1.5,
                                 "segments": {"k": 2, "stability_seed": 0.93,
                                              "stability_bootstrap": 0.91, "silhouette": 0.61,
                                              "validity": _validity(0.30, 0.20, 0.25)},
                                 "lifecycle": {"k": 3, "quality": {
                                     "stability_seed": lifecycle_stability,
                                     "stability_bootstrap": lifecycle_stability,
                                     "validity": _validity(0.22, 0.20, 0.25)}}})
    return store


def _validity(seg: float, pop: float, ref: float) -> dict:
    return {"segments": {"ndcg10": seg, "ci_low": seg - 0.01, "ci_high": seg + 0.01, "shoppers": 12},
            "popularity": {"ndcg10": pop}, "tfidf_kmeans": {"ndcg10": ref, "k": 2},
            "ratio_vs_tfidf": seg / ref}


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
    assert t["orders"] == 12 * 2        # every shopper's two baskets with a purchase
    h = ex.data_health(con)
    assert h["rows_loaded"] == t["events"] and h["rows_quarantined"] == 2
    assert h["quarantine_reasons"] == {"unparseable date": 1, "missing item id": 1}
    assert h["all_reconcile"]


def test_data_health_quarantine_reasons_add_up_to_the_event_files_figure(tmp_path):
    """An --items file's quarantined rows are listed per file, not mixed into the event file's
    reasons (which add up to the Quarantined figure)."""
    from core.ingest import ingest_file

    (tmp_path / "ev.csv").write_text("user_id,item_id,ts\nu1,A,2024-01-01\nu2,B,notadate\n"
                                     "u3,A,2024-01-03\n")
    (tmp_path / "items.csv").write_text("item_id,title,price\nA,Apple,1.0\n,No id,2.0\n"
                                        "B,Banana,abc\n")
    store = Store(tmp_path / "s.duckdb")
    ingest_file(store, tmp_path / "ev.csv", "events", items_path=tmp_path / "items.csv",
                currency="USD")
    with store.read() as con:
        h = ex.data_health(con)
    assert (h["rows_read"], h["rows_loaded"], h["rows_quarantined"]) == (3, 2, 1)
    assert h["quarantine_reasons"] == {"ts is not a date": 1}
    items = str(tmp_path / "items.csv")
    assert h["side_quarantine"] == [{"file": items, "reason": "missing item id", "rows": 1},
                                    {"file": items, "reason": "price is not a number", "rows": 1}]


def test_orders_of_a_clickstream_without_basket_ids(tmp_path):
    """Orders are baskets with a purchase, keyed as every stage keys them: the session where
    there is no basket id, else the shopper's day. A view-only session is no order."""
    from core.ingest import ingest_file

    (tmp_path / "ev.csv").write_text(
        "user,item,time,event,session\n"
        "u1,A,2024-01-01 10:00,view,s1\nu1,A,2024-01-01 10:05,purchase,s1\n"
        "u1,B,2024-01-01 10:06,purchase,s1\nu1,C,2024-01-03 09:00,purchase,s2\n"
        "u2,A,2024-01-02 11:00,view,s3\nu3,B,2024-01-04 12:00,purchase,\n"
        "u3,C,2024-01-04 18:00,purchase,\n")
    store = Store(tmp_path / "s.duckdb")
    ingest_file(store, tmp_path / "ev.csv", "events",
                mapping={"columns": {"user": "user", "item": "item", "time": "time",
                                     "type": "event", "session": "session"}})
    with store.read() as con:
        t = ex.shop_totals(con)
    assert (t["events"], t["purchases"], t["orders"]) == (7, 5, 3)   # s1, s2, u3's day


def test_segments_colors_and_names(tiny):
    _, con, run_id = tiny
    df = ex.segments(con, run_id)
    assert list(df["name"]) == ["Kitchen regulars", "Gift buyers"]  # most revenue first
    assert list(df["revenue"]) == [192.0, 66.0]
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


# ------------------------------------------------------------------------------ lenses and scopes
def test_lens_cross_counts_revenue_and_names(tiny):
    _, con, run_id = tiny
    x = ex.lens_cross(con, run_id)
    assert list(x["label"]) == ["Loyal high value × Kitchen regulars", "At risk × Kitchen regulars",
                                "Active repeat buyers × Gift buyers", "At risk × Gift buyers"]
    assert list(x["users"]) == [4, 2, 4, 2]
    assert list(x["revenue"]) == [128.0, 64.0, 44.0, 22.0]
    assert list(x["lifecycle_id"]) == [0, 3, 1, 3] and list(x["taste_id"]) == [1, 1, 0, 0]
    assert x["user_share"].sum() == pytest.approx(1.0)
    assert x["revenue_share"].iloc[0] == pytest.approx(128 / 258)


def test_lens_switches_every_segment_query(tiny):
    _, con, run_id = tiny
    life = ex.segments(con, run_id, lens="lifecycle")
    assert list(life["name"]) == ["Loyal high value", "At risk", "Active repeat buyers"]
    assert list(life["revenue"]) == [128.0, 86.0, 44.0]
    assert life.set_index("segment_id").loc[3, "rule"] == "2 or more orders, the last 15 to 19 days ago"
    assert ex.segment_user_ids(con, run_id, 3, lens="lifecycle") == ["u05", "u06", "u07", "u08"]
    assert ex.segment_names(con, run_id, lens="lifecycle")[3] == "At risk"
    d = ex.segment_detail(con, run_id, 3, lens="lifecycle")
    assert d["info"]["name"] == "At risk" and d["members"] == 4 and d["rules"].empty
    p = ex.user_profile(con, run_id, "u07", lens="lifecycle")
    assert p["segment"] == "At risk" and p["segments"]["taste"]["name"] == "Kitchen regulars"
    assert p["main_theme"] == "Tea time"
    pts, total = ex.map_points(con, run_id, lens="lifecycle")
    assert total == 12 and pts.set_index("user_id").loc["u05", "segment"] == "At risk"
    with pytest.raises(ValueError, match="Unknown segment lens 'colour'"):
        ex.segments(con, run_id, lens="colour")


def test_scope_restricts_to_one_segment_of_the_other_lens(tiny):
    _, con, run_id = tiny
    at_risk = ("lifecycle", 3)
    seg = ex.segments(con, run_id, lens="taste", scope=at_risk)
    assert list(seg["name"]) == ["Kitchen regulars", "Gift buyers"]
    assert list(seg["size"]) == [2, 2] and list(seg["revenue"]) == [64.0, 22.0]
    assert list(seg["revenue_share"]) == pytest.approx([64 / 86, 22 / 86])
    assert list(seg["user_share"]) == [0.5, 0.5]
    assert ex.segment_user_ids(con, run_id, 0, scope=at_risk) == ["u05", "u06"]
    d = ex.segment_detail(con, run_id, 0, scope=at_risk)
    assert d["scoped"]["size"] == 2 and d["scoped"]["revenue"] == 22.0 and d["members"] == 2
    assert d["info"]["size"] == 6  # the segment's own figures stay
    assert d["top_items"].iloc[0]["buyers"] == 2
    # no stored representative is at risk: the members closest to the centre stand in
    assert list(d["representatives"]["user_id"]) == ["u05", "u06"]
    pts, total = ex.map_points(con, run_id, scope=at_risk)
    assert total == 4 and sorted(pts["user_id"]) == ["u05", "u06", "u07", "u08"]
    assert ex.users_in_region(con, run_id, box={"x": [-6, 0], "y": [-1, 10]}, scope=at_risk) == \
        ["u05", "u06"]
    c = ex.compare_groups(con, run_id, [("segment", 0), ("segment", 1)], scope=at_risk)
    assert list(c["summary"]["users"]) == [2, 2]
    assert ex.find_users(con, "u", run_id=run_id, scope=at_risk) == ["u05", "u06", "u07", "u08"]
    loyal_taste = ex.segments(con, run_id, lens="lifecycle", scope=("taste", 1))
    assert list(loyal_taste["name"]) == ["Loyal high value", "At risk"]  # no active kitchen shopper
    with pytest.raises(ValueError, match="scope must be"):
        ex.segments(con, run_id, scope="lifecycle")


def test_traits_never_below_lift_one_and_rules_specific_to_the_segment(tiny):
    _, con, run_id = tiny
    t = ex.segment_traits(con, run_id, 1)
    assert list(t["value"]) == ["Kitchen"]  # the stored item with lift 0.2 is never shown
    r = ex.rules_table(con, run_id, segment_id=0)
    assert list(r["segment_ratio"]) == [1.5]
    t = ex.group_traits(con, run_id, USERS[:6])
    assert (t["lift"] > 1).all() and "Tea time" not in set(t["value"])
    assert t.set_index("value").loc["Christmas gifts", "lift"] == pytest.approx(2.0)


def test_dimensions_price_band_order_clock_times_and_quality(tiny, tmp_path):
    _, con, run_id = tiny
    assert ex.dimensions(con, run_id) == ["category", "theme", "brand"]
    bare = make_tiny_store(tmp_path / "bare.duckdb", bare=True)
    bcon = bare.read()
    assert ex.dimensions(bcon, 1) == ["theme"] and not ex.has_prices(bcon)
    assert ex.has_prices(con)
    bands = pd.DataFrame({"value": ["luxury", "budget", "premium", "mid"], "share": [1, 2, 3, 4]})
    assert list(ex.order_values(bands, "price_band")["value"]) == ["budget", "mid", "premium", "luxury"]
    assert ex.busiest_hours(con, run_id) == "10:00–12:00"
    assert ex.fmt_clock(13.5) == "13:30" and ex.fmt_clock(None) == "–"
    items = ex.compare_groups(con, run_id, [("segment", 0), ("segment", 1)], dimension="item")
    sh = items["shares"].set_index(["group", "value"])["share"]
    assert sh[("Gift buyers", "Christmas bauble")] == 1.0 and sh[("Kitchen regulars", "Tea towel")] == 0.5
    assert list(items["summary"]["busiest_hours"]) == ["10:00–12:00", "10:00–12:00"]
    themes = ex.compare_groups(con, run_id, [("segment", 0), ("segment", 1)], dimension="theme")
    assert themes["shares"].set_index(["group", "value"])["share"][("Kitchen regulars", "Tea time")] == 1.0
    q = ex.lens_quality(latest_run(con))
    assert q["taste"]["warning"] is None
    weak = make_tiny_store(tmp_path / "weak.duckdb", lifecycle_stability=0.55)
    w = ex.lens_quality(latest_run(weak.read()))["lifecycle"]
    assert w["warning"].startswith("Treat these lifecycle stages with care, because they are unstable")
    assert w["advice"].startswith("Lifecycle stages are rules")
    table = ex.quality_table(con, latest_run(con)).set_index("lens")
    assert table.loc["Taste", "stability_seed"] == 0.93 and table.loc["Lifecycle", "segments"] == 3
    assert table.loc["Taste", "sizes"] == "Kitchen regulars 6 · Gift buyers 6"


def test_export_both_lenses(tiny):
    _, con, run_id = tiny
    df = ex.segment_export(con, run_id, 3, columns=["id", "segment", "other_segment"],
                           lens="lifecycle")
    assert list(df.columns) == ["user_id", "segment_id", "segment_name", "taste_segment_id",
                                "taste_segment_name"]
    assert list(df["user_id"]) == ["u05", "u06", "u07", "u08"]
    assert set(df["segment_name"]) == {"At risk"}
    assert list(df["taste_segment_name"]) == ["Gift buyers"] * 2 + ["Kitchen regulars"] * 2


def test_k_scan_keeps_only_the_figures():
    run = {"metrics": {"segments": {"k_scan": [
        {"candidate": "taste", "k": 3, "seed_stability": 0.98, "silhouette": 0.06,
         "val_ndcg10": 0.11, "chosen": False},
        {"candidate": "taste", "k": 5, "seed_stability": 0.98, "silhouette": 0.06,
         "val_ndcg10": 0.12, "chosen": True, "labels": [0, 1, 2] * 1000, "model": "TasteModel(...)"}]}}}
    ks = ex.k_scan(run)
    assert list(ks.columns) == ["candidate", "k", "seed_stability", "silhouette", "val_ndcg10", "chosen"]
    assert list(ks["k"]) == [3, 5] and list(ks["chosen"]) == [False, True]
