"""Segments over time on Online Retail: two builds "as of" two dates and the migration between
them (both lenses), with the builds' times and the largest flows.

    python bench/bench_migration.py                               # as of 2011-06-01 and 2011-09-01
    python bench/bench_migration.py --dates 2011-03-01 2011-12-01
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


def main() -> None:
    from core.ingest import ingest_file
    from core.migration import migration, summary
    from core.pipeline import BuildParams, build
    from core.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dates", nargs=2, default=["2011-06-01", "2011-09-01"])
    ap.add_argument("--top", type=int, default=10)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "or.duckdb")
        ingest_file(store, SHARED / "online_retail" / "online_retail.csv.gz", fmt="online-retail")
        runs = []
        for day in a.dates:
            t0 = time.perf_counter()
            m = build(store, BuildParams(as_of=day, evaluate=False))
            runs.append(m["run_id"])
            print(f"build {m['run_id']} as of {day}: {m['n_users']:,} shoppers, taste k={m.get('k')}, "
                  f"{time.perf_counter() - t0:.0f} s")
        con = store.read()
        try:
            for lens in ("taste", "lifecycle"):
                df = migration(con, runs[0], runs[1], lens)
                s = summary(df)
                print(f"\n{lens}: {s['in_both']:,} shoppers in both builds, {s['stayed']:,} "
                      f"stayed, {s['moved']:,} moved, {s['new']:,} new; kept names: "
                      f"{sorted(set(df.from_segment) & set(df.to_segment))}")
                print(f"  {'from':<32} {'to':<32} {'shoppers':>8} {'revenue between':>16}")
                for r in df.head(a.top).to_dict("records"):
                    print(f"  {r['from_segment'][:32]:<32} {r['to_segment'][:32]:<32} "
                          f"{r['shoppers']:>8,} £{r['revenue']:>15,.2f}")
        finally:
            con.close()


if __name__ == "__main__":
    main()
