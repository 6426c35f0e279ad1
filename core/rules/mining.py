"""Frequent itemsets and association rules over baskets, fast and exact.

Conventions (those of ``arules::apriori``)
------------------------------------------
Rules have a single item on the right-hand side: for each frequent itemset S with
min_len <= |S| <= max_len and each item c in S, the rule S\\{c} => {c}. Every subset of a
frequent itemset is frequent, so all supports are known once the itemsets are mined.
``min_len=1`` allows ``{} => {item}`` (confidence = support of the item), as arules does.

Thresholds follow arules: an itemset is frequent when ``count / n_baskets >= min_support``
(compared on counts: ``count >= ceil(min_support * n)``, with a 1e-9 tolerance for floating-point
representation of the product); a rule passes when ``confidence >= min_confidence`` and, if given,
``lift >= min_lift``. Thresholds that would produce more than ``max_itemsets`` (5 million)
frequent itemsets are refused with ``TooManyItemsets`` (a ValueError whose message says to raise
min_support); the search stops as soon as the limit is passed.

Algorithm
---------
Baskets are encoded once (labels factorised, (basket, item) pairs deduplicated in one linear
pass). Frequent itemsets are mined by depth-first Eclat on projected bitsets into a prefix tree,
and rules are generated from that tree, both in compiled code (core.rules.eclat and
core.rules.rulegen: details there). The rules are then ordered (lift, confidence, support, then
the items' labels, compared through their ranks) and only then turned into Python tuples.

core.rules.levelwise keeps the previous, pure-numpy level-wise miner as the reference: tests
check that both give the same itemsets and the same rules, figure for figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Iterable

import numpy as np
import pandas as pd

# Refuse (TooManyItemsets) rather than hold more prefix bitsets than this (core.rules.eclat).
_MAX_BITSET_BYTES = 1 << 30
# Tie keys of rules are packed into one int64 below this bound (tests lower it).
_KEY_LIMIT = 2 ** 63
RULE_COLUMNS = ["antecedent", "consequent", "support", "confidence", "lift", "leverage",
                "conviction", "count"]


class TooManyItemsets(ValueError):
    """The thresholds would produce more frequent itemsets than the configured limit."""


# --------------------------------------------------------------------------- baskets
@dataclass
class Baskets:
    """Baskets as an incidence structure: item codes per basket, with the code -> label map."""

    basket_idx: np.ndarray   # int64, one entry per (basket, item) pair, deduplicated,
                             # grouped by basket (ascending)
    item_idx: np.ndarray     # int64 code into labels
    labels: np.ndarray       # object array: item label per code
    n_baskets: int

    @property
    def n_items(self) -> int:
        return len(self.labels)


def to_baskets(baskets) -> Baskets:
    """Normalise the accepted inputs: a list of iterables of item labels, a DataFrame with
    columns (basket_id, item_id), or an existing ``Baskets``. Duplicate items in a basket count
    once; missing item labels are dropped. With a list, every entry is a basket (an empty one
    still counts in the number of baskets, as a transaction in arules does)."""
    if isinstance(baskets, Baskets):
        return baskets
    if isinstance(baskets, pd.DataFrame):
        missing = {"basket_id", "item_id"} - set(baskets.columns)
        if missing:
            raise ValueError(
                f"baskets DataFrame lacks column(s) {sorted(missing)}: it needs basket_id and "
                f"item_id (one row per item in a basket), e.g. from baskets_from_store(con)."
            )
        # (on the arrays: factorising a Series also builds an Index of the labels)
        b_codes, _ = pd.factorize(baskets["basket_id"].array, sort=False)  # missing: code -1
        i_codes, labels = pd.factorize(baskets["item_id"].array, sort=False)
        if (b_codes < 0).any() or (i_codes < 0).any():  # a basket may be all missing items
            df = baskets[["basket_id", "item_id"]].dropna()
            b_codes, _ = pd.factorize(df["basket_id"], sort=False)
            i_codes, labels = pd.factorize(df["item_id"], sort=False)
        n = int(b_codes.max()) + 1 if len(b_codes) else 0
    else:
        lists = baskets if isinstance(baskets, (list, tuple)) else list(baskets)
        try:  # sized baskets (lists, tuples, sets) are read as they are
            lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        except TypeError:  # e.g. generators
            lists = [list(b) for b in lists]
            lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat = np.fromiter(chain.from_iterable(lists), dtype=object, count=int(lengths.sum()))
        b_codes = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
        i_codes, labels = pd.factorize(flat, sort=False)  # missing labels: code -1
        keep = i_codes >= 0
        if not keep.all():
            b_codes, i_codes = b_codes[keep], i_codes[keep]
        n = len(lists)
    labels = np.asarray(labels, dtype=object)
    b_codes = np.asarray(b_codes, dtype=np.int64)
    i_codes = np.asarray(i_codes, dtype=np.int64)
    if len(b_codes):
        from core.rules.eclat import dedupe_pairs

        # grouped by basket, each pair once
        b_codes, i_codes = dedupe_pairs(b_codes, i_codes, n, len(labels))
    return Baskets(b_codes, i_codes, labels, n)


def _bitsets(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_bits: int) -> np.ndarray:
    """uint64 bitsets (n_rows, ceil(n_bits/64)) with bit ``cols`` set in row ``rows``."""
    words = max(1, (n_bits + 63) // 64)
    flat = np.zeros(n_rows * words, dtype=np.uint64)
    word = rows.astype(np.int64) * words + (cols >> 6)
    bits = np.left_shift(np.uint64(1), (cols & 63).astype(np.uint64))
    np.bitwise_or.at(flat, word, bits)
    return flat.reshape(n_rows, words)


# --------------------------------------------------------------------------- itemsets
@dataclass
class Itemsets:
    """Frequent itemsets by level: ``levels[k-1] = (items (n_k, k) int32 codes sorted
    lexicographically, counts (n_k,) int64)``; codes index ``labels``."""

    levels: list[tuple[np.ndarray, np.ndarray]]
    labels: np.ndarray           # label per code (frequent items only)
    n_baskets: int
    min_count: int

    @property
    def total(self) -> int:
        return sum(len(c) for _, c in self.levels)


def min_count_for(min_support: float, n_baskets: int) -> int:
    """Smallest basket count with count / n >= min_support (at least 1)."""
    return max(1, int(math.ceil(min_support * n_baskets - 1e-9)))


def _too_many(limit: int, min_support: float) -> str:
    return (f"More than {limit:,} frequent itemsets at min_support={min_support}: raise "
            f"min_support (or lower max_len) to get a manageable number of rules.")


def _frequent_items(b: Baskets, min_support: float) -> tuple[int, np.ndarray, np.ndarray]:
    """(min count, frequent item codes by increasing support (ties: by label), their counts)."""
    if not 0 < min_support <= 1:
        raise ValueError(f"min_support must be in (0, 1] (got {min_support}).")
    smin = min_count_for(min_support, b.n_baskets)
    counts = np.bincount(b.item_idx, minlength=b.n_items).astype(np.int64)
    freq = np.flatnonzero(counts >= smin)
    order = freq[np.lexsort((b.labels[freq].astype(str), counts[freq]))]
    return smin, order, counts[order]


@dataclass
class _Trie:
    """Frequent itemsets as core.rules.eclat's prefix tree, with the frequent items' labels."""

    nodes: tuple            # (item, count, parent, sib, cstart, cend, depth, n_nodes)
    labels: np.ndarray      # label per code (frequent items, by increasing support)
    counts: np.ndarray      # count per code
    n_baskets: int
    min_count: int


def _mine_trie(baskets, min_support: float, max_len: int,
               max_itemsets: int | None) -> _Trie:
    from core.rules.eclat import mine_trie

    b = to_baskets(baskets)
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1 (got {max_len}).")
    smin, order, counts = _frequent_items(b, min_support)
    code = np.full(b.n_items, -1, dtype=np.int64)
    code[order] = np.arange(len(order))
    limit = (1 << 62) if max_itemsets is None else int(max_itemsets)
    *nodes, status = mine_trie(b.basket_idx, code[b.item_idx], b.n_baskets, len(order),
                               counts, smin, min(max_len, max(len(order), 1)), limit,
                               _MAX_BITSET_BYTES // 8)
    if status == 1:
        raise TooManyItemsets(_too_many(limit, min_support))
    if status == 2:
        raise TooManyItemsets(
            f"min_support={min_support} leaves so many frequent items in so many baskets that "
            f"their bitsets would need more than {_MAX_BITSET_BYTES >> 20:,} MB: raise "
            f"min_support to get a manageable number of rules.")
    return _Trie(tuple(nodes), b.labels[order], counts, b.n_baskets, smin)


def mine_itemsets(baskets, *, min_support: float, max_len: int = 10,
                  max_itemsets: int | None = 5_000_000) -> Itemsets:
    """All itemsets with support >= min_support and at most ``max_len`` items."""
    from core.rules.eclat import trie_levels

    t = _mine_trie(baskets, min_support, max_len, max_itemsets)
    m = len(t.labels)
    *_, depth, n_nodes = t.nodes
    max_depth = int(depth[:n_nodes].max()) if n_nodes else 1
    items, counts, sizes = trie_levels(*t.nodes, m, max_depth)
    levels = [(items[sizes == k, :k], counts[sizes == k]) for k in range(1, max_depth + 1)]
    if m == 0 or max_len < 2:
        levels = levels[:1] or [(np.zeros((0, 1), np.int32), np.zeros(0, np.int64))]
    elif len(levels) == 1:  # the level of pairs is listed even when empty
        levels.append((np.zeros((0, 2), np.int32), np.zeros(0, np.int64)))
    return Itemsets(levels, t.labels, t.n_baskets, t.min_count)


# --------------------------------------------------------------------------- rules
def _metrics(count, count_a, count_c, n) -> dict[str, np.ndarray]:
    count = np.asarray(count, dtype=np.float64)
    count_a = np.asarray(count_a, dtype=np.float64)
    count_c = np.asarray(count_c, dtype=np.float64)
    support = count / n
    confidence = count / count_a
    supp_a, supp_c = count_a / n, count_c / n
    lift = confidence / supp_c
    leverage = support - supp_a * supp_c
    with np.errstate(divide="ignore", invalid="ignore"):
        conviction = np.where(count == count_a, np.inf, (1.0 - supp_c) / (1.0 - confidence))
    return {"support": support, "confidence": confidence, "lift": lift, "leverage": leverage,
            "conviction": conviction}


def rule_metrics(count, count_a, count_c, n) -> dict[str, np.ndarray]:
    """support, confidence, lift, leverage and conviction from basket counts of the whole rule,
    its antecedent and its consequent (conviction is inf where confidence == 1)."""
    return _metrics(count, count_a, count_c, n)


def empty_rules() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("antecedent", "consequent") else
                                      ("int64" if c == "count" else "float64"))
                         for c in RULE_COLUMNS})


def mine_rules(baskets, *, min_support: float, min_confidence: float = 0.0,
               min_lift: float | None = None, min_len: int = 1, max_len: int = 10,
               max_itemsets: int | None = 5_000_000) -> pd.DataFrame:
    """Association rules with a single-item consequent, sorted by lift (descending).

    ``baskets``: a list of iterables of item labels, or a DataFrame (basket_id, item_id).
    ``min_len``/``max_len`` count the items of the whole rule (antecedent + consequent), as
    arules' minlen/maxlen: ``min_len=1`` allows ``{} => {item}``.

    Returns columns antecedent (tuple of labels, sorted), consequent (1-tuple), support,
    confidence, lift, leverage, conviction (inf where confidence == 1) and count (baskets
    holding every item of the rule). Ties in lift are broken by confidence, support, then the
    items, so the order is deterministic.
    """
    from core.rules.rulegen import trie_rules

    if not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be in [0, 1] (got {min_confidence}).")
    if min_len < 1 or max_len < min_len:
        raise ValueError(f"Need 1 <= min_len <= max_len (got min_len={min_len}, "
                         f"max_len={max_len}).")
    t = _mine_trie(baskets, min_support, max_len, max_itemsets)
    n, m, labels, counts = t.n_baskets, len(t.labels), t.labels, t.counts
    max_len = min(max_len, max(m, min_len))  # no itemset has more than m items
    nat_rank = _natural_ranks(labels)
    width = max(max_len - 1, 1)
    ante, alen, cons, cnt, cnt_a = trie_rules(
        *t.nodes, m, counts, n, max(min_len, 2), max_len, float(min_confidence),
        min_lift is not None, 0.0 if min_lift is None else float(min_lift),
        np.arange(m) if nat_rank is None else nat_rank)
    if min_len <= 1 and m:  # {} => {item}: the same operations as core.rules.levelwise
        cs, ca = counts, np.full(m, n, dtype=np.int64)
        conf = cs / ca
        ok = conf >= min_confidence - 1e-12
        if min_lift is not None:
            ok &= conf * n / counts >= min_lift - 1e-12
        k1 = np.flatnonzero(ok)
        ante = np.concatenate([np.full((len(k1), width), -1, np.int32), ante])
        alen = np.concatenate([np.zeros(len(k1), np.int64), alen])
        cons = np.concatenate([k1.astype(np.int32), cons])
        cnt = np.concatenate([cs[k1], cnt])
        cnt_a = np.concatenate([ca[k1], cnt_a])
    if len(cons) == 0:
        return empty_rules()
    met = _metrics(cnt, cnt_a, counts[cons], n)
    if nat_rank is None:  # labels without a total order: order each antecedent as before
        return _generic_frame(labels, ante, alen, cons, cnt, met)
    str_rank = _string_ranks(labels)
    if str_rank is None:
        return _generic_frame(labels, ante, alen, cons, cnt, met)
    o = _rule_order(met, _tie_keys(ante, alen, cons, str_rank))
    ante, alen, cons = ante[o], alen[o], cons[o]
    # one 1-tuple per item, shared by the rows (tuples are immutable)
    singles = np.fromiter(((x,) for x in labels.tolist()), dtype=object, count=m)
    antecedents = np.empty(len(o), dtype=object)
    for k in np.unique(alen):
        rows = np.flatnonzero(alen == k)
        if k == 0:
            antecedents[rows] = np.fromiter([()] * len(rows), dtype=object, count=len(rows))
        elif k == 1:
            antecedents[rows] = singles[ante[rows, 0]]
        else:
            columns = [labels[ante[rows, p]].tolist() for p in range(k)]
            antecedents[rows] = np.fromiter(zip(*columns), dtype=object, count=len(rows))
    return pd.DataFrame({
        "antecedent": antecedents,
        "consequent": singles[cons],
        **{c: v[o] for c, v in met.items()},
        "count": cnt[o].astype(np.int64),
    }, copy=False)


def _rule_order(met: dict, tie_keys: list[np.ndarray]) -> np.ndarray:
    """sort_rules' order: lift, confidence, support (descending), then the tie keys."""
    if len(tie_keys) == 1:
        from core.rules.rulegen import rule_order

        return rule_order(np.argsort(-met["lift"], kind="stable"), met["lift"],
                          met["confidence"], met["support"], tie_keys[0])
    return np.lexsort(tie_keys + [-met["support"], -met["confidence"], -met["lift"]])


