"""The compiled rules miner (core.rules.eclat) against the level-wise numpy miner it replaced
(core.rules.levelwise): the same itemsets, the same rules with the same figures, in the same
order, on random and edge-case baskets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.rules import levelwise, mining
from core.rules.mining import TooManyItemsets, mine_itemsets, mine_rules, to_baskets


def _random_baskets(rng, n_items, n_baskets, max_size, labels="str"):
    p = rng.random(n_items) ** 3 + 0.01
    p /= p.sum()
    out = []
    for _ in range(n_baskets):
        size = min(n_items, int(rng.integers(0, max_size + 1)))
        codes = rng.choice(n_items, size=size, replace=False, p=p)
        out.append([f"item {x}" if labels == "str" else int(x) for x in codes])
    return out


def _same_itemsets(baskets, **kw):
    a, b = mine_itemsets(baskets, **kw), levelwise.mine_itemsets(baskets, **kw)
    assert list(a.labels) == list(b.labels)
    assert (a.n_baskets, a.min_count) == (b.n_baskets, b.min_count)
    assert len(a.levels) == len(b.levels)
    for (ia, ca), (ib, cb) in zip(a.levels, b.levels):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ca, cb)
    return a


def _same_rules(baskets, **kw):
    ours = mine_rules(baskets, **kw)
    pd.testing.assert_frame_equal(ours, levelwise.mine_rules(baskets, **kw), check_exact=True)
    return ours


def test_random_baskets_same_itemsets_and_rules_as_the_levelwise_miner():
    rng = np.random.default_rng(14)
    n_rules = 0
    for case in range(60):
        baskets = _random_baskets(rng, int(rng.integers(2, 40)), int(rng.integers(1, 400)),
                                  int(rng.integers(1, 12)), "str" if case % 2 else "int")
        min_len = int(rng.integers(1, 4))
        kw = dict(min_support=float(rng.choice([0.005, 0.01, 0.03, 0.1, 0.4])),
                  max_len=int(rng.integers(min_len, 8)))
        _same_itemsets(baskets, **kw)
        rules = _same_rules(baskets, **kw, min_len=min_len,
                            min_confidence=float(rng.choice([0.0, 0.3, 0.8, 1.0])),
                            min_lift=[None, 0.9, 1.5][case % 3])
        n_rules += len(rules)
    assert n_rules > 5000  # the cases are not all empty


def test_dense_baskets_deep_itemsets():
    # Nearly every subset of 14 items is frequent: itemsets of up to 10 items, classes larger
    # than the first bitset buffers, over 10,000 itemsets.
    rng = np.random.default_rng(1)
    baskets = [[x for x in range(14) if rng.random() < 0.85] for _ in range(120)]
    fi = _same_itemsets(baskets, min_support=0.2)
    assert fi.total > 10_000 and len(fi.levels) == 10
    rules = _same_rules(baskets, min_support=0.3, min_confidence=0.9, min_len=2)
    assert rules["antecedent"].map(len).max() >= 5


def test_many_items_grow_the_arrays():
    # thousands of frequent items and pairs: past every initial capacity of the kernels
    rng = np.random.default_rng(2)
    baskets = [list(rng.choice(3000, size=40, replace=False)) for _ in range(600)]
    baskets += [[f"k{i}" for i in range(8)]] * 30
    fi = _same_itemsets(baskets, min_support=2 / 630)
    assert len(fi.labels) > 2500 and len(fi.levels[1][1]) > 10_000
    _same_rules(baskets, min_support=2 / 630, min_confidence=0.9, min_len=2)


def test_labels_that_need_the_generic_order():
    # empty label, a control character, two labels printing alike ("1" and 1): the fast tie
    # order does not apply, and rules are ordered as sort_rules does
    odd = [["", "a", "b"], ["", "a"], ["a\tb", "b"], ["a\tb", "b", ""], ["b", ""]] * 3
    _same_rules(odd, min_support=0.1, min_confidence=0.0)
    alike = [[1, 2], [1, 2, 3], ["1", "x"], ["1", "x", "y"]] * 4
    ours = mine_rules(alike, min_support=0.1, min_confidence=0.0)
    ref = levelwise.mine_rules(alike, min_support=0.1, min_confidence=0.0)
    # rules whose labels print alike can only tie: compare as sets, and the order of the rest
    key = ["antecedent", "consequent"]
    pd.testing.assert_frame_equal(ours.sort_values(key, key=lambda c: c.map(repr))
                                  .reset_index(drop=True),
                                  ref.sort_values(key, key=lambda c: c.map(repr))
                                  .reset_index(drop=True))
    np.testing.assert_array_equal(ours["lift"], ref["lift"])


def test_tie_keys_one_column_per_position(monkeypatch):
    # many items and long antecedents do not fit one int64 key: one key per position
    rng = np.random.default_rng(5)
    baskets = _random_baskets(rng, 30, 300, 9)
    expected = mine_rules(baskets, min_support=0.01, min_confidence=0.2)
    monkeypatch.setattr(mining, "_KEY_LIMIT", 2)
    pd.testing.assert_frame_equal(mine_rules(baskets, min_support=0.01, min_confidence=0.2),
                                  expected)


def test_itemset_limit_counts_like_the_levelwise_miner():
    baskets = [list("abcde")] * 4 + [["a"]]  # 31 frequent itemsets at support 0.5
    assert mine_itemsets(baskets, min_support=0.5, max_itemsets=31).total == 31
    for miner in (mine_itemsets, levelwise.mine_itemsets):
        with pytest.raises(TooManyItemsets, match="More than 30 frequent itemsets"):
            miner(baskets, min_support=0.5, max_itemsets=30)
    with pytest.raises(TooManyItemsets):
        mine_rules(baskets, min_support=0.5, max_itemsets=4)  # the 5 items alone pass it


def test_bitset_memory_limit(monkeypatch):
    baskets = [list("abcde")] * 200
    monkeypatch.setattr(mining, "_MAX_BITSET_BYTES", 8 * 4)  # 4 words; "a" needs 4 x 4
    with pytest.raises(TooManyItemsets, match="bitsets would need more than"):
        mine_rules(baskets, min_support=0.5)
    monkeypatch.setattr(mining, "_MAX_BITSET_BYTES", 8 * 16)
    assert len(mine_rules(baskets, min_support=0.5)) == 5 * 16  # every rule of 5 items


def test_empty_and_tiny_inputs():
    assert mine_rules([], min_support=0.5).empty
    assert mine_rules([[], []], min_support=0.5).empty
    assert mine_itemsets([[], []], min_support=0.5).levels[0][0].shape == (0, 1)
    deep = [list("abcdef")] * 3
    pd.testing.assert_frame_equal(mine_rules(deep, min_support=0.5, max_len=10 ** 9),
                                  mine_rules(deep, min_support=0.5, max_len=6))
    for baskets in ([["a"]], [["a"], ["b"]], [["a", "b"]] * 3, [["a", "b"], ["c"]]):
        for max_len in (1, 2, 3):
            _same_itemsets(baskets, min_support=0.3, max_len=max_len)
            _same_rules(baskets, min_support=0.3, max_len=max_len)


def test_to_baskets_encodes_every_input_alike():
    lists = [["milk", "bread", "milk"], [], ["eggs", None], ["bread"], ["eggs", "milk"]]
    pairs = pd.DataFrame({"basket_id": ["x", "x", "x", "z", "z", "w", "v", "v"],
                          "item_id": ["milk", "bread", "milk", "eggs", None, "bread",
                                      "eggs", "milk"]})
    shuffled = pairs.iloc[[7, 0, 3, 5, 1, 6, 2, 4]]  # baskets out of order
    for given, n in ((lists, 5), (iter(lists), 5), ((set(b) for b in lists), 5),
                     (pairs, 4), (shuffled, 4)):
        b = to_baskets(given)
        assert b.n_baskets == n
        assert (np.diff(b.basket_idx) >= 0).all()  # grouped by basket
        held = {(int(x), b.labels[i]) for x, i in zip(b.basket_idx, b.item_idx)}
        assert len(held) == len(b.basket_idx) == 6  # each (basket, item) once, None dropped
    assert to_baskets(pairs.assign(item_id=[None] * 8)).n_baskets == 0
