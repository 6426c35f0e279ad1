"""Benchmark: recommended products for a campaign list (``core.recommend.bulk``).

Times each shopper's top ``--n`` for ``--shoppers`` shoppers of a built store, three ways, and
checks that they agree:

  * reference: ``preview_user`` once per shopper (what the dashboard does for one shopper), on
    the first ``--reference`` shoppers of the list;
  * batches: ``recommend_shoppers`` in this process (the Export page and ``segstudio export
    --recommend``);
  * Ray: the same on ``RayEngine`` in local mode (``--ray-workers``, 0 to skip), Ray's start
    included.

Prints seconds, milliseconds per shopper and the ratios; the recommenders are fitted once first
(their time is printed apart: the dashboard pays it once per build).

    python bench/bench_bulk.py --db /tmp/or.duckdb
    python bench/bench_bulk.py --db /tmp/big/big.duckdb --shoppers 2000 --reference 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="a store with a complete build")
    ap.add_argument("--shoppers", type=int, default=2000, help="shoppers in the list (default 2000)")
    ap.add_argument("--reference", type=int, default=200,
                    help="shoppers timed one preview at a time (default 200)")
    ap.add_argument("--n", type=int, default=3, help="products per shopper (default 3)")
    ap.add_argument("--ray-workers", type=int, default=2, help="Ray workers, 0 to skip (default 2)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    import duckdb

    from core.recommend.bulk import recommend_shoppers
    from core.recommend.previews import get_engine, preview_user
    from core.store import latest_run

    con = duckdb.connect(args.db, read_only=True)
    run = int(latest_run(con, "build")["run_id"])
    t0 = time.perf_counter()
    eng = get_engine(con, run)
    print(f"recommenders fitted in {time.perf_counter() - t0:.1f} s "
          f"({eng.data.n_items:,} items, {len(eng.data.user_ids):,} shoppers with purchases)")
    users = [r[0] for r in con.execute(
        "SELECT user_id FROM segments WHERE run_id = ? ORDER BY hash(user_id || CAST(? AS VARCHAR)), user_id LIMIT ?",
        [run, args.seed, args.shoppers]).fetchall()]
    n = len(users)

    t0 = time.perf_counter()
    got = recommend_shoppers(con, run, users, n=args.n, preview_engine=eng)
    t_bulk = time.perf_counter() - t0

    ref_users = users[:args.reference]
    t0 = time.perf_counter()
    ref = {u: [r["item_id"] for r in preview_user(con, run, u, n=args.n, engine=eng)
               ["recommendations"]] for u in ref_users}
    t_ref = time.perf_counter() - t0
    same = all(got[got["user_id"] == u]["item_id"].tolist() == ref[u] for u in ref_users)

    per_ref, per_bulk = 1000 * t_ref / max(len(ref_users), 1), 1000 * t_bulk / max(n, 1)
    print(f"{n:,} shoppers, top {args.n}")
    row = "  {:<52} {:7.1f} s  {:7.2f} ms a shopper  {}"
    print(row.format(f"reference: one preview a shopper ({len(ref_users):,} shoppers)", t_ref,
                     per_ref, ""))
    print(row.format("batches, this process", t_bulk, per_bulk,
                     f"({per_ref / per_bulk:.1f}x the reference's speed; same lists: {same})"))
    if args.ray_workers:
        from core.engine import make_engine

        t0 = time.perf_counter()
        with make_engine("ray", workers=args.ray_workers) as ray_engine:
            on_ray = recommend_shoppers(con, run, users, n=args.n, preview_engine=eng,
                                        engine=ray_engine)
        t_ray = time.perf_counter() - t0
        print(row.format(f"batches, Ray local mode, {args.ray_workers} workers (Ray's start too)",
                         t_ray, 1000 * t_ray / n,
                         f"({t_bulk / t_ray:.2f}x this process; same frame: {on_ray.equals(got)})"))
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
