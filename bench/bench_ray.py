"""The Ray engine against one process, and what 100 M shoppers would take on a cluster.

Prints, on a generated demo shop built once in one process:
  1. text embedding: texts/s in one process, and end to end on Ray (2 workers, Ray Data);
  2. profile inference: shoppers/s of one worker on one shard (the code each Ray actor runs, on
     a Parquet shard DuckDB wrote), in one process over all shoppers, and end to end on Ray;
     the largest difference between the Ray and the single-process vectors;
  3. encoder training: seconds per epoch in one process and with DDP on Ray Train (2 workers);
     with dropout 0 (the one source of difference), how far the DDP weights and validation
     NDCG@10 are from the single process's after 2 epochs;
  4. a worked estimate of time and cost for 100 M shoppers on a cluster of CPU workers, from the
     per-worker throughputs measured here, with every assumption printed.

    python bench/bench_ray.py [--users 1000] [--workers 2] [--device cpu|cuda]

Ray runs in local mode on this machine (``ray.init()``, ``--workers`` CPUs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

# Assumptions of the 100 M estimate (printed with it). The price is an assumed on-demand list
# price, not a quote: check your provider's.
TARGET_SHOPPERS = 100_000_000
ASSUMED_ITEMS = 5_000_000                 # catalogue texts to embed (items with events)
ASSUMED_NODE = "32-vCPU compute node (e.g. AWS c7i.8xlarge)"
ASSUMED_NODE_PRICE = 1.43                 # USD per node-hour, on-demand (assumed)
ASSUMED_NODES = 32                        # -> 1,024 one-CPU workers
DDP_EFFICIENCY = 0.7                      # assumed share of linear speed-up kept at scale


class _Capture:
    """An engine wrapper that keeps the training job it is given (and trains in this process)."""

    name = "local"

    def __init__(self):
        from core.engine import LOCAL

        self.inner, self.job, self.result = LOCAL, None, None

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def fit_encoder(self, job, progress=None):
        self.job = job
        self.result = self.inner.fit_encoder(job)
        return self.result


def _t(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()

    import ray

    from core.demo import generate_demo
    from core.embed import _ITEMS_SQL, TextEmbedder
    from core.encoder import train_encoder
    from core.encoder.runtime import _read_checkpoint
    from core.engine import LOCAL
    from core.engine.ray_engine import RayEngine, _SequenceShard
    from core.engine.ray_train import fit_on_ray
    from core.pipeline import BuildParams, build
    from core.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    store = Store(tmp / "demo.duckdb")
    generate_demo(store, users=a.users, seed=7)
    _, secs = _t(lambda: build(store, BuildParams(seed=7, evaluate=False, predictions=False,
                                                  device=a.device)))
    print(f"Demo shop: {a.users:,} shoppers, built in one process in {secs:.1f} s; this machine: "
          f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}: shared, so figures are "
          "conservative)\n")
    ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False,
             configure_logging=False, object_store_memory=500 * 1024 ** 2,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    eng = RayEngine(workers=a.workers)
    con = store.read()
    run_id = con.execute("SELECT max(run_id) FROM runs WHERE status = 'complete'").fetchone()[0]

    # 1. text embedding
    texts = [r[0] for r in con.execute(f"SELECT text FROM ({_ITEMS_SQL}) WHERE text <> ''")
             .fetchall()]
    emb = TextEmbedder(None, a.device)
    V1, t_local = _t(lambda: emb.encode(texts))
    V2, t_ray = _t(lambda: eng.embed_texts(texts, None, a.device))
    emb_rate = len(texts) / t_local
    print(f"1. Text embedding, {len(texts):,} texts: one process {emb_rate:,.0f} texts/s; Ray "
          f"({a.workers} workers, end to end incl. loading the model in each actor) "
          f"{len(texts) / t_ray:,.0f} texts/s; max |difference| {np.abs(V1 - V2).max():.1e}")

    # 2. profile inference
    config, weights, items = _read_checkpoint(con, run_id)
    (u1, S1), t_local = _t(lambda: LOCAL.sequence_vectors(con, config, weights, items, "mean",
                                                          a.device))
    (u2, S2), t_ray = _t(lambda: eng.sequence_vectors(con, config, weights, items, "mean",
                                                      a.device))
    one = tmp / "one_shard"   # one of 8 shards, as ray_engine writes them
    one.mkdir()
    con.execute(f"COPY (SELECT user_id, item_id, event_type, ts, event_id FROM events WHERE "
                f"user_id IS NOT NULL AND hash(user_id) % 8 = 0) TO '{one}/part.parquet' "
                "(FORMAT parquet)")
    actor = _SequenceShard(config, weights, items, "mean", a.device)
    actor({"path": [str(one)]})  # warm
    out, t_shard = _t(lambda: actor({"path": [str(one)]}))
    shard_rate = len(out["user_id"]) / t_shard
    print(f"2. Profile inference, {len(u1):,} shoppers: one worker on one shard "
          f"({len(out['user_id']):,} shoppers, read from Parquet) {shard_rate:,.0f} shoppers/s; "
          f"one process over the store {len(u1) / t_local:,.0f} shoppers/s; Ray ({a.workers} "
          f"workers, end to end incl. writing the shards and starting actors) "
          f"{len(u2) / t_ray:,.0f} shoppers/s; same shoppers {u1 == u2}, max |difference| "
          f"{np.abs(S1 - S2).max():.1e}")
    con.close()

    # 3. encoder training
    scratch = Store(tmp / "scratch.duckdb")
    shutil.copyfile(store.path, scratch.path)
    cap = _Capture()
    with scratch.write() as wcon:
        m = train_encoder(wcon, run_id, device=a.device, seed=7, engine=cap)
    job = cap.job
    local_ep = float(np.mean([r["seconds"] for r in cap.result.curve]))
    res, t_ray = _t(lambda: fit_on_ray(job, workers=a.workers, use_gpu=a.device == "cuda"))
    ray_ep = float(np.mean([r["seconds"] for r in res.curve]))
    n_targets = int((job.train[3] >= 0).sum())
    print(f"3. Encoder training, {n_targets:,} targets/epoch: one process {local_ep:.2f} s/epoch "
          f"({m['epochs']} epochs, val NDCG@10 {m['val_ndcg10']:.4f}); DDP on Ray "
          f"({a.workers} workers) {ray_ep:.2f} s/epoch ({len(res.curve)} epochs, val NDCG@10 "
          f"{res.curve[res.best_epoch - 1]['val_ndcg10']:.4f}; {t_ray:.1f} s end to end incl. "
          "starting the workers)")
    import dataclasses

    job0 = dataclasses.replace(job, params={**job.params, "dropout": 0.0}, max_epochs=2)
    loc0 = LOCAL.fit_encoder(job0)
    ray0 = fit_on_ray(job0, workers=a.workers, use_gpu=a.device == "cuda")
    diff = max(float((loc0.state[k] - ray0.state[k]).abs().max()) for k in loc0.state)
    print(f"   with dropout 0, after 2 epochs: max |weight difference| DDP vs one process "
          f"{diff:.1e}; val NDCG@10 {loc0.curve[-1]['val_ndcg10']:.4f} vs "
          f"{ray0.curve[-1]['val_ndcg10']:.4f}")
    eng.close()
    ray.shutdown()

    # 4. the 100 M estimate
    workers = ASSUMED_NODES * 32
    p = job.params
    n_windows = len(job.train[0])
    per_shopper = {"targets": n_targets / max(len(u1), 1), "windows": n_windows / max(len(u1), 1)}
    steps_per_epoch = -(-n_windows // int(p["batch_size"]))
    s_step = ray_ep / max(steps_per_epoch, 1)
    t_prof = TARGET_SHOPPERS / (shard_rate * workers)
    t_emb = ASSUMED_ITEMS / (emb_rate * workers)
    big_windows = TARGET_SHOPPERS * per_shopper["windows"]
    window_bytes = job.train[0].itemsize * 4 * int(p["max_len"])
    item_params = ASSUMED_ITEMS * int(p["d"])
    # the follow-up design: each rank reads its own shard of windows and keeps a batch of
    # batch_size windows, so the global batch grows with the workers
    t_train_next = big_windows / (int(p["batch_size"]) * workers) * s_step * 2 / DDP_EFFICIENCY
    hours = (t_prof + t_emb) / 3600
    print(f"\n4. Estimate for {TARGET_SHOPPERS:,} shoppers on {ASSUMED_NODES} x {ASSUMED_NODE} = "
          f"{workers:,} one-CPU Ray workers")
    print(f"   assumptions: {ASSUMED_ITEMS:,} item texts; shoppers like this demo's "
          f"({per_shopper['targets']:.1f} training targets, {per_shopper['windows']:.2f} "
          f"windows each); per-worker rates as measured here; ${ASSUMED_NODE_PRICE:.2f} per "
          "node-hour (assumed on-demand price)")
    print(f"   embedding   {t_emb / 60:8.1f} min  ({emb_rate:,.0f} texts/s per worker)")
    print(f"   profiles    {t_prof / 60:8.1f} min  ({shard_rate:,.0f} shoppers/s per worker, "
          "incl. reading its Parquet shard)")
    print(f"   inference stages together: {hours * 60:.1f} min, about "
          f"${max(hours, 1 / 60) * ASSUMED_NODES * ASSUMED_NODE_PRICE:,.0f} "
          "(features and clustering in DuckDB/scikit-learn and the writes back not included)")
    print(f"   training as built does NOT scale to this size: the global batch stays "
          f"{p['batch_size']} windows (that is what keeps DDP equal to one process), so "
          f"{big_windows / int(p['batch_size']):,.0f} sequential steps per epoch whatever the "
          f"workers; every rank holds all {big_windows * window_bytes / 1e9:,.0f} GB of windows; "
          f"each step all-reduces {item_params / 1e6:,.0f} M item-embedding parameters")
    print(f"   follow-up (not built): windows sharded per rank and a batch of "
          f"{p['batch_size']} per rank: one epoch ~{t_train_next / 60:,.0f} min on {workers:,} "
          f"workers at {s_step:.3f} s/step (measured here, x2 for the all-reduce, "
          f"{DDP_EFFICIENCY:.0%} efficiency assumed); the learning rate must be retuned for "
          "the larger batch")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
