"""`segstudio build --engine ray`: the Ray path in local mode (2 workers on this machine) against
the single-process build on a small demo shop.

Exact (float tolerance 1e-5) where the same weights are used: text embedding (Ray Data over
shards of texts), profile inference (Ray Data over per-shard Parquet of shoppers) and segment
assignment under a fitted segmentation (Ray tasks over chunks of rows). Within a
stated tolerance where training differs: DDP with 2 ranks draws different dropout masks than one
process (see core/encoder/loop.py), so the encoder's weights differ; the segments must agree
with ARI >= 0.9, the lifecycle stages exactly, and the encoder's validation NDCG@10 within 5 %
(relative) of the single-process figure.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray  # in the test extra (`pip install -e '.[test]'`): a missing Ray fails, never skips

ROOT = Path(__file__).resolve().parents[1]

NDCG_REL_TOL = 0.05
MIN_ARI = 0.9


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 ** 2,
             log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                                       "TRANSFORMERS_OFFLINE": "1"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def builds(ray_session, tmp_path_factory):
    """The same 300-shopper demo built twice: one process, and --engine ray (2 workers)."""
    from core.demo import generate_demo
    from core.pipeline import BuildParams, build
    from core.store import Store

    d = tmp_path_factory.mktemp("ray")
    local = Store(d / "local.duckdb")
    generate_demo(local, users=300, seed=7)
    shutil.copyfile(local.path, d / "ray.duckdb")
    on_ray = Store(d / "ray.duckdb")
    common = dict(seed=7, evaluate=False, predictions=False)
    m_local = build(local, BuildParams(**common))
    m_ray = build(on_ray, BuildParams(**common, engine="ray"))
    return local, m_local, on_ray, m_ray


def _labels(store, table: str, run_id: int) -> dict:
    con = store.read()
    try:
        return dict(con.execute(f"SELECT user_id, segment_id FROM {table} WHERE run_id = ?",
                                [run_id]).fetchall())
    finally:
        con.close()


@pytest.mark.slow
def test_ray_build_gives_the_same_segments_and_metrics(builds):
    from sklearn.metrics import adjusted_rand_score

    local, m_local, on_ray, m_ray = builds
    assert m_ray["engine"]["engine"] == "ray" and m_ray["engine"]["workers"] == 2
    assert m_ray["encoder"]["engine"] == "ray" and m_ray["encoder"]["train_workers"] == 2
    assert m_ray["profiles"]["engine"] == "ray"
    assert m_ray["n_users"] == m_local["n_users"] and m_ray["n_items"] == m_local["n_items"]
    # lifecycle stages come from the behaviour features alone (DuckDB): identical
    assert _labels(on_ray, "lifecycle_segments", m_ray["run_id"]) == \
        _labels(local, "lifecycle_segments", m_local["run_id"])
    # DDP training: same data and effective batch, other dropout masks (stated tolerance)
    a = _labels(local, "segments", m_local["run_id"])
    b = _labels(on_ray, "segments", m_ray["run_id"])
    assert a.keys() == b.keys()
    users = sorted(a)
    ari = adjusted_rand_score([a[u] for u in users], [b[u] for u in users])
    assert ari >= MIN_ARI, f"taste segments ARI {ari:.3f} between the local and Ray builds"
    assert m_ray["k"] == m_local["k"]
    nd_l, nd_r = m_local["encoder"]["val_ndcg10"], m_ray["encoder"]["val_ndcg10"]
    assert abs(nd_r - nd_l) <= NDCG_REL_TOL * nd_l, (nd_l, nd_r)


@pytest.mark.slow  # shares the two builds (models trained) with the test above
def test_profile_inference_on_ray_equals_one_process(builds):
    from core.engine import LOCAL
    from core.engine.ray_engine import RayEngine
    from core.encoder.runtime import _read_checkpoint

    local, m_local, _, _ = builds
    con = local.read()
    try:
        config, weights, items = _read_checkpoint(con, m_local["run_id"])
        u1, S1 = LOCAL.sequence_vectors(con, config, weights, items, "mean", "cpu")
        with RayEngine(workers=2) as eng:
            u2, S2 = eng.sequence_vectors(con, config, weights, items, "mean", "cpu")
    finally:
        con.close()
    assert u1 == u2 and len(u1) == m_local["n_users"]
    np.testing.assert_allclose(S2, S1, atol=1e-5)
    assert np.abs(S1).sum() > 0


@pytest.mark.slow  # shares the two builds (models trained) with the test above
def test_text_embedding_on_ray_equals_one_process(builds):
    """Each build filled its store's embedding cache (Ray: map_batches over shards of texts)."""
    local, m_local, on_ray, m_ray = builds

    def cache(store):
        con = store.read()
        try:
            return dict(con.execute("SELECT text_hash, vector FROM item_embeddings").fetchall())
        finally:
            con.close()

    a, b = cache(local), cache(on_ray)
    assert a.keys() == b.keys() and len(a) == m_ray["embed"]["n_embedded"] > 0
    keys = sorted(a)
    np.testing.assert_allclose(np.array([b[k] for k in keys]), np.array([a[k] for k in keys]),
                               atol=1e-5)


