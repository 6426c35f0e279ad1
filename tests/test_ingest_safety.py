"""Poison values go to quarantine, counts are exact on malformed files, odd encodings and line
endings load, and every bad input or setting is one sentence naming the file (exit 2)."""

from __future__ import annotations

import codecs
import contextlib
import io
import json
from datetime import date

import pytest

from core.cli import main
from core.ingest import IngestError, ingest_file
from core.store import Store

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
GOOD = "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"


def _row(inv, qty="6", when="12/1/2010 8:26", price="2.55"):
    return f"{inv},22752,SET 7 BABUSHKA NESTING BOXES,{qty},{when},{price},17850.0,United Kingdom\n"


def _cli(*argv) -> tuple[int, str, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), [ln for ln in err.getvalue().splitlines() if ln.strip()]


def test_poison_dates_and_numbers_are_quarantined_with_their_reason(tmp_path):
    rows = [GOOD,
            _row(536366, when="infinity"), _row(536367, when="-infinity"), _row(536368, when="epoch"),
            _row(536369, when="9999-12-31 23:59:59"), _row(536370, when="294247-01-10"),
            _row(536371, when="0044-03-15 (BC)"), _row(536372, when="1/1/0044"),
            _row(536373, qty="NaN"), _row(536374, qty="1e309"), _row(536375, qty="20000000"),
            _row(536376, price="inf"), _row(536377, price="-1e400"), _row(536378, price="1e15")]
    f = tmp_path / "poison.csv"
    f.write_text(HEADER + "".join(rows))
    store = Store(tmp_path / "s.duckdb")
    r = ingest_file(store, f, "online-retail")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["rows_duplicate"]) == (14, 1, 13, 0)
    assert r["reconciles"]
    window = f"1990-01-01 to {date.today().replace(year=date.today().year + 1).isoformat()}" \
        if not (date.today().month == 2 and date.today().day == 29) else None
    reasons = r["quarantine_reasons"]
    dates = next(k for k in reasons if k.startswith("InvoiceDate outside the accepted dates"))
    assert reasons[dates] == 7 and (window is None or window in dates)
    assert reasons["Quantity is not a finite number (NaN or infinity)"] == 2
    assert reasons["Quantity is implausibly large (over 10,000,000 units)"] == 1
    assert reasons["UnitPrice is not a finite number (NaN or infinity)"] == 2
    assert reasons["UnitPrice is implausibly large (over 10,000,000,000)"] == 1
    # the file's revenue counts only rows with a usable quantity and price
    assert r["revenue"]["revenue_read"] == pytest.approx(6 * 2.55 + 7 * 6 * 2.55)
    assert r["revenue"]["rows_without_revenue"] == 6
    with store.read() as con:
        assert con.execute("SELECT row_number FROM quarantine WHERE reason LIKE 'InvoiceDate%' "
                           "ORDER BY 1").fetchall() == [(i,) for i in range(2, 9)]
    # the build would accept what was loaded
    from core.ingest.sanity import check_inputs

    with store.read() as con:
        check_inputs(con)


def test_the_date_window_is_a_setting(tmp_path):
    nxt = date.today().year + 3
    f = tmp_path / "old_and_future.csv"
    f.write_text(HEADER + _row(1, when="1985-06-01 10:00") + _row(2, when=f"{nxt}-01-05 10:00") + GOOD)
    code, out, err = _cli("ingest", str(f), "-f", "online-retail", "--db", str(tmp_path / "a.duckdb"),
                          "--json", "-q")
    assert code == 0 and json.loads(out)["rows_loaded"] == 1
    code, out, err = _cli("ingest", str(f), "-f", "online-retail", "--db", str(tmp_path / "b.duckdb"),
                          "--earliest", "1980-01-01", "--latest", f"{nxt + 1}-12-31", "--json", "-q")
    assert code == 0 and json.loads(out)["rows_loaded"] == 3
    for flags, fragment in ((["--earliest", "1850-01-01"], "before 1900-01-01"),
                            (["--latest", "yesterday"], "YYYY-MM-DD"),
                            (["--earliest", "2020-01-01", "--latest", "2010-01-01"], "swap them")):
        code, _, err = _cli("ingest", str(f), "-f", "online-retail", "--db",
                            str(tmp_path / "c.duckdb"), "-q", *flags)
        assert code == 2 and len(err) == 1 and fragment in err[0], err


