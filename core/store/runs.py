"""Runs: recorded builds (id, time, parameters, data fingerprint, metrics).

A run row is written inside a store write (see ``core.store.db``) with status 'running' and set to
'complete' by ``finish_run`` at the end of that same write. Because a write is published only when
it succeeds, readers only ever see complete runs; ``latest_run`` also filters on status.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import duckdb


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A short hash of what is in the store: the ingests and the table sizes."""
    parts = con.execute(
        """
        SELECT coalesce(string_agg(fingerprint || ':' || rows_loaded, ',' ORDER BY ingest_id), ''),
               (SELECT count(*) FROM events), (SELECT count(*) FROM items),
               (SELECT count(*) FROM users)
        FROM ingests
        """
    ).fetchone()
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def start_run(con: duckdb.DuckDBPyConnection, kind: str, params: dict[str, Any]) -> int:
    run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchone()[0]
    con.execute(
        "INSERT INTO runs VALUES (?, ?, 'running', ?, NULL, ?, ?, NULL)",
        [run_id, kind, _now(), json.dumps(params, default=str), data_fingerprint(con)],
    )
    return int(run_id)


def finish_run(con: duckdb.DuckDBPyConnection, run_id: int, metrics: dict[str, Any]) -> None:
    con.execute(
        "UPDATE runs SET status = 'complete', finished_at = ?, metrics = ? WHERE run_id = ?",
        [_now(), json.dumps(metrics, default=_json_default), run_id],
    )


def update_run_metrics(con: duckdb.DuckDBPyConnection, run_id: int, metrics: dict[str, Any]) -> None:
    """Merge ``metrics`` into a run's stored metrics (e.g. an evaluation added later)."""
    row = con.execute("SELECT metrics FROM runs WHERE run_id = ?", [run_id]).fetchone()
    merged = json.loads(row[0]) if row and row[0] else {}
    merged.update(metrics)
    con.execute(
        "UPDATE runs SET metrics = ? WHERE run_id = ?",
        [json.dumps(merged, default=_json_default), run_id],
    )


def _json_default(o: Any):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _row_to_run(row) -> dict[str, Any]:
    run_id, kind, status, started, finished, params, fp, metrics = row
    return {
        "run_id": run_id,
        "kind": kind,
        "status": status,
        "started_at": started,
        "finished_at": finished,
        "params": json.loads(params) if params else {},
        "data_fingerprint": fp,
        "metrics": json.loads(metrics) if metrics else {},
    }


def latest_run(con: duckdb.DuckDBPyConnection, kind: str = "build") -> dict[str, Any] | None:
    row = con.execute(
        "SELECT * FROM runs WHERE kind = ? AND status = 'complete' ORDER BY run_id DESC LIMIT 1",
        [kind],
    ).fetchone()
    return _row_to_run(row) if row else None


def get_run(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, Any] | None:
    row = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return _row_to_run(row) if row else None


def list_runs(con: duckdb.DuckDBPyConnection, kind: str | None = None) -> list[dict[str, Any]]:
    q = "SELECT * FROM runs WHERE status = 'complete'"
    args: list[Any] = []
    if kind:
        q += " AND kind = ?"
        args.append(kind)
    return [_row_to_run(r) for r in con.execute(q + " ORDER BY run_id DESC", args).fetchall()]
