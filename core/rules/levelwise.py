"""The level-wise miner (vectorised numpy), kept as the reference for the compiled one.

This is the miner the product used before core.rules.eclat: frequent itemsets level by level
with vertical bitsets (the Eclat representation, processed breadth-first so that every step is
one vectorised numpy operation):

1. Items are counted; frequent items are recoded 0..m-1 in order of increasing support.
2. Frequent pairs come from one sparse product ``X.T @ X`` of the basket x item incidence
   matrix.
3. Level k+1 candidates are joined from two frequent k-itemsets that share their first k-1 items
   (prefix classes; the itemsets are kept sorted lexicographically, so classes are contiguous
   runs of rows). Candidates are pruned with the Apriori property (every k-subset must be
   frequent, looked up by binary search on packed row keys) and counted as
   ``popcount(T[a] & T[b])`` on uint64 bitsets of the basket ids (``np.bitwise_count``).
   Bitsets span only the baskets with at least 3 frequent items.
4. Thresholds that would produce more than ``max_itemsets`` frequent itemsets, or more than
   1 GB of bitsets for one level, are refused with ``TooManyItemsets``.

It shares every convention of core.rules.mining (thresholds, rule shape, metrics, order) and
must give exactly the same rules: tests compare the two on random baskets. It is not used by
the product; ``mine_rules`` here is the reference pipeline (itemsets -> rules -> frame ->
``sort_rules``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from core.rules.mining import (
    Itemsets,
    TooManyItemsets,
    _bitsets,
    _metrics,
    _too_many,
    empty_rules,
    min_count_for,
    sort_rules,
    to_baskets,
)

# Bitsets intersected at a time: small enough to stay in the CPU cache between the AND, the
# popcount and the sum (much faster than one pass per operation over a large array).
_CHUNK_BYTES = 512 * 1024
# Candidates generated at a time (bounds the memory of the candidate arrays).
_CANDIDATES = 200_000
# Refuse (TooManyItemsets) rather than hold more basket bitsets than this for one level.
_MAX_BITSET_BYTES = 1 << 30


# --------------------------------------------------------------------------- row keys
def _keys(rows: np.ndarray) -> np.ndarray:
    """Keys that sort like the rows (lexicographically) and compare equal iff the rows do:
    the big-endian bytes of each row as one opaque (void) value."""
    be = np.ascontiguousarray(rows, dtype=">i4")
    return be.view(np.dtype((np.void, 4 * rows.shape[1]))).ravel()


def _lookup(sorted_keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Index of each row in the sorted level, -1 where absent."""
    if rows.shape[1] == 0:
        return np.zeros(len(rows), dtype=np.int64)
    q = _keys(rows)
    pos = np.searchsorted(sorted_keys, q)
    pos_c = np.minimum(pos, len(sorted_keys) - 1)
    found = (pos < len(sorted_keys)) & (sorted_keys[pos_c] == q) if len(sorted_keys) else \
        np.zeros(len(rows), dtype=bool)
    return np.where(found, pos_c, -1)


