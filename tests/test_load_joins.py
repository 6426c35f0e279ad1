"""Multi-table exports joined through the mapping, and the linkage warnings (issue 11, point 2)."""

from __future__ import annotations

import pytest

from core.cli import main as cli_main
from core.ingest import IngestError, ingest_file
from core.ingest.status import ingest_summary
from core.store import Store

MAPPING = """
[columns]
item = "product_id"
user = "user_id"
basket = "order_id"
time = "order_time"
title = "product_name"
category = "aisle"

[[join]]
file = "orders.csv"
on = "order_id"

[[join]]
file = "products.csv"
on = "product_id"

[[join]]
file = "aisles.csv"
on = "aisle_id"
"""


@pytest.fixture()
def export(tmp_path):
    d = tmp_path / "export"
    d.mkdir()
    (d / "order_products.csv").write_text(
        "order_id,product_id,add_to_cart_order\n"
        "1,10,1\n1,11,2\n2,10,1\n3,12,1\n3,11,2\n"
        "9,10,1\n")                       # order 9 is not in orders.csv: no time, quarantined
    (d / "orders.csv").write_text(
        "order_id,user_id,order_time\n"
        "1,u1,2024-03-01 10:00:00\n2,u2,2024-03-02 11:00:00\n3,u1,2024-03-09 10:30:00\n"
        "4,u3,2024-03-10 09:00:00\n"      # no line: matches no event row
        "2,u9,2024-03-03 11:00:00\n")     # repeats order 2: the first row is used
    (d / "products.csv").write_text(
        "product_id,product_name,aisle_id\n10,Banana,24\n11,Whole milk,84\n12,Bagels,93\n13,Kale,83\n")
    (d / "aisles.csv").write_text("aisle_id,aisle\n24,fresh fruits\n84,milk\n93,breads\n83,fresh vegetables\n")
    (d / "mapping.toml").write_text(MAPPING)
    return d


def test_three_tables_joined_through_the_mapping(export, tmp_path):
    store = Store(tmp_path / "g.duckdb")
    r = ingest_file(store, export / "order_products.csv", "events", mapping=export / "mapping.toml")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["rows_duplicate"]) == (6, 5, 1, 0)
    assert r["reconciles"] and r["quarantine_reasons"] == {"missing order_time": 1}
    joined = {f["source_file"].rsplit("/", 1)[-1]: f for f in r["files"] if f["role"] == "joined"}
    o = joined["orders.csv"]
    assert (o["rows_read"], o["rows_used"], o["rows_unmatched"], o["rows_repeated_key"],
            o["rows_missing_key"], o["rows_unlinked"], o["reconciles"]) == (5, 3, 1, 1, 0, 1, True)
    p = joined["products.csv"]
    assert (p["rows_read"], p["rows_used"], p["rows_unmatched"], p["rows_unlinked"]) == (4, 3, 1, 0)
    a = joined["aisles.csv"]
    assert (a["rows_read"], a["rows_used"], a["rows_unmatched"]) == (4, 3, 1)
    with store.read() as con:
        ev = con.execute("SELECT user_id, item_id, basket_id, ts::VARCHAR FROM events "
                         "ORDER BY event_id").fetchall()
        items = con.execute("SELECT item_id, title, category_path FROM items ORDER BY 1").fetchall()
    assert ev == [("u1", "10", "1", "2024-03-01 10:00:00"), ("u1", "11", "1", "2024-03-01 10:00:00"),
                  ("u2", "10", "2", "2024-03-02 11:00:00"), ("u1", "12", "3", "2024-03-09 10:30:00"),
                  ("u1", "11", "3", "2024-03-09 10:30:00")]
    assert items == [("10", "Banana", "fresh fruits"), ("11", "Whole milk", "milk"),
                     ("12", "Bagels", "breads")]
    assert any("repeat a key already seen" in n and "orders.csv" in n for n in r["notes"])
    # 1 of 6 rows (17%) finds no order: over the 10% threshold
    assert any(n.startswith("warning: 1 of 6 event rows (17%) find no row in orders.csv") for n in r["notes"])


def test_join_key_errors_name_the_file_and_fix(export, tmp_path):
    (export / "bad.toml").write_text(MAPPING.replace('on = "aisle_id"', 'on = "aisle"'))
    with pytest.raises(IngestError, match=r"column 'aisle' \(the key to join aisles.csv\) is missing"):
        ingest_file(Store(tmp_path / "x.duckdb"), export / "order_products.csv", "events",
                    mapping=export / "bad.toml")
    (export / "bad2.toml").write_text('[[join]]\nfile = "orders.csv"\n')
    with pytest.raises(IngestError, match="needs on"):
        ingest_file(Store(tmp_path / "x.duckdb"), export / "order_products.csv", "events",
                    mapping=export / "bad2.toml")
    (export / "bad3.toml").write_text('[[join]]\nfile = "nope.csv"\non = "order_id"\n')
    with pytest.raises(IngestError, match="nope.csv: no such file"):
        ingest_file(Store(tmp_path / "x.duckdb"), export / "order_products.csv", "events",
                    mapping=export / "bad3.toml")
    assert not (tmp_path / "x.duckdb").exists() and not (tmp_path / "x.duckdb.lock").exists()


