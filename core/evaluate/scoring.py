"""Scoring shoppers in chunks for the evaluation, and tuning the hybrid's weights."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from core.config import CACHE_BLOCK_SCORES
from core.evaluate.metrics import per_user_metrics
from core.recommend.data import ShopData
from core.neighbours import top_k
from core.recommend.recommenders import (
    HybridRecommender, batch_for_users, interest_of, normalise)

K = 10
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
CHUNK = 256
MODES = {"new_items": False, "repeats": True}  # list type -> bought items allowed
# Up to this many items the evaluation works in two threads (the list types' tuning, the test
# shoppers' chunks): each thread holds blocks of shoppers x catalogue scores (~0.4 GB at 50,000
# items), so a larger catalogue keeps one, as the million-shopper build was measured.
THREADED_ITEMS = 20_000


def _chunk(recs: dict, data: ShopData, rows: np.ndarray, hists, names: list[str], s: int):
    """(batch, {name: raw scores}) for the chunk of shoppers ``rows[s:s + CHUNK]``."""
    h = hists[s:s + CHUNK] if hists is not None else None
    b = batch_for_users(data, rows[s:s + CHUNK], histories=h)
    if h is not None:  # views, carts and favourites count where a recommender reads them
        b.interest = [interest_of(data, x) for x in h]
    return b, {n: recs[n].scores(b) for n in names}


def _scores(recs: dict, data: ShopData, rows: np.ndarray, hists, names: list[str]):
    """Yield (row slice, batch, {name: raw scores}) in chunks of shoppers."""
    for s in range(0, len(rows), CHUNK):
        yield (slice(s, s + CHUNK), *_chunk(recs, data, rows, hists, names, s))


def component_topk(recs: dict, data: ShopData, rows: np.ndarray, hists, names: list[str], k: int,
                   weights: dict[str, dict], extra: tuple = ()):
    """Top-k per list type, per component and for the hybrid with ``weights[mode]``; ``extra``:
    recommenders outside the hybrid whose scores depend on the list type (``mode_scores``).
    Up to ``THREADED_ITEMS`` items the chunks of shoppers are scored in two threads (numpy
    leaves the other thread room), each chunk as alone; the result is the same."""
    ref = recs["popularity"]

    def one_chunk(s: int) -> dict:
        b, raw = _chunk(recs, data, rows, hists, names, s)
        out: dict[str, dict] = {m: {} for m in MODES}
        bads = {m: ref.mask(b, repeat=rep) for m, rep in MODES.items()}
        norm = {n: normalise(n, v).astype(np.float32) for n, v in raw.items()}
        for m, rep in MODES.items():
            for n in names:
                out[m][n] = ref.ranked(raw[n], bads[m], k)
            for n in extra:
                out[m][n] = ref.ranked(recs[n].mode_scores(b, rep), bads[m], k)
            hy = HybridRecommender.combine(norm, weights[m])
            hy = np.zeros((len(b), data.n_items)) if hy is None else hy
            out[m]["hybrid"] = ref.ranked(hy, bads[m], k)
        return out

    starts = range(0, len(rows), CHUNK)
    threads = 2 if data.n_items <= THREADED_ITEMS and len(starts) > 1 else 1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(one_chunk, starts))
    order = list(names) + list(extra) + ["hybrid"]
    return {m: {n: np.vstack([p[m][n] for p in parts]) for n in order if parts}
            for m in MODES}


class Scores:
    """One component's normalised scores for the tuned shoppers (float32, shoppers x items),
    held as compactly as is exact, decided on the first chunk of shoppers:

    * ``"shared"``: identical rows are kept once (popularity: one row for everyone; segment
      popularity: one per segment);
    * ``"sparse"``: rows mostly zero (under ``SPARSE_BELOW`` of the catalogue) as a sparse
      matrix (repeat: only what a shopper bought scores);
    * ``"dense"``: the array itself.

    ``take(rows)`` gives the dense rows, the same values in every form. At 50,000 items each
    dense component is 400 MB for 2,000 shoppers: six of them were most of the evaluation
    worker's peak while the million-shopper build ran beside it."""

    def __init__(self, n_rows: int, n_items: int):
        self.shape = (n_rows, n_items)
        self.form: str | None = None
        self._dense: np.ndarray | None = None
        self._uniq: list[np.ndarray] = []
        self._seen: dict[bytes, int] = {}   # a row's digest -> its place in _uniq
        self._inv = np.zeros(n_rows, np.int64)
        self._parts: list[sp.csr_matrix] = []
        self._sparse: sp.csr_matrix | None = None

    def put(self, sl: slice, v: np.ndarray) -> None:
        v = np.ascontiguousarray(v, dtype=np.float32)
        if self.form is None:
            distinct = len({_digest(r) for r in v})
            self.form = ("shared" if distinct * 4 <= len(v) else
                         "sparse" if np.count_nonzero(v) < SPARSE_BELOW * v.size else "dense")
            if self.form == "dense":
                self._dense = np.empty(self.shape, np.float32)
        if self.form == "dense":
            self._dense[sl] = v
        elif self.form == "sparse":
            self._parts.append(sp.csr_matrix(v))
        else:
            for i, r in zip(range(*sl.indices(self.shape[0])), v):
                key = _digest(r)
                j = self._seen.get(key)
                if j is None or not np.array_equal(self._uniq[j], r):  # new (or a collision)
                    j = len(self._uniq)
                    self._seen.setdefault(key, j)
                    self._uniq.append(r.copy())
                self._inv[i] = j

    def done(self) -> "Scores":
        if self.form == "sparse":
            self._sparse = sp.vstack(self._parts, format="csr") if self._parts else \
                sp.csr_matrix(self.shape, dtype=np.float32)
            self._parts = []
        elif self.form == "shared":
            self._uniq = np.vstack(self._uniq) if self._uniq else \
                np.zeros((0, self.shape[1]), np.float32)
            self._seen = {}
        return self

    def take(self, rows) -> np.ndarray:
        if self.form == "dense":
            return self._dense[rows]
        if self.form == "sparse":
            return self._sparse[rows].toarray()
        return self._uniq[self._inv[rows]]

    @property
    def nbytes(self) -> int:
        if self.form == "dense":
            return self._dense.nbytes
        if self.form == "sparse":
            m = self._sparse
            return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
        return self._uniq.nbytes + self._inv.nbytes


