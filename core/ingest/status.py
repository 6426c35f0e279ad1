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


def ingest_summary(con) -> dict[str, Any]:
    """{'totals': {users, items, events}, 'ingests': [...], 'quarantine_reasons': {reason: n}}.

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
    reasons = dict(con.execute(
        "SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC, 1").fetchall())
    return {
        "totals": {"users": users, "items": items, "events": events},
        "ingests": ingests,
        "quarantine_reasons": reasons,
        "quarantined_rows": quarantined,
    }