def test_orders_as_users_file_warns_anonymous_and_unmatched(export, tmp_path, capsys):
    """The issue's case: order lines with orders.csv given as --users exited 0 with 'new
    shoppers' and every event anonymous, silently."""
    db = str(tmp_path / "g.duckdb")
    rc = cli_main(["ingest", str(export / "order_products.csv"), "--format", "events",
                   "--item-col", "product_id", "--users", str(export / "orders.csv"), "--db", db, "-q"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "warning: no user column found: all 6 events are anonymous" in out
    assert "warning: none of the 4 shopper ids in orders.csv (--users) matches a shopper" in out
    with Store(db).read() as con:
        s = ingest_summary(con)
    assert any("all 6 events are anonymous" in w for w in s["ingests"][0]["warnings"])
    assert cli_main(["status", "--db", db]) == 0
    assert "warning: no user column found" in capsys.readouterr().out


def test_items_file_matching_no_event_and_mostly_anonymous(tmp_path):
    (tmp_path / "ev.csv").write_text("sku,user_id\nA,u1\nB,\nA,\nC,\n")
    (tmp_path / "items.csv").write_text("item_id,title\nX,Other shop's mug\nY,Other bowl\n")
    r = ingest_file(Store(tmp_path / "s.duckdb"), tmp_path / "ev.csv", "events",
                    items_path=tmp_path / "items.csv")
    assert "warning: 3 of 4 events (75%) have no user id and count only for items and baskets, " \
           "not for shoppers." in r["notes"]
    assert any(n.startswith("warning: none of the 2 item ids in items.csv (--items) matches")
               for n in r["notes"])


def test_items_joined_to_a_categories_table(tmp_path):
    (tmp_path / "ev.csv").write_text("sku,user_id\nA,u1\nB,u2\n")
    (tmp_path / "items.csv").write_text("item_id,title,cat\nA,Mug,1\nB,Bowl,2\n")
    (tmp_path / "cats.csv").write_text("cat,category\n1,Kitchen > Mugs\n2,Kitchen > Bowls\n")
    (tmp_path / "m.toml").write_text('[[items.join]]\nfile = "cats.csv"\non = "cat"\n')
    store = Store(tmp_path / "s.duckdb")
    r = ingest_file(store, tmp_path / "ev.csv", "events", mapping=tmp_path / "m.toml",
                    items_path=tmp_path / "items.csv")
    assert [f["role"] for f in r["files"]] == ["events", "items", "joined"]
    with store.read() as con:
        assert con.execute("SELECT item_id, category_path FROM items ORDER BY 1").fetchall() == \
            [("A", "Kitchen > Mugs"), ("B", "Kitchen > Bowls")]


def test_every_mapping_in_the_readme_loading_section_is_valid():
    import re
    import tomllib
    from pathlib import Path

    from core.ingest.mapping import normalize

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Loading your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    got = [normalize(tomllib.loads(b)) for b in blocks]
    assert got[0]["header"] is False and got[0]["items_header"] is False
    assert got[1]["earliest"] == "2005-01-01" and got[1]["columns"]["user"] == "customer_id"
    assert [j["right"] for j in got[2]["joins"]] == ["order_id", "product_id", "aisle_id"]


def test_events_whose_items_are_missing_from_the_catalogue_are_counted(tmp_path):
    (tmp_path / "ev.csv").write_text("sku,user_id\nA,u1\nB,u1\nC,u2\nD,u2\nA,u3\n")
    (tmp_path / "items.csv").write_text("item_id,title\nA,Mug\nB,Bowl\n")
    (tmp_path / "users.csv").write_text("user_id,city\nu1,Leeds\nu2,York\nu3,Hull\n")
    r = ingest_file(Store(tmp_path / "s.duckdb"), tmp_path / "ev.csv", "events",
                    items_path=tmp_path / "items.csv", users_path=tmp_path / "users.csv")
    warnings = [n for n in r["notes"] if n.startswith("warning")]
    assert warnings == ["warning: 2 of 5 events (40%) have an item id that is not in items.csv "
                        "(--items): they have no catalogue details."]


def test_the_readme_multi_table_command(export, tmp_path, capsys):
    db = str(tmp_path / "grocery.duckdb")
    (export / "grocery.toml").write_text(MAPPING)
    rc = cli_main(["ingest", str(export / "order_products.csv"), "--format", "events", "--mapping",
                   str(export / "grocery.toml"), "--currency", "USD", "--db", db, "-q"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "rows read 6 = loaded 5 + quarantined 1 + exact duplicates skipped 0  (reconciles)" in out
    assert "orders.csv (order_id = order_id): read 5 = used 3 + matching no row 1 + repeated key 1 " \
           "+ no key 0 + malformed 0" in out
    assert "note: currency set to $ (from --currency)" in out
