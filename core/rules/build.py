"""Rules from the store: purchase baskets, automatic thresholds, the build stage.

Baskets
-------
A basket is the set of items bought together: the events with ``event_type = 'purchase'`` (and a
positive or missing quantity; returns and cancellations are excluded) grouped by ``basket_id``
(invoice / order / line of a basket file), falling back to ``session_id``, and then to the
shopper and the day of the purchase when neither is recorded. An item counts once per basket.

Automatic thresholds (when the build is not given them)
--------------------------------------------------------
* ``min_confidence`` defaults to ``DEFAULT_MIN_CONFIDENCE`` (0.3): a rule must be right at least
  3 times in 10 for a marketer to act on it.
* ``min_support`` is chosen per scope (the whole shop, then each segment on its own baskets):
  the largest value of the ladder 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, ... that yields at
  least ``target_rules`` rules (default 300) under the other thresholds, never below
  ``MIN_BASKETS`` (5) baskets — rules seen in fewer baskets are noise.
* The count is bounded: a ladder step can jump from a hundred rules to a million (a ratings
  shop did: 1,034,935 rules for one segment). When a step gives more than ``max_rules``
  (default ``RULES_CAP_FACTOR`` x target = 900) rules, or more than ``itemset_budget`` frequent
  itemsets (mining stops there, so an explosive step costs little), the support is bisected
  (on whole basket counts) between that step and the previous one until the count lands in
  [target, max_rules]. If no support does (counts jump over the band), the smallest count over
  the band is used and cut to the ``max_rules`` rules of highest lift: a hard cap per scope.
* ``min_len`` defaults to 2 in the build (no ``{} => {item}`` rules, which only restate an
  item's popularity), ``max_len`` to 10 (arules' default).

Segment rules
-------------
For each segment of the run (segment_id >= 0; -1 = unassigned is skipped), rules are mined on the
baskets of the segment's shoppers, and ``segment_ratio`` = confidence in the segment / confidence
of the same rule over all baskets. The overall confidence is counted exactly on all baskets for
every segment rule, also when that rule did not pass the thresholds overall. Readers rank a
segment's rules by ``segment_ratio`` (then lift): see ``read_rules``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.progress import NULL, Progress
from core.rules.mining import (
    Baskets,
    TooManyItemsets,
    _bitsets,
    min_count_for,
    mine_rules,
    sort_rules,
    to_baskets,
)

DEFAULT_MIN_CONFIDENCE = 0.3
DEFAULT_TARGET_RULES = 300
RULES_CAP_FACTOR = 3          # max_rules = 3 x target unless given
ITEMSET_BUDGET_FACTOR = 200   # frequent itemsets mined at most per target rule, while searching
MIN_BASKETS = 5
SUPPORT_LADDER = (0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001,
                  0.00005, 0.00002, 0.00001)

_BASKET_KEY = ("coalesce(e.basket_id, e.session_id, "
               "e.user_id || '@' || CAST(CAST(e.ts AS DATE) AS VARCHAR))")
# the purchase events that make baskets (returns and cancellations excluded)
_BASKET_WHERE = ("e.event_type = 'purchase'", "(e.quantity IS NULL OR e.quantity > 0)",
                 f"{_BASKET_KEY} IS NOT NULL")


class NoBuildError(LookupError):
    pass


def _latest_build_id(con) -> int:
    from core.store import latest_run

    run = latest_run(con, "build")
    if run is None:
        raise NoBuildError("No complete build in the store yet, so there are no segments: run "
                           "`segstudio build` first.")
    return int(run["run_id"])


def baskets_from_store(con, segment_id: int | None = None,
                       run_id: int | None = None) -> pd.DataFrame:
    """Purchase baskets as a DataFrame (basket_id, item_id), one row per distinct item in a
    basket. With ``segment_id``: only the baskets of that segment's shoppers in ``run_id``
    (default: the latest complete build)."""
    where = list(_BASKET_WHERE)
    args: list[Any] = []
    if segment_id is not None:
        if run_id is None:
            run_id = _latest_build_id(con)
        where.append("e.user_id IN (SELECT user_id FROM segments WHERE run_id = ? AND "
                     "segment_id = ?)")
        args += [int(run_id), int(segment_id)]
    sql = (f"SELECT DISTINCT {_BASKET_KEY} AS basket_id, e.item_id FROM events e "
           f"WHERE {' AND '.join(where)} ORDER BY 1, 2")
    return con.execute(sql, args).df()


def baskets_by_segment(con, run_id: int):
    """(the whole shop's baskets, ``segment(s)`` giving segment s's) as ``baskets_from_store``
    gives them (``con``) and with ``segment_id=s, run_id=run_id``, from one read of the events
    (each segment's query read its shoppers' events again: at a million shoppers, the baskets
    twice over). Basket ids come as integer codes in the same order (the rules read only
    which items share a basket), so a million shoppers' baskets are not held as text."""
    df = con.execute(
        f"SELECT DISTINCT {_BASKET_KEY} AS basket_id, e.item_id, s.segment_id FROM events e "
        "LEFT JOIN segments s ON s.run_id = ? AND s.user_id = e.user_id AND s.segment_id >= 0 "
        f"WHERE {' AND '.join(_BASKET_WHERE)} ORDER BY 1, 2, 3", [int(run_id)]).df()
    df["basket_id"] = pd.factorize(df["basket_id"].array)[0]
    seg = df.pop("segment_id").to_numpy(dtype=float, na_value=np.nan)   # NaN: no segment
    everything = df[~df.duplicated(["basket_id", "item_id"])].reset_index(drop=True)

    def segment(sid: int) -> pd.DataFrame:
        return df[seg == sid].reset_index(drop=True)

    return everything, segment


