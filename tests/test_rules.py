"""Association rules: exact agreement with arules on Groceries, the build stage, the CLI."""

from __future__ import annotations

import json
import math
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.rules import (
    auto_rules,
    baskets_from_store,
    build_rules,
    count_itemsets,
    mine_rules,
    read_rules,
    to_baskets,
)


# --------------------------------------------------------------------------- Groceries vs arules
def load_groceries(path) -> list[list[str]]:
    """One basket per line, comma-separated labels, trimmed (two raw labels end in a space)."""
    with open(path) as f:
        return [[x.strip() for x in line.rstrip("\n").split(",") if x.strip()] for line in f]


def _itemset(text: str) -> tuple:
    inner = text.strip()[1:-1]
    return tuple(sorted(x.strip() for x in inner.split(","))) if inner else ()


@pytest.fixture(scope="module")
def groceries(shared_data):
    baskets = load_groceries(shared_data / "groceries" / "groceries.csv")
    assert len(baskets) == 9835
    return baskets


def _compare_with_reference(ours: pd.DataFrame, ref: pd.DataFrame, n: int) -> None:
    ref = ref.assign(antecedent=ref["lhs"].map(_itemset), consequent=ref["rhs"].map(_itemset))
    assert ours["antecedent"].map(lambda a: list(a) == sorted(a)).all()
    assert ours["consequent"].map(len).eq(1).all()
    m = ours.merge(ref, on=["antecedent", "consequent"], how="outer", suffixes=("", "_ref"),
                   indicator=True)
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"].head()
    for c in ("support", "confidence", "lift"):
        np.testing.assert_allclose(m[c], m[f"{c}_ref"], rtol=0, atol=1e-6, err_msg=c)
    assert (m["count"] == m["count_ref"]).all()
    # leverage and conviction from their definitions, with supports from the reference
    supp_c = m["confidence_ref"] / m["lift_ref"]
    supp_a = m["support_ref"] / m["confidence_ref"]
    np.testing.assert_allclose(m["leverage"], m["support_ref"] - supp_a * supp_c, atol=1e-9)
    conf1 = m["count"] == (supp_a * n).round()
    assert np.isinf(m.loc[conf1, "conviction"]).all()
    np.testing.assert_allclose(m.loc[~conf1, "conviction"],
                               (1 - supp_c[~conf1]) / (1 - m.loc[~conf1, "confidence_ref"]),
                               rtol=1e-9)
    # sorted by lift, like the reference
    assert ours["lift"].is_monotonic_decreasing


@pytest.mark.slow
def test_groceries_support_0_001_confidence_0_5_equals_arules(groceries, shared_data):
    ref = pd.read_csv(shared_data / "groceries/reference_rules/rules_supp0.001_conf0.5.csv")
    ours = mine_rules(groceries, min_support=0.001, min_confidence=0.5)
    assert len(ours) == len(ref) == 5668
    _compare_with_reference(ours, ref, len(groceries))
    top = ours.iloc[0]
    assert top["antecedent"] == ("Instant food products", "soda")
    assert top["consequent"] == ("hamburger meat",)
    assert top["lift"] == pytest.approx(18.99565, abs=1e-5)


@pytest.mark.slow
def test_groceries_support_0_006_confidence_0_25_minlen_2_equals_arules(groceries, shared_data):
    ref = pd.read_csv(shared_data / "groceries/reference_rules/rules_supp0.006_conf0.25.csv")
    ours = mine_rules(groceries, min_support=0.006, min_confidence=0.25, min_len=2)
    assert len(ours) == 463
    lengths = (ours["antecedent"].map(len) + 1).value_counts().to_dict()
    assert lengths == {2: 150, 3: 297, 4: 16}
    _compare_with_reference(ours, ref, len(groceries))
    assert ours.iloc[0]["antecedent"] == ("herbs",)
    assert ours.iloc[0]["lift"] == pytest.approx(3.956477, abs=1e-6)


@pytest.mark.slow
def test_groceries_lengths_and_dataframe_input_agree(groceries):
    # max_len counts the whole rule; a (basket_id, item_id) frame gives the same rules.
    short = mine_rules(groceries, min_support=0.001, min_confidence=0.5, max_len=3)
    full = mine_rules(groceries, min_support=0.001, min_confidence=0.5)
    assert len(short) == 11 + 1461
    assert (short["antecedent"].map(len) <= 2).all()
    pairs = pd.DataFrame([(i, x) for i, b in enumerate(groceries) for x in b],
                         columns=["basket_id", "item_id"])
    again = mine_rules(pairs, min_support=0.001, min_confidence=0.5)
    pd.testing.assert_frame_equal(again, full)