SPARSE_BELOW = 0.2   # density under which a component's rows are held sparse (8 bytes a score)


def _digest(row: np.ndarray) -> bytes:
    return hashlib.blake2b(row.tobytes(), digest_size=16).digest()


def _take(scores, rows) -> np.ndarray:
    """Rows of a component's scores: a ``Scores`` or a plain array."""
    return scores.take(rows) if isinstance(scores, Scores) else scores[rows]


def component_norms(recs, data, rows, hists, names) -> dict[str, "Scores"]:
    """Every component's normalised scores (float32, shoppers x items), filled chunk by chunk
    into ``Scores`` (each held in its most compact exact form)."""
    out: dict[str, Scores] = {}
    for sl, _, raw in _scores(recs, data, rows, hists, names):
        for n, v in raw.items():
            if n not in out:
                out[n] = Scores(len(rows), data.n_items)
            out[n].put(sl, normalise(n, v))
    return {n: s.done() for n, s in out.items()}


TUNE_BLOCK = CACHE_BLOCK_SCORES  # scores per block of shoppers while tuning (16 M before)
# From this many items each tuning candidate is ranked on a shortlist (``_Shortlist``): the same
# weights and figures, in less time (Online Retail, 3,927 items: the two list types' tuning took
# 2.4 + 3.9 s on the whole catalogue, 1.6 + 1.4 s on shortlists, the evaluation's results
# identical). Below it a shortlist is nearly the catalogue.
SHORTLIST_FROM = 1_000
SHORTLIST = 100          # each component's best items per shopper on the shortlist


