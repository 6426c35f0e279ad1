"""A store per shop, safe by default: the demo store refuses real data, currency is a store
setting, and a failed first ingest leaves no lock file behind (issue 11, point 5)."""

from __future__ import annotations

import shutil

import pytest

from core.cli import main as cli_main
from core.ingest import IngestError, ingest_file
from core.store.schema import store_currency
from core.store import Store

ROWS = "order_id,customer_id,sku,ordered_at,qty,unit_price\no1,c1,A,2024-01-05,2,3.50\no2,c2,B,2024-01-06,1,10\n"


def _csv(tmp_path, name="orders.csv", text=ROWS):
    p = tmp_path / name
    p.write_text(text)
    return p


def _currency(store):
    with store.read() as con:
        return store_currency(con, default=None)


def test_demo_store_refuses_real_data_unless_forced(demo_store, tmp_path):
    store = Store(tmp_path / "demo_copy.duckdb")
    shutil.copyfile(demo_store.path, store.path)
    with store.read() as con:
        before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    f = _csv(tmp_path)
    with pytest.raises(IngestError) as e:
        ingest_file(store, f, "events")
    msg = str(e.value)
    assert "holds the generated demo shop (600 made-up shoppers)" in msg
    assert "--db data/myshop.duckdb" in msg and "--force" in msg
    with store.read() as con:  # untouched
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == before
        assert con.execute("SELECT count(*) FROM ingests").fetchone()[0] == 1
    r = ingest_file(store, f, "events", force=True)
    assert r["rows_loaded"] == 2
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == before + 2


def test_cli_refusal_is_one_sentence_and_exit_2(demo_store, tmp_path, capsys):
    db = tmp_path / "demo_copy.duckdb"
    shutil.copyfile(demo_store.path, db)
    rc = cli_main(["ingest", str(_csv(tmp_path)), "--format", "events", "--db", str(db), "-q"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err and "made-up shoppers" in err


def test_currency_from_flag_code_is_stored_as_symbol_and_conflict_refused(tmp_path):
    store = Store(tmp_path / "shop.duckdb")
    r = ingest_file(store, _csv(tmp_path), "events", currency="usd")
    assert "currency set to $ (from --currency)" in r["notes"]
    assert _currency(store) == "$"
    # the same currency again is fine; another one is refused and changes nothing
    ingest_file(store, _csv(tmp_path, "more.csv", ROWS.replace("o1", "o7")), "events", currency="$")
    with pytest.raises(IngestError, match=r"prices are in \$ but this file's are in € \(from --currency\)"):
        ingest_file(store, _csv(tmp_path, "eur.csv", ROWS.replace("o1", "o9")), "events", currency="EUR")
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM ingests").fetchone()[0] == 2
    with pytest.raises(IngestError, match="not a currency"):
        ingest_file(Store(tmp_path / "x.duckdb"), _csv(tmp_path), "events", currency="12")


def test_currency_from_the_data(tmp_path):
    store = Store(tmp_path / "shop.duckdb")
    text = "sku,customer_id,price,currency\nA,c1,3.5,EUR\nB,c2,4,eur\nC,c3,x,GBP\n"  # GBP row is quarantined
    r = ingest_file(store, _csv(tmp_path, "e.csv", text), "events")
    assert r["rows_loaded"] == 2 and _currency(store) == "€"
    assert "currency set to € (from the data)" in r["notes"]
    mixed = Store(tmp_path / "mixed.duckdb")
    r = ingest_file(mixed, _csv(tmp_path, "m.csv", "sku,price,currency\nA,1,USD\nB,2,EUR\n"), "events")
    assert any("mixes currencies (EUR, USD)" in n for n in r["notes"])
    assert _currency(mixed) is None
    assert any(n.startswith("currency not known") for n in r["notes"])


def test_currency_of_a_known_format(tmp_path):
    store = Store(tmp_path / "or.duckdb")
    text = ("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            "536365,85123A,MUG,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n")
    ingest_file(store, _csv(tmp_path, "or.csv", text), "online-retail")
    assert _currency(store) == "£"


def test_currency_in_the_mapping_file(tmp_path):
    (tmp_path / "m.toml").write_text('currency = "JPY"\n[columns]\nitem = "sku"\n')
    store = Store(tmp_path / "shop.duckdb")
    ingest_file(store, _csv(tmp_path), "events", mapping=tmp_path / "m.toml")
    assert _currency(store) == "¥"
    (tmp_path / "bad.toml").write_text('currency = "1.5"\n')
    with pytest.raises(IngestError, match="not a currency"):
        ingest_file(store, _csv(tmp_path), "events", mapping=tmp_path / "bad.toml")


def test_failed_first_ingest_leaves_no_lock_nor_folder(tmp_path):
    bad = _csv(tmp_path, "bad.csv", "a,b\n1,2\n")  # no item column
    store = Store(tmp_path / "new" / "shop.duckdb")
    with pytest.raises(IngestError, match="no item column"):
        ingest_file(store, bad, "events")
    assert not (tmp_path / "new").exists()
    store2 = Store(tmp_path / "shop.duckdb")
    with pytest.raises(IngestError):
        ingest_file(store2, bad, "events")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
    # a later good ingest works and keeps its lock file beside the store, as every write does
    ingest_file(store2, _csv(tmp_path), "events")
    assert (tmp_path / "shop.duckdb.lock").exists()
    with pytest.raises(IngestError):
        ingest_file(store2, bad, "events")
    with store2.read() as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 2


def test_a_writer_waiting_on_a_removed_lock_takes_a_fresh_one(tmp_path):
    """A failed first write removes its lock file while a second writer waits on it: the
    waiter must not write under the removed file's lock (two writers at once)."""
    import threading
    import time

    from core.store.publish import published_write

    path = tmp_path / "new" / "s.duckdb"
    entered = threading.Event()
    order = []

    def first():
        try:
            with published_write(path, lambda con: None) as con:
                entered.set()
                time.sleep(0.3)
                order.append("first fails")
                raise RuntimeError("boom")
        except RuntimeError:
            pass

    def second():
        entered.wait()
        with published_write(path, lambda con: None) as con:
            order.append("second writes")
            con.execute("CREATE TABLE t AS SELECT 1 AS x")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order == ["first fails", "second writes"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.duckdb", "s.duckdb.lock"]