# --------------------------------------------------------------------------- thresholds
def auto_rules(baskets, *, min_confidence: float, min_lift: float | None = None,
               min_len: int = 2, max_len: int = 10, target_rules: int = DEFAULT_TARGET_RULES,
               max_rules: int | None = None, max_itemsets: int = 2_000_000,
               itemset_budget: int | None = None) -> tuple[pd.DataFrame, float]:
    """Rules at the largest support giving ``target_rules`` to ``max_rules`` rules, never more
    than ``max_rules`` (see module doc). Returns (rules, chosen min_support)."""
    b = to_baskets(baskets)
    n = b.n_baskets
    cap = int(max_rules) if max_rules is not None else RULES_CAP_FACTOR * int(target_rules)
    if cap < target_rules:
        raise ValueError(f"max_rules ({cap:,}) must be at least target_rules ({target_rules:,}).")
    budget = min(max_itemsets, itemset_budget or max(50_000, ITEMSET_BUDGET_FACTOR * target_rules))
    if n == 0:
        return mine_rules(b, min_support=1.0, min_confidence=min_confidence), 1.0

    def at(count: int) -> pd.DataFrame | None:  # None: more than the itemset budget
        try:
            return mine_rules(b, min_support=count / n, min_confidence=min_confidence,
                              min_lift=min_lift, min_len=min_len, max_len=max_len,
                              max_itemsets=budget)
        except TooManyItemsets:
            return None

    floor = min_count_for(min(1.0, MIN_BASKETS / n), n)
    counts = sorted({max(floor, min_count_for(s, n)) for s in SUPPORT_LADDER} | {floor}, reverse=True)
    few: tuple[int, pd.DataFrame] | None = None      # largest count seen: fewer than target
    for c in counts:
        rules = at(c)
        if rules is not None and len(rules) < target_rules:
            few = (c, rules)
            continue
        if rules is not None and len(rules) <= cap:
            return rules, c / n
        # too many rules (or itemsets) at c, too few at the previous count: bisect between
        lo, many = c, rules
        hi = few[0] if few else n + 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = at(mid)
            if r is None or len(r) > cap:
                lo, many = mid, r
            elif len(r) < target_rules:
                hi, few = mid, (mid, r)
            else:
                return r, mid / n
        # the count jumps over the band between lo and lo + 1
        if many is not None:  # hard cap: the max_rules rules of highest lift
            return sort_rules(many).head(cap).reset_index(drop=True), lo / n
        if few is not None:   # one more basket of support explodes: keep the fewer rules
            return few[1], few[0] / n
        for short in sorted({min(max_len, 3), 2}, reverse=True):  # every support explodes:
            try:                                                  # shorter rules, as before
                r = mine_rules(b, min_support=lo / n, min_confidence=min_confidence,
                               min_lift=min_lift, min_len=min_len, max_len=short,
                               max_itemsets=budget)
            except TooManyItemsets:
                continue
            return sort_rules(r).head(cap).reset_index(drop=True), lo / n
        raise TooManyItemsets(f"Even rules of two items seen in {lo:,} of {n:,} baskets give more "
                              f"than {budget:,} frequent itemsets: set min_support yourself.")
    return few[1], few[0] / n


