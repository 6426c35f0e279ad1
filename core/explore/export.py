"""Segment lists for campaigns: choose columns, write CSV or Parquet, safely.

For spreadsheets (the default), text cells that begin with ``=``, ``+``, ``-`` or ``@`` (or a tab
/ carriage return) are neutralised by a leading apostrophe, in CSV and in Parquet alike, so a
spreadsheet shows them as text and never runs them as formulas ("CSV injection"). Numbers stay
numbers. ``for_spreadsheet=False`` ("for another tool") writes the values exactly as stored.

Writing a file (``write_export``, ``atomic_output``) never overwrites an existing file unless
asked to (``force``), never writes through a symbolic link (the link itself is replaced), never
targets the store, and never leaves half a file: the data goes to a temporary file in the same
folder that is renamed over the target when complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from core.explore.base import FEATURE_LABELS, lens_tables, other_lens
from core.explore.groups import segment_user_ids

# Column groups a person can choose, in output order.
COLUMN_GROUPS: dict[str, str] = {
    "id": "Shopper id",
    "segment": "Segment (id and name)",
    "other_segment": "Segment in the other lens (id and name)",
    "rfm": "Recency, frequency, spend (RFM)",
    "attributes": "Shopper attributes (country, age band...)",
    "behaviour": "All behaviour features",
    "predictions": "Predictions (likely to buy, churn, spend: value and percentile)",
    "recommendations": "Recommended products (each shopper's top picks, with product ids)",
}
RECOMMENDED = 3  # products per shopper in the "recommendations" column group
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
                 columns: Sequence[str] = DEFAULT_COLUMNS, *, lens: str = "taste",
                 recommended: int = RECOMMENDED, engine=None, preview_engine=None,
                 progress=None) -> pd.DataFrame:
    """One row per user (sorted by id) with the chosen column groups. "segment" is the shopper's
    segment in ``lens`` (segment_id, segment_name); "other_segment" their segment in the other
    lens (e.g. lifecycle_segment_id, lifecycle_segment_name); "recommendations" the hybrid's top
    ``recommended`` products per shopper (``core.recommend.bulk``, scored on ``engine``)."""
    unknown = [c for c in columns if c not in COLUMN_GROUPS]
    if unknown:
        raise ValueError(f"unknown export column group(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(COLUMN_GROUPS)}")
    cols = list(columns) or ["id"]
    ids = sorted({str(u) for u in user_ids})
    L, O = lens_tables(lens), lens_tables(other_lens(lens))
    df = con.execute(f"""
        WITH _xsel AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS user_id)
        SELECT x.user_id, s.segment_id, i.name AS segment_name,
               o.segment_id AS other_segment_id, oi.name AS other_segment_name,
               f.* EXCLUDE (run_id, user_id), u.attributes
        FROM _xsel x
        LEFT JOIN {L.members} s ON s.run_id = ? AND s.user_id = x.user_id
        LEFT JOIN {L.info} i ON i.run_id = s.run_id AND i.segment_id = s.segment_id
        LEFT JOIN {O.members} o ON o.run_id = ? AND o.user_id = x.user_id
        LEFT JOIN {O.info} oi ON oi.run_id = o.run_id AND oi.segment_id = o.segment_id
        LEFT JOIN user_features f ON f.run_id = ? AND f.user_id = x.user_id
        LEFT JOIN (SELECT user_id, any_value(attributes) AS attributes FROM users
                   GROUP BY user_id) u ON u.user_id = x.user_id
        ORDER BY x.user_id""", [ids, run_id, run_id, run_id]).df()
    out = pd.DataFrame({"user_id": df["user_id"]})
    if "segment" in cols:
        out["segment_id"] = df["segment_id"].astype("Int64")
        out["segment_name"] = df["segment_name"]
    if "other_segment" in cols:
        out[f"{O.name}_segment_id"] = df["other_segment_id"].astype("Int64")
        out[f"{O.name}_segment_name"] = df["other_segment_name"]
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
    if "predictions" in cols and run_id is not None:
        from core.predictions.read import scores_table

        sc = scores_table(con, run_id)
        if not sc.empty:
            out = out.merge(prediction_columns(sc), left_on="user_id", right_index=True,
                            how="left")
    if "recommendations" in cols and run_id is not None:
        from core.progress import NULL
        from core.recommend.bulk import recommend_shoppers

        recs = recommend_shoppers(con, run_id, out["user_id"].tolist(), n=int(recommended),
                                  engine=engine, preview_engine=preview_engine,
                                  progress=progress or NULL)
        out = add_recommendations(out, recs, int(recommended))
    if "id" not in cols:
        out = out.drop(columns=["user_id"])
    return out


def add_recommendations(frame: pd.DataFrame, recs: pd.DataFrame, n: int) -> pd.DataFrame:
    """``frame`` (with user_id) and each shopper's recommended products
    (``core.recommend.bulk.recommend_shoppers``) as columns recommended_1, recommended_1_id...
    and recommendation_basis."""
    from core.recommend.bulk import wide

    return frame.merge(wide(recs, n), left_on="user_id", right_index=True, how="left")


def prediction_columns(scores: pd.DataFrame) -> pd.DataFrame:
    """The prediction scores as export columns, in a fixed order: probabilities (4 decimals) and
    predicted spend (cents), each followed by its percentile among the shoppers scored."""
    names = {"purchase": "purchase_probability", "goal": "goal_probability",
             "churn": "churn_probability", "value": "predicted_spend",
             "value_pct": "predicted_spend_pct"}
    sc = scores.rename(columns=names)
    order = [c for base in ("purchase", "goal", "churn")
             for c in (f"{base}_probability", f"{base}_pct") if c in sc.columns]
    order += [c for c in ("predicted_spend", "predicted_spend_pct") if c in sc.columns]
    sc = sc[order].copy()
    for c in order:
        sc[c] = sc[c].round(2 if c == "predicted_spend" or c.endswith("_pct") else 4)
    return sc


def segment_export(con, run_id: int, segment_id: int, columns=DEFAULT_COLUMNS, *,
                   lens: str = "taste", **more) -> pd.DataFrame:
    """``export_frame`` of a segment's shoppers (``more``: its recommendation options)."""
    ids = segment_user_ids(con, run_id, segment_id, lens=lens)
    if not ids:
        raise ValueError(f"{lens_tables(lens).label} segment {segment_id} has no shoppers in build "
                         f"{run_id}; `segstudio status` lists the segments.")
    return export_frame(con, run_id, ids, columns, lens=lens, **more)


