"""Segmenting shoppers: KMeans (k chosen automatically or given) or DBSCAN over profile vectors.

Reads ``profiles`` for a run and writes ``segments`` (user_id, segment_id, distance to the
segment's centre in profile space). Segment ids are ordered by size, 0 = largest (ties: the
segment holding the first user id comes first), so ids and colours are stable and readable.
DBSCAN's noise is segment -1 ("unassigned", distance NULL).

Quality figures returned (and stored in the run by the pipeline):

* ``silhouette`` - mean silhouette on a seeded sample of at most ``sample_size`` users
  (DBSCAN: assigned users only); ``davies_bouldin`` - on all (assigned) users;
* ``sizes`` - {segment_id: users}; ``largest_share`` / ``smallest_share`` / ``noise_share``;
* ``stability_ari`` - adjusted Rand index between two clusterings that differ only by chance:
  KMeans - the same k fitted with seeds ``seed`` and ``seed + 1`` (on all users, or on the
  scan sample above ``scan_size`` users); DBSCAN - two seeded random subsamples of 80 % of the
  fitted users, clustered with the same eps and min_samples scaled by 0.8 (same density), ARI on
  the users that are in both (noise counts as its own label);
* ``k_scan`` - [{k, silhouette, inertia}] for k in ``k_range`` (the elbow chart; inertia is
  the within-segment sum of squares, scaled to all users when the scan ran on a sample);
* DBSCAN also: ``eps`` (knee of the k-distance curve unless given), ``min_samples``,
  ``k_distance`` (the sorted curve, 100 points, for the knee chart) and ``space``.

Scale: the k scan fits on a seeded sample of ``scan_size`` users when there are more; DBSCAN runs
on a PCA projection (``pca_dims`` components) when profiles are wider than that, fits on at most
``dbscan_fit_size`` users and gives every other user the segment of its nearest core user when
that core user is within eps (else unassigned).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
from sklearn.cluster import DBSCAN, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from core.progress import NULL, Progress
from core.segments.profiles import load_profiles

METHODS = ("kmeans", "dbscan")


def segment_users(
    con,
    run_id: int,
    *,
    method: str = "kmeans",
    k: int | None = None,
    k_range: tuple[int, int] = (2, 12),
    seed: int = 42,
    progress: Progress = NULL,
    sample_size: int = 5_000,
    scan_size: int = 20_000,
    n_init: int = 4,
    eps: float | None = None,
    min_samples: int | None = None,
    pca_dims: int = 16,
    dbscan_fit_size: int = 50_000,
) -> dict:
    """Cluster run ``run_id``'s profiles, write ``segments``, return quality metrics."""
    t0 = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be 'kmeans' or 'dbscan' (got {method!r}).")
    user_ids, X = load_profiles(con, run_id)
    n = len(user_ids)
    if n < 3:
        raise ValueError(
            f"Run {run_id} has {n} shopper profile(s); segmenting needs at least 3 shoppers."
        )
    rng_seed = int(seed)
    sil_idx = _sample(n, sample_size, rng_seed)

    # Below ~100k users one thread is as fast and avoids OpenMP/BLAS oversubscription on shared
    # machines (measured: 11 KMeans fits on 400 users took 13.8 s with the default threads under
    # load, 0.2 s with one).
    with threadpool_limits(limits=1 if n < 100_000 else None):
        if method == "kmeans":
            labels, extra = _kmeans(X, k, k_range, rng_seed, n_init, scan_size,
                                    sil_idx, progress)
        else:
            labels, extra = _dbscan(X, eps, min_samples, rng_seed, pca_dims, dbscan_fit_size,
                                    sample_size, progress)

    labels = _order_by_size(labels)
    n_seg = int(labels.max()) + 1 if (labels >= 0).any() else 0
    distance = np.full(n, np.nan)
    for s in range(n_seg):
        members = labels == s
        centre = X[members].mean(axis=0)
        distance[members] = np.linalg.norm(X[members] - centre, axis=1)

    assigned = labels >= 0
    sil = dbi = None
    if n_seg >= 2:
        idx = sil_idx[assigned[sil_idx]]
        with threadpool_limits(limits=1 if n < 100_000 else None):
            if len(np.unique(labels[idx])) >= 2:
                sil = float(silhouette_score(X[idx], labels[idx]))
            dbi = float(davies_bouldin_score(X[assigned], labels[assigned]))
    sizes = {int(s): int((labels == s).sum()) for s in range(n_seg)}
    if (~assigned).any():
        sizes[-1] = int((~assigned).sum())

    _write_segments(con, run_id, user_ids, labels, distance)
    metrics = {
        "method": method,
        "k": n_seg,
        "n_users": n,
        "silhouette": sil,
        "silhouette_sample": int(len(sil_idx)),
        "davies_bouldin": dbi,
        "sizes": sizes,
        "largest_share": max((v for s, v in sizes.items() if s >= 0), default=0) / n,
        "smallest_share": min((v for s, v in sizes.items() if s >= 0), default=0) / n,
        "noise_share": float((~assigned).mean()),
        **extra,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return metrics


# --------------------------------------------------------------------------- KMeans
def _kmeans(X, k, k_range, seed, n_init, scan_size, sil_idx, progress):
    n = len(X)
    lo, hi = (int(v) for v in k_range)
    if lo < 2 or hi < lo:
        raise ValueError(f"k_range must be (low, high) with 2 <= low <= high (got {k_range}).")
    if k is not None and not 2 <= int(k) <= n - 1:
        raise ValueError(f"k must be between 2 and the number of shoppers - 1 ({n - 1}); got {k}.")
    hi = min(hi, n - 1)
    lo = min(lo, hi)
    scan_idx = None if n <= scan_size else _sample(n, scan_size, seed + 7)
    Xs = X if scan_idx is None else X[scan_idx]
    scale = n / len(Xs)
    sil_X = X[sil_idx]
    k_scan, models = [], {}
    ks = list(range(lo, hi + 1))
    with progress.stage("Choosing the number of segments", total=len(ks)) as bar:
        for kk in ks:
            km = KMeans(kk, n_init=n_init, random_state=seed).fit(Xs)
            lab = km.predict(sil_X)
            sil = float(silhouette_score(sil_X, lab)) if len(np.unique(lab)) > 1 else None
            k_scan.append({"k": kk, "silhouette": sil, "inertia": float(km.inertia_ * scale)})
            models[kk] = km
            bar.advance(1)
    if k is None:
        best = max(k_scan, key=lambda r: (r["silhouette"] if r["silhouette"] is not None
                                          else -2.0, -r["k"]))
        k_final, chosen_by = best["k"], "silhouette"
    else:
        k_final, chosen_by = int(k), "user"
    with progress.stage("Clustering shoppers (KMeans)", total=2) as bar:
        if scan_idx is None and k_final in models:
            km = models[k_final]
        else:
            km = KMeans(k_final, n_init=n_init if n <= 200_000 else 1, random_state=seed).fit(X)
        labels = km.labels_
        bar.advance(1)
        # stability: same k, another seed, same users
        if scan_idx is None:
            a = km.labels_
            b = KMeans(k_final, n_init=n_init, random_state=seed + 1).fit(X).labels_
        else:
            a = km.predict(Xs)
            b = KMeans(k_final, n_init=n_init, random_state=seed + 1).fit(Xs).labels_
        bar.advance(1)
    extra = {
        "k_chosen_by": chosen_by,
        "k_scan": k_scan,
        "k_scan_sample": int(len(Xs)),
        "stability_ari": float(adjusted_rand_score(a, b)),
        "stability_method": "ARI between KMeans fits with seeds seed and seed+1",
    }
    return np.asarray(labels, dtype=np.int64), extra


# --------------------------------------------------------------------------- DBSCAN
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


def _dbscan(X, eps, min_samples, seed, pca_dims, fit_size, sample_size, progress):
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


# --------------------------------------------------------------------------- helpers
def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def _order_by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel so segment 0 is the largest; ties go to the segment of the earliest user."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(len(labels), -1, dtype=np.int64)
    ids = [s for s in np.unique(labels) if s >= 0]
    first = {s: int(np.argmax(labels == s)) for s in ids}
    size = {s: int((labels == s).sum()) for s in ids}
    for new, s in enumerate(sorted(ids, key=lambda s: (-size[s], first[s]))):
        out[labels == s] = new
    return out


def _write_segments(con, run_id, user_ids, labels, distance) -> None:
    tbl = pa.table({
        "user_id": pa.array(user_ids, pa.string()),
        "segment_id": pa.array(labels.astype(np.int32)),
        "distance": pa.array(distance, pa.float64(), from_pandas=True),
    })
    con.execute("DELETE FROM segments WHERE run_id = ?", [int(run_id)])
    con.register("_segments_new", tbl)
    try:
        con.execute(
            f"INSERT INTO segments SELECT {int(run_id)}, user_id, segment_id, distance "
            "FROM _segments_new"
        )
    finally:
        con.unregister("_segments_new")
