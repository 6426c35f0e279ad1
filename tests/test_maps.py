"""The segment map: seeded UMAP of the taste vectors, sample + transform above a threshold, and
how well the map and the segments agree."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from core.maps import build_map
from core.segments import NoProfilesError


def _put_profiles(con, X, run_id: int = 1, labels=None) -> None:
    ids = [f"u{i:04d}" for i in range(len(X))]
    labels = np.zeros(len(X), int) if labels is None else np.asarray(labels)
    con.register("_p", pa.table({"user_id": ids, "vector": [list(map(float, x)) for x in X],
                                 "seg": labels.astype(np.int32)}))
    con.execute(f"INSERT INTO taste_vectors SELECT {run_id}, user_id, vector::FLOAT[] FROM _p")
    con.execute(f"INSERT INTO segments SELECT {run_id}, user_id, seg, NULL FROM _p")
    con.unregister("_p")


def _coords(con, run_id: int = 1) -> np.ndarray:
    return np.array(con.execute("SELECT x, y FROM user_map WHERE run_id = ? ORDER BY user_id",
                                [run_id]).fetchall())


def _separates(coords, y) -> float:
    k = len(set(y))
    return adjusted_rand_score(y, KMeans(k, n_init=4, random_state=0).fit_predict(coords))


@pytest.mark.slow  # numba compiles UMAP on first use
def test_map_of_all_users_and_sample_plus_transform(tmp_store):
    X, y = make_blobs(n_samples=400, centers=3, n_features=12, cluster_std=1.0, random_state=5)
    with tmp_store.write() as con:
        _put_profiles(con, X, labels=y)
        m = build_map(con, 1, seed=3, n_epochs=60)
        a = _coords(con)
        build_map(con, 1, seed=3, n_epochs=60)
        b = _coords(con)
        m2 = build_map(con, 1, seed=3, n_epochs=60, sample_threshold=250)
        c = _coords(con)
        n_rows = con.execute("SELECT count(*) FROM user_map WHERE run_id = 1").fetchone()[0]
    assert m["map_method"] == "umap-all" and m["map_fit_size"] == 400 and m["n_users"] == 400
    assert m["seconds"] > 0
    # the blobs are the segments: every shopper's 10 nearest map neighbours share it
    assert m["map_agreement"] == 1.0
    assert m["map_agreement_chance"] == pytest.approx(sum((np.bincount(y) / 400) ** 2))
    assert a.shape == (400, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)  # seeded: the same map every time
    assert _separates(a, y) == 1.0  # the planted groups stay apart on the map
    assert m2["map_method"] == "umap-sample+placed" and m2["map_fit_size"] == 250
    assert n_rows == 400 and np.isfinite(c).all()
    assert _separates(c, y) == 1.0  # users placed by transform land with their group


def test_tiny_stores_get_a_pca_map_and_missing_profiles_are_explained(tmp_store):
    with tmp_store.write() as con:
        with pytest.raises(NoProfilesError, match="taste_vectors"):
            build_map(con, 1)
        _put_profiles(con, np.array([[0, 0, 1], [1, 0, 0], [0, 2, 0], [3, 3, 3]], float))
        m = build_map(con, 1)
        c = _coords(con)
    assert m == {**m, "map_method": "pca", "map_fit_size": 4, "n_users": 4,
                 "map_agreement": None}  # one segment: nothing to agree on
    assert c.shape == (4, 2) and np.isfinite(c).all() and np.abs(c).sum() > 0


@pytest.mark.slow  # numba compiles UMAP in the worker too
def test_background_map_is_the_same_map_and_survives_a_dead_worker(tmp_store, monkeypatch):
    """The build lays the map out in a background worker process: the same coordinates as laying
    it out in the build process, and a worker that cannot run still leaves a map."""
    from concurrent.futures import Future

    from core.maps import umap_map

    X, y = make_blobs(n_samples=300, centers=3, n_features=10, cluster_std=1.0, random_state=2)
    with tmp_store.write() as con:
        _put_profiles(con, X, labels=y)
        build_map(con, 1, seed=4, n_epochs=50)
        here = _coords(con)
        job = umap_map.start_map(con, 1, seed=4, n_epochs=50)
        assert job.future is not None  # 2+ cores: a worker took it
        m = umap_map.finish_map(con, 1, job)
        there = _coords(con)
        dead = Future()
        dead.set_exception(RuntimeError("worker killed"))
        job = umap_map.start_map(con, 1, seed=4, n_epochs=50, background=False)
        job.future = dead
        m_dead = umap_map.finish_map(con, 1, job)
        fallback = _coords(con)
    assert m["laid_out_in"] == "background worker"
    np.testing.assert_array_equal(here, there)
    assert m["map_agreement"] == 1.0 and m["build_waited_seconds"] <= m["layout_seconds"]
    assert m_dead["laid_out_in"] == "build process (background worker failed: RuntimeError)"
    np.testing.assert_array_equal(here, fallback)


@pytest.mark.slow  # numba compiles UMAP's kernels
def test_warming_the_kernels_leaves_the_map_unchanged(monkeypatch):
    """The build's map worker lays out 300 random points before its first map (to load UMAP's
    kernels while a core is idle): the maps after it are the ones laid out before it, on both
    of UMAP's paths (its own neighbours, and exact ones given to it from 4,096 shoppers)."""
    from core.maps import umap_map

    X, _ = make_blobs(n_samples=300, centers=3, n_features=10, random_state=5)
    def both():
        own = umap_map.embed_2d(X, seed=3, n_epochs=30)[0]
        with monkeypatch.context() as m:
            m.setattr(umap_map, "EXACT_KNN_FROM", 200)   # exact neighbours given to UMAP
            given = umap_map.embed_2d(X, seed=3, n_epochs=30)[0]
        return own, given

    before = both()
    assert not np.array_equal(*before)     # two paths, two layouts
    umap_map.warm_layout()
    after = both()
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_script_without_a_main_guard_builds_its_map(tmp_path):
    """The worker is a plain subprocess: a user's script that calls the build without an
    ``if __name__ == "__main__"`` guard is not run again in it (with a multiprocessing pool it
    was, and waited forever on the store the build held)."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "noguard.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from sklearn.datasets import make_blobs
from core.store import Store
from core.maps import umap_map
from test_maps import _put_profiles
X, y = make_blobs(n_samples=120, centers=3, n_features=6, random_state=1)
store = Store({str(tmp_path / "s.duckdb")!r})
with store.write() as con:
    _put_profiles(con, X, labels=y)
    job = umap_map.start_map(con, 1, seed=1, n_epochs=30)
    m = umap_map.finish_map(con, 1, job)
print("RAN", m["laid_out_in"], m["n_users"])
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=str(Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("RAN") == 1  # the script ran once, in its own process only
    assert "RAN background worker 120" in out.stdout


def test_exact_neighbours_match_a_brute_force_search():
    """``exact_knn`` (blocked matrix product, used from 4,096 shoppers up instead of UMAP's
    approximate index) finds the same neighbours and distances as sklearn's brute force."""
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(5)
    R = rng.normal(size=(300, 8)).astype(np.float32)
    Q = np.vstack([R[:40], rng.normal(size=(60, 8)).astype(np.float32)])
    from core import neighbours

    old = neighbours.KNN_BLOCK
    neighbours.KNN_BLOCK = 300 * 7  # several blocks
    try:
        idx, dist = neighbours.exact_knn(Q, R, 6)
    finally:
        neighbours.KNN_BLOCK = old
    d_ref, i_ref = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(R).kneighbors(Q)
    np.testing.assert_array_equal(idx, i_ref)
    np.testing.assert_allclose(dist, d_ref, atol=1e-5)
    assert (idx[:40, 0] == np.arange(40)).all() and (dist[:40, 0] == 0).all()  # itself, exactly


