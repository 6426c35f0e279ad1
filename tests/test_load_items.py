"""Richer items and events (issue 11, point 3): multi-valued categories from flag columns or
delimited lists, a category path from several columns, ratings and review text stored, and the
clickstream category_id kept when there is no category code."""

from __future__ import annotations

import pytest

from core.ingest import IngestError, ingest_file
from core.store import Store


def _cats(store):
    with store.read() as con:
        return dict(con.execute("SELECT item_id, category_path FROM items").fetchall())


def test_genre_flags_from_a_headerless_items_file(tmp_path):
    # MovieLens-like: u.item is id|title|flags..., ratings are user, item, rating, time
    (tmp_path / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t20\t4\t881250951\n"
                                     "2\t30\tfive\t881250952\n")
    (tmp_path / "items.csv").write_text("item_id,title,Action,Comedy,Drama\n10,Heat,1,0,1\n"
                                        "20,Airplane!,0,1,0\n30,Plain,0,0,0\n")
    (tmp_path / "m.toml").write_text(
        'header = false\nepoch = true\n[columns]\nuser = 1\nitem = 2\nrating = 3\ntime = 4\n'
        '[items]\ncategory = { flags = ["Action", "Comedy", "Drama"] }\n')
    store = Store(tmp_path / "ml.duckdb")
    r = ingest_file(store, tmp_path / "u.data", "events", mapping=tmp_path / "m.toml",
                    items_path=tmp_path / "items.csv")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (4, 3, 1)
    assert r["quarantine_reasons"] == {"3 is not a number": 1}
    assert "no event type column: every row is a review (it has a rating or review text)" in r["notes"]
    assert _cats(store) == {"10": "Action|Drama", "20": "Comedy", "30": None}
    with store.read() as con:
        assert con.execute("SELECT DISTINCT event_type FROM events").fetchall() == [("review",)]
        got = con.execute("SELECT e.user_id, e.item_id, r.rating, r.review_text FROM event_reviews r "
                          "JOIN events e USING (event_id) ORDER BY event_id").fetchall()
    assert got == [("1", "10", 5.0, None), ("2", "10", 3.0, None), ("1", "20", 4.0, None)]


def test_flags_by_position_and_delimited_lists_on_events(tmp_path):
    (tmp_path / "items.tsv").write_text("10\tHeat\t1\t0\n20\tUp\t0\t1\n")
    (tmp_path / "ev.csv").write_text("sku,user_id,genres\n10,u1,Crime| Drama |Crime\n20,u1,\n30,u2,a|b|c\n")
    (tmp_path / "m.toml").write_text(
        '[columns]\nitem = "sku"\ncategory = { column = "genres", split = "|" }\n')
    store = Store(tmp_path / "s.duckdb")
    ingest_file(store, tmp_path / "ev.csv", "events", mapping=tmp_path / "m.toml")
    assert _cats(store) == {"10": "Crime|Drama", "20": None, "30": "a|b|c"}


def test_category_path_from_several_columns(tmp_path):
    (tmp_path / "ev.csv").write_text("sku,user_id,department,aisle\n1,u1,frozen,ice cream\n"
                                     "2,u1,produce,\n3,u2,,\n")
    (tmp_path / "m.toml").write_text('[columns]\ncategory = { path = ["department", "aisle"] }\n')
    store = Store(tmp_path / "s.duckdb")
    r = ingest_file(store, tmp_path / "ev.csv", "events", mapping=tmp_path / "m.toml")
    assert r["mapping"]["category"] == "path department > aisle"
    assert _cats(store) == {"1": "frozen > ice cream", "2": "produce", "3": None}


def test_bad_category_spec_is_explained(tmp_path):
    (tmp_path / "ev.csv").write_text("sku\n1\n")
    (tmp_path / "m.toml").write_text('[columns]\ncategory = { split = "|" }\n')
    with pytest.raises(IngestError, match=r"category must be a column name, \{ column"):
        ingest_file(Store(tmp_path / "s.duckdb"), tmp_path / "ev.csv", "events",
                    mapping=tmp_path / "m.toml")


def test_review_text_and_rating_are_stored(tmp_path):
    (tmp_path / "rev.csv").write_text(
        'user_id,item_id,rating,review_text,ts\n'
        'u1,A,5,"Lovely mug, holds a lot.",2024-01-01\n'
        'u2,A,,"No stars given",2024-01-02\n'
        'u2,B,2,,2024-01-03\n'
        'u3,B,,,2024-01-04\n')
    store = Store(tmp_path / "s.duckdb")
    r = ingest_file(store, tmp_path / "rev.csv", "events")
    assert "columns guessed from their names: user = user_id, item = item_id, time = ts, " \
           "rating = rating, review = review_text" in r["notes"]
    assert r["rows_loaded"] == 4
    with store.read() as con:
        got = con.execute("SELECT e.item_id, e.event_type, r.rating, r.review_text FROM events e "
                          "LEFT JOIN event_reviews r USING (event_id) ORDER BY e.event_id").fetchall()
    assert got == [("A", "review", 5.0, "Lovely mug, holds a lot."),
                   ("A", "review", None, "No stars given"),
                   ("B", "review", 2.0, None), ("B", "review", None, None)]


def test_clickstream_category_id_kept_when_no_code(tmp_path):
    (tmp_path / "c.csv").write_text(
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
        "2019-10-01 00:00:00 UTC,view,1,2053013555631882655,electronics.audio,sony,9.5,7,s1\n"
        "2019-10-01 00:01:00 UTC,view,2,2053013555631882655,,,3,7,s1\n"
        "2019-10-01 00:02:00 UTC,view,3,,,,3,7,s1\n")
    store = Store(tmp_path / "c.duckdb")
    ingest_file(store, tmp_path / "c.csv", "clickstream")
    assert _cats(store) == {"1": "electronics > audio", "2": "category 2053013555631882655", "3": None}


