"""The GPU path, proven: text embedding, the profile encoder and a full demo build on CUDA (bf16).

One prepared run for a machine with an NVIDIA GPU. It prints, in order:
  1. the machine: torch, CUDA, GPU name, bf16 support;
  2. text embedding throughput (items per second) on CUDA in bf16 and on the CPU, and how far
     the bf16 vectors are from the float32 ones (cosine);
  3. a full `segstudio build` of a generated demo shop on CUDA: every stage's seconds, the peak
     GPU memory, the planted-types ARI and the encoder's validation NDCG@10;
  4. with --compare-cpu, the same build of the same store on the CPU, and the ratio per stage.

    python bench/bench_gpu.py --users 20000 --compare-cpu
    python bench/bench_gpu.py --text-model /path/to/all-MiniLM-L6-v2   # a local model folder

Without a GPU it says so and exits 2 (tests never need one).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _embed_throughput(model: str, texts: list[str], n_cpu: int, device: str) -> None:
    import numpy as np
    import torch

    from core.embed import TextEmbedder

    gpu = TextEmbedder(model, device=device, batch_size=256)
    gpu.encode(texts[:512])  # warm-up: kernels, tokenizer
    _sync()
    t0 = time.perf_counter()
    vg = gpu.encode(texts)
    _sync()
    tg = time.perf_counter() - t0
    cpu = TextEmbedder(model, device="cpu", batch_size=128)
    sample = texts[:n_cpu]
    cpu.encode(sample[:64])
    t0 = time.perf_counter()
    vc = cpu.encode(sample)
    tc = time.perf_counter() - t0
    cos = (vg[:n_cpu] * vc).sum(1)
    print(f"  embedding  {device} (bf16 on cuda): {len(texts):,} texts in {tg:.2f} s = {len(texts) / tg:,.0f}/s")
    print(f"  embedding  cpu fp32 ({torch.get_num_threads()} threads): {len(sample):,} texts in "
          f"{tc:.2f} s = {len(sample) / tc:,.0f}/s   speed-up {len(texts) / tg / (len(sample) / tc):.1f}x")
    print(f"  bf16 vs fp32 vectors: cosine min {cos.min():.4f}, mean {cos.mean():.5f} "
          f"({int((cos < 0.99).sum())} of {len(cos):,} below 0.99)")
    del gpu, cpu, vg, vc, np


def _encoder_compare(store, model: str, gpu: str) -> None:
    from core.embed import embed_items
    from core.encoder import train_encoder
    from core.evaluate.splits import session_cuts
    from core.features import compute_features
    from core.features.holdout import cutoffs, last_basket_split
    from core.store import start_run

    print("\n== profile encoder: the same data and held-out windows on each device")
    with store.write() as con:
        embed_items(con, model, device=gpu)
        run_id = start_run(con, "build", {})
        compute_features(con, run_id)
        enc_split = session_cuts(con, last_basket_split(con))
        for label, dev, extra in [
                (f"{gpu} (bf16), default budget", gpu, {}),
                (f"cpu, {os.cpu_count()} threads, default budget", "cpu",
                 {"threads": os.cpu_count()}),
                (f"{gpu} (bf16), 10x budget", gpu, {"max_target_passes": 4_500_000})]:
            _sync()
            t0 = time.perf_counter()
            m = train_encoder(con, run_id, device=dev, seed=42, text_model=model,
                              params=extra or None, cutoffs=cutoffs(enc_split),
                              val_cutoffs=cutoffs(enc_split, "val_cut"))
            _sync()
            sec = time.perf_counter() - t0
            print(f"  {label:<34} {sec:7.1f} s  {m['epochs']:>2} epochs "
                  f"({sec / max(m['epochs'], 1):.2f} s each), val NDCG@10 {m['val_ndcg10']:.4f}")
            sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20000, help="demo shoppers (default 20,000)")
    ap.add_argument("--text-model", default=None, help="text model name or local folder")
    ap.add_argument("--compare-cpu", action="store_true", help="also build the same store on the CPU")
    ap.add_argument("--dry-run", action="store_true",
                    help="without a GPU: run every step on the CPU (checks the script itself)")
    ap.add_argument("--encoder-compare", action="store_true",
                    help="instead of full builds: train the encoder on cuda (default budget and "
                         "10x), and on the CPU, on the same data; print seconds and NDCG@10")
    ap.add_argument("--embed-texts", type=int, default=20000, help="texts for the embedding timing")
    args = ap.parse_args()

    import torch

    print("== machine")
    print(f"  torch {torch.__version__}, CUDA {torch.version.cuda}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPU cores")
    if not torch.cuda.is_available():
        print("  no CUDA GPU visible to torch: nothing to prove here.")
        if not args.dry_run:
            return 2
    else:
        print(f"  GPU {torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}, "
          f"{torch.cuda.get_device_properties(0).total_memory / 1024 ** 3:.0f} GiB")

    from bench_build import planted_ari, report
    from core.config import DEFAULT_TEXT_MODEL
    from core.demo import generate_demo
    from core.pipeline import BuildParams, build
    from core.progress import TqdmProgress
    from core.store import Store

    model = args.text_model or DEFAULT_TEXT_MODEL
    prog = TqdmProgress(enabled=False)
    tmp = Path(tempfile.mkdtemp(prefix="segstudio-gpu-"))
    store = Store(tmp / "demo.duckdb")
    t0 = time.perf_counter()
    generate_demo(store, users=args.users, seed=42, progress=prog)
    con = store.read()
    try:
        n_ev = con.execute("SELECT count(*) FROM events").fetchone()[0]
        texts = [r[0] for r in con.execute(
            "SELECT coalesce(title, '') || '. ' || coalesce(description, '') FROM items "
            "ORDER BY item_id LIMIT ?", [args.embed_texts]).fetchall()]
    finally:
        con.close()
    print(f"\n== demo shop: {args.users:,} shoppers, {n_ev:,} events, generated in "
          f"{time.perf_counter() - t0:.1f} s")

    gpu = "cuda" if torch.cuda.is_available() else "cpu"
    print("\n== text embedding")
    _embed_throughput(model, texts, n_cpu=min(len(texts), 4000), device=gpu)

    if args.encoder_compare:
        _encoder_compare(store, model, gpu)
        return 0

    def one_build(device: str) -> dict:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        m = build(store, BuildParams(device=device, text_model=model), progress=prog)
        ari = planted_ari(store, m["run_id"])
        report(f"Demo build on {device}", store, m, {
            "ARI vs planted types": f"{ari:.3f}",
            "peak GPU memory": f"{torch.cuda.max_memory_allocated() / 1024 ** 3:.2f} GiB"
            if torch.cuda.is_available() else "no GPU",
            "peak RSS so far": f"{_rss_gb():.2f} GiB",
        })
        sys.stdout.flush()
        return m

    print("\n== full build, CUDA (encoder and embedding in bf16)")
    mg = one_build(gpu)
    if args.compare_cpu:
        print("\n== the same store built on the CPU (item embeddings now cached: embed is a lookup)")
        mc = one_build("cpu")
        print("\n== per stage: cpu / cuda")
        for name, g in mg["stage_seconds"].items():
            c = mc["stage_seconds"].get(name)
            if c is not None:
                print(f"  {name:<12} cuda {g:8.2f} s   cpu {c:8.2f} s   {c / max(g, 1e-9):6.1f}x")
        print(f"  TOTAL        cuda {mg['total_seconds']:8.2f} s   cpu {mc['total_seconds']:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
