"""Campaign-ready exports: segment name and definition in the file, integer counts, money in
cents, friendly headers, CSV with a BOM, Parquet, JSON lines; and the export log."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.audiences.campaign import campaign_frame, list_exports, log_export, write_campaign

ROWS = pd.DataFrame({"user_id": ["12346", "12347"], "segment_id": [2.0, 2.0],
                     "segment_name": ["Regency shoppers"] * 2, "recency_days": [3.5, 40.0],
                     "orders": [11.0, 1.0], "spend": [1234.5678, 20.0],
                     "avg_order_value": [112.23344, 20.0]})
SCORES = pd.DataFrame({"purchase": [0.61234, 0.1], "purchase_pct": [93.04, 20.0]},
                      index=pd.Index(["12346", "12347"], name="user_id"))


def test_campaign_frame_has_names_integers_cents_and_scores():
    f = campaign_frame(ROWS, segment_name="Regency shoppers", definition="in taste segment 2",
                       currency="€", scores=SCORES)
    assert list(f.columns) == ["Exported segment", "Definition", "Customer ID", "Segment number",
                               "Segment", "Days since last order", "Orders", "Net spend (€)",
                               "Average order value before returns (€)", "Likely to buy (probability)",
                               "Likely to buy (percentile)"]
    assert f["Orders"].tolist() == [11, 1] and str(f["Orders"].dtype) == "Int64"
    assert f["Net spend (€)"].tolist() == [1234.57, 20.0]
    assert f["Likely to buy (probability)"].tolist() == [0.6123, 0.1]
    assert f["Likely to buy (percentile)"].tolist() == [93.04, 20.0]
    raw = campaign_frame(ROWS, segment_name="Regency shoppers", friendly=False)
    assert list(raw.columns)[:3] == ["segment_export", "segment_definition", "user_id"]


def test_formats(tmp_path):
    f = campaign_frame(ROWS, segment_name="=Regency", definition="d")
    p = write_campaign(f, tmp_path / "a.csv", bom=True)
    text = p.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")                       # UTF-8 BOM for Excel
    lines = text.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Exported segment,Definition,Customer ID")
    assert lines[1].startswith("'=Regency,d,12346,2,Regency shoppers,3.5,11,1234.57")  # safe, ints
    q = write_campaign(f, tmp_path / "a.parquet")
    assert pd.read_parquet(q)["Orders"].tolist() == [11, 1]
    j = write_campaign(campaign_frame(ROWS, segment_name="Regency", scores=SCORES),
                       tmp_path / "a.jsonl")
    first = json.loads(j.read_text().splitlines()[0])
    assert first["type"] == "segment_membership" and first["customer_id"] == "12346"
    assert first["segment"] == "Regency" and first["properties"]["Orders"] == 11
    assert first["properties"]["Likely to buy (percentile)"] == 93.04
    from core.explore.export import ExportError

    with pytest.raises(ExportError, match="already exists"):
        write_campaign(f, tmp_path / "a.csv")
    with pytest.raises(ExportError, match="extension"):
        write_campaign(f, tmp_path / "a.xlsx")


def test_every_export_is_logged(tmp_store):
    with tmp_store.write():
        pass
    log_export(tmp_store, what="segment 'Regency shoppers'", rows=694, path="/tmp/r.csv",
               fmt="csv", who="maria")
    log_export(tmp_store, what="audience 'Winter push'", rows=10, path="/tmp/w.jsonl",
               fmt="jsonl", who="tom")
    con = tmp_store.read()
    try:
        log = list_exports(con)
    finally:
        con.close()
    assert log[["export_id", "who", "what", "rows", "format"]].values.tolist() == [
        [2, "tom", "audience 'Winter push'", 10, "jsonl"],
        [1, "maria", "segment 'Regency shoppers'", 694, "csv"]]
