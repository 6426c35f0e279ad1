"""Exports a campaign tool accepts, and the log of every export.

``campaign_frame`` turns an export table (``core.explore.export``) into what e-mail and ad tools
import: the segment's name and definition on every row, counts as integers (never "11.0"), money
rounded to cents with the currency in its header, friendly headers by default (raw names on
request), and the per-shopper prediction scores when the build has them. ``write_campaign``
writes CSV (optionally with a UTF-8 byte-order mark so Excel reads accents), Parquet, or JSON lines
(one payload per shopper, for a webhook), spreadsheet-safe and atomic like every export.
``log_export`` records who exported what, when and how many rows in the records file.
"""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path
from typing import Sequence

import pandas as pd

INT_COLUMNS = {"segment_id", "orders", "frequency", "n_events", "n_items"}
MONEY_COLUMNS = {"spend", "monetary", "avg_order_value", "predicted_spend"}
PREDICTION_NAMES = ("purchase_probability", "goal_probability", "churn_probability",
                    "predicted_spend")
FRIENDLY = {
    "user_id": "Customer ID", "segment_id": "Segment number", "segment_name": "Segment",
    "lens": "Segment kind", "recency_days": "Days since last order", "orders": "Orders",
    "spend": "Net spend ({c})", "avg_order_value": "Average order value before returns ({c})",
    "tenure_days": "Days as a shopper", "return_rate": "Share of units returned",
    "basket_size": "Items per order", "n_events": "Interactions", "n_items": "Different items",
    "purchase_probability": "Likely to buy (probability)",
    "purchase_pct": "Likely to buy (percentile)",
    "goal_probability": "Likely to buy the goal (probability)",
    "goal_pct": "Likely to buy the goal (percentile)",
    "churn_probability": "Likely to churn (probability)", "churn_pct": "Likely to churn (percentile)",
    "predicted_spend": "Predicted spend ({c})", "predicted_spend_pct": "Predicted spend (percentile)",
    **{f"recommended_{r}": f"Recommended product {r}" for r in range(1, 21)},
    **{f"recommended_{r}_id": f"Recommended product {r} (id)" for r in range(1, 21)},
    "recommendation_basis": "Recommended from",
}
FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}


def add_scores(df: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    """Join the per-shopper prediction scores (``core.predictions.read.scores_table``) under the
    names the export's "predictions" column group uses (unless the table has them already)."""
    from core.explore.export import prediction_columns

    if scores is None or scores.empty or "user_id" not in df.columns \
            or any(c in df.columns for c in PREDICTION_NAMES):
        return df
    return df.merge(prediction_columns(scores), left_on="user_id", right_index=True, how="left")


def campaign_frame(df: pd.DataFrame, *, segment_name: str, definition: str = "",
                   currency: str = "£", friendly: bool = True,
                   scores: pd.DataFrame | None = None) -> pd.DataFrame:
    out = add_scores(df.copy(), scores)
    for c in out.columns:
        if c in INT_COLUMNS:
            out[c] = pd.to_numeric(out[c], errors="coerce").round().astype("Int64")
        elif c in MONEY_COLUMNS:
            out[c] = pd.to_numeric(out[c], errors="coerce").round(2)
    out.insert(0, "segment_definition", definition or segment_name)
    out.insert(0, "segment_export", segment_name)
    if friendly:
        names = {**FRIENDLY, "segment_export": "Exported segment",
                 "segment_definition": "Definition"}
        out = out.rename(columns={c: names[c].format(c=currency) for c in out.columns
                                  if c in names})
    return out


def _format(path: Path) -> str:
    name = path.name.lower()
    for ext, fmt in sorted(FORMATS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(ext):
            return fmt
    from core.explore.export import ExportError

    raise ExportError(f"{path}: say which format by the extension: "
                      f"{', '.join(FORMATS)}")


def write_campaign(frame: pd.DataFrame, path, *, bom: bool = False, force: bool = False,
                   for_spreadsheet: bool = True, protect: Sequence[Path] = ()) -> Path:
    from core.explore.export import atomic_output, neutralise_frame

    p = Path(path)
    fmt = _format(p)
    data = neutralise_frame(frame) if for_spreadsheet and fmt != "jsonl" else frame
    with atomic_output(p, force=force, protect=protect) as tmp:
        if fmt == "parquet":
            data.to_parquet(tmp, index=False)
        elif fmt == "csv":
            data.to_csv(tmp, index=False, encoding="utf-8-sig" if bom else "utf-8",
                        compression="gzip" if p.name.lower().endswith(".gz") else None)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for rec in data.to_dict("records"):
                    f.write(json.dumps(_payload(rec), default=_json_value, ensure_ascii=False))
                    f.write("\n")
    return p


def _json_value(v):
    if pd.isna(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def _payload(rec: dict) -> dict:
    """One webhook payload per shopper: the segment, the shopper id and the other columns."""
    seg = rec.pop("Exported segment", rec.pop("segment_export", None))
    definition = rec.pop("Definition", rec.pop("segment_definition", None))
    uid = rec.pop("Customer ID", rec.pop("user_id", None))
    props = {k: (None if (not isinstance(v, (list, dict)) and pd.isna(v)) else
                 v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
    return {"type": "segment_membership", "segment": seg, "definition": definition,
            "customer_id": uid, "properties": props}


def log_export(store, *, what: str, rows: int, path: str, fmt: str, who: str | None = None) -> int:
    """Record an export in ``records.export_log``; returns its export_id."""
    if who is None:
        try:
            who = getpass.getuser()
        except Exception:
            who = "unknown"
    with store.write_records() as con:
        eid = int(con.execute("SELECT coalesce(max(export_id), 0) + 1 FROM records.export_log")
                  .fetchone()[0])
        con.execute("INSERT INTO records.export_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [eid, datetime.now().replace(microsecond=0), who, what, int(rows), str(path),
                     fmt])
    return eid


def list_exports(con, limit: int = 100) -> pd.DataFrame:
    try:
        return con.execute("SELECT export_id, exported_at, who, what, rows, path, format FROM "
                           "records.export_log ORDER BY export_id DESC LIMIT ?", [limit]).df()
    except Exception:     # a records file written before the export log existed
        return pd.DataFrame(columns=["export_id", "exported_at", "who", "what", "rows", "path",
                                     "format"])
