"""Top-k ranking metrics, computed exactly from ranked lists and target sets.

For one shopper with target set T (|T| >= 1) and a ranked list r_1..r_k (k = 10):

* Recall@k   = |T n top-k| / |T|
* HitRate@k  = 1 if any of the top k is in T else 0
* NDCG@k     = DCG / IDCG, DCG = sum_{i: r_i in T} 1 / log2(i + 1) (i = 1..k),
               IDCG = sum_{i=1}^{min(|T|, k)} 1 / log2(i + 1)
* MRR@k      = 1 / (rank of the first hit) if it is within k, else 0
* Coverage   = distinct items appearing in any shopper's top k / catalogue size

The figures reported are means over shoppers.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hits_matrix(top: np.ndarray, targets: sp.csr_matrix) -> np.ndarray:
    """Bool (m, k): whether top[u, i] is one of user u's targets (-1 entries never hit)."""
    m, k = top.shape
    rows = np.repeat(np.arange(m), k)
    cols = top.ravel()
    ok = cols >= 0
    out = np.zeros(m * k, dtype=bool)
    out[ok] = np.asarray(targets[rows[ok], cols[ok]]).ravel() > 0
    return out.reshape(m, k)


def per_user_metrics(top: np.ndarray, targets: sp.csr_matrix, k: int = 10) -> dict[str, np.ndarray]:
    """Recall, NDCG, hit and reciprocal rank at k for each row (user)."""
    top = np.asarray(top)[:, :k]
    hits = hits_matrix(top, targets)
    n_t = np.asarray((targets > 0).sum(axis=1)).ravel().astype(np.float64)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * disc[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(disc)[np.clip(np.minimum(n_t, k).astype(int), 1, k) - 1]
    any_hit = hits.any(axis=1)
    first = np.argmax(hits, axis=1)
    return {
        "recall": np.divide(hits.sum(axis=1), n_t, out=np.zeros_like(n_t), where=n_t > 0),
        "ndcg": np.where(n_t > 0, dcg / ideal, 0.0),
        "hit": any_hit.astype(np.float64),
        "rr": np.where(any_hit, 1.0 / (first + 1), 0.0),
    }


def summarise(top: np.ndarray, targets: sp.csr_matrix, n_catalogue: int, k: int = 10) -> dict:
    m = per_user_metrics(top, targets, k)
    items = np.unique(top[:, :k][top[:, :k] >= 0])
    return {
        f"recall{k}": float(m["recall"].mean()) if len(top) else 0.0,
        f"ndcg{k}": float(m["ndcg"].mean()) if len(top) else 0.0,
        f"hitrate{k}": float(m["hit"].mean()) if len(top) else 0.0,
        f"mrr{k}": float(m["rr"].mean()) if len(top) else 0.0,
        "coverage": float(len(items) / n_catalogue) if n_catalogue else 0.0,
        "users_evaluated": int(len(top)),
    }


METRIC_KEYS = ("recall", "ndcg", "hit", "rr")
REPORT_NAMES = {"recall": "recall", "ndcg": "ndcg", "hit": "hitrate", "rr": "mrr"}
SMALL_SAMPLE = 200  # below this many evaluated shoppers every figure carries a warning


def bootstrap_weights(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot, n) resampling counts: shoppers drawn with replacement, n per resample. Shared by
    every recommender of one evaluation, so their intervals come from the same resamples."""
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros((n_boot, 0), dtype=np.float32)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float32)


def bootstrap_interval(values: np.ndarray, W: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (per shopper) from the
    resampling counts ``W`` (``bootstrap_weights``)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return (0.0, 0.0)
    means = (W.astype(np.float64) @ v) / len(v)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


def summarise_with_intervals(top: np.ndarray, targets: sp.csr_matrix, n_catalogue: int,
                             W: np.ndarray, k: int = 10) -> tuple[dict, dict[str, np.ndarray]]:
    """``summarise`` plus a 95 % bootstrap interval (``<metric>_ci``) for every mean, and the
    per-shopper values (for segment rows and paired comparisons)."""
    out = summarise(top, targets, n_catalogue, k)
    per = per_user_metrics(top, targets, k) if len(top) else {m: np.zeros(0) for m in METRIC_KEYS}
    for m in METRIC_KEYS:
        out[f"{REPORT_NAMES[m]}{k}_ci"] = list(bootstrap_interval(per[m], W))
    return out, per