@pytest.mark.slow
def test_groceries_through_the_store_and_the_cli(shared_data, tmp_path, capsys, monkeypatch):
    # The same figures end to end: ingest (baskets format) -> baskets_from_store -> rules.
    from core.ingest import ingest_file
    from core.store import Store

    store = Store(tmp_path / "groceries.duckdb")
    ingest_file(store, shared_data / "groceries" / "groceries.csv", "baskets")
    with store.read() as con:
        pairs = baskets_from_store(con)
    assert pairs["basket_id"].nunique() == 9835
    ref = pd.read_csv(shared_data / "groceries/reference_rules/rules_supp0.001_conf0.5.csv")
    _compare_with_reference(mine_rules(pairs, min_support=0.001, min_confidence=0.5), ref, 9835)
    monkeypatch.setattr("core.cli.COMMANDS", ["rules"])
    out = tmp_path / "rules.csv"
    assert main(["rules", "--db", str(store.path), "--min-support", "0.006", "--min-confidence",
                 "0.25", "--min-len", "2", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rules"] == 463 and summary["by_length"] == {"2": 150, "3": 297, "4": 16}
    top = pd.read_csv(out).iloc[0]
    assert (top["antecedent_titles"], top["consequent_title"]) == ("herbs", "root vegetables")


# --------------------------------------------------------------------------- small exact cases
BASKETS = [["milk", "bread"], ["milk", "bread", "eggs"], ["milk", "bread"], ["milk", "eggs"],
           ["milk", "eggs"], ["bread", "eggs"], ["milk", "eggs"], ["milk", "bread", "milk"]]


def test_measures_by_hand_and_empty_antecedent():
    r = mine_rules(BASKETS, min_support=0.25, min_confidence=0.0)
    by = {(a, c): row for a, c, row in zip(r["antecedent"], r["consequent"], r.itertuples())}
    # milk in 7 of 8 baskets, bread 5, eggs 5, milk & bread 4 (the duplicate milk counts once)
    x = by[(("milk",), ("bread",))]
    assert x.count == 4 and x.support == 0.5 and x.confidence == pytest.approx(4 / 7)
    assert x.lift == pytest.approx((4 / 7) / (5 / 8))
    assert x.leverage == pytest.approx(0.5 - (7 / 8) * (5 / 8))
    assert x.conviction == pytest.approx((1 - 5 / 8) / (1 - 4 / 7))
    # min_len=1 (arules default) gives {} => {item} with confidence = support, lift 1
    e = by[((), ("milk",))]
    assert e.confidence == pytest.approx(7 / 8) and e.lift == pytest.approx(1.0)
    assert (r["lift"].diff().dropna() <= 1e-12).all()
    r2 = mine_rules(BASKETS, min_support=0.25, min_confidence=0.0, min_len=2)
    assert (r2["antecedent"].map(len) >= 1).all()
    assert len(r2) == len(r) - 3


def test_thresholds_confidence_one_and_min_lift():
    baskets = [["a", "b"]] * 3 + [["a"]] * 1 + [["c"]] * 4
    r = mine_rules(baskets, min_support=0.3, min_confidence=0.9, min_len=2)
    assert list(zip(r["antecedent"], r["consequent"])) == [(("b",), ("a",))]
    assert math.isinf(r["conviction"].iloc[0]) and r["count"].iloc[0] == 3
    assert r["lift"].iloc[0] == pytest.approx(1 / 0.5)
    # support 3/8 = 0.375: a threshold of exactly 0.375 keeps it, one just above drops it
    assert len(mine_rules(baskets, min_support=0.375, min_confidence=0.9)) == 1
    assert len(mine_rules(baskets, min_support=0.376, min_confidence=0.9)) == 0
    assert len(mine_rules(baskets, min_support=0.3, min_confidence=0.0, min_lift=2.0)) == 2
    empty = mine_rules(baskets, min_support=0.9, min_confidence=0.5)
    assert list(empty.columns) == ["antecedent", "consequent", "support", "confidence", "lift",
                                   "leverage", "conviction", "count"] and empty.empty
    with pytest.raises(ValueError, match="min_support"):
        mine_rules(baskets, min_support=0, min_confidence=0.5)


def test_against_brute_force_on_random_baskets():
    rng = np.random.default_rng(3)
    baskets = [list(rng.choice(12, size=rng.integers(1, 7), replace=False)) for _ in range(300)]
    r = mine_rules(baskets, min_support=0.02, min_confidence=0.1, min_len=2, max_len=4)
    sets = [set(b) for b in baskets]
    from itertools import combinations

    expected = {}
    items = range(12)
    for k in range(2, 5):
        for s in combinations(items, k):
            cnt = sum(1 for b in sets if b.issuperset(s))
            if cnt < 0.02 * 300:
                continue
            for c in s:
                a = tuple(sorted(set(s) - {c}))
                ca = sum(1 for b in sets if b.issuperset(a))
                if cnt / ca >= 0.1:
                    expected[(a, (c,))] = cnt
    got = {(tuple(a), tuple(c)): n for a, c, n in zip(r["antecedent"], r["consequent"], r["count"])}
    assert got == expected
    b = to_baskets(baskets)
    probe = [tuple(a) + tuple(c) for a, c in list(got)[:50]]
    assert list(count_itemsets(b, probe)) == [got[k] for k in list(got)[:50]]


def test_too_many_itemsets_is_refused_with_a_fix():
    from core.rules import TooManyItemsets

    baskets = [list("abcdefgh")] * 5 + [["a"]]
    with pytest.raises(TooManyItemsets, match="raise min_support"):
        mine_rules(baskets, min_support=0.5, min_confidence=0.5, max_itemsets=100)
    assert len(mine_rules(baskets, min_support=0.5, min_confidence=0.5, max_len=2)) == 8 * 7 + 8  # + {} => {x}


def test_auto_support_reaches_the_target():
    rng = np.random.default_rng(0)
    baskets = [list(rng.choice(30, size=rng.integers(2, 8), replace=False, p=None))
               for _ in range(2000)]
    rules, s = auto_rules(baskets, min_confidence=0.1, target_rules=50)
    # within the band [target, 3 x target]: the ladder step 0.02 gives more than 150 rules, 0.05
    # fewer than 50, so the support is bisected between them (on whole basket counts)
    assert 50 <= len(rules) <= 150 and 0.02 < s < 0.05 and (s * 2000).is_integer()
    assert len(rules) == len(mine_rules(baskets, min_support=s, min_confidence=0.1, min_len=2))
    assert len(mine_rules(baskets, min_support=0.02, min_confidence=0.1, min_len=2)) > 150
    assert len(mine_rules(baskets, min_support=0.05, min_confidence=0.1, min_len=2)) < 50
    # a smaller band is honoured too
    r2, _ = auto_rules(baskets, min_confidence=0.1, target_rules=50, max_rules=60)
    assert 50 <= len(r2) <= 60
    with pytest.raises(ValueError, match="at least target_rules"):
        auto_rules(baskets, min_confidence=0.1, target_rules=50, max_rules=10)


def test_auto_rules_hard_cap_when_one_basket_more_explodes():
    """Ten copies of a 16-item basket: at 10 baskets of support every subset is frequent
    (65,535 itemsets, millions of rules); at 11 only the random pairs are. The count jumps over
    the band, so the result is capped, and the search stops mining at its itemset budget."""
    import time

    rng = np.random.default_rng(1)
    baskets = [list(range(100, 116))] * 10 + [
        list(rng.choice(30, size=rng.integers(2, 6), replace=False)) for _ in range(400)]
    t0 = time.perf_counter()
    rules, s = auto_rules(baskets, min_confidence=0.3, target_rules=50, itemset_budget=5_000)
    assert len(rules) <= 150 and time.perf_counter() - t0 < 60
    # the bound is the hard cap, or the fewer rules just above the explosion
    n_at = len(mine_rules(baskets, min_support=s, min_confidence=0.3, min_len=2, max_itemsets=5_000))
    assert n_at == len(rules) < 50 and round(s * len(baskets)) == 11


# --------------------------------------------------------------------------- the store
# Shoppers A1, A2 (segment 0) and B1, B2 (segment 1).
EVENTS = [  # basket, user, item, event_type, quantity
    ("b1", "A1", "milk", "purchase", 1), ("b1", "A1", "bread", "purchase", 1),
    ("b2", "A1", "milk", "purchase", 1), ("b2", "A1", "bread", "purchase", 2),
    ("b2", "A1", "eggs", "purchase", 1),
    ("b3", "A2", "milk", "purchase", 1), ("b3", "A2", "bread", "purchase", 1),
    ("b3", "A2", "jam", "view", None),
    ("b4", "A2", "milk", "purchase", 1), ("b4", "A2", "eggs", "purchase", 1),
    ("b5", "B1", "milk", "purchase", 1), ("b5", "B1", "eggs", "purchase", 1),
    ("b6", "B1", "bread", "purchase", 1), ("b6", "B1", "eggs", "purchase", 1),
    ("b7", "B2", "milk", "purchase", 1), ("b7", "B2", "eggs", "purchase", 1),
    ("b8", "B2", "milk", "purchase", 1), ("b8", "B2", "bread", "purchase", 1),
    ("b8", "B2", "milk", "purchase", 3), ("b8", "B2", "jam", "return", -1),
    ("c9", "B2", "jam", "purchase", -2),
]
TITLES = {"milk": "Whole milk", "bread": "=HYPERLINK(\"x\")", "eggs": "Eggs, free range",
          "jam": "Jam"}


@pytest.fixture()
def small_store(tmp_store):
    with tmp_store.write() as con:
        con.executemany("INSERT INTO items (item_id, title) VALUES (?, ?)",
                        [[k, v] for k, v in TITLES.items()])
        con.executemany(
            "INSERT INTO events (event_id, user_id, item_id, event_type, ts, quantity, basket_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[i, u, it, et, datetime(2024, 1, 1), q, b]
             for i, (b, u, it, et, q) in enumerate(EVENTS)])
    return tmp_store


def _add_build(store):
    with store.write() as con:
        con.execute("INSERT INTO runs VALUES (1, 'build', 'complete', now(), now(), '{}', 'x', '{}')")
        con.executemany("INSERT INTO segments VALUES (1, ?, ?, 0.0)",
                        [["A1", 0], ["A2", 0], ["B1", 1], ["B2", 1]])


def test_baskets_by_segment_reads_once_what_the_per_segment_reads_give(demo_store, tmp_path):
    """One read of the baskets with each shopper's segment gives, row for row and in the same
    order, the whole shop's baskets and every segment's, as reading each scope on its own."""
    import shutil

    from core.rules.build import baskets_by_segment
    from core.store import Store

    store = Store(tmp_path / "demo.duckdb")
    shutil.copyfile(demo_store.path, store.path)
    with store.write() as con:
        con.execute("INSERT INTO runs VALUES (1, 'build', 'complete', now(), now(), '{}', 'x', '{}')")
        # four segments, shoppers of a fifth group unassigned (-1)
        con.execute("INSERT INTO segments SELECT 1, user_id, CAST(hash(user_id) % 5 AS INTEGER) - 1, 0.0 FROM users")
        everything, segment = baskets_by_segment(con, 1)
        scopes = [(everything, baskets_from_store(con))] + [
            (segment(sid), baskets_from_store(con, segment_id=sid, run_id=1)) for sid in range(4)]
        for got, want in scopes:
            # the same rows in the same order; basket ids as integer codes of the same baskets
            assert got["item_id"].tolist() == want["item_id"].tolist()
            assert got["basket_id"].tolist() == pd.Series(want["basket_id"]).map(
                dict(zip(want["basket_id"], got["basket_id"]))).tolist()
            assert got["basket_id"].nunique() == want["basket_id"].nunique()
            a, b = to_baskets(got), to_baskets(want)
            assert (a.n_baskets, list(a.labels)) == (b.n_baskets, list(b.labels))
            assert (a.basket_idx == b.basket_idx).all() and (a.item_idx == b.item_idx).all()
        assert len(segment(-1)) == 0 and len(everything) > 1000
        assert sum(len(segment(s)) for s in range(4)) < len(everything)   # unassigned left out


def test_baskets_from_store_dedupes_and_drops_returns(small_store):
    with small_store.read() as con:
        df = baskets_from_store(con)
        assert sorted(df["basket_id"].unique()) == [f"b{i}" for i in range(1, 9)]
        assert len(df) == 17 and "jam" not in set(df["item_id"])
        with pytest.raises(LookupError, match="segstudio build"):
            baskets_from_store(con, segment_id=0)
    _add_build(small_store)
    with small_store.read() as con:
        seg0 = baskets_from_store(con, segment_id=0)
    assert sorted(seg0["basket_id"].unique()) == ["b1", "b2", "b3", "b4"]


def test_build_rules_whole_shop_and_segment_ratios(small_store):
    _add_build(small_store)
    with small_store.write() as con:
        m = build_rules(con, 1, min_support=0.25, min_confidence=0.5)
    assert m["n_baskets"] == 8 and m["segments"][0]["n_baskets"] == 4
    with small_store.read() as con:
        everyone = read_rules(con, 1)
        seg0, seg1 = read_rules(con, 1, segment_id=0), read_rules(con, 1, segment_id=1)
        stored = con.execute("SELECT count(*) FROM rules WHERE run_id = 1").fetchone()[0]
    assert stored == m["n_rules"] + m["n_segment_rules"] == len(everyone) + len(seg0) + len(seg1)
    assert everyone["segment_ratio"].isna().all()
    assert everyone["lift"].is_monotonic_decreasing
    key = lambda df: {(a, c[0]): r for a, c, r in zip(df["antecedent"], df["consequent"],  # noqa: E731
                                                       df.itertuples())}
    # milk => bread: 3/4 in segment 0, 4/7 overall
    assert key(seg0)[(("milk",), "bread")].segment_ratio == pytest.approx((3 / 4) / (4 / 7))
    # milk => eggs: 2/3 in segment 1, 4/7 overall
    assert key(seg1)[(("milk",), "eggs")].segment_ratio == pytest.approx((2 / 3) / (4 / 7))
    # bread => eggs passes in segment 1 (1/2) but not overall (2/5 < 0.5): ratio still exact
    assert (("bread",), "eggs") not in key(everyone)
    assert key(seg1)[(("bread",), "eggs")].segment_ratio == pytest.approx(0.5 / 0.4)
    assert seg1["segment_ratio"].is_monotonic_decreasing
    assert seg0.iloc[0]["consequent_title"] in TITLES.values()


def test_build_rules_chooses_thresholds_and_reruns_cleanly(small_store):
    with small_store.write() as con:
        auto = build_rules(con, 7)
        m1 = build_rules(con, 7, min_support=0.25)
        m2 = build_rules(con, 7, min_support=0.25)
        n = con.execute("SELECT count(*) FROM rules WHERE run_id = 7").fetchone()[0]
    # 8 baskets: the automatic support never goes below 5 baskets (5/8), where no pair is left
    assert auto["auto_support"] and auto["min_support"] == pytest.approx(5 / 8)
    assert auto["min_confidence"] == 0.3 and auto["n_rules"] == 0
    assert not m1["auto_support"] and n == m2["n_rules"] == m1["n_rules"] > 0


# --------------------------------------------------------------------------- the CLI
@pytest.fixture(autouse=False)
def only_rules_command(monkeypatch):
    # Register just this command, so the test does not depend on the other commands' modules.
    monkeypatch.setattr("core.cli.COMMANDS", ["rules"])


def test_cli_writes_csv_with_titles_and_neutralised_cells(small_store, tmp_path, capsys,
                                                          only_rules_command):
    out = tmp_path / "rules.csv"
    code = main(["rules", "--db", str(small_store.path), "--min-support", "0.25",
                 "--min-confidence", "0.5", "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    df = pd.read_csv(out)
    assert summary["rules"] == len(df) > 0 and summary["baskets"] == 8
    assert list(df.columns[:5]) == ["rank", "antecedent_ids", "antecedent_titles",
                                    "consequent_id", "consequent_title"]
    row = df[(df["antecedent_ids"] == "milk") & (df["consequent_id"] == "bread")].iloc[0]
    assert row["antecedent_titles"] == "Whole milk"
    assert row["consequent_title"] == "'=HYPERLINK(\"x\")"
    assert row["confidence"] == pytest.approx(4 / 7) and row["count"] == 4
    assert (df["leverage"] < 0).any()  # numbers are never altered, only text cells


def test_cli_segment_parquet_and_errors(small_store, tmp_path, capsys, only_rules_command):
    db = str(small_store.path)
    assert main(["rules", "--db", db, "--segment", "1", "--out", str(tmp_path / "r.csv")]) == 2
    assert "segstudio build" in capsys.readouterr().err
    _add_build(small_store)
    assert main(["rules", "--db", db, "--segment", "5", "--out", str(tmp_path / "r.csv")]) == 2
    assert "segments are 0, 1" in capsys.readouterr().err
    assert main(["rules", "--db", db, "--out", str(tmp_path / "r.xlsx")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
    out = tmp_path / "seg1.parquet"
    assert main(["rules", "--db", db, "--segment", "1", "--min-support", "0.25",
                 "--min-confidence", "0.5", "--out", str(out), "-q"]) == 0
    assert "Wrote" in capsys.readouterr().out
    df = pd.read_parquet(out)
    row = df[(df["consequent_id"] == "eggs") & df["antecedent_ids"].map(lambda a: list(a) == ["bread"])]
    assert row["segment_ratio"].iloc[0] == pytest.approx(1.25)
    assert list(row["antecedent_titles"].iloc[0]) == [TITLES["bread"]]  # Parquet keeps text as is
    assert df["segment_ratio"].is_monotonic_decreasing


def test_cli_help_has_examples(only_rules_command):
    from core.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["rules"].format_help()
    assert "--min-support" in text and "Examples:" in text and "--segment" in text


def test_auto_rules_cut_to_the_cap_by_lift():
    """Ten copies of a 6-item basket give 186 rules at 10 baskets of support, and none at 11:
    no support lands in [50, 150], so the 150 rules of highest lift are kept."""
    rng = np.random.default_rng(2)
    baskets = [list("abcdef")] * 10 + [
        list(rng.choice(30, size=rng.integers(1, 3), replace=False)) for _ in range(400)]
    full = mine_rules(baskets, min_support=10 / 410, min_confidence=0.3, min_len=2)
    assert len(full) > 150
    rules, s = auto_rules(baskets, min_confidence=0.3, target_rules=50)
    assert len(rules) == 150 and round(s * 410) == 10
    assert rules["lift"].min() >= full["lift"].sort_values(ascending=False).iloc[149] - 1e-12


def test_every_scope_of_the_demo_shop_lands_in_the_band(demo_store, tmp_path):
    """Automatic thresholds on the demo shop (600 shoppers) with four segments, target 50: the shop
    and every segment get between the target and the cap (150), or every rule there is when a scope
    cannot reach the target at its 5-basket floor."""
    import shutil

    from core.rules.build import MIN_BASKETS
    from core.store import Store

    store = Store(tmp_path / "demo.duckdb")
    shutil.copyfile(demo_store.path, store.path)
    with store.write() as con:
        con.execute("INSERT INTO runs VALUES (1, 'build', 'complete', now(), now(), '{}', 'x', '{}')")
        con.execute("INSERT INTO segments SELECT 1, user_id, hash(user_id) % 4, 0.0 FROM users")
        m = build_rules(con, 1, target_rules=50)
    assert m["max_rules"] == 150 and len(m["segments"]) == 4
    scopes = [(m["n_baskets"], m["min_support"], m["n_rules"])] + \
        [(s["n_baskets"], s["min_support"], s["n_rules"]) for s in m["segments"].values()]
    for n_baskets, support, n_rules in scopes:
        at_floor = round(support * n_baskets) == MIN_BASKETS
        assert n_rules <= 150 and (n_rules >= 50 or at_floor), (n_baskets, support, n_rules)
    assert scopes[0][2] == 89  # the whole shop: 89 rules, in the band


def test_explicit_explosive_thresholds_are_refused_with_the_fix(tmp_store):
    from core.rules import TooManyItemsets

    with tmp_store.write() as con:
        rows = [[b * 100 + i, "u", f"i{i}", "purchase", datetime(2024, 1, 1), 1, f"b{b}"]
                for b in range(10) for i in range(16)]
        con.executemany("INSERT INTO events (event_id, user_id, item_id, event_type, ts, quantity, "
                        "basket_id) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        with pytest.raises(TooManyItemsets, match="raise min_support"):
            build_rules(con, 1, min_support=0.5, max_itemsets=1_000, segments=False)
        # automatic: every support explodes, so rules of at most 3 items (16 x 15 + 560 x 3 =
        # 1,920 at support 1), cut to the cap
        m = build_rules(con, 1, max_itemsets=1_000, segments=False)
        assert (m["n_rules"], m["max_rules"], m["min_support"]) == (900, 900, 1.0)
