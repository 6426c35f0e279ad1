"""Per-shopper predictions on Online Retail (and the demo shop): the backtest of every score
against its baseline, computed in the same run, with the time it took.

Protocol (core.predictions.stage): the latest horizon (30 days by default) is held out; models
are fitted on features as of earlier cut-offs with labels from the horizon after each; the
baseline (recency rank for buy/goal/churn, average historic spend for spend) is fitted and judged
on the same windows. Targets (issue 13): every model beats its baseline.

    python bench/bench_predictions.py                    # Online Retail, goal 'christmas'
    python bench/bench_predictions.py --goal "hot water bottle" --horizon 60
    python bench/bench_predictions.py --db built.duckdb  # a built store (uses its themes)
    python bench/bench_predictions.py --demo 2000        # also a 2,000-shopper demo shop
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


def run(store, title: str, horizon: float, goal: str | None, encoder: bool = True) -> None:
    from core.predictions import build_predictions
    from core.predictions.read import METRIC_WORDS, backtest_table
    from core.store import latest_run

    con = store.read()
    run_ = latest_run(con)
    con.close()
    rid = run_["run_id"] if run_ else 0
    t0 = time.perf_counter()
    with store.write() as con:
        m = build_predictions(con, rid, horizon_days=horizon, goal=goal,
                              encoder={"device": "cpu"} if encoder else None)
        df = backtest_table(con, rid)
        n = con.execute("SELECT count(DISTINCT user_id) FROM predictions WHERE run_id = ?",
                        [rid]).fetchone()[0]
    secs = time.perf_counter() - t0
    what = ("behaviour and the profile encoder (trained before the earliest held-out horizon: "
            f"{m.get('encoder')})" if encoder else "behaviour figures only")
    print(f"\n=== {title}: {n:,} shoppers scored in {secs:.1f} s (horizon {horizon:g} days); "
          f"features: {what}")
    if "goal" in m:
        print(f"goal '{goal}': {m['goal']['matched']}")
    for score, g in df.groupby("score", sort=False):
        r0 = g.iloc[0]
        print(f"\n{r0['title']}: {r0['definition']}")
        print(f"  backtest {int(r0['shoppers']):,} shoppers, positive rate "
              f"{r0['positive_rate']:.3f}, training rows {m['scores'][score]['training_rows']:,}")
        for r in g.to_dict("records"):
            ci = ""
            if r["metric"] == "auc":
                ci = (f"  model 95% [{r['model_low']:.3f}, {r['model_high']:.3f}]  baseline 95% "
                      f"[{r['baseline_low']:.3f}, {r['baseline_high']:.3f}]")
            ratio = r["model"] / r["baseline"] if r["baseline"] else float("nan")
            verdict = {True: "model better", False: "BASELINE BETTER"}.get(r["better"], "")
            print(f"  {METRIC_WORDS.get(r['metric'], r['metric'])[:40]:<40} model "
                  f"{r['model']:>12.4f}  baseline {r['baseline']:>12.4f}  ratio {ratio:6.3f}  "
                  f"{verdict}{ci}")
    for k, v in m["skipped"].items():
        print(f"{k}: skipped ({v})")


def main() -> None:
    from core.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--horizon", type=float, default=30.0)
    ap.add_argument("--goal", default="christmas")
    ap.add_argument("--demo", type=int, default=0, help="also a demo shop of this many shoppers")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if a.db:
            store = Store(a.db)
        else:
            from core.ingest import ingest_file

            store = Store(Path(d) / "or.duckdb")
            t0 = time.perf_counter()
            ingest_file(store, SHARED / "online_retail" / "online_retail.csv.gz",
                        fmt="online-retail")
            print(f"(Online Retail ingested in {time.perf_counter() - t0:.0f} s; no build: the "
                  "goal is matched on categories or item titles)")
        for enc in (False, True):
            run(store, "Online Retail" if not a.db else str(a.db), a.horizon, a.goal, enc)
        if a.demo:
            from core.demo import generate_demo

            demo = Store(Path(d) / "demo.duckdb")
            generate_demo(demo, users=a.demo, seed=7)
            for enc in (False, True):
                run(demo, f"Demo shop ({a.demo:,} shoppers)", a.horizon, "kitchen", enc)


if __name__ == "__main__":
    main()
