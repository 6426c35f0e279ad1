"""Segment lists for campaigns: choose columns, write CSV (spreadsheet-safe) or Parquet.

CSV cells that begin with ``=``, ``+``, ``-`` or ``@`` (or a tab / carriage return) are
neutralised by a leading apostrophe, so a spreadsheet shows them as text and never runs them
as formulas ("CSV injection"). Numbers stay numbers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from core.explore.queries import FEATURE_LABELS, segment_user_ids

# Column groups a person can choose, in output order.
COLUMN_GROUPS: dict[str, str] = {
    "id": "Shopper id",
    "segment": "Segment (id and name)",
    "rfm": "Recency, frequency, spend (RFM)",
    "attributes": "Shopper attributes (country, age band...)",
    "behaviour": "All behaviour features",
}
DEFAULT_COLUMNS = ("id", "segment", "rfm")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value):
    """'=SUM(A1)' -> "'=SUM(A1)"; non-strings unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralise_cell)
    return out


def export_frame(con, run_id: int | None, user_ids: Sequence[str],
                 columns: Sequence[str] = DEFAULT_COLUMNS) -> pd.DataFrame:
    """One row per user (sorted by id) with the chosen column groups."""
    unknown = [c for c in columns if c not in COLUMN_GROUPS]
    if unknown:
        raise ValueError(f"unknown export column group(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(COLUMN_GROUPS)}")
    cols = list(columns) or ["id"]
    ids = sorted({str(u) for u in user_ids})
    df = con.execute("""
        WITH _xsel AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS user_id)
        SELECT x.user_id, s.segment_id, i.name AS segment_name,
               f.* EXCLUDE (run_id, user_id), u.attributes
        FROM _xsel x
        LEFT JOIN segments s ON s.run_id = ? AND s.user_id = x.user_id
        LEFT JOIN segment_info i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
        LEFT JOIN user_features f ON f.run_id = ? AND f.user_id = x.user_id
        LEFT JOIN (SELECT user_id, any_value(attributes) AS attributes FROM users
                   GROUP BY user_id) u ON u.user_id = x.user_id
        ORDER BY x.user_id""", [ids, run_id, run_id]).df()
    out = pd.DataFrame({"user_id": df["user_id"]})
    if "segment" in cols:
        out["segment_id"] = df["segment_id"].astype("Int64")
        out["segment_name"] = df["segment_name"]
    if "rfm" in cols:
        out["recency_days"] = df["recency_days"].round(1)
        out["orders"] = df["frequency"]
        out["spend"] = df["monetary"].round(2)
        out["avg_order_value"] = df["avg_order_value"].round(2)
    if "behaviour" in cols:
        for c in FEATURE_LABELS:
            if c in df.columns and c not in ("recency_days", "frequency", "monetary", "avg_order_value"):
                out[c] = df[c]
    if "attributes" in cols:
        parsed = [json.loads(a) if isinstance(a, str) and a else (a or {}) for a in df["attributes"]]
        keys = sorted({k for p in parsed if isinstance(p, dict) for k in p})
        for k in keys:
            out[k if k not in out.columns else f"attr_{k}"] = [
                (p.get(k) if isinstance(p, dict) else None) for p in parsed]
    if "id" not in cols:
        out = out.drop(columns=["user_id"])
    return out


def segment_export(con, run_id: int, segment_id: int, columns=DEFAULT_COLUMNS) -> pd.DataFrame:
    ids = segment_user_ids(con, run_id, segment_id)
    if not ids:
        raise ValueError(f"Segment {segment_id} has no shoppers in build {run_id}; "
                         f"`segstudio status` lists the segments.")
    return export_frame(con, run_id, ids, columns)


def saved_export(con, run_id: int | None, name_or_id, columns=DEFAULT_COLUMNS) -> pd.DataFrame:
    from core.explore.saved import find_saved, get_saved, saved_members

    s = get_saved(con, name_or_id) if isinstance(name_or_id, int) else find_saved(con, str(name_or_id))
    return export_frame(con, run_id, saved_members(con, s["saved_id"]), columns)


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    neutralise_frame(df).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def write_export(df: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV (.csv, .csv.gz) or Parquet (.parquet) by the file's extension."""
    p = Path(path)
    name = p.name.lower()
    p.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".parquet"):
        df.to_parquet(p, index=False)
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        neutralise_frame(df).to_csv(p, index=False)
    else:
        raise ValueError(f"{p}: say which format by the extension: .csv, .csv.gz or .parquet")
    return p
