"""Benchmark (issue 11, point 6): build cost follows the shop. Embedding and rule mining on
Online Retail and Groceries, before and after.

Per dataset (read in place from ../shared/data), into a temporary store:

* ingest (time, rows, items);
* embed: items in the catalogue, items with events, texts embedded and seconds, with
  ``embed_items(scope="interacted")`` (after: only items with events) and, when that is a
  different set, ``scope="all"`` (before). On these two shops every catalogue item comes from
  the events, so both sets are the same and the "before" run is skipped (said so);
* rules with automatic thresholds (confidence 0.3, min_len 2, target 300): the whole shop, and
  for Online Retail 8 groups of shoppers (user id hash mod 8; a stand-in for a build's segments,
  which would need a full build), each mined on its own baskets. "before" is the previous
  ``auto_rules`` (the first ladder support giving >= target, kept verbatim below), "after" the
  bounded one (target to 3 x target rules, hard cap). Rule counts and seconds for both.

    python bench/bench_ingest.py                 # both datasets
    python bench/bench_ingest.py --skip-embed    # rules only
    nice -n 10 python bench/bench_ingest.py --datasets groceries
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
DATA = Path(os.environ.get("SEGSTUDIO_SHARED_DATA", ROOT.parent / "shared" / "data"))

from core.rules.build import MIN_BASKETS, SUPPORT_LADDER, auto_rules  # noqa: E402
from core.rules.mining import TooManyItemsets, mine_rules, to_baskets  # noqa: E402

TARGET, CONF = 300, 0.3


def old_auto_rules(baskets, *, min_confidence, min_lift=None, min_len=2, max_len=10,
                   target_rules=TARGET, max_itemsets=2_000_000):
    """The automatic thresholds before issue 11 (verbatim): the first ladder support that
    gives at least ``target_rules`` rules, however many more it gives."""
    b = to_baskets(baskets)
    n = b.n_baskets
    if n == 0:
        return mine_rules(b, min_support=1.0, min_confidence=min_confidence), 1.0
    floor = min(1.0, MIN_BASKETS / n)
    ladder = [s for s in SUPPORT_LADDER if s > floor] + [floor]
    best = None
    for s in ladder:
        try:
            rules = mine_rules(b, min_support=s, min_confidence=min_confidence,
                               min_lift=min_lift, min_len=min_len, max_len=max_len,
                               max_itemsets=max_itemsets)
        except TooManyItemsets:
            break
        best = (rules, s)
        if len(rules) >= target_rules:
            break
    if best is None:
        s = ladder[0]
        best = (mine_rules(b, min_support=s, min_confidence=min_confidence, min_lift=min_lift,
                           min_len=min_len, max_len=min(max_len, 3)), s)
    return best


def _timed(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t0


def rules_line(label, baskets):
    (r0, s0), t0 = _timed(old_auto_rules, baskets, min_confidence=CONF, target_rules=TARGET)
    (r1, s1), t1 = _timed(auto_rules, baskets, min_confidence=CONF, target_rules=TARGET)
    nb = baskets["basket_id"].nunique()
    print(f"  rules {label:<22} {nb:>7,} baskets | before {len(r0):>9,} rules at support "
          f"{s0:.5f} in {t0:7.2f} s | after {len(r1):>5,} rules at support {s1:.5f} in {t1:6.2f} s")
    return len(r0), t0, len(r1), t1


def bench(name, path, fmt, skip_embed):
    from core.embed import embed_items
    from core.ingest import ingest_file
    from core.rules.build import baskets_from_store
    from core.store import Store

    print(f"\n{name}: {path}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        store = Store(Path(d) / "s.duckdb")
        r, t = _timed(ingest_file, store, path, fmt)
        print(f"  ingest: {r['rows_read']:,} rows read, {r['rows_loaded']:,} loaded, "
              f"{r['totals']['items']:,} items in {t:.1f} s")
        if not skip_embed:
            with store.read() as con:
                n_items, n_used = con.execute(
                    "SELECT count(*), count(*) FILTER (WHERE item_id IN (SELECT item_id FROM events)) "
                    "FROM items").fetchone()
            with store.write() as con:
                m, t = _timed(embed_items, con, device="cpu")
            print(f"  embed after (items with events): {m['n_embedded']:,} texts of {n_used:,} "
                  f"items with events, catalogue {n_items:,}, in {t:.1f} s on the CPU")
            if n_used == n_items:
                print("  embed before (every catalogue item): the same items here (every item of "
                      "this shop has events), so the same cost; not run again")
            else:
                with store.write() as con:
                    con.execute("DELETE FROM item_embeddings")
                    m, t = _timed(embed_items, con, device="cpu", scope="all")
                print(f"  embed before (every catalogue item): {m['n_embedded']:,} texts in {t:.1f} s")
        with store.read() as con:
            everything = baskets_from_store(con)
            groups = None
            if con.execute("SELECT count(user_id) FROM events").fetchone()[0]:
                groups = con.execute(
                    "SELECT DISTINCT b.basket_id, b.item_id, hash(e.user_id) % 8 AS g "
                    "FROM events e JOIN (SELECT DISTINCT basket_id, item_id FROM events) b "
                    "ON b.basket_id = e.basket_id AND b.item_id = e.item_id "
                    "WHERE e.user_id IS NOT NULL AND e.event_type = 'purchase' "
                    "AND (e.quantity IS NULL OR e.quantity > 0)").df()
        tot = [0, 0.0, 0, 0.0]
        res = rules_line("whole shop", everything)
        tot = [a + b for a, b in zip(tot, res)]
        if groups is not None:
            for g in range(8):
                part = groups[groups["g"] == g][["basket_id", "item_id"]]
                res = rules_line(f"shopper group {g}", part)
                tot = [a + b for a, b in zip(tot, res)]
        print(f"  rules total: before {tot[0]:,} rules in {tot[1]:.1f} s, after {tot[2]:,} rules "
              f"in {tot[3]:.1f} s (band per scope: {TARGET}-{3 * TARGET})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="*", default=["online-retail", "groceries"])
    p.add_argument("--skip-embed", action="store_true")
    a = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    mine_rules([["a", "b"], ["a", "b", "c"]], min_support=0.5)  # compile the miner before timing
    sets = {"online-retail": ("Online Retail", DATA / "online_retail" / "online_retail.csv.gz",
                              "online-retail"),
            "groceries": ("Groceries", DATA / "groceries" / "groceries.csv", "baskets")}
    for k in a.datasets:
        bench(*sets[k], a.skip_embed)


if __name__ == "__main__":
    main()
