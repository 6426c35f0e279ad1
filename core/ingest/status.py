"""What the store holds and how it was loaded: ``ingest_summary(con)`` for ``segstudio status``
and the dashboard."""

from __future__ import annotations

import json
from typing import Any


def _reconciles(read, loaded, quarantined, duplicate, details: dict) -> bool:
    ok = read == (loaded or 0) + (quarantined or 0) + (duplicate or 0)
    for f in (details or {}).get("files") or []:  # each side file reconciles on its own
        ok = ok and bool(f.get("reconciles", True))
    rev = (details or {}).get("revenue")
    if rev and "revenue_reconciles" in rev:
        ok = ok and bool(rev["revenue_reconciles"])
    return bool(ok)


def quarantine_by_file(con, ingest_id: int | None = None, event_file: str | None = None
                       ) -> tuple[dict[str, int], list[dict]]:
    """Quarantined rows by reason, kept apart by file: ({reason: rows} for the event files,
    which add up to the ingests' rows_quarantined; [{file, reason, rows}] for rows quarantined in
    --items, --users or joined files). ``ingest_id``: one ingest (``event_file``: its event file,
    for an ingest not recorded in ``ingests`` yet); None: every ingest."""
    ev = "coalesce(?, i.source_file)"
    side = f"q.source_file IS NOT NULL AND {ev} IS NOT NULL AND q.source_file <> {ev}"
    where = "WHERE q.ingest_id = ?" if ingest_id is not None else ""
    rows = con.execute(f"""
        SELECT {side} AS side, CASE WHEN {side} THEN q.source_file END AS file, q.reason,
               count(*) AS n
        FROM quarantine q LEFT JOIN ingests i USING (ingest_id) {where}
        GROUP BY ALL ORDER BY side, file, n DESC, q.reason""",
                       [event_file] * 4 + ([int(ingest_id)] if ingest_id is not None else [])
                       ).fetchall()
    reasons: dict[str, int] = {}
    for is_side, _, r, n in rows:
        if not is_side:
            reasons[r] = reasons.get(r, 0) + int(n)
    return reasons, [{"file": f, "reason": r, "rows": int(n)} for is_side, f, r, n in rows if is_side]


def ingest_summary(con) -> dict[str, Any]:
    """{'totals': {users, items, events}, 'ingests': [...], 'quarantine_reasons': {reason: n}
    (the event files' rows), 'side_quarantine': [{file, reason, rows}] (the other files')}.

    Each ingest: ingest_id, source_file, format, rows_read, rows_loaded, rows_quarantined,
    rows_duplicate, reconciles (rows_read = loaded + quarantined + duplicates, and the revenue
    check where the format has one), plus started_at, finished_at, seconds, revenue, files (each
    file's own rows_read = loaded + quarantined + duplicates: the events file, then --items /
    --users / joined files) and warnings (what the ingest flagged: anonymous events, side files
    matching no event...).
    """
    users, items, events, quarantined = con.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM items), "
        "(SELECT count(*) FROM events), (SELECT count(*) FROM quarantine)").fetchone()
    rows = con.execute(
        "SELECT ingest_id, source_file, format, rows_read, rows_loaded, rows_quarantined, "
        "rows_duplicate, started_at, finished_at, details FROM ingests ORDER BY ingest_id").fetchall()
    ingests = []
    for iid, src, fmt, read, loaded, quar, dup, started, finished, details in rows:
        d = json.loads(details) if isinstance(details, str) and details else (details or {})
        ingests.append({
            "ingest_id": iid, "source_file": src, "format": fmt,
            "rows_read": read, "rows_loaded": loaded, "rows_quarantined": quar,
            "rows_duplicate": dup,
            "reconciles": _reconciles(read, loaded, quar, dup, d),
            "started_at": started, "finished_at": finished,
            "seconds": d.get("seconds"),
            "revenue": d.get("revenue"),
            "files": d.get("files") or [],
            "warnings": [n for n in d.get("notes") or [] if str(n).startswith("warning")],
        })
    reasons, side = quarantine_by_file(con)
    return {
        "totals": {"users": users, "items": items, "events": events},
        "ingests": ingests,
        "quarantine_reasons": reasons,
        "side_quarantine": side,
        "quarantined_rows": quarantined,
    }