def test_short_lines_count_once_and_quoted_newlines_are_one_record(tmp_path):
    f = tmp_path / "audit.csv"  # the audit's example: rows read 6 = loaded 1 + quarantined 1
    f.write_text(HEADER + GOOD + "536365,22749,FELTCRAFT\n")
    r = ingest_file(Store(tmp_path / "a.duckdb"), f, "online-retail")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (2, 1, 1) and r["reconciles"]
    g = tmp_path / "multiline.csv"
    g.write_text(HEADER + '536366,22752,"TWO\nLINES",6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n'
                 + "536367,22749,SHORT\n" + GOOD.replace("536365", "536368")
                 + "536369,1,2,3,4,5,6,7,8,9\n")
    s = Store(tmp_path / "b.duckdb")
    r = ingest_file(s, g, "online-retail")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (4, 2, 2) and r["reconciles"]
    with s.read() as con:
        assert con.execute("SELECT row_number, reason FROM quarantine ORDER BY 1").fetchall() == [
            (2, "malformed line: missing columns (fix the quoting or the number of fields on that line)"),
            (4, "malformed line: too many columns (fix the quoting or the number of fields on that line)")]
        assert con.execute("SELECT title FROM items WHERE item_id = '22752'").fetchone()[0] == "TWO\nLINES"


