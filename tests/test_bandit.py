"""The bandit replay's reward accounting on a fixed example, and that it learns the better arm."""

from __future__ import annotations

import numpy as np

from core.bandit import replay, thompson_replay


def test_reward_accounting_on_a_fixed_example():
    # 4 shoppers in time order, 2 recommenders; a fixed policy: 0, 1, 1, 0
    hits = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    picks = iter([0, 1, 1, 0])
    rewards, chosen, state = replay(hits, np.array(["s", "s", "t", "t"]), ["a", "b"],
                                    lambda s, t: next(picks))
    assert list(rewards) == [1, 0, 1, 0] and list(chosen) == [0, 1, 1, 0]
    # per segment: successes and failures per arm, only for the arm chosen
    assert [list(x) for x in state["s"]] == [[1, 0], [0, 1]]
    assert [list(x) for x in state["t"]] == [[0, 1], [1, 0]]


def test_thompson_finds_each_segments_better_recommender():
    rng = np.random.default_rng(0)
    n = 4000
    seg = np.where(np.arange(n) % 2 == 0, "gift buyers", "bargain hunters")
    # gift buyers: 'similar items' hits 40 %, 'buy again' 10 %; bargain hunters the reverse
    p = np.where(seg[:, None] == "gift buyers", [0.10, 0.40], [0.40, 0.10])
    hits = (rng.uniform(size=(n, 2)) < p).astype(int)
    res = thompson_replay(hits, seg, ["buy again", "similar items"], seed=1)
    assert res.choice == {"bargain hunters": "buy again", "gift buyers": "similar items"}
    t = res.totals()
    # per-segment choice beats any single recommender for everyone, which beats random
    assert t["policy"] > t["best single"] > t["uniform random"]
    assert t["uniform random"] == hits.mean(axis=1).sum()
    assert res.shoppers == {"bargain hunters": 2000, "gift buyers": 2000}
    assert sum(res.pulls["gift buyers"].values()) == 2000
