"""How good a division into segments is: does it predict what members buy next, is it stable,
and how does it compare with simple references computed in the same run.

*Predictive validity* (``segment_popularity_ndcg``). Each segment ranks the whole catalogue by
the share of its members who bought each item before the cut; every evaluated shopper's held-out
basket (``core.features.holdout``) is scored against their segment's top 10 (NDCG@10, binary
relevance, ideal = min(basket items, 10)). The models behind the segments never saw the held-out
baskets: the encoder trains without them and the segments are fitted on what came before.
References on the same shoppers and cut: whole-shop popularity (one segment), and KMeans at the
same number of segments on a TF-IDF / 64-dimension SVD of the shoppers' purchase counts.

*Stability* (adjusted Rand index): between fits with two seeds on all shoppers, and between fits
on two seeded 80 % samples, each then assigning every shopper.

Intervals are 95 % percentile bootstraps over the evaluated shoppers (paired for ratios).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from core.segments.fit import member_shares, ranked_items
from core.segments.report import ADVICE, WEAK_STABILITY, lens_report, weak_reasons  # noqa: F401

K = 10


def targets_matrix(items_lists, item_index: dict[str, int]) -> sp.csr_matrix:
    rows, cols = [], []
    for r, items in enumerate(items_lists):
        for it in items or []:
            j = item_index.get(it)
            if j is not None:
                rows.append(r)
                cols.append(j)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                         shape=(len(items_lists), len(item_index)))


def segment_popularity_ndcg(labels: np.ndarray, bought: sp.csr_matrix, rows: np.ndarray,
                            targets: sp.csr_matrix, k: int = K) -> np.ndarray:
    """Per evaluated shopper (``rows`` index ``labels``/``bought``): NDCG@k of their segment's
    top-k items by member share. Shoppers in segment -1 (unassigned) get the whole shop's list."""
    lab = np.asarray(labels, np.int64).copy()
    overall = np.asarray(bought.mean(axis=0)).ravel()
    n_seg = int(lab.max()) + 1 if (lab >= 0).any() else 0
    shop_top = ranked_items(overall[None], overall, k)[0]
    tops = ranked_items(member_shares(np.maximum(lab, 0), bought, max(n_seg, 1)), overall, k) \
        if n_seg else []
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    # every list as one row of a table padded with -1 (the shop's list last), then one lookup
    # of each evaluated shopper's list in their held-out row (100,000 shoppers x ~10 options
    # at a million-shopper shop: a loop of np.isin per shopper took minutes)
    lists = list(tops) + [shop_top]
    width = max([len(t) for t in lists] + [1])
    table = np.full((len(lists), width), -1, np.int64)
    for i, t in enumerate(lists):
        table[i, :len(t)] = t
    T = targets.tocsr()
    n_t = np.diff(T.indptr)
    rows = np.asarray(rows, np.int64)
    seg = lab[rows] if len(rows) else np.zeros(0, np.int64)
    top = table[np.where(seg < 0, len(lists) - 1, seg)]
    hit = np.zeros(top.shape, bool)
    ok = top >= 0
    r_idx = np.broadcast_to(np.arange(len(rows))[:, None], top.shape)
    if ok.any():
        hit[ok] = np.asarray(T[r_idx[ok], top[ok]]).ravel() > 0
    ideal = np.cumsum(disc)[np.clip(np.minimum(n_t, k), 1, k) - 1]
    dcg = (hit * disc[:width]).sum(axis=1)
    return np.where(n_t > 0, dcg / ideal, 0.0)


def tfidf_svd(counts: sp.csr_matrix, dims: int = 64, seed: int = 42) -> np.ndarray:
    """The reference representation: TF-IDF of purchase counts, 64-dimension SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer

    tf = TfidfTransformer().fit_transform(counts)
    d = int(max(1, min(dims, counts.shape[1] - 1, counts.shape[0] - 1)))
    return TruncatedSVD(d, random_state=int(seed)).fit_transform(tf)


def bootstrap_mean_ci(x: np.ndarray, seed: int = 42, n_boot: int = 500) -> tuple[float, float]:
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    m = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    lo, hi = np.quantile(m, [0.025, 0.975])
    return float(lo), float(hi)


def bootstrap_ratio_ci(a: np.ndarray, b: np.ndarray, seed: int = 42, n_boot: int = 500):
    """95 % interval of mean(a) / mean(b), resampling shoppers (paired)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    den = b[idx].mean(axis=1)
    r = np.where(den > 0, a[idx].mean(axis=1) / np.where(den > 0, den, 1), np.nan)
    lo, hi = np.nanquantile(r, [0.025, 0.975])
    return float(lo), float(hi)


def paired_diff_se(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of mean(a - b) over the same shoppers."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")


def ari(a, b) -> float:
    return float(adjusted_rand_score(a, b))


def summary(name: str, scores: np.ndarray, seed: int = 42) -> dict:
    lo, hi = bootstrap_mean_ci(scores, seed)
    return {"name": name, "ndcg10": float(np.mean(scores)) if len(scores) else None,
            "ci_low": lo, "ci_high": hi, "shoppers": int(len(scores))}

