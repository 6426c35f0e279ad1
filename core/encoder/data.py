"""Shoppers' interaction sequences, read from the store (SQL in DuckDB) into flat numpy arrays."""

from __future__ import annotations

import contextlib
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


_CACHE: dict | None = None  # {(connection, vocabulary): Sequences} inside sequences_cached()


@contextlib.contextmanager
def sequences_cached():
    """Inside this block ``load_sequences`` reads each connection's sequences for a vocabulary
    once and hands every later caller the same (read-only) arrays: a build, whose events do not
    change while it runs, reads them once instead of once per stage."""
    global _CACHE
    prev, _CACHE = _CACHE, {}
    try:
        yield
    finally:
        _CACHE = prev


def load_sequences(con, item_ids: list[str]) -> Sequences:
    key = (id(con), len(item_ids), hash(tuple(item_ids)))
    if _CACHE is not None and key in _CACHE:
        return _CACHE[key]
    seq = _read_sequences(con, item_ids)
    if _CACHE is not None:
        _CACHE[key] = seq
    return seq


def _read_sequences(con, item_ids: list[str]) -> Sequences:
    type_case = "CASE e.event_type " + " ".join(
        f"WHEN '{t}' THEN {c}" for t, c in TYPE_CODES.items()) + " END"
    import pandas as pd

    encoder_vocab = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan below
        "item_id": pd.Series(item_ids, dtype=object),
        "item_index": np.arange(len(item_ids), dtype=np.int64),
    })
    # One row per interaction without its user id (at 80 M events a Python string per row
    # took gigabytes); each shopper's count comes from a second query in the same order.
    where = "FROM events e JOIN encoder_vocab v ON v.item_id = e.item_id WHERE e.user_id IS NOT NULL"
    per_user = con.execute(
        f"SELECT e.user_id, count(*) {where} GROUP BY e.user_id ORDER BY e.user_id").fetchall()
    cols = con.execute(
        f"""
        SELECT v.item_index::INTEGER AS item_index, ({type_case})::TINYINT AS type_code,
               epoch(e.ts) - lag(epoch(e.ts)) OVER w AS gap
        {where}
        WINDOW w AS (PARTITION BY e.user_id ORDER BY e.ts NULLS FIRST, e.event_id)
        ORDER BY e.user_id, e.ts NULLS FIRST, e.event_id
        """
    ).fetchnumpy()
    counts = np.array([c for _, c in per_user], dtype=np.int64)
    ends = np.cumsum(counts)
    starts = ends - counts
    # Compact arrays (6 bytes per interaction instead of 24: 0.5 GB at 81 M events, not 1.9);
    # windows are copied into int64 where a model reads them. Gaps are bucketed in chunks so
    # the float temporaries stay small.
    gap = cols.pop("gap")
    gaps = np.empty(len(gap), dtype=np.int8)
    step = 1 << 22
    for i in range(0, len(gap), step):
        g = gap[i:i + step]
        g = np.asarray(g.filled(np.nan) if hasattr(g, "filled") else g, dtype=np.float64)
        gaps[i:i + len(g)] = gap_buckets(g)
    del gap
    return Sequences(
        user_ids=[str(u) for u, _ in per_user],
        starts=starts,
        ends=ends,
        items=np.asarray(cols["item_index"], dtype=np.int32),
        types=np.asarray(cols["type_code"], dtype=np.int8),
        gaps=gaps,
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


def split_spans(seq, p, val_keep: dict[str, int] | None = None):
    n = seq.ends - seq.starts
    if val_keep:
        # validation = everything from the shopper's validation basket on (the basket before
        # the held-out one); shoppers without one train on all they have
        k = np.array([val_keep.get(u, -1) for u in seq.user_ids], dtype=np.int64)
        n_val = np.where(k >= 0, np.clip(n - k, 0, None), 0).astype(np.int64)
    else:
        n_val = np.where(
            n >= p["min_events_for_val"],
            np.clip(np.rint(n * p["val_fraction"]), 1, p["max_val_per_user"]), 0,
        ).astype(np.int64)
    train_end = seq.ends - n_val
    train_spans = [
        (int(max(s, e - p["max_train_events_per_user"])), int(e))
        for s, e in zip(seq.starts, train_end) if e - s >= 2
    ]
    return n_val, train_spans


def bound_work(n_val, spans, p, seed, n_items: int | None = None):
    """Keep the work of one training run bounded at any shop size: when the shoppers' training
    targets exceed one epoch of the compute budget (``max_target_passes``), train on a seeded
    sample of shoppers that fills it; validate on at most ``max_val_users`` shoppers. Smaller
    shops are untouched. Returns (n_val, spans, what was sampled, for the metrics)."""
    rng = np.random.default_rng(seed)
    out = {}
    budget = int(p["max_target_passes"] or 0)
    per = np.array([e - s - 1 for s, e in spans], dtype=np.int64)
    if budget and per.sum() > budget:
        order = rng.permutation(len(spans))
        n_keep = int(np.searchsorted(np.cumsum(per[order]), budget)) + 1
        keep = np.sort(order[:n_keep])
        out["train_sample"] = {"shoppers": int(len(keep)), "of": len(spans),
                               "why": f"one epoch over every shopper exceeds the compute "
                                      f"budget of {budget:,} targets"}
        spans = [spans[i] for i in keep]
    has_val = np.flatnonzero(n_val > 0)
    cap = int(p["max_val_users"] or 0)
    why = f"validation on at most {cap:,} shoppers"
    if cap and n_items and p.get("max_val_scores"):
        # every validation target is ranked against the whole catalogue: bound targets x items
        per_user = max(1, int(p["max_val_per_user"]))
        by_scores = max(int(p.get("min_val_users") or 1),
                        int(p["max_val_scores"]) // (int(n_items) * per_user))
        if by_scores < cap:
            cap = by_scores
            why = (f"each validation target is ranked among all {int(n_items):,} items; at most "
                   f"{int(p['max_val_scores']):,} scores per validation")
    if cap and len(has_val) > cap:
        drop = np.setdiff1d(has_val, rng.choice(has_val, cap, replace=False))
        n_val = n_val.copy()
        n_val[drop] = 0  # still kept out of training (their spans end before it)
        out["validation_sample"] = {"shoppers": cap, "of": int(len(has_val)), "why": why}
    return n_val, spans, out


def validation_set(seq, n_val, max_len):
    users = np.flatnonzero(n_val > 0)
    L = max_len
    items = np.zeros((len(users), L), dtype=np.int64)
    types = np.zeros_like(items)
    gaps = np.zeros_like(items)
    targets = np.full((len(users), L), -100, dtype=np.int64)
    for r, u in enumerate(users):
        s, e, k = seq.starts[u], seq.ends[u], min(int(n_val[u]), L)
        items[r], types[r], gaps[r] = last_window(seq, s, e - 1, L)
        targets[r, L - k:] = seq.items[e - k:e]
    return users, items, types, gaps, targets


def take_users(seq: Sequences, idx) -> Sequences:
    """The sequences of shoppers ``idx`` (positions in ``seq.user_ids``), as a ``Sequences`` of
    their own: for work done on a sample of shoppers, or in chunks. It shares ``seq``'s event
    arrays (only the shoppers' bounds are new), so a chunk costs the chunk's size."""
    idx = np.asarray(idx, dtype=np.int64)
    return Sequences(user_ids=[seq.user_ids[i] for i in idx], starts=seq.starts[idx],
                     ends=seq.ends[idx], items=seq.items, types=seq.types, gaps=seq.gaps)