@pytest.mark.parametrize("encode, note", [
    (lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"), "UTF-16-LE recognised from the byte-order mark"),
    (lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"), "UTF-16-BE recognised from the byte-order mark"),
    (lambda t: t.encode("utf-16-le"), "UTF-16-LE recognised (no byte-order mark)"),
    (lambda t: codecs.BOM_UTF8 + t.replace("\n", "\r\n", 1).encode(), "line endings mixed CRLF and LF"),
])
def test_utf16_boms_and_mixed_line_endings_load(tmp_path, encode, note):
    text = HEADER + GOOD + _row(536366).replace("BABUSHKA", "BABUSHKA café")
    f = tmp_path / "export.csv"
    f.write_bytes(encode(text))
    s = Store(tmp_path / "s.duckdb")
    r = ingest_file(s, f, "online-retail")
    assert (r["rows_read"], r["rows_loaded"]) == (2, 2) and r["reconciles"]
    assert any(note in n for n in r["notes"]), r["notes"]
    with s.read() as con:
        assert con.execute("SELECT title FROM items WHERE item_id = '22752'").fetchone()[0] == \
            "SET 7 BABUSHKA café NESTING BOXES"


def test_undeclared_latin1_lines_are_quarantined_and_cp1252_reads_with_the_flag(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes((HEADER + GOOD + _row(536366).replace("BOXES", "BOÎTES")).encode("cp1252"))
    r = ingest_file(Store(tmp_path / "a.duckdb"), f, "online-retail")
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (2, 1, 1)
    assert "invalid encoding" in next(iter(r["quarantine_reasons"]))
    code, out, err = _cli("ingest", str(f), "-f", "online-retail", "--db", str(tmp_path / "b.duckdb"),
                          "--encoding", "cp1252", "--json", "-q")
    assert code == 0 and json.loads(out)["rows_loaded"] == 2


@pytest.mark.parametrize("setup, argv_extra, fragment", [
    (lambda d: (d / "f.csv").write_text(HEADER + GOOD), ["--time-format", "%Q"], "is not a valid date format"),
    (lambda d: (d / "f.csv").write_text(HEADER + GOOD), ["--encoding", "klingon"], "not a text encoding"),
    (lambda d: ((d / "f.csv").write_text(HEADER + GOOD), (d / "m.toml").write_bytes(b"\x00\xff\x9c binary")),
     ["--mapping", "{d}/m.toml"], "m.toml: the mapping file is not UTF-8 text"),
    (lambda d: (d / "f.csv").write_bytes(b"PK\x03\x04" + bytes(300)), [], "is a zip archive"),
    (lambda d: (d / "f.csv").write_bytes(bytes(range(256)) * 20), [], "binary data"),
    (lambda d: (d / "f.csv").write_text("\n" + HEADER + GOOD), [], "the first line is empty"),
    (lambda d: (d / "f.csv").write_text(HEADER.replace("InvoiceNo", "Invoice") + GOOD), [],
     "column 'InvoiceNo'"),
])
def test_bad_inputs_and_settings_are_one_sentence_naming_the_file(tmp_path, setup, argv_extra, fragment):
    setup(tmp_path)
    argv = ["ingest", str(tmp_path / "f.csv"), "-f", "online-retail", "--db", str(tmp_path / "s.duckdb"),
            "-q", *[a.format(d=tmp_path) for a in argv_extra]]
    code, out, err = _cli(*argv)
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert "Traceback" not in out


def test_cut_off_gzip_is_refused(tmp_path):
    import gzip

    data = gzip.compress((HEADER + GOOD * 2000).encode())
    f = tmp_path / "orders.csv.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="damaged or cut off"):
        ingest_file(Store(tmp_path / "s.duckdb"), f, "online-retail")


def _store_with_poison(tmp_path, ts_sql: str, qty: float = 1.0) -> Store:
    """What an ingest made before the checks existed could have left in a store."""
    s = Store(tmp_path / "old.duckdb")
    with s.write() as con:
        details = json.dumps({"event_id_base": 100, "sources": {"time": "InvoiceDate",
                                                                "quantity": "Quantity"}})
        con.execute("INSERT INTO ingests VALUES (1, NULL, NULL, '/data/orders.csv', 'online-retail', "
                    "'fp', 3, 3, 0, 0, ?)", [details])
        for eid, ts in ((101, "TIMESTAMP '2011-01-01'"), (102, "TIMESTAMP '2011-01-02'"), (103, ts_sql)):
            con.execute(f"INSERT INTO events VALUES (?, 'u1', 'i1', 'purchase', {ts}, ?, 1.0, 'b', "
                        f"NULL, 1, 0)", [eid, qty if eid == 103 else 1.0])
    return s


@pytest.mark.parametrize("ts, qty, fragment", [
    ("TIMESTAMP '0044-03-15 (BC)'", 1.0, "column InvoiceDate: the value 0044-03-15 (BC)"),
    ("'infinity'::TIMESTAMP", 1.0, "column InvoiceDate: the value infinity"),
    ("TIMESTAMP '2011-01-03'", float("nan"), "column Quantity: the value nan"),
])
def test_the_build_names_file_row_and_column_of_what_slipped_through(tmp_path, ts, qty, fragment):
    from core.pipeline import BuildError, build

    s = _store_with_poison(tmp_path, ts, qty)
    with pytest.raises(BuildError) as e:
        build(s)
    assert "/data/orders.csv row 3" in str(e.value) and fragment in str(e.value)
    code, _, err = _cli("build", "--db", str(s.path), "-q")
    assert code == 2 and len(err) == 1 and "/data/orders.csv row 3" in err[0]


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    import core.cli.status as status

    def bug(*a, **k):
        raise KeyError("segment_colour")

    monkeypatch.setattr(status, "collect", bug)
    code, _, err = _cli("status", "--db", str(tmp_path / "s.duckdb"))
    assert code == 1 and len(err) == 1 and "internal error: KeyError" in err[0] and "--debug" in err[0]
    with pytest.raises(KeyError):
        main(["status", "--db", str(tmp_path / "s.duckdb"), "--debug"])
