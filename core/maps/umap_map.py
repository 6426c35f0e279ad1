"""2-D map of the shoppers: UMAP of the taste vectors, written to ``user_map``.

The map is drawn from the same space the taste segments are fitted in (``taste_vectors``: the
taste space, plus each shopper's match to every segment's signature items where segments are
refined), so a segment's shoppers sit together on it. ``map_agreement`` measures that: the share
of each shopper's 10 nearest neighbours on the map that are in their segment, against the share
expected by chance (the sum of squared segment shares).

Up to ``sample_threshold`` users UMAP is fitted on everyone ("umap-all"). Above it, UMAP is
fitted on a seeded sample of ``sample_threshold`` users and every other user is placed at the
membership-weighted mean of their nearest fitted users (``place``, "umap-sample+placed"), so a
million shoppers stays feasible (the cost of the fit is bounded; placement is linear in the
users). Neighbours are exact (``exact_knn``, a blocked matrix product) from 4,096 users up,
where UMAP would otherwise build an approximate index. The layout is seeded
(``random_state``; UMAP then runs single-threaded, which is also what 2 shared cores want).
Fewer than 10 users: the first two principal components ("pca"), UMAP needs a neighbourhood.

UMAP's numba functions are compiled on first use in a process, and UMAP (0.5) asks numba to
keep none of them on disk, so every build paid it again (6.5 s of an 8.4 s first layout of
4,362 shoppers). ``cache_umap_kernels`` turns numba's on-disk cache on for UMAP's module-level
kernels before their first use: from then on a new process loads them (the layout itself is the
same code, so the same map). The build also lays the map out in a background worker process
(``core.engine.background``; ``start_map`` / ``finish_map``): it starts as soon as the taste
vectors exist and runs on the second core while
the predictions, rules and evaluation run in the build process, which use one thread each below
100,000 shoppers. The worker lives as long as the process that started it, so a second build in
the same process (the tests, a dashboard rebuild) finds UMAP compiled. Same inputs and seed, same
map: the layout is identical to laying it out in the build process, which is also the fallback
when a worker cannot start or dies.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from core.progress import NULL, Progress
from core.segments.profiles import load_profiles


def embed_2d(
    X: np.ndarray,
    *,
    seed: int = 42,
    sample_threshold: int = 50_000,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int = 200,
    batch_size: int = 50_000,
    progress: Progress = NULL,
) -> tuple[np.ndarray, dict]:
    """``(coords (n, 2) float64, info)``; info = {map_method, map_fit_size}."""
    n = len(X)
    X = np.asarray(X, dtype=np.float32)
    if n < 10:
        from sklearn.decomposition import PCA

        k = min(2, n, X.shape[1])
        coords = np.zeros((n, 2))
        if n >= 2 and k >= 1:
            coords[:, :k] = PCA(k, random_state=seed).fit_transform(X)
        return coords, {"map_method": "pca", "map_fit_size": n}

    import umap  # heavy import (numba); only when a map is built

    cache_umap_kernels()

    fit_all = n <= sample_threshold
    if fit_all:
        fit_idx = np.arange(n)
    else:
        fit_idx = np.sort(np.random.default_rng(seed).choice(n, int(sample_threshold), replace=False))
    k = min(n_neighbors, len(fit_idx) - 1)
    coords = np.zeros((n, 2))
    # one BLAS/OpenMP thread: the seeded layout is single-threaded anyway, and extra threads
    # only oversubscribe a shared machine
    with threadpool_limits(limits=1):
        knn = None
        if len(fit_idx) >= EXACT_KNN_FROM:
            # UMAP's own exact path stops at 4,096 points; above it, it builds an approximate
            # index (pynndescent) whose numba compilation took 34 of the 36 s of a 4,362-shopper
            # map. Exact neighbours by matrix product are faster to compute than that index is
            # to compile, and exact.
            from core.neighbours import exact_knn

            knn = exact_knn(X[fit_idx], X[fit_idx], k)
        reducer = umap.UMAP(n_neighbors=k, n_components=2, min_dist=min_dist, n_epochs=n_epochs,
                            random_state=seed, transform_seed=seed, n_jobs=1,
                            precomputed_knn=knn if knn is not None else (None, None, None))
        with progress.stage("Fitting the segment map (UMAP)", total=1) as bar, \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            coords[fit_idx] = reducer.fit_transform(X[fit_idx])
            bar.advance(1)
        if not fit_all:
            rest = np.setdiff1d(np.arange(n), fit_idx)
            with progress.stage("Placing the other shoppers on the map", total=len(rest)) as bar:
                for start in range(0, len(rest), batch_size):
                    chunk = rest[start:start + batch_size]
                    coords[chunk] = place(X[chunk], X[fit_idx], coords[fit_idx], k)
                    bar.advance(len(chunk))
    method = "umap-all" if fit_all else "umap-sample+placed"
    return coords, {"map_method": method, "map_fit_size": int(len(fit_idx))}


EXACT_KNN_FROM = 4096   # below this UMAP computes exact neighbours itself


def cache_umap_kernels() -> int:
    """Turn numba's on-disk cache on for UMAP's module-level kernels that do not ask for it
    (``Dispatcher.enable_caching``, what ``@njit(cache=True)`` does), before they are compiled;
    the cache lives beside UMAP's code (``__pycache__``) or in numba's user cache folder.
    Returns how many kernels it turned on (0 on a second call, or where nothing can be
    cached: then UMAP compiles as it always did)."""
    import importlib

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    turned = 0
    for name in ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for obj in list(vars(mod).values()):
            if not isinstance(obj, Dispatcher) or not isinstance(obj._cache, NullCache):
                continue
            if obj.overloads:  # compiled already in this process: nothing to gain
                continue
            try:
                obj.enable_caching()
                turned += 1
            except Exception:  # no writable cache folder: compile as before
                continue
    return turned


# What the map worker imports before its first layout (``core.engine.background.prewarm``).
WARM_MODULES = ("umap", "sklearn.neighbors", "core.neighbours", "core.maps.umap_map")


def warm_layout() -> None:
    """Load (or compile) UMAP's numba kernels by laying out 300 random points, both ways a map is
    laid out (UMAP's own neighbours, and exact ones given to it, as from ``EXACT_KNN_FROM``
    shoppers), so the build's map pays only for its own layout. The kernels hold no state
    between calls: the map that follows is the same as in a fresh process."""
    import umap

    from core.neighbours import exact_knn

    cache_umap_kernels()
    X = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        for knn in ((None, None, None), exact_knn(X, X, 15)):
            umap.UMAP(n_neighbors=15, n_components=2, n_epochs=5, random_state=0, n_jobs=1,
                      precomputed_knn=knn).fit_transform(X)


def place(Xnew: np.ndarray, Xfit: np.ndarray, coords_fit: np.ndarray, k: int) -> np.ndarray:
    """Map positions for shoppers outside the fitted sample: the membership-weighted mean of the
    map positions of their ``k`` nearest fitted shoppers, UMAP's own starting point for new data
    (``UMAP.transform`` then refines it with a few layout epochs, which needs an approximate
    index whose compilation cost more than the whole placement)."""
    from umap.umap_ import smooth_knn_dist

    from core.neighbours import exact_knn

    idx, dist = exact_knn(Xnew, Xfit, k)
    sigmas, rhos = smooth_knn_dist(dist.astype(np.float32), float(k), local_connectivity=1.0)
    w = np.exp(-np.maximum(dist - rhos[:, None], 0.0) / np.maximum(sigmas[:, None], 1e-12))
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return (w[:, :, None] * coords_fit[idx]).sum(axis=1)


def _worker():
    """The background map worker (``core.engine.background``), or None on a one-core machine."""
    from core.engine.background import worker

    return worker("map")


@dataclass
class MapJob:
    """A map being laid out: the shoppers, their taste vectors, the layout settings, and the
    background worker's future (None: laid out in this process by ``finish_map``)."""
    user_ids: list
    X: np.ndarray
    settings: dict
    future: Future | None
    started: float


