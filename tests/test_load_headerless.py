"""Files without a header row (issue 11, point 1): --no-header names columns by position."""

from __future__ import annotations

import pytest

from core.cli import main as cli_main
from core.ingest import IngestError, ingest_file
from core.store import Store

RATINGS = ("196\t242\t3\t881250949\n"
           "186\t302\t3\t891717742\n"
           "22\t377\t1\t878887116\n"
           "244\t\t2\t880606923\n"        # no item: quarantined
           "166\t346\t1\t886397596\textra\n"  # one field too many: malformed line
           "298\t474\t4\t884182806\n")


@pytest.fixture()
def ratings(tmp_path):
    p = tmp_path / "u.tsv"
    p.write_text(RATINGS)
    return p


def test_headerless_tsv_by_position_exact_counts(tmp_path, ratings):
    store = Store(tmp_path / "r.duckdb")
    r = ingest_file(store, ratings, "events", mapping={
        "header": False, "epoch": True, "columns": {"user": 1, "item": "2", "time": 4}})
    # every line is a row: none is eaten as a header
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["rows_duplicate"]) == (6, 4, 2, 0)
    assert r["reconciles"]
    assert "no header row: columns named by position, 1 to 4" in r["notes"]
    with store.read() as con:
        ev = con.execute("SELECT user_id, item_id, ts::VARCHAR FROM events ORDER BY event_id").fetchall()
        q = con.execute("SELECT row_number, reason FROM quarantine ORDER BY row_number").fetchall()
    assert ev == [("196", "242", "1997-12-04 15:55:49"), ("186", "302", "1998-04-04 19:22:22"),
                  ("22", "377", "1997-11-07 07:18:36"), ("298", "474", "1998-01-07 14:20:06")]
    # row numbers are line numbers (no header line to skip)
    assert [n for n, _ in q] == [4, 5]
    assert q[0][1] == "missing item id (2)" and q[1][1].startswith("malformed line")


def test_header_that_looks_like_data_suggests_no_header(tmp_path, ratings):
    store = Store(tmp_path / "r.duckdb")
    with pytest.raises(IngestError) as e:
        ingest_file(store, ratings, "events")
    msg = str(e.value)
    assert "Columns found: 196, 242, 3, 881250949" in msg
    assert "The first row looks like data" in msg and "--no-header" in msg and "1 to 4" in msg
    with pytest.raises(IngestError, match="add --no-header"):
        ingest_file(store, ratings, "events", mapping={"columns": {"item": "product"}})
    # a real header is not taken for data
    good = tmp_path / "g.csv"
    good.write_text("user,sku\n1,2\n")
    with pytest.raises(IngestError) as e:
        ingest_file(store, good, "events", mapping={"columns": {"item": "product"}})
    assert "--no-header" not in str(e.value)


def test_mapping_data_like_header_names_warns_that_a_row_was_lost(tmp_path, ratings):
    """The issue's trap: mapping the 'columns' 196, 242 loads every row but the first, and
    used to say nothing."""
    r = ingest_file(Store(tmp_path / "r.duckdb"), ratings, "events",
                    mapping={"columns": {"user": "196", "item": "242"}})
    assert (r["rows_read"], r["rows_loaded"]) == (5, 3)
    assert any(n.startswith("warning: the header row of u.tsv looks like data (196, 242, 3, "
                            "881250949): if the file has no header row, that first row was not "
                            "loaded") for n in r["notes"])


def test_headerless_from_the_command_line(tmp_path, ratings, capsys):
    db = tmp_path / "r.duckdb"
    rc = cli_main(["ingest", str(ratings), "--format", "events", "--no-header", "--user-col", "1",
                   "--item-col", "2", "--time-col", "4", "--epoch", "--db", str(db), "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "rows read 6 = loaded 4 + quarantined 2" in out


def test_header_setting_must_be_true_or_false(tmp_path, ratings):
    (tmp_path / "m.toml").write_text('header = "no"\n')
    with pytest.raises(IngestError, match="header must be true or false"):
        ingest_file(Store(tmp_path / "r.duckdb"), ratings, "events", mapping=tmp_path / "m.toml")
