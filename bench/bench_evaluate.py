"""Benchmark: the offline evaluation on a real store, full tables printed.

Runs ``core.evaluate.evaluate_recommenders`` on the latest complete build of ``--db`` (e.g.
Online Retail after `segstudio ingest` and `segstudio build`) for the last-basket hold-out and
the chronological leave-one-out (last purchase) hold-out, and prints every recommender's
Recall/NDCG/HitRate/MRR@10 with 95 % bootstrap intervals for both list types (new items only /
repeats allowed), per-segment NDCG@10, the tuned hybrid weights and the wall time. The figure
the issue asks for -- the best model's NDCG@10 (repeats allowed) against personal frequency
("repeat") in the same run -- is printed last, with its paired bootstrap interval.

The results are written to the store's ``evaluations`` table (as `segstudio build` does).

    python bench/bench_evaluate.py --db /tmp/or.duckdb
    python bench/bench_evaluate.py --db /tmp/or.duckdb --holdout basket --max-users 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--holdout", choices=["basket", "interaction", "both"], default="both")
    ap.add_argument("--max-users", type=int, default=2000, help="0: every eligible shopper")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tune-users", type=int, default=None,
                    help="validation shoppers (default: the evaluation's default)")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()

    from core.evaluate import evaluate_recommenders
    from core.evaluate.report import rows_from_result, format_tables
    from core.store import Store, latest_run

    store = Store(a.db)
    holdouts = ["basket", "interaction"] if a.holdout == "both" else [a.holdout]
    with store.write() as con:
        rid = latest_run(con)["run_id"]
        for h in holdouts:
            t0 = time.perf_counter()
            out = evaluate_recommenders(con, rid, holdout=h, seed=a.seed,
                                        max_users=a.max_users or None, write=not a.no_write,
                                        **({"tune_users": a.tune_users} if a.tune_users else {}))
            dt = time.perf_counter() - t0
            print(f"\n=== build {rid}, hold-out: {h} ({dt:.1f} s) ===")
            print(format_tables(rows_from_result(out)))
            rep = out["recommenders"]["repeat"]["lists"]["repeats"]["ndcg10"]
            best = out["best"]["repeats"]
            b = out["recommenders"][best]["lists"]["repeats"]
            ci = b.get("ndcg10_vs_repeat_ci") or [float("nan")] * 2
            print(f"\nbest (repeats allowed): {best} NDCG@10 {b['ndcg10']:.4f} vs personal "
                  f"frequency (repeat) {rep:.4f}: {b['ndcg10'] / rep:.3f}x "
                  f"[{ci[0]:.3f}-{ci[1]:.3f}]  (target >= 1.05x)")
            print(f"encoder: {out['encoder']}")


if __name__ == "__main__":
    main()