def start_map(con, run_id: int, *, seed: int = 42, sample_threshold: int = 50_000,
              n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int = 200,
              background: bool = True) -> MapJob:
    """Read run ``run_id``'s taste vectors and start laying the map out in the background
    worker; ``finish_map`` collects and writes it."""
    user_ids, X = load_profiles(con, run_id, table="taste_vectors")
    settings = dict(seed=seed, sample_threshold=sample_threshold, n_neighbors=n_neighbors,
                    min_dist=min_dist, n_epochs=n_epochs)
    future = None
    pool = _worker() if background and len(X) >= 10 else None
    if pool is not None:
        try:
            future = pool.submit("core.maps.umap_map:embed_2d", X, **settings)
        except Exception:  # a broken or shut-down worker: lay it out here instead
            future = None
    return MapJob(user_ids, X, settings, future, time.perf_counter())


def finish_map(con, run_id: int, job: MapJob, progress: Progress = NULL) -> dict:
    """Wait for ``job`` (or lay the map out here), write ``user_map`` and return the metrics of
    ``build_map`` plus where it ran and how long the build waited for it."""
    t_wait = time.perf_counter()
    where, coords = "build process", None
    if job.future is not None:
        try:
            with progress.stage("Finishing the segment map (UMAP)", total=1) as bar:
                coords, info = job.future.result()
                bar.advance(1)
            where = "background worker"
        except Exception as e:  # the worker died (memory?): the map is still made, here
            where = f"build process (background worker failed: {type(e).__name__})"
            from core.engine.background import discard

            discard("map")
    if coords is None:
        coords, info = embed_2d(job.X, progress=progress, **job.settings)
    waited = time.perf_counter() - t_wait
    _write_map(con, run_id, job.user_ids, coords)
    info.update(map_agreement(con, run_id, job.user_ids, coords, seed=job.settings["seed"]))
    return {**info, "n_users": len(job.user_ids), "laid_out_in": where,
            "layout_seconds": round(time.perf_counter() - job.started, 3),
            "build_waited_seconds": round(waited, 3),
            "seconds": round(time.perf_counter() - job.started, 3)}