def test_segment_assignment_on_ray_equals_one_process(ray_session):
    """Every shopper's segment under a fitted segmentation: nearest KMeans centre, and best
    signature coverage (refined), on Ray tasks over chunks of rows."""
    import scipy.sparse as sp

    from core.engine.ray_engine import RayEngine
    from core.segments.fit import fit_taste

    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 8)) + np.repeat(rng.normal(scale=4, size=(4, 8)), 125, axis=0)
    Q = sp.random(500, 60, density=0.1, format="csr", random_state=3)
    bought = (Q > 0).astype(np.float64).tocsr()
    with RayEngine(workers=2) as eng:
        for refine in (False, True):
            _, model = fit_taste(X, Q, bought, 4, seed=1, refine=refine)
            expected = model.assign(X, Q)
            assert len(np.unique(expected)) > 1
            np.testing.assert_array_equal(eng.assign(model, X, Q), expected)


def test_recommendations_for_a_list_on_ray_equal_one_process(ray_session, built_demo_store,
                                                             monkeypatch):
    """A campaign list's recommended products (core.recommend.bulk) scored as Ray tasks over
    batches of shoppers: the same products, scores and reasons as in this process."""
    from core.engine.ray_engine import RayEngine
    from core.recommend.bulk import recommend_shoppers
    from core.recommend.previews import get_engine
    from core.store import latest_run

    con = built_demo_store.read()
    try:
        run_id = int(latest_run(con, "build")["run_id"])
        users = [r[0] for r in con.execute(
            "SELECT user_id FROM segments WHERE run_id = ? ORDER BY user_id DESC LIMIT 90",
            [run_id]).fetchall()] + ["not-a-shopper"]
        eng = get_engine(con, run_id)
        monkeypatch.setattr("core.recommend.bulk.MAX_ROWS", 16)  # 6 batches of shoppers,
        monkeypatch.setattr("core.recommend.bulk.CELLS", 1)
        monkeypatch.setattr("core.recommend.bulk.WAVE", 40)      # in 3 waves
        here = recommend_shoppers(con, run_id, users, n=5, preview_engine=eng)
        with RayEngine(workers=2) as on_ray:
            there = recommend_shoppers(con, run_id, users, n=5, preview_engine=eng,
                                       engine=on_ray)
    finally:
        con.close()
    assert len(here) == 5 * len(users)
    assert here["basis"].value_counts().to_dict() == {"purchases": 450, "fallback": 5}
    pd.testing.assert_frame_equal(there, here)


def test_unreachable_address_is_one_sentence_with_the_fix(demo_store, capsys):
    from core.cli import main

    code = main(["build", "--engine", "ray", "--address", "127.0.0.1:1",
                 "--db", str(demo_store.path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Cannot reach a Ray cluster at 127.0.0.1:1" in err and "ray start --head" in err
    assert "Traceback" not in err
    assert main(["build", "--engine", "ray", "--address", "nonsense",
                 "--db", str(demo_store.path)]) == 2
    assert "is not a Ray address" in capsys.readouterr().err


def test_engine_flags_parse_and_validate(demo_store, capsys):
    from core.cli import build_parser, main
    from core.pipeline import BuildParams

    args = build_parser().parse_args(["build", "--engine", "ray", "--address", "ray://h:10001",
                                      "--workers", "8", "--shard-dir", "/mnt/shared"])
    assert (args.engine, args.address, args.workers, args.shard_dir) == \
        ("ray", "ray://h:10001", 8, "/mnt/shared")
    assert build_parser().parse_args(["build"]).engine == "local"
    with pytest.raises(ValueError, match="engine must be"):
        BuildParams(engine="spark")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        BuildParams(engine="ray", workers=0)
    # --address without --engine ray: refused before anything starts, with the fix
    assert main(["build", "--address", "h:6379", "--db", str(demo_store.path)]) == 2
    assert "add --engine ray" in capsys.readouterr().err


def test_engine_refuses_what_the_cluster_cannot_do(ray_session, tmp_path):
    from core.engine import EngineError
    from core.engine.ray_engine import RayEngine

    with pytest.raises(EngineError, match=r"has 2 CPU\(s\) for 3 workers: use --workers 2"):
        RayEngine(workers=3)
    with pytest.raises(EngineError, match="--shard-dir .* is not a folder"):
        RayEngine(shard_dir=str(tmp_path / "missing"))
    with RayEngine(workers=2) as eng, pytest.raises(EngineError, match="needs 2 GPU"):
        eng._gpus("cuda")
    assert ray.is_initialized()  # a session the engine did not start is left running


def test_missing_ray_says_how_to_install(monkeypatch):
    from core.engine import EngineError, make_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(EngineError, match=r"pip install 'segment-studio\[ray\]'"):
        make_engine("ray")