class _Shortlist:
    """Each tuned shopper's shortlist: the union of every component's ``SHORTLIST`` best
    allowed items, their component scores, and each component's ``SHORTLIST``-th best score.

    With weights w >= 0, an item off the shortlist scores at most
    max(tiebreak) + sum_n w_n * (component n's SHORTLIST-th best score): where the blend's
    k-th best shortlisted item beats that bound, its top k is the catalogue's, with the same
    scores (the same sums, in the same order); other shoppers are ranked on the whole
    catalogue. At 50,000 items the ~75 blends tried each ranked 2,000 x 50,000 scores: most
    of the evaluation's time."""

    def __init__(self, norm, names, bad, rows, tb, step):
        n_rows, n_items = bad.shape
        m = min(SHORTLIST, n_items)
        width = min(n_items, m * len(names))
        self.names, self.tb_max = names, float(tb.max(initial=0.0))
        self.items = np.zeros((n_rows, width), np.int64)
        self.tb = np.full((n_rows, width), -np.inf, np.float32)     # -inf: padding
        self.comp = {n: np.zeros((n_rows, width), np.float32) for n in names}
        self.mth = {n: np.full(n_rows, -np.inf) for n in names}
        for s0 in range(0, n_rows, step):
            i = np.arange(s0, min(n_rows, s0 + step))
            block = {n: _take(norm[n], rows[i]) for n in names}
            tops = []
            for n in names:
                v = np.where(bad[i], -np.inf, block[n])
                part = np.argpartition(-v, m - 1, axis=1)[:, :m] if m < n_items else \
                    np.broadcast_to(np.arange(n_items), v.shape)
                pv = np.take_along_axis(v, part, axis=1)
                # fewer than m allowed items: every allowed item is listed (bound -inf)
                self.mth[n][i] = pv.min(axis=1) if m < n_items else -np.inf
                tops.append(part)
            # each row's listed items, sorted, once each, allowed ones only, to the left
            srt = np.sort(np.concatenate(tops, axis=1), axis=1)
            keep = ~np.take_along_axis(bad[i], srt, axis=1)
            keep[:, 1:] &= srt[:, 1:] != srt[:, :-1]
            u = np.take_along_axis(srt, np.argsort(~keep, axis=1, kind="stable"), axis=1)
            u = u[:, :width]
            on = np.arange(width) < keep.sum(axis=1)[:, None]
            self.items[i] = np.where(on, u, 0)
            self.tb[i] = np.where(on, tb[u], -np.inf)
            for n in names:
                self.comp[n][i] = np.where(on, np.take_along_axis(block[n], u, axis=1), 0.0)

    def top(self, w, kk, full_top):
        s = self.tb.copy()
        for n in self.names:
            if w[n] > 0:
                s += np.float32(w[n]) * self.comp[n]
        pos = top_k(s, kk)
        top = np.where(pos >= 0, np.take_along_axis(self.items, np.maximum(pos, 0), axis=1), -1)
        kth = np.where(pos[:, -1] >= 0,
                       np.take_along_axis(s, np.maximum(pos[:, -1:], 0), axis=1)[:, 0], -np.inf)
        bound = self.tb_max + sum(w[n] * self.mth[n] for n in self.names if w[n] > 0)
        # a margin for float32 rounding of the sums
        unsure = np.flatnonzero(~(kth > bound + 1e-4 + 1e-5 * np.abs(bound)))
        if len(unsure):
            top[unsure] = full_top(w, unsure)
        return top


def tune_weights(norm: dict[str, np.ndarray], bad: np.ndarray, targets: sp.csr_matrix,
                 ranker, k: int = K, grid=WEIGHT_GRID, passes: int = 2,
                 rows: np.ndarray | None = None) -> tuple[dict, float]:
    """Coordinate ascent over ``grid`` for each component weight, maximising mean NDCG@k, from
    the best single component (so the blend is never worse than it on the validation data).

    ``rows``: the rows of ``norm``'s arrays to tune on (``bad`` and ``targets`` hold only
    those), so no copy of the components is made. Each candidate is scored in blocks of
    shoppers: memory stays at the components themselves plus one block (a 50,000-item
    catalogue held a copy of every component twice, several GB, before)."""
    names = list(norm)
    tb = (1e-6 * ranker.tiebreak).astype(np.float32)
    n_rows, n_items = bad.shape
    rows = np.arange(n_rows) if rows is None else np.asarray(rows)
    kk = min(k, n_items)
    step = max(1, TUNE_BLOCK // max(1, n_items))

    def full_top(w, sel):
        """Top-kk items of the blend ``w`` for the tuned rows ``sel``, over the catalogue."""
        out = []
        for s0 in range(0, len(sel), step):
            i = sel[s0:s0 + step]
            s = np.broadcast_to(tb, (len(i), n_items)).copy()
            for n in names:
                if w[n] > 0:
                    s += np.float32(w[n]) * _take(norm[n], rows[i])
            s[bad[i]] = -np.inf
            out.append(top_k(s, kk))
        return np.vstack(out) if out else np.zeros((0, kk), np.int64)

    short = _Shortlist(norm, names, bad, rows, tb, step) \
        if n_items >= SHORTLIST_FROM else None

    seen: dict[tuple, float] = {}

    def ndcg(w):
        """Mean NDCG@k of the blend ``w`` (each blend once: the second pass of the ascent asks
        again for many the first tried)."""
        key = tuple(float(w[n]) for n in names)
        if key not in seen:
            top = full_top(w, np.arange(n_rows)) if short is None else short.top(w, kk, full_top)
            seen[key] = float(per_user_metrics(top, targets, k)["ndcg"].mean()) if n_rows else 0.0
        return seen[key]

    w, best = None, -1.0
    for n in names:
        cand = {m: (1.0 if m == n else 0.0) for m in names}
        v = ndcg(cand)
        if v > best:
            w, best = cand, v
    for _ in range(passes):
        improved = False
        for n in names:
            for g in grid:
                if g == w[n]:
                    continue
                cand = {**w, n: g}
                if not any(cand.values()):
                    continue
                v = ndcg(cand)
                if v > best + 1e-9:
                    best, w, improved = v, cand, True
        if not improved:
            break
    return w, best