def _write_map(con, run_id: int, user_ids: list, coords: np.ndarray) -> None:
    tbl = pa.table({
        "user_id": pa.array(user_ids, pa.string()),
        "x": pa.array(coords[:, 0].astype(np.float64)),
        "y": pa.array(coords[:, 1].astype(np.float64)),
    })
    con.execute("DELETE FROM user_map WHERE run_id = ?", [int(run_id)])
    con.register("_user_map_new", tbl)
    try:
        con.execute(f"INSERT INTO user_map SELECT {int(run_id)}, user_id, x, y FROM _user_map_new")
    finally:
        con.unregister("_user_map_new")


def build_map(
    con,
    run_id: int,
    *,
    seed: int = 42,
    sample_threshold: int = 50_000,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int = 200,
    progress: Progress = NULL,
) -> dict:
    """Write ``user_map`` (x, y per user) for run ``run_id``, laid out in this process; return
    {map_method: "umap-all" | "umap-sample+placed" | "pca", map_fit_size, n_users, seconds}."""
    job = start_map(con, run_id, seed=seed, sample_threshold=sample_threshold,
                    n_neighbors=n_neighbors, min_dist=min_dist, n_epochs=n_epochs,
                    background=False)
    out = finish_map(con, run_id, job, progress)
    for key in ("laid_out_in", "layout_seconds", "build_waited_seconds"):
        out.pop(key)
    return out


def map_agreement(con, run_id: int, user_ids: list[str], coords: np.ndarray, *, seed: int = 42,
                  neighbours: int = 10, sample: int = 20_000) -> dict:
    """{map_agreement, map_agreement_chance}: share of each shopper's nearest map neighbours in
    their own taste segment (on a seeded sample of at most ``sample`` shoppers), and chance."""
    from sklearn.neighbors import NearestNeighbors

    seg = dict(con.execute("SELECT user_id, segment_id FROM segments WHERE run_id = ?",
                           [int(run_id)]).fetchall())
    lab = np.array([seg.get(u, -1) for u in user_ids])
    n = len(lab)
    if n <= neighbours or len(np.unique(lab)) < 2:
        return {"map_agreement": None, "map_agreement_chance": None}
    idx = np.arange(n) if n <= sample else np.sort(
        np.random.default_rng(seed).choice(n, sample, replace=False))
    nn = NearestNeighbors(n_neighbors=neighbours + 1).fit(coords).kneighbors(coords[idx])[1][:, 1:]
    share = np.bincount(lab - lab.min()) / n
    return {"map_agreement": float((lab[nn] == lab[idx, None]).mean()),
            "map_agreement_chance": float((share ** 2).sum())}