def saved_export(con, run_id: int | None, name_or_id, columns=DEFAULT_COLUMNS, *,
                 lens: str = "taste", **more) -> pd.DataFrame:
    from core.explore.saved import find_saved, get_saved, saved_members

    s = get_saved(con, name_or_id) if isinstance(name_or_id, int) else find_saved(con, str(name_or_id))
    return export_frame(con, run_id, saved_members(con, s["saved_id"], run_id), columns,
                        lens=lens, **more)


class ExportError(ValueError):
    """An output that would be unsafe or cannot be written; the message says the fix."""


def to_csv_bytes(df: pd.DataFrame, for_spreadsheet: bool = True) -> bytes:
    buf = io.StringIO()
    (neutralise_frame(df) if for_spreadsheet else df).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame, for_spreadsheet: bool = True) -> bytes:
    buf = io.BytesIO()
    (neutralise_frame(df) if for_spreadsheet else df).to_parquet(buf, index=False)
    return buf.getvalue()


def check_output(path: str | Path, *, force: bool = False, protect: Sequence[Path] = ()) -> Path:
    """Refuse an output path that is a folder, the store, or (without ``force``) a file that
    exists; returns it. A symbolic link is never followed: with ``force`` the link itself is
    replaced, its target is left alone."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        raise ExportError(f"{p} is a folder: give a file name inside it, e.g. {p / 'segment.csv'}.")
    target = p.resolve()
    for q in protect:
        if target == Path(q).resolve():
            raise ExportError(f"{p} is the Segment Studio store ({q}) or points at it: choose "
                              f"another file name for the export.")
    if p.is_symlink():
        if not force:
            raise ExportError(f"{p} is a link to {os.readlink(p)}: refusing to write through it. "
                              f"Choose another name, or pass --force to replace the link itself "
                              f"(its target is left alone).")
    elif p.exists() and not force:
        raise ExportError(f"{p} already exists: choose another name, or pass --force to replace it.")
    return p


@contextlib.contextmanager
def atomic_output(path: str | Path, *, force: bool = False,
                  protect: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield a temporary file beside ``path``; when the block succeeds it replaces ``path`` in one
    rename (so readers never see half a file, and a link at ``path`` is replaced, not followed)."""
    p = check_output(path, force=force, protect=protect)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name[:100]}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if not force:
            check_output(p, force=False, protect=protect)  # appeared meanwhile: still refuse
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a normally created file (mkstemp makes it private)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_export(df: pd.DataFrame, path: str | Path, *, force: bool = False,
                 for_spreadsheet: bool = True, protect: Sequence[Path] = ()) -> Path:
    """Write CSV (.csv, .csv.gz) or Parquet (.parquet) by the file's extension, safely (see
    ``atomic_output``); text cells are neutralised for spreadsheets unless told otherwise."""
    p = Path(path)
    name = p.name.lower()
    if not name.endswith((".parquet", ".csv", ".csv.gz")):
        raise ExportError(f"{p}: say which format by the extension: .csv, .csv.gz or .parquet")
    frame = neutralise_frame(df) if for_spreadsheet else df
    with atomic_output(p, force=force, protect=protect) as tmp:
        if name.endswith(".parquet"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)
    return p
