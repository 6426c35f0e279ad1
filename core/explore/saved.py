"""Saved segments: named groups of shoppers people keep (from a map selection, a filter...).

Stored in ``records.saved_segments`` / ``records.saved_segment_members``, the store's records file
(``core.store.records``): writes go through ``store.write_records()``, so they are published
atomically, never copy the store and never wait for a build; every dashboard session sees them on
its next read.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Sequence

import pandas as pd


class SavedSegmentError(ValueError):
    pass


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise SavedSegmentError("Give the segment a name (for example 'Christmas lovers, north').")
    if len(name) > 80:
        raise SavedSegmentError(f"Segment names can be at most 80 characters (got {len(name)}).")
    return name


def save_segment(store, name: str, user_ids: Sequence[str], *, description: str = "",
                 source_run_id: int | None = None, definition: dict[str, Any] | None = None,
                 replace: bool = False) -> int:
    """Save a named group of users; returns its saved_id.

    A name already in use is refused unless ``replace=True`` (then its members are replaced).
    """
    name = _clean_name(name)
    ids = sorted({str(u) for u in user_ids if u is not None and str(u) != ""})
    if not ids:
        raise SavedSegmentError("The selection is empty: select some shoppers on the map first.")
    with store.write_records() as con:
        old = con.execute("SELECT saved_id FROM records.saved_segments WHERE lower(name) = lower(?)",
                          [name]).fetchone()
        if old and not replace:
            raise SavedSegmentError(
                f"A saved segment called '{name}' already exists. Choose another name or "
                f"delete the old one first.")
        if old:
            saved_id = int(old[0])
            con.execute("DELETE FROM records.saved_segment_members WHERE saved_id = ?", [saved_id])
            con.execute("DELETE FROM records.saved_segments WHERE saved_id = ?", [saved_id])
        else:
            saved_id = int(con.execute(
                "SELECT coalesce(max(saved_id), 0) + 1 FROM records.saved_segments").fetchone()[0])
        con.execute("INSERT INTO records.saved_segments VALUES (?, ?, ?, ?, ?, ?)",
                    [saved_id, name, description or "", datetime.now().replace(microsecond=0),
                     source_run_id, json.dumps(definition or {}, default=str)])
        con.execute("INSERT INTO records.saved_segment_members SELECT ?, unnest(?::VARCHAR[])",
                    [saved_id, ids])
    return saved_id


def list_saved(con) -> pd.DataFrame:
    """Saved segments, newest first: saved_id, name, description, created_at, size, source_run_id."""
    return con.execute("""
        SELECT s.saved_id, s.name, s.description, s.created_at, s.source_run_id,
               count(m.user_id) AS size, s.definition
        FROM records.saved_segments s LEFT JOIN records.saved_segment_members m USING (saved_id)
        GROUP BY ALL ORDER BY s.created_at DESC, s.saved_id DESC""").df()


def get_saved(con, saved_id: int) -> dict:
    row = con.execute("SELECT saved_id, name, description, created_at, source_run_id, definition "
                      "FROM records.saved_segments WHERE saved_id = ?", [int(saved_id)]).fetchone()
    if row is None:
        raise SavedSegmentError(f"There is no saved segment number {saved_id}.")
    return dict(zip(("saved_id", "name", "description", "created_at", "source_run_id",
                     "definition"), row))


def find_saved(con, name: str) -> dict:
    row = con.execute("SELECT saved_id FROM records.saved_segments WHERE lower(name) = lower(?)",
                      [" ".join(name.split())]).fetchone()
    if row is None:
        names = [r[0] for r in con.execute("SELECT name FROM records.saved_segments ORDER BY name").fetchall()]
        hint = f" Saved segments: {', '.join(names)}." if names else " No segments have been saved yet."
        raise SavedSegmentError(f"No saved segment called '{name}'.{hint}")
    return get_saved(con, row[0])


def saved_members(con, saved_id: int, run_id: int | None = None) -> list[str]:
    """A saved segment's shoppers. One made in the segment builder as *dynamic* is its definition
    evaluated again on ``run_id`` (the build being shown), so it refreshes with every build; any
    other (a map selection, a static snapshot) is the list saved."""
    if run_id is not None:
        row = con.execute("SELECT definition FROM records.saved_segments WHERE saved_id = ?",
                          [int(saved_id)]).fetchone()
        d = json.loads(row[0]) if row and row[0] else {}
        if isinstance(d, dict) and d.get("mode") == "dynamic" and d.get("builder"):
            from core.audiences import members

            return members(con, run_id, d["builder"])
    return [r[0] for r in con.execute(
        "SELECT user_id FROM records.saved_segment_members WHERE saved_id = ? ORDER BY user_id",
        [int(saved_id)]).fetchall()]


def delete_saved(store, saved_id: int) -> bool:
    """Delete a saved segment and its members; False if it did not exist."""
    with store.write_records() as con:
        n = con.execute("SELECT count(*) FROM records.saved_segments WHERE saved_id = ?",
                        [int(saved_id)]).fetchone()[0]
        con.execute("DELETE FROM records.saved_segment_members WHERE saved_id = ?", [int(saved_id)])
        con.execute("DELETE FROM records.saved_segments WHERE saved_id = ?", [int(saved_id)])
    return bool(n)
