"""Benchmark: the profile encoder on UCI Online Retail (and optionally the demo shop).

Stages timed: ingest, behaviour features, item text embeddings (and a second, cached call),
encoder training, profiles, live next-item scoring for one shopper. Prints the device, the
encoder's validation NDCG@10 next to the mean-of-item-text-embeddings baseline on the same
time split, and their ratio (done criterion: the encoder beats the baseline on Online Retail).

    python bench/bench_encoder.py                          # Online Retail from ../shared/data
    python bench/bench_encoder.py --store /tmp/or.duckdb   # reuse an ingested store
    python bench/bench_encoder.py --demo-users 600         # the generated demo shop instead
    python bench/bench_encoder.py --device cuda --param max_epochs=10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED = Path(os.environ.get("SEGSTUDIO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _timed(label: str, fn, times: dict):
    t = time.perf_counter()
    out = fn()
    times[label] = time.perf_counter() - t
    print(f"  {label:<28} {times[label]:8.2f} s", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", help="store to use (default: a fresh temporary one)")
    ap.add_argument("--data", default=str(SHARED / "online_retail" / "online_retail.csv.gz"))
    ap.add_argument("--demo-users", type=int, default=0, help="bench the demo shop of N users instead")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--param", action="append", default=[],
                    help="encoder parameter KEY=VALUE (JSON value), repeatable")
    args = ap.parse_args()

    import numpy as np
    import torch

    from core.embed import embed_items, resolve_device
    from core.encoder import compute_profiles, load_encoder, train_encoder
    from core.features import compute_features
    from core.progress import TqdmProgress
    from core.store import Store, finish_run, start_run

    params = {}
    for kv in args.param:
        k, v = kv.split("=", 1)
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    tmp = None
    if args.store:
        store = Store(args.store)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_encoder_")
        store = Store(Path(tmp.name) / "bench.duckdb")
    progress = TqdmProgress(enabled=sys.stderr.isatty())
    times: dict[str, float] = {}
    dev = resolve_device(args.device)
    print(f"device {dev} (torch {torch.__version__}, {os.cpu_count()} CPU cores"
          + (f", {torch.cuda.get_device_name(0)}" if dev.startswith("cuda") else "") + ")")

    if args.demo_users:
        from core.demo import generate_demo

        title = f"demo shop, {args.demo_users} users"
        _timed("generate demo", lambda: generate_demo(store, users=args.demo_users, seed=args.seed),
               times)
    else:
        from core.ingest import ingest_file

        title = f"Online Retail ({Path(args.data).name})"
        rep = _timed("ingest", lambda: ingest_file(store, args.data, "online-retail"), times)
        if rep.get("skipped_already_ingested"):
            print("    (already ingested in this store)")

    with store.write() as con:
        run_id = start_run(con, "bench_encoder", {"device": dev, "seed": args.seed, **params})
        n = con.execute("SELECT count(DISTINCT user_id), count(*) FROM events "
                        "WHERE user_id IS NOT NULL").fetchall()[0]
        n_items = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
        print(f"  {title}: {n[0]:,} shoppers, {n[1]:,} events with a shopper, {n_items:,} items")
        _timed("features", lambda: compute_features(con, run_id, progress=progress), times)
        emb = _timed("embed items", lambda: embed_items(con, device=dev, progress=progress), times)
        print(f"    {emb['n_embedded']:,} texts embedded ({emb['n_items']:,} items, "
              f"{emb['n_texts']:,} distinct texts, {emb['items_without_text']} without text)")
        emb2 = _timed("embed items again (cached)", lambda: embed_items(con, device=dev), times)
        print(f"    {emb2['n_embedded']} texts embedded on the second call")
        m = _timed("train encoder", lambda: train_encoder(
            con, run_id, device=dev, seed=args.seed, params=params or None, progress=progress),
            times)
        prof = _timed("profiles", lambda: compute_profiles(con, run_id, device=dev,
                                                           progress=progress), times)
        curve = con.execute("SELECT epoch, train_loss, val_ndcg10, val_recall10, seconds "
                            "FROM training_curve WHERE run_id = ? ORDER BY epoch",
                            [run_id]).fetchall()
        finish_run(con, run_id, {"encoder": m, "profiles": prof})

    con = store.read()
    enc = load_encoder(con, run_id, device="cpu")
    uid = con.execute("SELECT user_id FROM events WHERE user_id IS NOT NULL GROUP BY 1 "
                      "ORDER BY count(*) DESC LIMIT 1").fetchall()[0][0]
    hist = con.execute("SELECT item_id, event_type, ts FROM events WHERE user_id = ? "
                       "ORDER BY ts, event_id", [uid]).fetchall()
    enc.next_item_scores(hist)
    lat = []
    for _ in range(50):
        t = time.perf_counter()
        enc.next_item_scores(hist[-50:])
        lat.append(time.perf_counter() - t)
    lat_ms = 1000 * float(np.median(lat))

    print("\n  epoch  train_loss  val_NDCG@10  val_Recall@10  seconds")
    for ep, loss, nd, rc, s in curve:
        print(f"  {ep:>5}  {loss:10.4f}  {nd:11.4f}  {rc:13.4f}  {s:7.2f}")
    e, b = m["val_ndcg10"], m["baseline_mean_embedding_ndcg10"]
    print(f"\n=== {title} on {m['device']}")
    print(f"  encoder: {m['epochs']} epochs (best {m['best_epoch']}), {m['n_parameters']:,} "
          f"parameters, {m['n_train_targets']:,} training targets, {m['n_val_targets']:,} "
          f"validation targets, {m['train_seconds']:.1f} s training / {m['seconds']:.1f} s total")
    print(f"  val NDCG@10   encoder {e:.4f}   mean-of-item-text-embeddings baseline {b:.4f}   "
          f"ratio {e / b:.2f}x   ({'encoder beats baseline' if e > b else 'BASELINE WINS'})")
    print(f"  val Recall@10 encoder {m['val_recall10']:.4f}   baseline "
          f"{m['baseline_mean_embedding_recall10']:.4f}")
    print(f"  profiles: {prof['n_users']:,} x {prof['dim']} ({prof['sequence_dim']} sequence + "
          f"{prof['feature_dim']} behaviour features, feature weight {prof['feature_weight']})")
    print(f"  live next_item_scores (CPU, 50-interaction history, {len(enc.item_ids):,} items): "
          f"median {lat_ms:.2f} ms")
    print("  stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    if tmp is not None:
        con.close()
        tmp.cleanup()
    return 0 if e > b else 1


if __name__ == "__main__":
    sys.exit(main())
