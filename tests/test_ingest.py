"""Ingestion: exact figures on the real datasets, every format, quarantine, idempotence, atomicity.

The real files are read in place from ../shared/data; Online Retail is ingested once per session.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import duckdb
import pytest

from core.ingest import IngestError, ingest_file
from core.ingest.status import ingest_summary
from core.store import Store

OR_COUNTS = dict(rows=541_909, customers=4_372, invoices=25_900, stock_codes=4_070, countries=38,
                 cancellations=9_288, duplicates=5_268, revenue=9_747_747.93)


def _one(con, sql, params=None):
    return con.execute(sql, params or []).fetchone()[0]


def _identity(r: dict) -> bool:
    return r["rows_read"] == r["rows_loaded"] + r["rows_quarantined"] + r["rows_duplicate"]


# ------------------------------------------------------------------ Online Retail (real data)
@pytest.fixture(scope="session")
def or_ingested(shared_data, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("or") / "or.duckdb")
    report = ingest_file(store, shared_data / "online_retail" / "online_retail.csv.gz", "online-retail")
    return store, report


@pytest.mark.slow
def test_online_retail_csv_figures_and_reconciliation(or_ingested, shared_data):
    store, r = or_ingested
    assert r["rows_read"] == OR_COUNTS["rows"]
    assert r["rows_duplicate"] == OR_COUNTS["duplicates"]
    assert _identity(r) and r["reconciles"] and not r["skipped_already_ingested"]
    rev = r["revenue"]
    assert rev["revenue_read"] == pytest.approx(OR_COUNTS["revenue"], abs=0.005)
    assert rev["revenue_loaded"] + rev["revenue_quarantined"] + rev["revenue_duplicate"] == \
        pytest.approx(OR_COUNTS["revenue"], abs=0.01)
    assert rev["rows_without_revenue"] == 0 and rev["revenue_reconciles"]
    with store.read() as con:
        # counted back from the tables, not from the report
        assert _one(con, "SELECT count(*) FROM events") == r["rows_loaded"]
        assert _one(con, "SELECT count(*) FROM quarantine") == r["rows_quarantined"]
        assert _one(con, "SELECT sum(quantity * unit_price) FROM events") == \
            pytest.approx(rev["revenue_loaded"], abs=0.01)
        # every customer, invoice, stock code and country of the file is in events/users or quarantine
        q = "SELECT count(DISTINCT x) FROM ({} UNION ALL SELECT {} FROM quarantine)"
        assert _one(con, q.format("SELECT user_id x FROM users",
                                  r"regexp_replace(raw->>'CustomerID', '\.0+$', '')")) == OR_COUNTS["customers"]
        assert _one(con, q.format("SELECT basket_id x FROM events", "raw->>'InvoiceNo'")) == OR_COUNTS["invoices"]
        assert _one(con, q.format("SELECT item_id x FROM items", "raw->>'StockCode'")) == OR_COUNTS["stock_codes"]
        assert _one(con, q.format("SELECT attributes->>'country' x FROM users", "raw->>'Country'")) == OR_COUNTS["countries"]
        # cancellations: returns + quarantined + duplicate cancellation rows (duplicates from the file)
        dup_c = _one(duckdb.connect(),
                     "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM read_csv(?, all_varchar=true) "
                     "WHERE InvoiceNo LIKE 'C%' GROUP BY InvoiceNo, StockCode, Description, Quantity, "
                     "InvoiceDate, UnitPrice, CustomerID, Country)",
                     [str(shared_data / "online_retail" / "online_retail.csv.gz")])
        returns = _one(con, "SELECT count(*) FROM events WHERE event_type = 'return'")
        q_c = _one(con, "SELECT count(*) FROM quarantine WHERE raw->>'InvoiceNo' LIKE 'C%'")
        assert returns + q_c + dup_c == OR_COUNTS["cancellations"]
        assert _one(con, "SELECT count(*) FROM events WHERE event_type = 'return' AND quantity >= 0") == 0
        assert _one(con, "SELECT count(*) FROM events WHERE upper(basket_id) LIKE 'C%' "
                         "AND event_type <> 'return'") == 0
        # CustomerID 17850.0 -> '17850'; no customer -> NULL user, still loaded
        assert _one(con, "SELECT count(*) FROM events WHERE user_id = '17850'") > 0
        assert _one(con, "SELECT count(*) FROM events WHERE user_id LIKE '%.%'") == 0
        assert _one(con, "SELECT count(*) FROM events WHERE user_id IS NULL") > 100_000
        assert _one(con, "SELECT attributes->>'country' FROM users WHERE user_id = '17850'") == "United Kingdom"
        # item title = most frequent description, price = median unit price
        assert _one(con, "SELECT title FROM items WHERE item_id = '85123A'") == \
            "WHITE HANGING HEART T-LIGHT HOLDER"
        assert _one(con, "SELECT price FROM items WHERE item_id = '85123A'") == pytest.approx(
            _one(con, "SELECT median(unit_price) FROM events WHERE item_id = '85123A'"))
        # the product decisions: nothing with price <= 0 and no service lines loaded
        assert _one(con, "SELECT count(*) FROM events WHERE unit_price <= 0") == 0
        assert _one(con, "SELECT count(*) FROM events WHERE item_id IN ('POST', 'DOT', 'M', 'AMAZONFEE')") == 0
        reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall())
        assert sum(reasons.values()) == r["rows_quarantined"] and reasons == r["quarantine_reasons"]
        assert _one(con, "SELECT count(*) FROM quarantine WHERE raw IS NULL OR row_number IS NULL "
                         "OR column_name IS NULL") == 0
        s = ingest_summary(con)
    assert s["totals"] == {"users": r["totals"]["users"], "items": r["totals"]["items"],
                           "events": r["rows_loaded"]}
    (ing,) = s["ingests"]
    assert ing["rows_read"] == OR_COUNTS["rows"] and ing["reconciles"]


@pytest.mark.slow
def test_online_retail_parquet_agrees_with_csv(or_ingested, shared_data, tmp_path):
    _, csv_r = or_ingested
    store = Store(tmp_path / "pq.duckdb")
    r = ingest_file(store, shared_data / "online_retail" / "online_retail.parquet", "online-retail")
    for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "reconciles",
              "quarantine_reasons", "revenue", "totals"):
        assert r[k] == csv_r[k], k
    with store.read() as a, or_ingested[0].read() as b:
        sig = ("SELECT count(DISTINCT user_id), count(DISTINCT basket_id), min(ts), max(ts), "
               "sum(quantity), sum(hash(item_id, ts, user_id) % 1000003) FROM events")
        assert a.execute(sig).fetchone() == b.execute(sig).fetchone()


@pytest.mark.slow
def test_online_retail_reingest_is_a_noop(or_ingested, shared_data):
    store, first = or_ingested
    before = store.version()
    r = ingest_file(store, shared_data / "online_retail" / "online_retail.csv.gz", "online-retail")
    assert r["skipped_already_ingested"] and r["ingest_id"] == first["ingest_id"]
    assert "already ingested" in r["message"] and "nothing changed" in r["message"]
    assert store.version() == before


# ------------------------------------------------------------------ Groceries (real data)
@pytest.mark.slow
def test_groceries_baskets(shared_data, tmp_store):
    r = ingest_file(tmp_store, shared_data / "groceries" / "groceries.csv", "baskets")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["rows_duplicate"]) == (9_835, 9_835, 0, 0)
    assert r["reconciles"]
    with tmp_store.read() as con:
        n_b, n_i, n_rows, biggest = con.execute(
            "SELECT count(DISTINCT basket_id), count(DISTINCT item_id), count(*), "
            "(SELECT max(c) FROM (SELECT count(*) c FROM events GROUP BY basket_id)) FROM events").fetchone()
        assert (n_b, n_i, n_rows, biggest) == (9_835, 169, 43_367, 32)
        assert round(n_rows / n_b, 3) == 4.409
        assert _one(con, "SELECT count(*) FROM items") == 169
        labels = {x for (x,) in con.execute("SELECT item_id FROM items").fetchall()}
        assert {"cream cheese", "roll products"} <= labels
        assert not any(x != x.strip() for x in labels)
        assert _one(con, "SELECT count(*) FROM events WHERE user_id IS NOT NULL OR ts IS NOT NULL "
                         "OR event_type <> 'purchase'") == 0
        # basket_id = line number: line 1 is "citrus fruit,semi-finished bread,margarine,ready soups"
        assert sorted(x for (x,) in con.execute("SELECT item_id FROM events WHERE basket_id = '1'").fetchall()) == \
            ["citrus fruit", "margarine", "ready soups", "semi-finished bread"]


# ------------------------------------------------------------------ synthetic files
CLICKS = """event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s1
2019-10-01 00:00:01 UTC,view,3900821,2053013552326770905,appliances.environment.water_heater,aqua,33.20,554748717,s2
2019-10-01 00:00:02 UTC,cart,3900821,2053013552326770905,appliances.environment.water_heater,aqua,33.20,554748717,s2
2019-10-01 00:00:03 UTC,remove_from_cart,3900821,2053013552326770905,appliances.environment.water_heater,aqua,33.20,554748717,s2
2019-10-01 00:00:04 UTC,purchase,1307067,2053013558920217191,computers.notebook,lenovo,251.74,550050854,s3
2019-10-01 00:00:05 UTC,purchase,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,550050854,s3
2019-10-01 00:00:05 UTC,purchase,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,550050854,s3
not a date,view,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,550050854,s3
2019-10-01 00:00:07 UTC,wishlist,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,550050854,s3
2019-10-01 00:00:08 UTC,view,,2053013555631882655,electronics.smartphone,apple,1081.98,550050854,s3
2019-10-01 00:00:09 UTC,view,1004237,2053013555631882655,electronics.smartphone,apple,abc,550050854,s3
2019-10-01 00:00:10 UTC,view,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,,s4
"""


def test_clickstream_gzip(tmp_store, tmp_path):
    p = tmp_path / "2019-Oct.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write(CLICKS)
    r = ingest_file(tmp_store, p, "clickstream")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["rows_duplicate"]) == (12, 7, 4, 1)
    assert r["reconciles"]
    assert r["quarantine_reasons"] == {
        "event_time is not a date": 1,
        "unknown event_type (expected view, cart, remove_from_cart or purchase)": 1,
        "missing product_id": 1,
        "price is not a number": 1,
    }
    with tmp_store.read() as con:
        rows = con.execute("SELECT event_type, quantity, basket_id, session_id FROM events "
                           "WHERE item_id = '3900821' ORDER BY event_id").fetchall()
        assert rows == [("view", 1.0, None, "s2"), ("cart", 1.0, None, "s2"), ("cart", -1.0, None, "s2")]
        assert con.execute("SELECT DISTINCT basket_id FROM events WHERE event_type = 'purchase'").fetchall() == [("s3",)]
        assert _one(con, "SELECT ts FROM events WHERE item_id = '44600062'").isoformat() == "2019-10-01T00:00:00"
        item = con.execute("SELECT title, category_path, brand, price FROM items WHERE item_id = '3900821'").fetchone()
        assert item == ("aqua water heater", "appliances > environment > water_heater", "aqua", 33.2)
        # no category_code: the category_id is kept as the category (issue 11)
        assert _one(con, "SELECT category_path FROM items WHERE item_id = '44600062'") == \
            "category 2103807459595387724"
        assert _one(con, "SELECT count(*) FROM events WHERE user_id IS NULL") == 1  # anonymous row kept
        assert _one(con, "SELECT count(*) FROM users") == 3
        bad = con.execute("SELECT row_number, column_name, raw->>'event_time' FROM quarantine "
                          "WHERE reason = 'event_time is not a date'").fetchone()
        assert bad == (8, "event_time", "not a date")


MAPPING = """
[columns]
user = "customer_id"
item = "sku"
time = "ordered_at"
quantity = "qty"
price = "unit_price"
basket = "order_id"
type = { const = "purchase" }
"""


def test_events_with_toml_mapping_items_and_users(tmp_store, tmp_path):
    (tmp_path / "orders.csv").write_text(
        "order_id,customer_id,sku,ordered_at,qty,unit_price\n"
        "o1,c1,A,2024-01-05 10:00:00,2,3.50\n"
        "o1,c1,B,2024-01-05 10:00:00,1,10\n"
        "o2,c2,A,1/6/2024 9:30,1,3.50\n"
        "o3,,B,2024-01-07,1,10\n"
        "o4,c3,A,2024-01-08,two,3.50\n"
        "o5,c3,A,2024-13-45,1,3.50\n"
        "o6,c3,A,2024-01-09,1,-1\n")
    (tmp_path / "mapping.toml").write_text(MAPPING + '\n[items]\nid = "sku"\ntitle = "name"\n')
    (tmp_path / "items.csv").write_text("sku,name,category,brand,price\nA,Red mug,Home > Kitchen,Acme,3.5\n"
                                        "B,Blue bowl,Home > Kitchen,,12\nC,Green cup,Home,Acme,x\n,No id,,,\n"
                                        "C,Green cup,Home,Acme,4\n")  # C's first row is bad: the second loads
    (tmp_path / "users.csv").write_text("customer_id,age_band,city\nc1,25-34,Leeds\nc2,35-44,York\nc1,45-54,Hull\n")
    r = ingest_file(tmp_store, tmp_path / "orders.csv", "events", mapping=tmp_path / "mapping.toml",
                    items_path=tmp_path / "items.csv", users_path=tmp_path / "users.csv")
    assert r["reconciles"] and _identity(r)
    main, items, users = r["files"]
    assert (main["rows_read"], main["rows_loaded"], main["rows_quarantined"]) == (7, 4, 3)
    assert (items["rows_read"], items["rows_loaded"], items["rows_quarantined"]) == (5, 3, 2)
    assert (users["rows_read"], users["rows_loaded"], users["rows_quarantined"]) == (3, 2, 1)
    assert r["revenue"]["revenue_reconciles"] and r["revenue"]["rows_without_revenue"] == 1
    # the reasons add up to the event file's 3 quarantined rows; the side files' are per file
    assert r["quarantine_reasons"] == {
        "qty is not a number": 1, "ordered_at is not a date": 1, "negative unit_price": 1}
    assert sorted((q["file"].rsplit("/", 1)[-1], q["reason"], q["rows"])
                  for q in r["side_quarantine"]) == [
        ("items.csv", "missing item id", 1), ("items.csv", "price is not a number", 1),
        ("users.csv", "duplicate user id (the first row is kept)", 1)]
    with tmp_store.read() as con:
        ev = con.execute("SELECT user_id, item_id, event_type, ts::VARCHAR, quantity, unit_price, basket_id "
                         "FROM events ORDER BY event_id").fetchall()
        assert ev == [("c1", "A", "purchase", "2024-01-05 10:00:00", 2.0, 3.5, "o1"),
                      ("c1", "B", "purchase", "2024-01-05 10:00:00", 1.0, 10.0, "o1"),
                      ("c2", "A", "purchase", "2024-01-06 09:30:00", 1.0, 3.5, "o2"),
                      (None, "B", "purchase", "2024-01-07 00:00:00", 1.0, 10.0, "o3")]
        it = {row[0]: row[1:] for row in con.execute(
            "SELECT item_id, title, category_path, brand, price FROM items").fetchall()}
        # the catalogue's values win; B's price comes from the catalogue (12) not the events (10)
        assert it == {"A": ("Red mug", "Home > Kitchen", "Acme", 3.5),
                      "B": ("Blue bowl", "Home > Kitchen", None, 12.0),
                      "C": ("Green cup", "Home", "Acme", 4.0)}  # a catalogue item without events
        us = {u: json.loads(a) for u, a in con.execute("SELECT user_id, attributes FROM users").fetchall()}
        assert us == {"c1": {"age_band": "25-34", "city": "Leeds"}, "c2": {"age_band": "35-44", "city": "York"}}
        assert con.execute("SELECT row_number, column_name FROM quarantine "
                           "WHERE reason LIKE 'duplicate user id%'").fetchall() == [(3, "customer_id")]
        q = con.execute("SELECT row_number, column_name, raw->>'qty' FROM quarantine "
                        "WHERE reason = 'qty is not a number'").fetchone()
        assert q == (5, "qty", "two")


def test_events_flags_epoch_tsv_and_types(tmp_store, tmp_path):
    from core.ingest import load_mapping, merge_flags

    p = tmp_path / "clicks.tsv.gz"
    with gzip.open(p, "wt") as f:
        f.write("visitor\tthing\twhen\taction\n"
                "v1\ti1\t1700000000\tbuy\n"
                "v1\ti2\t1700000060\tADD_TO_CART\n"
                "v2\ti1\t1700000120\tview\n"
                "v2\ti1\tyesterday\tview\n"
                "v2\ti3\t1700000180\tshare\n")
    toml = _write(tmp_path / "m.toml", '[columns]\nuser = "customer"\nitem = "thing"\ntime = "when"\n'
                  'type = "action"\nepoch = true\n\n[types]\nbuy = "purchase"\nadd_to_cart = "cart"\n')
    # flags override the file: the user column is "visitor", not "customer"
    mapping = merge_flags(load_mapping(toml), columns={"user": "visitor", "item": None})
    r = ingest_file(tmp_store, p, "events", mapping=mapping)
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (5, 3, 2) and r["reconciles"]
    assert set(r["quarantine_reasons"]) == {
        "when is not epoch seconds",
        "unknown event type (map it under [types] in the mapping file, e.g. buy = \"purchase\")"}
    with tmp_store.read() as con:
        assert con.execute("SELECT user_id, item_id, event_type, ts::VARCHAR FROM events ORDER BY event_id").fetchall() == [
            ("v1", "i1", "purchase", "2023-11-14 22:13:20"),
            ("v1", "i2", "cart", "2023-11-14 22:14:20"),
            ("v2", "i1", "view", "2023-11-14 22:15:20")]


def _parquet(path: Path, select: str) -> None:
    con = duckdb.connect()
    con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    con.close()


def test_parquet_events_and_a_second_file_merges(tmp_store, tmp_path):
    p = tmp_path / "ev.parquet"
    _parquet(p, "SELECT * FROM (VALUES ('u1', 'x', TIMESTAMP '2024-02-01 12:00:00', 'view'), "
                "('u2', 'y', TIMESTAMP '2024-02-02 12:00:00', 'purchase')) t(user_id, item_id, ts, event_type)")
    r = ingest_file(tmp_store, p, "events")  # column names guessed: user_id, item_id, ts, event_type
    assert (r["rows_read"], r["rows_loaded"]) == (2, 2) and r["reconciles"]
    assert any("guessed" in n for n in r["notes"])
    gz = tmp_path / "ev2.parquet.gz"
    _parquet(tmp_path / "tmp.parquet",
             "SELECT 'u1' AS user_id, 'z' AS item_id, TIMESTAMP '2024-01-01 08:00:00' AS ts, 'view' AS event_type")
    gz.write_bytes(gzip.compress((tmp_path / "tmp.parquet").read_bytes()))
    r2 = ingest_file(tmp_store, gz, "events")
    assert r2["ingest_id"] == 2 and r2["rows_loaded"] == 1 and r2["users_new"] == 0
    with tmp_store.read() as con:
        assert _one(con, "SELECT count(*) FROM events") == 3
        assert _one(con, "SELECT count(DISTINCT event_id) FROM events") == 3
        assert _one(con, "SELECT first_seen::VARCHAR FROM users WHERE user_id = 'u1'") == "2024-01-01 08:00:00"
        s = ingest_summary(con)
    assert [i["ingest_id"] for i in s["ingests"]] == [1, 2] and all(i["reconciles"] for i in s["ingests"])
    assert s["totals"] == {"users": 2, "items": 3, "events": 3}


OR_SMALL = ("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
            "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527.0,United Kingdom\n"
            "C536383,35004C,SET OF 3 COLOURED  FLYING DUCKS,-1,12/1/2010 9:49,4.65,15311.0,United Kingdom\n"
            "536414,22139,,56,12/1/2010 11:52,0.0,,United Kingdom\n"
            "536415,22139,RETROSPOT TEA SET,2,12/1/2010 11:57,4.95,,United Kingdom\n"
            "536416,,NO CODE,1,12/1/2010 12:00,1.0,17850.0,United Kingdom\n"
            "536417,22139,RETROSPOT TEA SET,x,12/1/2010 12:00,4.95,17850.0,United Kingdom\n"
            "536418,22139,RETROSPOT TEA SET,1,31/12/2010 12:00,4.95,17850.0,United Kingdom\n"
            "536419,22139,RETROSPOT TEA SET,1,12/2/2010 12:00,4.95,17850.0,United Kingdom,extra\n")


def test_online_retail_bad_rows_are_quarantined_with_reasons(tmp_store, tmp_path):
    p = tmp_path / "orders.csv"
    p.write_text(OR_SMALL)
    r = ingest_file(tmp_store, p, "online-retail")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["rows_duplicate"]) == (10, 3, 6, 1)
    assert r["reconciles"] and r["revenue"]["revenue_reconciles"]
    with tmp_store.read() as con:
        q = con.execute("SELECT row_number, column_name, reason FROM quarantine ORDER BY row_number").fetchall()
        assert q == [
            (3, "StockCode", "service line, not a product (postage, fees, discounts, manual or bad-debt adjustments)"),
            (5, "UnitPrice", "UnitPrice is 0 (stock adjustment, damaged or lost stock, or a free item: not a sale)"),
            (7, "StockCode", "missing StockCode"),
            (8, "Quantity", "Quantity is not a number"),
            (9, "InvoiceDate",
             "InvoiceDate is not a date (expected e.g. 2011-12-09 12:50:00 or 12/9/2011 12:50)"),
            (10, None, "malformed line: too many columns (fix the quoting or the number of fields on that line)"),
        ]
        raw = json.loads(_one(con, "SELECT raw FROM quarantine WHERE row_number = 8"))
        assert raw["Quantity"] == "x" and raw["StockCode"] == "22139"
        assert "536419" in _one(con, "SELECT raw->>'line' FROM quarantine WHERE row_number = 10")
        ev = con.execute("SELECT user_id, event_type, quantity, ts::VARCHAR, basket_id FROM events "
                         "ORDER BY event_id").fetchall()
        assert ev == [("17850", "purchase", 6.0, "2010-12-01 08:26:00", "536365"),
                      ("15311", "return", -1.0, "2010-12-01 09:49:00", "C536383"),
                      (None, "purchase", 2.0, "2010-12-01 11:57:00", "536415")]
        # the zero-price row's empty description does not become the title
        assert _one(con, "SELECT title FROM items WHERE item_id = '22139'") == "RETROSPOT TEA SET"


def test_missing_column_names_the_closest_match(tmp_store, tmp_path):
    p = tmp_path / "orders.csv"
    p.write_text(OR_SMALL.replace("InvoiceDate", "Invoice_Date", 1))
    with pytest.raises(IngestError) as e:
        ingest_file(tmp_store, p, "online-retail")
    msg = str(e.value)
    assert str(p) in msg and "'InvoiceDate'" in msg and "closest match is 'Invoice_Date'" in msg
    assert "Columns found: InvoiceNo, StockCode" in msg
    assert not tmp_store.exists()  # nothing was created
    with pytest.raises(IngestError, match="closest match is 'sku_code'"):
        ingest_file(tmp_store, _write(tmp_path / "e.csv", "sku_code,ts\na,2024-01-01\n"), "events",
                    mapping={"columns": {"item": "sku"}})


def test_mapping_mistakes_are_explained(tmp_path):
    from core.ingest.mapping import load_mapping, normalize

    with pytest.raises(IngestError, match="unknown role 'usr'. Did you mean 'user'"):
        normalize({"columns": {"usr": "customer_id"}})
    with pytest.raises(IngestError, match="not an event type"):
        from core.ingest.formats import events_plan
        from core.ingest.reader import Staged

        events_plan(Staged(tmp_path / "x.csv", "csv", ["item"], 0), normalize({"types": {"buy": "bought"}}))
    with pytest.raises(IngestError, match="not valid TOML"):
        load_mapping(_write(tmp_path / "bad.toml", "[columns\nuser = "))


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_reingest_is_a_noop_and_failed_ingest_changes_nothing(tmp_store, tmp_path, monkeypatch):
    p = _write(tmp_path / "orders.csv", OR_SMALL)
    first = ingest_file(tmp_store, p, "online-retail")
    before = tmp_store.version()
    again = ingest_file(tmp_store, _write(tmp_path / "copy.csv", OR_SMALL), "online-retail")  # same content
    assert again["skipped_already_ingested"] and again["ingest_id"] == first["ingest_id"]
    assert tmp_store.version() == before

    from core.ingest import load

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(load, "merge_users", boom)  # fails after events and quarantine were written
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_file(tmp_store, _write(tmp_path / "more.csv", OR_SMALL.replace("536365", "600000")),
                    "online-retail")
    assert tmp_store.version() == before
    with tmp_store.read() as con:
        assert _one(con, "SELECT count(*) FROM ingests") == 1
        assert _one(con, "SELECT count(*) FROM events") == first["rows_loaded"]
        assert _one(con, "SELECT count(*) FROM quarantine") == first["rows_quarantined"]
        assert _one(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_ing_%'") == 0
    # the same rows in another file (different bytes) load, with a warning that they overlap
    monkeypatch.undo()
    r = ingest_file(tmp_store, _write(tmp_path / "same_rows.csv", OR_SMALL.replace("\n", "\r\n")),
                    "online-retail")
    assert not r["skipped_already_ingested"] and r["rows_already_in_store"] == first["rows_loaded"]
    assert any(n.startswith("warning") and "fresh store" in n for n in r["notes"])


def _cli(argv: list[str]) -> int:
    from core.cli import _common, ingest
    from core.config import load_settings

    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    _common(parser)
    args = parser.parse_args(argv)
    return ingest.run(args, load_settings(args.config, db=args.db))


def test_cli_json_report_and_status(tmp_path, capsys):
    db = str(tmp_path / "cli.duckdb")
    p = _write(tmp_path / "orders.csv", OR_SMALL)
    assert _cli([str(p), "--format", "online-retail", "--db", db, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_read"] == 10 and out["reconciles"] is True
    assert _cli([str(p), "--format", "online-retail", "--db", db]) == 0
    assert "already ingested" in capsys.readouterr().out
    from core.cli import UserError

    with pytest.raises(UserError, match="closest match"):
        _cli([str(_write(tmp_path / "ev.csv", OR_SMALL + "1,2,3,4,5,6,7,8\n")), "--format", "events",
              "--item-col", "StockCod", "--db", db])
    from core.cli.status import collect

    st = collect(Store(db))
    assert st["ingests"][0]["rows_read"] == 10 and st["quarantine_reasons"]


def test_row_numbers_stay_right_after_malformed_lines(tmp_store, tmp_path):
    p = _write(tmp_path / "e.csv", "user_id,item_id,ts\n"
               "u1,a,2024-01-01\n"        # row 1
               "u1,a,2024-01-02,extra\n"  # row 2: malformed
               "u1,a\n"                   # row 3: malformed (a field missing)
               "u2,b,2024-01-04\n"        # row 4
               "u2,b,someday\n"           # row 5: bad date
               "u3,c,2024-01-06\n")       # row 6
    r = ingest_file(tmp_store, p, "events")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (6, 3, 3) and r["reconciles"]
    with tmp_store.read() as con:
        q = con.execute("SELECT row_number, reason LIKE 'malformed%' FROM quarantine ORDER BY 1").fetchall()
        assert q == [(2, True), (3, True), (5, False)]
        assert con.execute("SELECT event_id, item_id FROM events ORDER BY 1").fetchall() == [
            (1, "a"), (4, "b"), (6, "c")]
