"""Segment quality on real data and on the demo shop, both lenses, from a default build.

For each store: every lens's number of segments, sizes, names with the qualifying traits behind
them, stability (between seeds and between 80 % samples) and the predictive-validity table
(segment best-sellers vs whole-shop best-sellers vs KMeans on TF-IDF/SVD-64 of purchases at the
same k, NDCG@10 on each shopper's held-out last basket, 95 % intervals), all computed in the same
build. Targets (issue 8): taste NDCG@10 >= 1.1x the TF-IDF reference; seed stability >= 0.8;
bootstrap stability >= 0.7.

    python bench/bench_segments.py                       # Online Retail + a 2,000-shopper demo
    python bench/bench_segments.py --db built.duckdb     # report on an already built store
    python bench/bench_segments.py --skip-demo
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def build_online_retail(path: Path) -> None:
    from core.ingest import ingest_file
    from core.pipeline import BuildParams, build
    from core.store import Store

    store = Store(path)
    ingest_file(store, SHARED / "online_retail" / "online_retail.csv.gz", fmt="online-retail")
    t0 = time.perf_counter()
    build(store, BuildParams())
    print(f"(Online Retail built in {time.perf_counter() - t0:.0f} s)")


def build_demo(path: Path, users: int) -> None:
    from core.demo import generate_demo
    from core.pipeline import BuildParams, build
    from core.store import Store

    store = Store(path)
    generate_demo(store, users=users, seed=7)
    build(store, BuildParams(seed=7))


def _ci(d: dict) -> str:
    if not d or d.get("ndcg10") is None:
        return "n/a"
    return f"{d['ndcg10']:.4f} [{d['ci_low']:.4f}, {d['ci_high']:.4f}]"


def report(path: Path, title: str) -> dict:
    from core.segments.lenses import LENSES, lens
    from core.segments.quality import lens_report
    from core.store import Store, latest_run

    con = Store(path).read()
    try:
        run = latest_run(con)
        m = run["metrics"]
        print(f"\n=== {title}: build {run['run_id']}, {m['n_users']:,} shoppers, "
              f"{m['total_seconds']:.0f} s (segments stage {m['stage_seconds'].get('segments')} s)")
        rep = lens_report(m)
        for name in LENSES:
            L = lens(name)
            r = rep.get(name, {})
            print(f"\n-- {L.label} lens: k={r.get('k')}, stability between seeds "
                  f"{r.get('stability_seed')}, between 80% samples {r.get('stability_bootstrap')}")
            if name == "taste":
                seg = m["segments"]
                print(f"   chosen: {seg.get('candidate_label')} (refined={seg.get('refined')}), "
                      f"by {seg.get('k_chosen_by')}")
                for o in seg.get("k_scan", []):
                    print(f"     {o['candidate']:<13} k={o['k']}  seed stability "
                          f"{o['seed_stability']:.3f}  silhouette {o['silhouette'] or 0:.3f}  "
                          f"validation NDCG@10 {o.get('val_ndcg10') or 0:.4f}"
                          f"{'   <- chosen' if o.get('chosen') else ''}")
                print(f"   map agreement: {m['map'].get('map_agreement'):.2f} of each shopper's "
                      f"10 nearest map neighbours in their segment (chance "
                      f"{m['map'].get('map_agreement_chance'):.2f})")
            rows = con.execute(
                f"SELECT segment_id, name, size, user_share, revenue_share FROM {L.info} "
                "WHERE run_id = ? ORDER BY segment_id", [run["run_id"]]).fetchall()
            for sid, nm, size, us, rs in rows:
                traits = con.execute(
                    f"SELECT dimension, label, support, lift, p_value FROM {L.traits} "
                    "WHERE run_id = ? AND segment_id = ? ORDER BY dimension = 'item', "
                    "support * ln(lift) DESC LIMIT 4", [run["run_id"], sid]).fetchall()
                tr = "; ".join(f"{d}: {lab[:40]} {s:.0%} {lf:.1f}x p={p:.1g}"
                               for d, lab, s, lf, p in traits) or "no qualifying trait"
                print(f"   {sid:>2} {nm:<34} {size:>6,} ({us:.0%} of shoppers, "
                      f"{(rs or 0):.0%} of revenue)  {tr}")
            v = r.get("validity")
            if v:
                print(f"   predictive validity ({v['segments']['shoppers']:,} held-out baskets, "
                      "NDCG@10 with 95% intervals):")
                print(f"     these segments              {_ci(v['segments'])}")
                print(f"     whole-shop best-sellers     {_ci(v['popularity'])}")
                print(f"     TF-IDF/SVD KMeans, k={v['tfidf_kmeans'].get('k')}       "
                      f"{_ci(v['tfidf_kmeans'])}")
                ci = v.get("ratio_vs_tfidf_ci")
                print(f"     ratio to the TF-IDF reference: {v['ratio_vs_tfidf']:.3f}"
                      + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                      + f"; to best-sellers {v['ratio_vs_popularity']:.3f}")
            for why in r.get("weak", []):
                print(f"   WEAK: {why}")
        return m
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="report on this built store instead of building Online Retail")
    ap.add_argument("--demo-users", type=int, default=2000)
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.db:
            report(Path(args.db), Path(args.db).name)
        else:
            p = Path(tmp) / "or.duckdb"
            build_online_retail(p)
            report(p, "Online Retail")
        if not args.skip_demo:
            d = Path(tmp) / "demo.duckdb"
            build_demo(d, args.demo_users)
            m = report(d, f"Demo shop ({args.demo_users:,} shoppers)")
            from sklearn.metrics import adjusted_rand_score

            from core.store import Store

            con = Store(d).read()
            rows = con.execute("SELECT t.shopper_type, s.segment_id FROM segments s JOIN demo_truth t "
                               "USING (user_id) WHERE s.run_id = ?", [m["run_id"]]).fetchall()
            con.close()
            print(f"\nDemo planted types vs taste segments: ARI "
                  f"{adjusted_rand_score([r[0] for r in rows], [r[1] for r in rows]):.3f}")


if __name__ == "__main__":
    main()
