"""Who moved from which segment to which between two builds, with counts and revenue.

Every shopper in either build is in exactly one flow: from their segment in the earlier build
(or "Not a shopper yet" when they first appear later) to their segment in the later build (or
"Not in this build"). Revenue is what the flow's shoppers spent between the two builds' data ends
(builds made ``--as-of`` a date end there; others end at the last event); when both builds cover
the same data, it is their spend to date.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.store.schema import LENS_TABLES

NEW_NAME = "Not a shopper yet"
GONE_NAME = "Not in this build"


class MigrationError(ValueError):
    pass


def data_end(con, run_id: int) -> datetime:
    """Where a build's data ends: its --as-of date, else the last event."""
    row = con.execute("SELECT json_extract_string(params, '$.as_of') FROM runs WHERE run_id = ?",
                      [run_id]).fetchone()
    if row and row[0]:
        return datetime.fromisoformat(row[0])
    return con.execute("SELECT max(ts) + INTERVAL 1 SECOND FROM events").fetchone()[0]


def _check(con, run_id: int, lens: str) -> None:
    members = LENS_TABLES[lens][0]
    ok = con.execute(f"SELECT count(*) FROM {members} WHERE run_id = ?", [run_id]).fetchone()[0]
    if not ok:
        runs = [r[0] for r in con.execute(
            f"SELECT DISTINCT run_id FROM {members} ORDER BY 1").fetchall()]
        raise MigrationError(f"Build {run_id} has no {lens} segments. Builds with segments: "
                             f"{', '.join(map(str, runs)) or 'none (run `segstudio build`)'}.")


def migration(con, from_run: int, to_run: int, lens: str = "taste") -> pd.DataFrame:
    """One row per flow: from_segment_id, from_segment, to_segment_id, to_segment, shoppers,
    revenue (largest flows first; segment id -2 stands for 'not in that build')."""
    if lens not in LENS_TABLES:
        raise MigrationError(f"Unknown lens {lens!r}: use one of {', '.join(LENS_TABLES)}.")
    for r in (from_run, to_run):
        _check(con, r, lens)
    members, info, _ = LENS_TABLES[lens]
    start, end = data_end(con, from_run), data_end(con, to_run)
    if end <= start:
        start = datetime.min
    df = con.execute(
        f"""
        WITH a AS (SELECT user_id, segment_id FROM {members} WHERE run_id = ?),
        b AS (SELECT user_id, segment_id FROM {members} WHERE run_id = ?),
        ab AS (SELECT user_id, coalesce(a.segment_id, -2) AS f, coalesce(b.segment_id, -2) AS t
               FROM a FULL OUTER JOIN b USING (user_id)),
        rev AS (SELECT user_id, sum(quantity * unit_price) AS revenue FROM events
                WHERE event_type = 'purchase' AND ts >= ? AND ts < ? AND user_id IS NOT NULL
                GROUP BY user_id)
        SELECT ab.f AS from_segment_id,
               CASE WHEN ab.f = -2 THEN ? ELSE coalesce(fi.name, 'Segment ' || ab.f) END
                   AS from_segment,
               ab.t AS to_segment_id,
               CASE WHEN ab.t = -2 THEN ? ELSE coalesce(ti.name, 'Segment ' || ab.t) END
                   AS to_segment,
               count(*) AS shoppers, coalesce(sum(rev.revenue), 0) AS revenue
        FROM ab LEFT JOIN rev USING (user_id)
        LEFT JOIN {info} fi ON fi.run_id = ? AND fi.segment_id = ab.f
        LEFT JOIN {info} ti ON ti.run_id = ? AND ti.segment_id = ab.t
        GROUP BY ALL ORDER BY shoppers DESC, from_segment_id, to_segment_id
        """, [from_run, to_run, start, end, NEW_NAME, GONE_NAME, from_run, to_run]).df()
    df["shoppers"] = df["shoppers"].astype(int)
    df["revenue"] = df["revenue"].round(2)
    return df


def summary(df: pd.DataFrame) -> dict:
    """Shoppers in both builds, how many stayed in the same-numbered segment, new and gone."""
    both = df[(df.from_segment_id != -2) & (df.to_segment_id != -2)]
    stayed = both[both.from_segment_id == both.to_segment_id]["shoppers"].sum()
    return {"in_both": int(both["shoppers"].sum()), "stayed": int(stayed),
            "moved": int(both["shoppers"].sum() - stayed),
            "new": int(df[df.from_segment_id == -2]["shoppers"].sum()),
            "gone": int(df[df.to_segment_id == -2]["shoppers"].sum())}
