"""Choosing a recommender per segment by Thompson sampling, replayed over held-out purchases.

Input: for each evaluated shopper, in the order of their held-out basket's time, whether each
recommender's list would have hit it (1 = at least one of its top 10 was bought; 0 = none) and the
shopper's segment. The replay walks the shoppers in time order; for each, the segment's policy
picks one recommender and is rewarded with that recommender's hit for this shopper, then learns
from it. Only the chosen recommender's outcome is revealed to the policy (as it would be live),
so the replay is an unbiased estimate of the policy's reward.

Thompson sampling: each (segment, recommender) keeps a Beta(1 + hits, 1 + misses) belief about
its hit rate; the policy draws one sample per recommender and picks the highest.

Compared, on the same shoppers and order:
* ``best single``: the one recommender with the most hits over all shoppers (known only in
  hindsight, so an upper bound for any fixed choice);
* ``uniform random``: the expected reward of picking a recommender at random (the mean over
  recommenders, at each step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ReplayResult:
    arms: list[str]
    cumulative: dict[str, np.ndarray]                 # policy / best single / uniform random
    best_single: str
    choice: dict[str, str] = field(default_factory=dict)          # segment -> final choice
    pulls: dict[str, dict[str, int]] = field(default_factory=dict)  # segment -> arm -> times
    posterior_mean: dict[str, dict[str, float]] = field(default_factory=dict)
    shoppers: dict[str, int] = field(default_factory=dict)

    def totals(self) -> dict[str, float]:
        return {k: float(v[-1]) if len(v) else 0.0 for k, v in self.cumulative.items()}


def replay(hits: np.ndarray, segments: np.ndarray, arms: list[str], choose) -> tuple:
    """Run a policy over ``hits`` (shoppers x arms, chronological) with per-segment state.
    ``choose(state, rng_step) -> arm index`` where state = (successes, failures) arrays for the
    shopper's segment. Returns (rewards per step, chosen arm per step, final state per segment)."""
    hits = np.asarray(hits, float)
    n, k = hits.shape
    state: dict = {}
    rewards, chosen = np.zeros(n), np.zeros(n, dtype=int)
    for t in range(n):
        seg = segments[t]
        s = state.setdefault(seg, (np.zeros(k), np.zeros(k)))
        a = int(choose(s, t))
        r = hits[t, a]
        s[0][a] += r
        s[1][a] += 1 - r
        rewards[t], chosen[t] = r, a
    return rewards, chosen, state


def thompson_replay(hits: np.ndarray, segments, arms: list[str], seed: int = 42) -> ReplayResult:
    """Thompson sampling per segment over ``arms``; see the module docstring."""
    hits = np.asarray(hits, float)
    segments = np.asarray([str(s) for s in segments])
    rng = np.random.default_rng(seed)

    def choose(state, _t):
        succ, fail = state
        return int(np.argmax(rng.beta(1 + succ, 1 + fail)))

    rewards, chosen, state = replay(hits, segments, arms, choose)
    totals = hits.sum(axis=0)
    best = int(np.argmax(totals))
    res = ReplayResult(
        arms=list(arms),
        cumulative={"policy": np.cumsum(rewards), "best single": np.cumsum(hits[:, best]),
                    "uniform random": np.cumsum(hits.mean(axis=1))},
        best_single=arms[best])
    for seg, (succ, fail) in sorted(state.items()):
        mean = (1 + succ) / (2 + succ + fail)
        res.posterior_mean[seg] = {a: float(m) for a, m in zip(arms, mean)}
        res.choice[seg] = arms[int(np.argmax(mean))]
        m = segments == seg
        res.pulls[seg] = {a: int((chosen[m] == i).sum()) for i, a in enumerate(arms)}
        res.shoppers[seg] = int(m.sum())
    return res


def replay_summary(hits_by_arm: dict[str, np.ndarray], segments, order_key, *, seed: int = 42,
                   points: int = 60) -> dict:
    """The replay over an evaluation's held-out shoppers, for the run's metrics: shoppers in the
    time order of ``order_key`` (their held-out basket's time), Thompson sampling per segment
    over the arms in ``hits_by_arm`` (1 = the arm's top 10 hit the basket). Returns totals for
    the policy, the best single arm and uniform random, the cumulative curves at ``points``
    steps, and per segment the final choice, its posterior hit rates and how often each arm was
    played."""
    arms = sorted(hits_by_arm)
    if not arms:
        return {}
    H = np.column_stack([np.asarray(hits_by_arm[a], float) for a in arms])
    order = np.argsort(np.asarray(order_key), kind="stable")
    res = thompson_replay(H[order], np.asarray(segments)[order], arms, seed=seed)
    n = len(order)
    at = sorted({max(1, int(round(n * i / points))) for i in range(1, points + 1)})
    return {
        "shoppers": int(n), "arms": arms, "best_single": res.best_single,
        "totals": {k: round(v, 3) for k, v in res.totals().items()},
        "curve": {"step": at, **{k: [round(float(v[i - 1]), 3) for i in at]
                                 for k, v in res.cumulative.items()}},
        "segments": {s: {"choice": res.choice[s], "shoppers": res.shoppers[s],
                         "pulls": res.pulls[s],
                         "hit_rate": {a: round(m, 4) for a, m in res.posterior_mean[s].items()}}
                     for s in res.choice},
    }