def _tie_keys(ante, alen, cons, str_rank) -> list[np.ndarray]:
    """np.lexsort keys (least significant first) for sort_rules' tie order below lift,
    confidence and support: the antecedent's labels as strings, position by position (a shorter
    prefix first), then the consequent's. One int64 key (digits: rank + 1 per position, base
    m + 1) when it fits, else one key per position."""
    width = int(alen.max()) if len(alen) else 0
    cols = [np.where(ante[:, p] >= 0, str_rank[np.maximum(ante[:, p], 0)] + 1, 0)
            for p in range(width)] + [str_rank[cons]]
    base = len(str_rank) + 1
    if base ** len(cols) >= _KEY_LIMIT:
        return cols[::-1]
    key = np.zeros(len(cons), dtype=np.int64)
    for col in cols:
        key = key * base + col
    return [key]


def _natural_ranks(labels: np.ndarray) -> np.ndarray | None:
    """Rank of each label in sorted() order, None when the labels cannot all be compared."""
    try:
        order = np.argsort(labels, kind="stable")
    except TypeError:
        return None
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    return rank


def _string_ranks(labels: np.ndarray) -> np.ndarray | None:
    """Rank of each label's str(): comparing antecedents rank by rank is then the same as
    comparing sort_rules' joined strings, provided the strings are distinct, non-empty and free
    of characters up to the separator \\x1f (else None: the caller sorts as sort_rules does)."""
    strs = [str(x) for x in labels]
    if len(set(strs)) < len(strs) or any(not s or min(s) <= "\x1f" for s in strs):
        return None
    order = sorted(range(len(strs)), key=strs.__getitem__)
    rank = np.empty(len(strs), dtype=np.int64)
    rank[order] = np.arange(len(strs))
    return rank


def _generic_frame(labels, ante, alen, cons, cnt, met) -> pd.DataFrame:
    antecedents = [tuple(sorted(labels[row[:k]].tolist())) for row, k in zip(ante, alen)]
    df = pd.DataFrame({
        "antecedent": pd.Series(antecedents, dtype=object),
        "consequent": pd.Series([(x,) for x in labels[cons].tolist()], dtype=object),
        **met,
        "count": cnt.astype(np.int64),
    })
    return sort_rules(df)


def sort_rules(df: pd.DataFrame, by: Iterable[str] = ("lift",)) -> pd.DataFrame:
    """Sort descending by ``by`` then confidence and support, ties by the items (stable)."""
    by = list(by)
    tie_a = df["antecedent"].map(lambda t: "\x1f".join(map(str, t)))
    tie_c = df["consequent"].map(lambda t: str(t[0]))
    keys = [tie_c.to_numpy(), tie_a.to_numpy(), -df["support"].to_numpy(),
            -df["confidence"].to_numpy()] + [-df[c].to_numpy() for c in reversed(by)]
    order = np.lexsort(keys)
    return df.iloc[order].reset_index(drop=True)

