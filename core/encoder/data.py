"""Shoppers' interaction sequences, read from the store (SQL in DuckDB) into flat numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.encoder.model import TYPE_CODES, gap_buckets


@dataclass
class Sequences:
    """All interactions of shoppers with an id, grouped by user in time order.

    ``items`` are vocabulary indices (0-based), ``types`` type codes (1..), ``gaps`` gap buckets.
    User u's interactions are rows ``starts[u]:ends[u]``.
    """

    user_ids: list[str]
    starts: np.ndarray
    ends: np.ndarray
    items: np.ndarray
    types: np.ndarray
    gaps: np.ndarray


def vocabulary(con) -> list[str]:
    """Every catalogue item and every item a shopper interacted with, sorted by item_id."""
    return [r[0] for r in con.execute(
        "SELECT item_id FROM items UNION SELECT item_id FROM events WHERE user_id IS NOT NULL "
        "ORDER BY item_id"
    ).fetchall()]


def load_sequences(con, item_ids: list[str]) -> Sequences:
    type_case = "CASE e.event_type " + " ".join(
        f"WHEN '{t}' THEN {c}" for t, c in TYPE_CODES.items()) + " END"
    import pandas as pd

    encoder_vocab = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan below
        "item_id": pd.Series(item_ids, dtype=object),
        "item_index": np.arange(len(item_ids), dtype=np.int64),
    })
    cols = con.execute(
        f"""
        SELECT e.user_id, v.item_index, {type_case} AS type_code,
               epoch(e.ts) - lag(epoch(e.ts)) OVER w AS gap
        FROM events e JOIN encoder_vocab v ON v.item_id = e.item_id
        WHERE e.user_id IS NOT NULL
        WINDOW w AS (PARTITION BY e.user_id ORDER BY e.ts NULLS FIRST, e.event_id)
        ORDER BY e.user_id, e.ts NULLS FIRST, e.event_id
        """
    ).fetchnumpy()
    users = np.asarray(cols["user_id"], dtype=object)
    n = len(users)
    if n:
        change = np.flatnonzero(users[1:] != users[:-1]) + 1
        starts = np.concatenate([[0], change]).astype(np.int64)
    else:
        starts = np.zeros(0, dtype=np.int64)
    ends = np.concatenate([starts[1:], [n]]).astype(np.int64) if n else starts.copy()
    gap = cols["gap"]
    gap = np.asarray(gap.filled(np.nan) if hasattr(gap, "filled") else gap, dtype=np.float64)
    return Sequences(
        user_ids=[str(u) for u in users[starts]],
        starts=starts,
        ends=ends,
        items=np.asarray(cols["item_index"], dtype=np.int64),
        types=np.asarray(cols["type_code"], dtype=np.int64),
        gaps=gap_buckets(gap),
    )


def windows(seq: Sequences, spans: list[tuple[int, int]], max_len: int):
    """Left-padded training windows over rows [a, b) of each span: inputs are max_len
    interactions, targets the item that follows each (-100 where there is none).

    Windows are cut from the end of the span with stride max_len, so every interaction after the
    first is a target exactly once."""
    rows_in, rows_tg = [], []
    for a, b in spans:
        end = b
        while end - a >= 2:
            start = max(a, end - max_len - 1)
            rows_in.append((start, end - 1))
            rows_tg.append((start + 1, end))
            end = start + 1
    n = len(rows_in)
    items = np.zeros((n, max_len), dtype=np.int64)
    types = np.zeros((n, max_len), dtype=np.int64)
    gaps = np.zeros((n, max_len), dtype=np.int64)
    targets = np.full((n, max_len), -100, dtype=np.int64)
    for w, ((s, e), (ts, te)) in enumerate(zip(rows_in, rows_tg)):
        k = e - s
        items[w, max_len - k:] = seq.items[s:e] + 1
        types[w, max_len - k:] = seq.types[s:e]
        gaps[w, max_len - k:] = seq.gaps[s:e]
        targets[w, max_len - k:] = seq.items[ts:te]
    return items, types, gaps, targets


def last_window(seq: Sequences, a: int, b: int, max_len: int):
    """The last max_len interactions of rows [a, b), left-padded: (items+1, types, gaps)."""
    s = max(a, b - max_len)
    k = b - s
    items = np.zeros(max_len, dtype=np.int64)
    types = np.zeros(max_len, dtype=np.int64)
    gaps = np.zeros(max_len, dtype=np.int64)
    items[max_len - k:] = seq.items[s:b] + 1
    types[max_len - k:] = seq.types[s:b]
    gaps[max_len - k:] = seq.gaps[s:b]
    return items, types, gaps


def truncate(seq: Sequences, keep: dict[str, int] | None) -> Sequences:
    """The same sequences with shopper u's interactions cut to their first ``keep[u]`` (shoppers
    not in ``keep`` are whole). Arrays are shared; only ``ends`` changes."""
    if not keep:
        return seq
    ends = seq.ends.copy()
    for u, uid in enumerate(seq.user_ids):
        k = keep.get(uid)
        if k is not None:
            ends[u] = min(ends[u], seq.starts[u] + max(int(k), 0))
    return Sequences(seq.user_ids, seq.starts, ends, seq.items, seq.types, seq.gaps)


def holdout_fingerprint(keep: dict[str, int] | None) -> str | None:
    """A short hash of {user_id: events kept}: equal iff the same events were kept out."""
    if not keep:
        return None
    import hashlib

    h = hashlib.sha256()
    for u in sorted(keep):
        h.update(f"{u}\x1f{int(keep[u])}\x1e".encode())
    return h.hexdigest()[:16]
