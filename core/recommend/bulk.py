"""Recommendations for many shoppers at once: the "recommended products" of a campaign list.

``recommend_shoppers(con, run_id, user_ids, n=3)`` gives every shopper of a list the same
suggestions a preview of that one shopper gives (``previews.preview_user``), scored in batches:

* a shopper with purchases: the chosen recommender over their purchases (and what they viewed,
  put in the basket or liked);
* a shopper who only browsed: the same, from what they looked at and their segment; a recommender
  that needs purchases (repeat, TIFU-kNN, next basket) gives way to the hybrid, as in a preview;
* an id the build does not know: the shop's best sellers, marked as such.

The batches go through the build's engine (``core.engine``): in this process, or as Ray tasks
with ``--engine ray``. Every shopper's list is scored on its own (each score is normalised per
shopper), so the engine and the batch size never change a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.progress import NULL, Progress
from core.recommend.batch import Batch, batch_for_history, batch_for_users, interest_of
from core.recommend.previews import NEEDS_PURCHASES, get_engine, reads_history

BASIS = {"purchases": "their purchases", "browsing": "what they looked at",
         "fallback": "best sellers (nothing known about them)"}
COLUMNS = ["user_id", "rank", "item_id", "title", "score", "reason", "recommender", "basis"]
# scores of a batch are (shoppers x catalogue) arrays, several per recommender: keep a batch
# near this many cells (256 shoppers on a 4,000-item shop, 80 on 50,000 items)
CELLS = 4_000_000
MAX_ROWS = 256
WAVE = 8_192  # shoppers whose histories are read (one query) and scored together


def batch_rows(n_items: int) -> int:
    """Shoppers per batch for a catalogue of ``n_items``."""
    return int(max(8, min(MAX_ROWS, CELLS // max(int(n_items), 1))))


def stack(batches: Sequence[Batch]) -> Batch:
    """One batch of the shoppers of several one-shopper batches (browsing shoppers)."""
    def cat(parts):
        return None if any(p is None for p in parts) else [x for p in parts for x in p]
    return Batch(sp.vstack([b.counts for b in batches], format="csr"),
                 sp.vstack([b.days for b in batches], format="csr"),
                 sp.vstack([b.returned_only for b in batches], format="csr"),
                 np.concatenate([b.segment for b in batches]),
                 cat([b.histories for b in batches]), cat([b.users for b in batches]), False,
                 cat([b.interest for b in batches]))


def score_chunk(shared: tuple, chunk: "Chunk") -> list[list[tuple]]:
    """The top ``n`` of every shopper of one batch: ``shared`` is ({name: fitted recommender},
    n, exclude). Runs in this process or in a Ray task."""
    recs, n, exclude = shared
    rows = recs[chunk.name].recommend_rows(chunk.batch, n=n, exclude=exclude)
    return [[(r.item_id, r.title, r.score, r.reason) for r in rs] for rs in rows]


@dataclass
class Chunk:
    """A batch of shoppers and the recommender that scores them."""
    name: str
    batch: Batch

    def __len__(self) -> int:  # the engine's progress counts shoppers
        return len(self.batch)


def _histories(data, con, users: list[str]) -> list[list]:
    hist = data.histories(con, users)  # one query for the wave (or the engine's memory)
    return [hist.get(u, []) for u in users]


def _segments(con, run_id: int | None, users: list[str]) -> dict[str, int]:
    if run_id is None or not users:
        return {}
    rows = con.execute("SELECT user_id, segment_id FROM segments WHERE run_id = ? "
                       "AND user_id IN (SELECT unnest(?::VARCHAR[]))",
                       [int(run_id), list(users)]).fetchall()
    return {str(u): int(s) for u, s in rows if s is not None}


def _chunks(con, run_id, data, ids, names, recommender, browse_name, size) -> tuple:
    """The batches of one wave of shoppers and (user, basis) in their row order."""
    rec = names[recommender]
    chunks: list[Chunk] = []
    order: list[tuple[str, str]] = []
    fitted = [u for u in ids if u in data.user_index]
    others = [u for u in ids if u not in data.user_index]
    hists = _histories(data, con, fitted) if reads_history(rec, recommender) and fitted else None
    for a in range(0, len(fitted), size):
        users = fitted[a:a + size]
        hist = hists[a:a + size] if hists is not None else None
        b = batch_for_users(data, np.array([data.user_index[u] for u in users]),
                            histories=hist if rec.needs_history else None)
        if hist is not None:
            b.interest = [interest_of(data, h) for h in hist]
        chunks.append(Chunk(recommender, b))
        order += [(u, "purchases") for u in users]
    hist = _histories(data, con, others) if others else []
    looked = [(u, h) for u, h in zip(others, hist) if h]
    seg = _segments(con, run_id, [u for u, _ in looked])
    for a in range(0, len(looked), size):
        part = looked[a:a + size]
        chunks.append(Chunk(browse_name, stack([
            batch_for_history(data, h, user_id=u, segment_id=seg.get(u)) for u, h in part])))
        order += [(u, "browsing") for u, _ in part]
    unknown = [u for u, h in zip(others, hist) if not h]
    for a in range(0, len(unknown), size):
        part = unknown[a:a + size]
        chunks.append(Chunk("popularity", stack([batch_for_history(data, []) for _ in part])))
        order += [(u, "fallback") for u in part]
    return chunks, order


def recommend_shoppers(con, run_id: int | None, user_ids: Sequence[str], *, n: int = 3,
                       recommender: str = "hybrid", exclude: Sequence[str] = (), engine=None,
                       preview_engine=None, progress: Progress = NULL) -> pd.DataFrame:
    """Top ``n`` products for each shopper of ``user_ids``: one row per (shopper, rank), in the
    order of ``user_ids`` (columns ``COLUMNS``; ``basis`` is purchases, browsing or fallback)."""
    from core.engine import LOCAL

    eng = preview_engine or get_engine(con, run_id)
    engine = engine or LOCAL
    data = eng.data
    ids = list(dict.fromkeys(str(u) for u in user_ids))
    rec = eng.recommender(recommender)
    browse_name = "hybrid" if recommender in NEEDS_PURCHASES else recommender
    names = {recommender: rec, browse_name: eng.recommender(browse_name),
             "popularity": eng.recommender("popularity")}
    size = batch_rows(data.n_items)
    shared = engine.share((names, int(n), tuple(exclude)))  # handed to the engine once
    rows: list[tuple] = []
    with progress.stage(f"Recommending {n} products to each of {len(ids):,} shoppers",
                        total=len(ids)) as bar:
        # in waves, so that only one wave's histories and batches are held at a time
        for w in range(0, len(ids), WAVE):
            chunks, order = _chunks(con, run_id, data, ids[w:w + WAVE], names, recommender,
                                    browse_name, size)
            results = engine.map_chunks(score_chunk, shared, chunks, stage=bar)
            k = 0
            for chunk, lists in zip(chunks, results):
                for recs in lists:
                    user, basis = order[k]
                    k += 1
                    rows += [(user, rank, item, title, score, reason, chunk.name, basis)
                             for rank, (item, title, score, reason) in enumerate(recs, 1)]
    out = pd.DataFrame(rows, columns=COLUMNS)
    pos = {u: i for i, u in enumerate(ids)}
    out["_pos"] = out["user_id"].map(pos)
    return out.sort_values(["_pos", "rank"], kind="stable").drop(columns="_pos") \
        .reset_index(drop=True)


def wide(recs: pd.DataFrame, n: int) -> pd.DataFrame:
    """One row per shopper (indexed by user_id): recommended_1, recommended_1_id, ... up to
    ``n``, and recommendation_basis (their purchases, what they looked at, best sellers)."""
    cols = [c for r in range(1, n + 1) for c in (f"recommended_{r}", f"recommended_{r}_id")]
    if recs.empty:
        return pd.DataFrame(columns=cols + ["recommendation_basis"]).rename_axis("user_id")
    t = recs.pivot(index="user_id", columns="rank", values="title")
    i = recs.pivot(index="user_id", columns="rank", values="item_id")
    out = pd.DataFrame(index=t.index)
    for r in range(1, n + 1):
        out[f"recommended_{r}"] = t[r] if r in t.columns else None
        out[f"recommended_{r}_id"] = i[r] if r in i.columns else None
    basis = recs.drop_duplicates("user_id").set_index("user_id")["basis"].map(BASIS)
    out["recommendation_basis"] = basis
    return out
