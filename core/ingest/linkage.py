"""Warnings about data that loads but does not link up: events without shoppers, side files whose
ids match no event, joined tables that match little. They go in the ingest report's notes (and
so in `segstudio status`), each starting with "warning:".
"""

from __future__ import annotations

from pathlib import Path

from core.ingest import joins

ANON_WARN = 0.5   # warn when at least half of the loaded events have no user id


def warnings(con, ingest_id: int, fmt: str, main, side: dict[str, tuple[str, str]]) -> list[str]:
    """``side``: role ('items' / 'users') -> (file, temp view of its good rows)."""
    out = joins.warnings(main.joined, "event rows")
    n, nu = con.execute("SELECT count(*), count(user_id) FROM events WHERE ingest_id = ?",
                        [ingest_id]).fetchone()
    if fmt != "baskets" and n:
        if nu == 0 and fmt == "events" and "user" not in main.plan.mapping:
            out.append(f"warning: no user column found: all {n:,} events are anonymous, so there "
                       f"are no shopper profiles or segments. Say which column holds the shopper "
                       f"id (--user-col NAME or user = \"NAME\"), or join the table that has it "
                       f"([[join]] in the mapping file).")
        elif nu == 0:
            out.append(f"warning: the user id is empty on every loaded row: all {n:,} events are "
                       f"anonymous, so there are no shopper profiles or segments.")
        elif n - nu >= ANON_WARN * n:
            out.append(f"warning: {n - nu:,} of {n:,} events ({(n - nu) / n:.0%}) have no user id "
                       f"and count only for items and baskets, not for shoppers.")
    for role, (path, view) in side.items():
        key, col = ("item_id", "__item_id") if role == "items" else ("user_id", "__user_id")
        total, matched = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {col} IN "
            f"(SELECT {key} FROM events WHERE ingest_id = ?)) FROM temp.{view}", [ingest_id]).fetchone()
        what = "item" if role == "items" else "shopper"
        if total and matched == 0:
            out.append(f"warning: none of the {total:,} {what} ids in {Path(path).name} (--{role}) "
                       f"matches {'an' if role == 'items' else 'a'} {what} of the events loaded: "
                       f"is it the right file, and the right id column ([{role}] id = \"COLUMN\" "
                       f"in the mapping file)?")
            continue
        n_ev, unlinked = con.execute(
            f"SELECT count({key}), count({key}) FILTER (WHERE {key} NOT IN "
            f"(SELECT {col} FROM temp.{view})) FROM events WHERE ingest_id = ?", [ingest_id]).fetchone()
        if n_ev and unlinked >= joins.UNLINKED_WARN * n_ev:
            out.append(f"warning: {unlinked:,} of {n_ev:,} events ({unlinked / n_ev:.0%}) have "
                       f"{'an' if role == 'items' else 'a'} {what} id that is not in "
                       f"{Path(path).name} (--{role}): they have no {'catalogue' if role == 'items' else 'shopper'} "
                       f"details.")
    return out
