"""Reconciliation per file (issue 11, point 4): the headline counts are the event file's rows;
each side file reconciles on its own line, in the report and in `segstudio status`."""

from __future__ import annotations

from core.cli import main as cli_main
from core.ingest import ingest_file
from core.ingest.status import ingest_summary
from core.store import Store


def _files(tmp_path):
    (tmp_path / "ev.csv").write_text(
        "sku,customer_id,qty,price\nA,c1,1,2\nB,c2,1,3\nA,c1,1,2\n,c3,1,1\nC,c3,x,1\n")
    (tmp_path / "items.csv").write_text(
        "item_id,title\nA,Mug\nB,Bowl\nB,Bowl again\nZ,Zither\n,nothing\nA,Mug\n")
    (tmp_path / "users.csv").write_text("user_id,city\nc1,Leeds\nc2,York\nc9,Hull\n")


def test_headline_counts_are_the_event_file_and_each_file_reconciles(tmp_path):
    _files(tmp_path)
    store = Store(tmp_path / "s.duckdb")
    r = ingest_file(store, tmp_path / "ev.csv", "events", items_path=tmp_path / "items.csv",
                    users_path=tmp_path / "users.csv")
    # 5 event rows, not 5 + 6 + 3 = 14
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["rows_duplicate"]) == (5, 2, 2, 1)
    got = {f["role"]: (f["rows_read"], f["rows_loaded"], f["rows_quarantined"], f["rows_duplicate"],
                       f["reconciles"]) for f in r["files"]}
    assert got == {"events": (5, 2, 2, 1, True), "items": (6, 3, 2, 1, True),
                   "users": (3, 3, 0, 0, True)}
    assert r["reconciles"]
    with store.read() as con:
        s = ingest_summary(con)
        assert con.execute("SELECT rows_read FROM ingests").fetchone()[0] == 5
    (ing,) = s["ingests"]
    assert ing["rows_read"] == 5 and ing["reconciles"]
    # the reasons add up to the event file's 2 quarantined rows; the items file's are its own
    assert sum(r["quarantine_reasons"].values()) == 2
    assert r["quarantine_reasons"] == s["quarantine_reasons"]
    items = str(tmp_path / "items.csv")
    assert {q["file"] for q in r["side_quarantine"]} == {items}
    assert sum(q["rows"] for q in r["side_quarantine"]) == 2
    assert r["side_quarantine"] == s["side_quarantine"]
    assert [f["role"] for f in ing["files"]] == ["events", "items", "users"]


def test_report_and_status_print_one_line_per_file(tmp_path, capsys):
    _files(tmp_path)
    db = str(tmp_path / "s.duckdb")
    assert cli_main(["ingest", str(tmp_path / "ev.csv"), "--format", "events", "--items",
                     str(tmp_path / "items.csv"), "--users", str(tmp_path / "users.csv"),
                     "--db", db, "-q"]) == 0
    out = capsys.readouterr().out
    assert "rows read 5 = loaded 2 + quarantined 2 + exact duplicates skipped 1  (reconciles)" in out
    assert "read 6 = loaded 3 + quarantined 2 + duplicates 1" in out
    assert "users file" in out and "read 3 = loaded 3 + quarantined 0 + duplicates 0" in out
    assert cli_main(["status", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "read 5 = loaded 2 + quarantined 2 + duplicates skipped 1 (reconciles)" in out
    assert "items file" in out and "read 6 = loaded 3 + quarantined 2 + duplicates 1" in out
    assert f"Quarantined in {tmp_path / 'items.csv'}: 1" in out