def test_a_map_fitted_on_exact_neighbours_keeps_the_segments_together(tmp_store, monkeypatch):
    """From ``EXACT_KNN_FROM`` shoppers the map is fitted on exact neighbours (here lowered to
    100 so the test stays small), and the shoppers outside the fitted sample are placed among
    their neighbours: the planted groups stay apart and every shopper's map neighbours share
    their segment."""
    from core.maps import umap_map

    monkeypatch.setattr(umap_map, "EXACT_KNN_FROM", 100)
    X, y = make_blobs(n_samples=400, centers=4, n_features=12, cluster_std=1.0, random_state=3)
    with tmp_store.write() as con:
        _put_profiles(con, X, labels=y)
        m = build_map(con, 1, seed=3, n_epochs=60, sample_threshold=250)
        c = _coords(con)
    assert m["map_method"] == "umap-sample+placed" and m["map_fit_size"] == 250
    assert np.isfinite(c).all() and _separates(c, y) == 1.0
    assert m["map_agreement"] == 1.0


def test_umap_kernels_are_kept_on_disk_so_a_new_build_process_does_not_compile_them():
    """UMAP asks numba to cache none of its kernels, so every build's map worker compiled them
    again (6.5 s of a 4,362-shopper layout's 8.4 s); the map turns numba's disk cache on for
    them before first use. In a fresh interpreter: the layout kernels get a disk cache, and a
    second call finds nothing left to turn on."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; sys.path.insert(0, %r)\n"
            "import umap.umap_ as u, umap.layouts as l\n"
            "from core.maps.umap_map import cache_umap_kernels\n"
            "n = cache_umap_kernels()\n"
            "print(n, cache_umap_kernels(), type(u.smooth_knn_dist._cache).__name__,\n"
            "      type(l._nb_optimize_layout_euclidean_single_epoch._cache).__name__)\n"
            % str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n, again, knn_cache, layout_cache = out.stdout.split()
    assert int(n) >= 10 and int(again) == 0
    assert knn_cache == layout_cache == "FunctionCache"
