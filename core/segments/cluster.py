"""DBSCAN over a taste space: density-based segments where some shoppers stay unassigned.

``dbscan_fit(X, ...)`` returns (labels, info). eps is the knee of the k-distance curve unless
given; min_samples defaults to 2 x dimensions (Sander et al. 1998), at least 4 and at most a
twentieth of the shoppers. Wide spaces are projected on ``pca_dims`` principal components first;
at most ``fit_size`` shoppers are clustered and every other shopper takes the segment of its
nearest core shopper when that one is within eps (else unassigned, -1). Stability: two seeded
80 % subsamples clustered with the same eps and min_samples scaled by 0.8 (the same density),
adjusted Rand index on the shoppers in both (noise counts as its own label).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from core.progress import NULL


def default_min_samples(n: int, dims: int) -> int:
    """2 x dimensions (Sander et al. 1998), at least 4, and at most 1/20 of the users."""
    return int(max(4, min(2 * dims, n // 20)))


def knee(values) -> float:
    """The knee of an increasing curve: the point farthest below the chord from first to last.

    ``values`` are sorted ascending and the top 1 % is clipped first (from 100 points up), so a
    few extreme outliers cannot flatten the rest of the curve (Kneedle's difference curve with
    both axes scaled to [0, 1]).
    """
    y = np.sort(np.asarray(values, dtype=float))
    if len(y) == 0:
        raise ValueError("knee() needs at least one value.")
    if len(y) >= 100:
        y = np.minimum(y, np.quantile(y, 0.99))
    span = y[-1] - y[0]
    if len(y) < 3 or span <= 0:
        return float(y[-1])
    x = np.linspace(0.0, 1.0, len(y))
    diff = x - (y - y[0]) / span
    return float(y[int(np.argmax(diff))])


def dbscan_fit(X, eps=None, min_samples=None, seed: int = 42, pca_dims: int = 16,
               fit_size: int = 50_000, sample_size: int = 5_000, progress=NULL):
    """(labels, info) of DBSCAN on the rows of X (see the module docstring)."""
    n, d = X.shape
    space = "profile"
    Z = X
    with progress.stage("Clustering shoppers (DBSCAN)", total=4) as bar:
        if d > pca_dims:
            pca = PCA(pca_dims, random_state=seed).fit(X[_sample(n, 20_000, seed)])
            Z = pca.transform(X).astype(np.float32)
            space = f"pca-{pca_dims} ({pca.explained_variance_ratio_.sum():.0%} of variance)"
        bar.advance(1)
        ms = int(min_samples) if min_samples else default_min_samples(n, Z.shape[1])
        ms = max(2, min(ms, n - 1))
        fit_idx = np.arange(n) if n <= fit_size else _sample(n, fit_size, seed + 3)
        Zf = Z[fit_idx]
        q = _sample(len(Zf), sample_size, seed + 5)
        kdist = NearestNeighbors(n_neighbors=ms).fit(Zf).kneighbors(Zf[q])[0][:, -1]
        eps_final = float(eps) if eps else knee(kdist)
        if eps_final <= 0:
            eps_final = float(np.max(kdist)) or 1e-9
        bar.advance(1)
        db = DBSCAN(eps=eps_final, min_samples=ms).fit(Zf)
        labels = np.full(n, -1, dtype=np.int64)
        labels[fit_idx] = db.labels_
        if len(fit_idx) < n and len(db.core_sample_indices_):
            rest = np.setdiff1d(np.arange(n), fit_idx)
            core = db.core_sample_indices_
            dist, nearest = NearestNeighbors(n_neighbors=1).fit(Zf[core]).kneighbors(Z[rest])
            lab = db.labels_[core[nearest[:, 0]]]
            labels[rest] = np.where(dist[:, 0] <= eps_final, lab, -1)
        bar.advance(1)
        # stability: two 80 % subsamples, same eps, min_samples scaled to the same density
        m = max(3, int(0.8 * len(Zf)))
        ms_sub = max(2, int(round(ms * 0.8)))
        sub = [np.sort(np.random.default_rng(seed + i).choice(len(Zf), m, replace=False))
               for i in (0, 1)]
        lab_sub = [DBSCAN(eps=eps_final, min_samples=ms_sub).fit(Zf[s]).labels_ for s in sub]
        both, ia, ib = np.intersect1d(sub[0], sub[1], return_indices=True)
        stability = float(adjusted_rand_score(lab_sub[0][ia], lab_sub[1][ib]))
        bar.advance(1)
    curve = np.sort(kdist)
    pts = np.unique(np.linspace(0, len(curve) - 1, min(100, len(curve))).round().astype(int))
    extra = {
        "eps": eps_final,
        "eps_chosen_by": "user" if eps else "k-distance knee",
        "min_samples": ms,
        "space": space,
        "fit_size": int(len(fit_idx)),
        "k_distance": [{"rank": int(i), "distance": float(curve[i])} for i in pts],
        "k_scan": [],
        "stability_ari": stability,
        "stability_method": "ARI on the overlap of two seeded 80% subsamples clustered alike",
    }
    return labels, extra


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


