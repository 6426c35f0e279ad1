"""Benchmark: core.rules.mine_rules against mlxtend (fpgrowth + association_rules), same baskets.

Datasets (read in place from ../shared/data):
  * Groceries, support 0.001 / confidence 0.5            (arules reference: 5,668 rules)
  * Groceries, support 0.006 / confidence 0.25 / min_len 2 (reference: 463 rules)
  * Online Retail invoices (InvoiceNo = basket, StockCode = item; cancelled invoices 'C...' and
    rows with Quantity <= 0 excluded), at a support that yields thousands of rules.

What is timed (the same way for both; the two sides alternate, best of --repeat runs each; wall
and CPU (process) seconds both printed, as the machine may be shared):
  * ours:    mine_rules(pairs DataFrame (basket_id, item_id)) -> rules DataFrame. Includes our
             own encoding of the baskets (factorising labels, bitsets).
  * mlxtend: fpgrowth(one-hot DataFrame) + association_rules(...) + keeping single-item
             consequents (and min_len). EXCLUDES building mlxtend's one-hot DataFrame
             (TransactionEncoder), which is printed separately — this favours mlxtend.
  Reading the files is excluded for both.

mlxtend builds rules with every consequent size and then we keep the single-item ones (there is
no option to restrict it); that is how one gets arules-style rules out of mlxtend.

The rule sets are compared rule for rule (antecedent set, consequent) and metric for metric
(support, confidence, lift, leverage, conviction within 1e-9).

    python bench/bench_rules.py
    python bench/bench_rules.py --retail-support 0.01 --retail-confidence 0.5 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.rules import mine_rules  # noqa: E402

SHARED = Path(os.environ.get("SEGSTUDIO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def groceries_pairs() -> pd.DataFrame:
    rows = []
    with open(SHARED / "groceries" / "groceries.csv") as f:
        for i, line in enumerate(f):
            for item in line.rstrip("\n").split(","):
                if item.strip():
                    rows.append((i, item.strip()))
    return pd.DataFrame(rows, columns=["basket_id", "item_id"]).drop_duplicates()


def retail_pairs() -> pd.DataFrame:
    df = pd.read_parquet(SHARED / "online_retail" / "online_retail.parquet",
                         columns=["InvoiceNo", "StockCode", "Quantity"])
    df = df[~df["InvoiceNo"].astype(str).str.startswith("C") & (df["Quantity"] > 0)]
    return (df.rename(columns={"InvoiceNo": "basket_id", "StockCode": "item_id"})
              [["basket_id", "item_id"]].astype(str).drop_duplicates().reset_index(drop=True))


def one_hot(pairs: pd.DataFrame) -> pd.DataFrame:
    b, _ = pd.factorize(pairs["basket_id"])
    i, labels = pd.factorize(pairs["item_id"])
    m = np.zeros((b.max() + 1, len(labels)), dtype=bool)
    m[b, i] = True
    return pd.DataFrame(m, columns=list(labels))


def mlxtend_rules(onehot: pd.DataFrame, min_support, min_confidence, min_len, max_len):
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    fi = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=max_len)
    r = association_rules(fi, num_itemsets=len(onehot), metric="confidence",
                          min_threshold=min_confidence)
    size_c = r["consequents"].map(len)
    size_a = r["antecedents"].map(len)
    return r[(size_c == 1) & (size_a + 1 >= min_len)].reset_index(drop=True)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def interleaved(fn_a, fn_b, repeat):
    """Best (minimum) wall and CPU seconds of each side, the two sides run alternately so that
    load from other processes on the machine hits both alike."""
    best = {"a": [float("inf"), float("inf"), None], "b": [float("inf"), float("inf"), None]}
    for _ in range(repeat):
        for key, fn in (("a", fn_a), ("b", fn_b)):
            w, c, out = timed(fn)
            best[key] = [min(best[key][0], w), min(best[key][1], c), out]
    return best["a"], best["b"]


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[bool, str]:
    a = {(frozenset(x), y[0]): row for x, y, row in
         zip(ours["antecedent"], ours["consequent"], ours.itertuples(index=False))}
    b = {(frozenset(x), next(iter(y))): row for x, y, row in
         zip(theirs["antecedents"], theirs["consequents"], theirs.itertuples(index=False))}
    if a.keys() != b.keys():
        return False, (f"rule sets differ: {len(a.keys() - b.keys())} only ours, "
                       f"{len(b.keys() - a.keys())} only mlxtend")
    worst = 0.0
    for k, ra in a.items():
        rb = b[k]
        for ours_v, theirs_v in ((ra.support, rb.support), (ra.confidence, rb.confidence),
                                 (ra.lift, rb.lift), (ra.leverage, rb.leverage)):
            worst = max(worst, abs(ours_v - theirs_v))
        if np.isfinite(ra.conviction) or np.isfinite(rb.conviction):
            worst = max(worst, abs(ra.conviction - rb.conviction) / max(1.0, abs(rb.conviction)))
    return worst < 1e-9, f"max metric difference {worst:.1e}"


def run_case(name, pairs, *, min_support, min_confidence, min_len, max_len, repeat):
    n_baskets = pairs["basket_id"].nunique()
    t = time.perf_counter()
    onehot = one_hot(pairs)
    t_onehot = time.perf_counter() - t
    mine_rules(pairs.head(1000), min_support=0.5)  # warm-up: imports, first-call overheads
    (w_ours, c_ours, ours), (w_ml, c_ml, theirs) = interleaved(
        lambda: mine_rules(pairs, min_support=min_support, min_confidence=min_confidence,
                           min_len=min_len, max_len=max_len),
        lambda: mlxtend_rules(onehot, min_support, min_confidence, min_len, max_len), repeat)
    same, detail = compare(ours, theirs)
    lens = (ours["antecedent"].map(len) + 1).value_counts().sort_index().to_dict()
    print(f"\n=== {name}: {n_baskets:,} baskets, {pairs['item_id'].nunique():,} items, "
          f"support {min_support}, confidence {min_confidence}, min_len {min_len}")
    print(f"  rules: ours {len(ours):,}  mlxtend {len(theirs):,}  by rule length {lens}")
    print(f"  {'':<40} {'wall s':>8} {'CPU s':>8}")
    print(f"  {'ours (mine_rules)':<40} {w_ours:8.3f} {c_ours:8.3f}")
    print(f"  {'mlxtend (fpgrowth + association_rules)':<40} {w_ml:8.3f} {c_ml:8.3f}"
          f"   (+ one-hot encoding {t_onehot:.3f} s wall, not counted)")
    ratio, cpu_ratio = w_ml / w_ours, c_ml / c_ours
    print(f"  speed-up {ratio:6.1f}x wall, {cpu_ratio:.1f}x CPU   "
          f"(target >= 5x: {'met' if min(ratio, cpu_ratio) >= 5 else 'MISSED'})")
    print(f"  identical rule sets: {'YES' if same else 'NO'} ({detail})")
    return {"name": name, "rules": len(ours), "ours_s": w_ours, "mlxtend_s": w_ml,
            "ratio": ratio, "cpu_ratio": cpu_ratio, "identical": same}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="best of N runs per side (default 3)")
    p.add_argument("--retail-support", type=float, default=0.006)
    p.add_argument("--retail-confidence", type=float, default=0.5)
    p.add_argument("--skip-retail", action="store_true")
    args = p.parse_args(argv)

    results = []
    g = groceries_pairs()
    results.append(run_case("Groceries", g, min_support=0.001, min_confidence=0.5, min_len=1,
                            max_len=10, repeat=args.repeat))
    results.append(run_case("Groceries", g, min_support=0.006, min_confidence=0.25, min_len=2,
                            max_len=10, repeat=args.repeat))
    if not args.skip_retail:
        results.append(run_case("Online Retail invoices", retail_pairs(),
                                min_support=args.retail_support,
                                min_confidence=args.retail_confidence, min_len=2, max_len=10,
                                repeat=args.repeat))
    print("\nsummary:")
    for r in results:
        print(f"  {r['name']:<24} {r['rules']:>7,} rules  ours {r['ours_s']:.3f} s  mlxtend "
              f"{r['mlxtend_s']:.3f} s  {r['ratio']:.1f}x wall ({r['cpu_ratio']:.1f}x CPU)  "
              f"identical={r['identical']}")
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