def _joinable(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group ends per row for prefix classes (rows sharing all but the last item)."""
    n, k = items.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    if k == 1:
        new_group = np.zeros(n, dtype=bool)
        new_group[0] = True
    else:
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = np.any(items[1:, :-1] != items[:-1, :-1], axis=1)
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n)
    gid = np.cumsum(new_group) - 1
    group_end = ends[gid]
    can_join = (ends - starts)[gid] >= 2
    return group_end, can_join


def mine_itemsets(baskets, *, min_support: float, max_len: int = 10,
                  max_itemsets: int | None = 5_000_000) -> Itemsets:
    """All itemsets with support >= min_support and at most ``max_len`` items."""
    b = to_baskets(baskets)
    n = b.n_baskets
    if not 0 < min_support <= 1:
        raise ValueError(f"min_support must be in (0, 1] (got {min_support}).")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1 (got {max_len}).")
    smin = min_count_for(min_support, n)
    counts = np.bincount(b.item_idx, minlength=b.n_items).astype(np.int64)
    freq = np.flatnonzero(counts >= smin)
    # Recode frequent items by increasing support (ties: by label, for determinism).
    order = freq[np.lexsort((b.labels[freq].astype(str), counts[freq]))]
    m = len(order)
    code = np.full(b.n_items, -1, dtype=np.int64)
    code[order] = np.arange(m)
    labels = b.labels[order]
    levels: list[tuple[np.ndarray, np.ndarray]] = [
        (np.arange(m, dtype=np.int32).reshape(m, 1), counts[order])]
    if m == 0 or max_len < 2:
        return Itemsets(levels, labels, n, smin)

    keep = code[b.item_idx] >= 0
    rows, cols = b.basket_idx[keep], code[b.item_idx[keep]]
    # Level 2 from the sparse co-occurrence matrix.
    X = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(n, m))
    C = sparse.triu(X.T @ X, k=1).tocoo()
    sel = C.data >= smin
    a, c2, cnt2 = C.row[sel].astype(np.int32), C.col[sel].astype(np.int32), C.data[sel]
    o = np.lexsort((c2, a))
    items2 = np.stack([a[o], c2[o]], axis=1)
    cnt2 = cnt2[o].astype(np.int64)
    levels.append((items2, cnt2))
    if max_itemsets is not None and m + len(cnt2) > max_itemsets:
        raise TooManyItemsets(_too_many(max_itemsets, min_support))
    if max_len < 3 or len(cnt2) == 0:
        return Itemsets(levels, labels, n, smin)

    # Bitsets over the baskets that can hold a 3-itemset (>= 3 frequent items): the others
    # change no count from here on, and fewer baskets mean shorter bitsets.
    per_basket = np.bincount(rows, minlength=n)
    big = per_basket >= 3
    new_id = np.cumsum(big) - 1
    sel3 = big[rows]
    # (m, words): bit j set when (kept) basket j holds the item
    item_bits = _bitsets(cols[sel3], new_id[rows[sel3]], m, max(1, int(big.sum())))
    words = item_bits.shape[1]
    chunk = max(1, _CHUNK_BYTES // (8 * words))

    # Bitsets of the level's joinable itemsets.
    group_end, can_join = _joinable(items2)
    jidx = np.flatnonzero(can_join)
    tid_pos = np.full(len(items2), -1, dtype=np.int64)
    tid_pos[jidx] = np.arange(len(jidx))
    if len(jidx) * words * 8 > _MAX_BITSET_BYTES:
        raise TooManyItemsets(_too_many_bytes(min_support))
    T = np.empty((len(jidx), words), dtype=np.uint64)
    for s in range(0, len(jidx), chunk):
        r = jidx[s:s + chunk]
        np.bitwise_and(item_bits[items2[r, 0]], item_bits[items2[r, 1]], out=T[s:s + len(r)])

    items, total = items2, m + len(cnt2)
    k = 2
    while k < max_len:
        keys = _keys(items)
        n_k = len(items)
        c = np.where(can_join, group_end - np.arange(n_k) - 1, 0)
        new_items, new_counts, new_T = [], [], []
        need_T = k + 1 < max_len  # bitsets of the new level are needed for one more level
        t_bytes = 0
        # Chunk by first-row ranges so the candidate arrays stay bounded.
        csum = np.cumsum(c)
        start = 0
        while start < n_k:
            stop = int(np.searchsorted(csum, (csum[start - 1] if start else 0) + _CANDIDATES,
                                       side="right"))
            stop = max(stop, start + 1)
            cc = c[start:stop]
            tot = int(cc.sum())
            if tot:
                ii = np.repeat(np.arange(start, stop), cc)
                offs = np.arange(tot) - np.repeat(np.cumsum(cc) - cc, cc)
                jj = ii + 1 + offs
                cand = np.concatenate([items[ii], items[jj, -1:]], axis=1)
                ok = np.ones(tot, dtype=bool)
                for p in range(k - 1):  # subsets without item p (the last two are ii and jj)
                    sub = np.delete(cand[ok], p, axis=1)
                    found = _lookup(keys, sub) >= 0
                    idx_ok = np.flatnonzero(ok)
                    ok[idx_ok[~found]] = False
                ii, jj, cand = ii[ok], jj[ok], cand[ok]
                r_items, r_cnt, r_T, r_ii = [], [], [], []
                for s in range(0, len(ii), chunk):
                    # tidset(A u {y}) = tidset(A) & tidset(y): the item bitsets are small
                    # and stay in cache, unlike a second gather from the level's bitsets.
                    inter = T[tid_pos[ii[s:s + chunk]]]
                    inter &= item_bits[cand[s:s + chunk, -1]]
                    cnt = np.bitwise_count(inter).sum(axis=1, dtype=np.int64)
                    f = cnt >= smin
                    if f.any():
                        r_items.append(cand[s:s + chunk][f])
                        r_cnt.append(cnt[f])
                        r_ii.append(ii[s:s + chunk][f])
                        if need_T:
                            r_T.append(inter[f])
                if r_items:
                    new_items += r_items
                    new_counts += r_cnt
                    if need_T:
                        # A new itemset's prefix class is its parent row ii, and a range never
                        # splits a class: keep the bitsets of classes with 2+ members only.
                        fi_ii = np.concatenate(r_ii)
                        first = np.ones(len(fi_ii), dtype=bool)
                        first[1:] = fi_ii[1:] != fi_ii[:-1]
                        sizes = np.diff(np.append(np.flatnonzero(first), len(fi_ii)))
                        keep = np.repeat(sizes >= 2, sizes)
                        kept = np.concatenate(r_T)[keep]
                        t_bytes += kept.nbytes
                        if t_bytes > _MAX_BITSET_BYTES:
                            raise TooManyItemsets(_too_many_bytes(min_support))
                        new_T.append(kept)
            start = stop
        if not new_items:
            break
        items = np.concatenate(new_items).astype(np.int32)
        cnts = np.concatenate(new_counts)
        levels.append((items, cnts))
        total += len(cnts)
        if max_itemsets is not None and total > max_itemsets:
            raise TooManyItemsets(_too_many(max_itemsets, min_support))
        k += 1
        if not need_T:
            break
        group_end, can_join = _joinable(items)
        jidx = np.flatnonzero(can_join)
        T = np.concatenate(new_T) if new_T else np.zeros((0, words), dtype=np.uint64)
        del new_T
        assert len(T) == len(jidx)
        tid_pos = np.full(len(items), -1, dtype=np.int64)
        tid_pos[jidx] = np.arange(len(jidx))
        if len(jidx) == 0:
            break
    return Itemsets(levels, labels, n, smin)


def _too_many_bytes(min_support: float) -> str:
    return (f"min_support={min_support} gives so many frequent itemsets that their basket "
            f"bitsets would need more than {_MAX_BITSET_BYTES >> 20:,} MB: raise min_support "
            f"(or lower max_len) to get a manageable number of rules.")


# --------------------------------------------------------------------------- rules
def rules_from_itemsets(fi: Itemsets, *, min_confidence: float = 0.0,
                        min_lift: float | None = None, min_len: int = 1,
                        max_len: int = 10) -> dict[str, np.ndarray]:
    """Single-consequent rules as arrays of codes and counts (no labels yet):
    ``ante`` (list per level of (r, k-1) code arrays), plus flat arrays."""
    n = fi.n_baskets
    item_counts = fi.levels[0][1]
    out = {"ante": [], "cons": [], "count": [], "count_a": [], "count_c": []}
    for k in range(max(min_len, 1), min(max_len, len(fi.levels)) + 1):
        items, cnt = fi.levels[k - 1]
        if len(cnt) == 0:
            continue
        if k == 1:
            ante_count = np.full(len(cnt), n, dtype=np.int64)
            parts = [(np.zeros((len(cnt), 0), dtype=np.int32), items[:, 0], cnt, ante_count)]
        else:
            prev_items, prev_cnt = fi.levels[k - 2]
            prev_keys = _keys(prev_items)
            parts = []
            for p in range(k):
                ante = np.delete(items, p, axis=1)
                ca = prev_cnt[_lookup(prev_keys, ante)]
                parts.append((ante, items[:, p], cnt, ca))
        for ante, cons, cs, ca in parts:
            conf = cs / ca
            ok = conf >= min_confidence - 1e-12
            if min_lift is not None:
                lift = conf * n / item_counts[cons]
                ok &= lift >= min_lift - 1e-12
            if ok.any():
                out["ante"].append(ante[ok])
                out["cons"].append(cons[ok])
                out["count"].append(cs[ok])
                out["count_a"].append(ca[ok])
                out["count_c"].append(item_counts[cons[ok]])
    return out


def mine_rules(baskets, *, min_support: float, min_confidence: float = 0.0,
               min_lift: float | None = None, min_len: int = 1, max_len: int = 10,
               max_itemsets: int | None = 5_000_000) -> pd.DataFrame:
    """The reference pipeline: same arguments and result as core.rules.mining.mine_rules."""
    if not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be in [0, 1] (got {min_confidence}).")
    if min_len < 1 or max_len < min_len:
        raise ValueError(f"Need 1 <= min_len <= max_len (got min_len={min_len}, "
                         f"max_len={max_len}).")
    fi = mine_itemsets(baskets, min_support=min_support, max_len=max_len,
                       max_itemsets=max_itemsets)
    r = rules_from_itemsets(fi, min_confidence=min_confidence, min_lift=min_lift,
                            min_len=min_len, max_len=max_len)
    return rules_frame(fi.labels, r, fi.n_baskets)


def rules_frame(labels: np.ndarray, r: dict, n: int) -> pd.DataFrame:
    if not r["cons"]:
        return empty_rules()
    antecedents: list[tuple] = []
    for ante in r["ante"]:
        if ante.shape[1] == 0:
            antecedents.extend([()] * len(ante))
        elif ante.shape[1] == 1:
            antecedents.extend((x,) for x in labels[ante[:, 0]].tolist())
        else:
            lab = labels[ante]
            antecedents.extend(tuple(sorted(row)) for row in lab.tolist())
    cons = np.concatenate(r["cons"])
    count = np.concatenate(r["count"])
    met = _metrics(count, np.concatenate(r["count_a"]), np.concatenate(r["count_c"]), n)
    df = pd.DataFrame({
        "antecedent": pd.Series(antecedents, dtype=object),
        "consequent": pd.Series([(x,) for x in labels[cons].tolist()], dtype=object),
        **met,
        "count": count.astype(np.int64),
    })
    return sort_rules(df)