# --------------------------------------------------------------------------- exact counts
def count_itemsets(baskets: Baskets, itemsets: list[tuple]) -> np.ndarray:
    """Number of baskets holding every item of each itemset (labels), counted exactly with
    bitsets of the items involved. An empty itemset is held by every basket; an unknown label
    by none."""
    out = np.zeros(len(itemsets), dtype=np.int64)
    if not itemsets:
        return out
    index = pd.Index(baskets.labels)
    involved = sorted({x for s in itemsets for x in s}, key=str)
    pos = index.get_indexer(pd.Index(involved, dtype=object)) if involved else np.zeros(0, int)
    sel = np.isin(baskets.item_idx, pos[pos >= 0])
    remap = np.full(baskets.n_items, -1, dtype=np.int64)
    remap[pos[pos >= 0]] = np.arange(int((pos >= 0).sum()))
    # Local codes: rank among the involved labels present in the baskets, in `involved` order.
    local = {lab: i for i, lab in enumerate(l for l, p in zip(involved, pos) if p >= 0)}
    bits = _bitsets(remap[baskets.item_idx[sel]], baskets.basket_idx[sel],
                    max(1, len(local)), baskets.n_baskets)
    lengths = np.array([len(s) for s in itemsets])
    for k in np.unique(lengths):
        rows = np.flatnonzero(lengths == k)
        if k == 0:
            out[rows] = baskets.n_baskets
            continue
        codes = np.array([[local.get(x, -1) for x in itemsets[r]] for r in rows], dtype=np.int64)
        ok = (codes >= 0).all(axis=1)
        rows, codes = rows[ok], codes[ok]
        step = max(1, (1 << 20) // (8 * bits.shape[1]))  # ~1 MB of bitsets at a time
        for s in range(0, len(rows), step):
            acc = bits[codes[s:s + step, 0]]
            for j in range(1, k):
                acc &= bits[codes[s:s + step, j]]
            out[rows[s:s + step]] = np.bitwise_count(acc).sum(axis=1, dtype=np.int64)
    return out


def segment_ratios(all_baskets: Baskets, rules: pd.DataFrame) -> np.ndarray:
    """confidence of each rule (in ``rules``) / its confidence over ``all_baskets``."""
    if rules.empty:
        return np.zeros(0)
    whole = [tuple(a) + tuple(c) for a, c in zip(rules["antecedent"], rules["consequent"])]
    ante = [tuple(a) for a in rules["antecedent"]]
    counts = count_itemsets(all_baskets, whole + ante)
    c_rule, c_ante = counts[:len(whole)], counts[len(whole):]
    with np.errstate(divide="ignore", invalid="ignore"):
        conf_all = c_rule / c_ante
        return rules["confidence"].to_numpy() / conf_all


# --------------------------------------------------------------------------- build stage
def _insert(con, run_id: int, segment_id: int | None, rules: pd.DataFrame,
            ratio: np.ndarray | None) -> None:
    if rules.empty:
        return
    import pyarrow as pa

    n = len(rules)
    table = pa.table({
        "run_id": pa.array(np.full(n, run_id, dtype=np.int32)),
        "segment_id": pa.array([segment_id] * n, type=pa.int32()),
        "antecedent": pa.array([[str(x) for x in a] for a in rules["antecedent"]],
                               type=pa.list_(pa.string())),
        "consequent": pa.array([[str(x) for x in c] for c in rules["consequent"]],
                               type=pa.list_(pa.string())),
        **{c: pa.array(rules[c].to_numpy(dtype=np.float64)) for c in
           ("support", "confidence", "lift", "leverage", "conviction")},
        "count": pa.array(rules["count"].to_numpy(dtype=np.int64)),
        "segment_ratio": (pa.nulls(n, type=pa.float64()) if ratio is None
                          else pa.array(np.asarray(ratio, dtype=np.float64))),
    })
    con.register("_rules_new", table)
    try:
        con.execute("INSERT INTO rules SELECT run_id, segment_id, antecedent, consequent, support, "
                    "confidence, lift, leverage, conviction, count, segment_ratio FROM _rules_new")
    finally:
        con.unregister("_rules_new")


def build_rules(con, run_id: int, *, min_support: float | None = None,
                min_confidence: float | None = None, min_lift: float | None = None,
                min_len: int = 2, max_len: int = 10, target_rules: int = DEFAULT_TARGET_RULES,
                max_rules: int | None = None, max_itemsets: int = 1_000_000,
                segments: bool = True, progress: Progress = NULL) -> dict:
    """Write the ``rules`` table for ``run_id``: the whole shop (segment_id NULL) and each
    segment of the run (segment_ratio set). Thresholds left as None are chosen automatically
    (module doc): then each scope gets at most ``max_rules`` rules (default 3 x target).
    Explicit thresholds that would give more than ``max_itemsets`` frequent itemsets in a scope
    are refused (``TooManyItemsets``, saying to raise min_support) instead of mined for minutes.
    Returns metrics: n_baskets, n_rules, the thresholds used, target_rules, max_rules, seconds,
    and per segment n_baskets / min_support / n_rules."""
    import time

    t0 = time.perf_counter()
    cap = int(max_rules) if max_rules is not None else RULES_CAP_FACTOR * int(target_rules)
    min_conf = DEFAULT_MIN_CONFIDENCE if min_confidence is None else float(min_confidence)
    con.execute("DELETE FROM rules WHERE run_id = ?", [run_id])
    seg_ids = []
    if segments:
        seg_ids = [int(r[0]) for r in con.execute(
            "SELECT DISTINCT segment_id FROM segments WHERE run_id = ? AND segment_id >= 0 "
            "ORDER BY 1", [run_id]).fetchall()]
    metrics: dict[str, Any] = {"min_confidence": min_conf, "min_lift": min_lift,
                               "min_len": min_len, "max_len": max_len,
                               "auto_support": min_support is None, "target_rules": target_rules,
                               "max_rules": cap if min_support is None else None, "segments": {}}
    with progress.stage("Association rules", total=1 + len(seg_ids)) as bar:
        frame, segment = (baskets_by_segment(con, run_id) if seg_ids
                          else (baskets_from_store(con), None))
        everything = to_baskets(frame)
        del frame
        metrics["n_baskets"] = everything.n_baskets
        rules, supp = _mine(everything, min_support, min_conf, min_lift, min_len, max_len,
                            target_rules, cap, max_itemsets)
        _insert(con, run_id, None, rules, None)
        metrics.update(min_support=supp, n_rules=len(rules))
        bar.advance(1)
        n_seg_rules = 0
        for sid in seg_ids:
            seg = to_baskets(segment(sid))
            s_rules, s_supp = _mine(seg, min_support, min_conf, min_lift, min_len, max_len,
                                    target_rules, cap, max_itemsets)
            ratio = segment_ratios(everything, s_rules)
            if len(s_rules):
                s_rules = s_rules.assign(segment_ratio=ratio)
                s_rules = sort_rules(s_rules, by=("segment_ratio", "lift"))
                ratio = s_rules["segment_ratio"].to_numpy()
            _insert(con, run_id, sid, s_rules, ratio)
            n_seg_rules += len(s_rules)
            metrics["segments"][sid] = {"n_baskets": seg.n_baskets, "min_support": s_supp,
                                        "n_rules": len(s_rules)}
            bar.advance(1)
    metrics["n_segment_rules"] = n_seg_rules
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    return metrics


def _mine(b: Baskets, min_support, min_conf, min_lift, min_len, max_len, target, cap=None,
          max_itemsets: int = 1_000_000):
    if b.n_baskets == 0:
        return mine_rules(b, min_support=1.0, min_confidence=min_conf), None
    if min_support is None:
        return auto_rules(b, min_confidence=min_conf, min_lift=min_lift, min_len=min_len,
                          max_len=max_len, target_rules=target, max_rules=cap,
                          max_itemsets=max_itemsets)
    return mine_rules(b, min_support=float(min_support), min_confidence=min_conf,
                      min_lift=min_lift, min_len=min_len, max_len=max_len,
                      max_itemsets=max_itemsets), float(min_support)


# --------------------------------------------------------------------------- reading
def item_titles(con, item_ids) -> dict[str, str]:
    """title per item_id (the item id itself where the items table has no title)."""
    ids = sorted({str(x) for x in item_ids})
    if not ids:
        return {}
    rows = con.execute(
        "SELECT item_id, max(title) FROM items WHERE item_id IN (SELECT unnest(?)) GROUP BY 1",
        [ids]).fetchall()
    titles = {i: t for i, t in rows if t is not None and str(t).strip()}
    return {i: titles.get(i, i) for i in ids}


def with_titles(con, rules: pd.DataFrame) -> pd.DataFrame:
    """Add antecedent_titles (tuple) and consequent_title (str) columns from ``items``."""
    ids = {x for a in rules["antecedent"] for x in a} | {c[0] for c in rules["consequent"]}
    t = item_titles(con, ids)
    out = rules.copy()
    out["antecedent_titles"] = pd.Series([tuple(t[str(x)] for x in a) for a in rules["antecedent"]],
                                         index=rules.index, dtype=object)
    out["consequent_title"] = pd.Series([t[str(c[0])] for c in rules["consequent"]],
                                        index=rules.index, dtype=object)
    return out


def read_rules(con, run_id: int, segment_id: int | None = None,
               limit: int | None = None) -> pd.DataFrame:
    """A run's stored rules with item titles: the whole shop by lift, or a segment by
    segment_ratio then lift (both descending)."""
    order = "lift DESC, confidence DESC" if segment_id is None else \
        "segment_ratio DESC, lift DESC, confidence DESC"
    seg = "segment_id IS NULL" if segment_id is None else "segment_id = ?"
    args: list[Any] = [run_id] + ([] if segment_id is None else [int(segment_id)])
    sql = (f"SELECT antecedent, consequent, support, confidence, lift, leverage, conviction, "
           f"count, segment_ratio FROM rules WHERE run_id = ? AND {seg} ORDER BY {order}, "
           f"support DESC, antecedent, consequent")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    df = con.execute(sql, args).df()
    df["antecedent"] = [tuple(a) for a in df["antecedent"]]
    df["consequent"] = [tuple(c) for c in df["consequent"]]
    return with_titles(con, df)


__all__ = ["DEFAULT_MIN_CONFIDENCE", "DEFAULT_TARGET_RULES", "MIN_BASKETS", "NoBuildError",
           "RULES_CAP_FACTOR",
           "auto_rules", "baskets_by_segment", "baskets_from_store", "build_rules",
           "count_itemsets", "item_titles", "min_count_for", "read_rules", "segment_ratios", "with_titles"]