def test_headerless_pipe_catalogue_with_flags_by_position(tmp_path):
    """MovieLens' u.item layout: id|title|date|flag columns, no header row."""
    (tmp_path / "u.data").write_text("1\t10\t5\t881250949\n2\t20\t3\t881250950\n")
    (tmp_path / "u.item").write_text("10|Heat (1995)|01-Jan-1995|0|1|0|1\n"
                                     "20|Airplane! (1980)|01-Jan-1980|0|0|1|0\n"
                                     "30|Nothing (1990)|01-Jan-1990|1|0|0|0\n")
    (tmp_path / "m.toml").write_text(
        'header = false\nepoch = true\n[columns]\nuser = 1\nitem = 2\nrating = 3\ntime = 4\n'
        '[items]\nheader = false\nid = 1\ntitle = 2\n'
        'category = { flags = { "4" = "unknown", "5" = "Action", "6" = "Comedy", "7" = "Drama" } }\n')
    store = Store(tmp_path / "ml.duckdb")
    r = ingest_file(store, tmp_path / "u.data", "events", mapping=tmp_path / "m.toml",
                    items_path=tmp_path / "u.item")
    assert [(f["role"], f["rows_read"], f["rows_loaded"]) for f in r["files"]] == \
        [("events", 2, 2), ("items", 3, 3)]
    with store.read() as con:
        assert con.execute("SELECT item_id, title, category_path FROM items ORDER BY 1").fetchall() == [
            ("10", "Heat (1995)", "Action|Drama"), ("20", "Airplane! (1980)", "Comedy"),
            ("30", "Nothing (1990)", "unknown")]
    (tmp_path / "bad.toml").write_text('[users]\nheader = "no"\n')
    with pytest.raises(IngestError, match=r"\[users\] header must be true or false"):
        ingest_file(store, tmp_path / "u.data", "events", mapping=tmp_path / "bad.toml")


def test_clickstream_purchase_revenue_reconciles(tmp_path):
    (tmp_path / "c.csv").write_text(
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
        "2019-10-01 00:00:00 UTC,view,1,5,,sony,9.5,7,s1\n"
        "2019-10-01 00:01:00 UTC,purchase,1,5,,sony,9.5,7,s1\n"
        "2019-10-01 00:01:00 UTC,purchase,1,5,,sony,9.5,7,s1\n"      # exact duplicate
        "2019-10-01 00:02:00 UTC,purchase,2,5,,,-3,7,s1\n"           # negative price: quarantined
        "2019-10-01 00:03:00 UTC,purchase,3,5,,,20.25,8,s2\n")
    r = ingest_file(Store(tmp_path / "c.duckdb"), tmp_path / "c.csv", "clickstream")
    assert r["revenue"] == {"revenue_read": 36.25, "revenue_loaded": 29.75,
                            "revenue_quarantined": -3.0, "revenue_duplicate": 9.5,
                            "rows_without_revenue": 0, "revenue_reconciles": True}
    assert r["reconciles"]


def test_movielens_csv_files_load_without_a_mapping(tmp_path):
    """MovieLens' own CSV layout (ratings.csv: userId, movieId, rating, timestamp in epoch
    seconds; movies.csv: movieId, title, genres) loads with no flags: the id columns are found
    by their names (the events' movieId is the catalogue's id too), the epoch times are read as
    times, and '|'-joined genres are the items' categories."""
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n"
        "2,1,3.5,1445714835\n")
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n'
        '3,"Grumpier Old Men (1995)",Comedy|Romance\n')
    store = Store(tmp_path / "ml.duckdb")
    r = ingest_file(store, tmp_path / "ratings.csv", "events", items_path=tmp_path / "movies.csv")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (3, 3, 0)
    assert ("columns guessed from their names: user = userId, time = timestamp, rating = rating, "
            "item = movieId") in r["notes"]
    assert _cats(store) == {"1": "Adventure|Animation|Children", "3": "Comedy|Romance"}
    with store.read() as con:
        got = con.execute("SELECT user_id, item_id, strftime(ts, '%Y-%m-%d %H:%M:%S') FROM events "
                          "ORDER BY ts").fetchall()
    assert got == [("1", "3", "2000-07-30 18:20:47"), ("1", "1", "2000-07-30 18:45:03"),
                   ("2", "1", "2015-10-24 19:27:15")]


def test_epoch_times_are_read_without_a_flag_and_dates_stay_dates(tmp_path):
    """Unflagged whole numbers of 9-10 digits are epoch seconds, of 12-13 digits epoch
    milliseconds (RetailRocket's events); 8 digits are a date; anything else still quarantines."""
    (tmp_path / "ev.csv").write_text(
        "timestamp,visitorid,event,itemid\n1433221332117,257597,view,355908\n"
        "964982703,257597,view,248676\n20240131,257597,view,1\n12345,257597,view,2\n")
    store = Store(tmp_path / "rr.duckdb")
    r = ingest_file(store, tmp_path / "ev.csv", "events")
    assert (r["rows_loaded"], r["quarantine_reasons"]) == (3, {"timestamp is not a date": 1})
    with store.read() as con:
        got = con.execute("SELECT item_id, strftime(ts, '%Y-%m-%d %H:%M:%S.%g') FROM events "
                          "ORDER BY item_id").fetchall()
    assert got == [("1", "2024-01-31 00:00:00.000"), ("248676", "2000-07-30 18:45:03.000"),
                   ("355908", "2015-06-02 05:02:12.117")]
