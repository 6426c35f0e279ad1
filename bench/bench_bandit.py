"""The recommender chosen per segment by Thompson sampling, replayed over Online Retail's
held-out baskets: cumulative hits against the best single recommender and uniform random, and
each segment's final choice (both list types).

    python bench/bench_bandit.py --db built.duckdb     # a built store (a copy is evaluated)
    python bench/bench_bandit.py                       # ingest and build Online Retail first
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
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    from core.evaluate import evaluate_recommenders
    from core.store import Store, latest_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "or.duckdb"
        if a.db:
            shutil.copyfile(a.db, path)
        else:
            from core.ingest import ingest_file
            from core.pipeline import BuildParams, build

            ingest_file(Store(path), SHARED / "online_retail" / "online_retail.csv.gz",
                        fmt="online-retail")
            build(Store(path), BuildParams(evaluate=False))
        store = Store(path)
        con = store.read()
        run_id = latest_run(con)["run_id"]
        con.close()
        for seed in a.seeds:
            t0 = time.perf_counter()
            with store.write() as con:
                out = evaluate_recommenders(con, run_id, seed=seed, write=False)
            print(f"\n=== seed {seed}: evaluation + replay {time.perf_counter() - t0:.0f} s")
            for mode, b in out["bandit"].items():
                t = b["totals"]
                print(f"\n{mode}: {b['shoppers']:,} shoppers in time order; arms {', '.join(b['arms'])}")
                print(f"  hits: per-segment Thompson sampling {t['policy']:.0f}, best single "
                      f"({b['best_single']}) {t['best single']:.0f}, uniform random "
                      f"{t['uniform random']:.1f}; policy / best single "
                      f"{t['policy'] / max(t['best single'], 1e-9):.3f}")
                for seg, s in sorted(b["segments"].items(), key=lambda kv: -kv[1]["shoppers"]):
                    rates = ", ".join(f"{k} {v:.3f}" for k, v in sorted(
                        s["hit_rate"].items(), key=lambda kv: -kv[1])[:3])
                    print(f"  {seg[:32]:<32} {s['shoppers']:>6,} shoppers -> {s['choice']:<18} "
                          f"(posterior hit rates: {rates})")


if __name__ == "__main__":
    main()
