"""What a recommender scores: a batch of shoppers (their purchases, returns, segment, views and
carts, event histories), built from the fitted data or from an explicit history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.encoder.runtime import one_torch_thread  # noqa: F401  (re-exported for recommenders)
from core.recommend.data import ShopData

# how much a view, click, basket addition or favourite counts against a purchase (1.0) as a
# signal of interest for item-kNN (views and carts count for every recommender that reads them)
INTEREST_WEIGHTS = {"favorite": 0.75, "cart": 0.75, "click": 0.4, "view": 0.4}


@dataclass
class Batch:
    """Shoppers to score: their purchases (counts, days since last), returned-only items,
    segment, and (for the encoder) event histories."""
    counts: sp.csr_matrix
    days: sp.csr_matrix
    returned_only: sp.csr_matrix
    segment: np.ndarray
    histories: list | None = None
    users: list | None = None
    fitted: bool = False  # rows are fitted shoppers' own data (not an edited or new history)
    interest: list | None = None  # per row {item index: {event type: count}} (views, carts...)

    def __len__(self) -> int:
        return self.counts.shape[0]

    def take(self, rows: slice) -> "Batch":
        """The shoppers of ``rows`` (a slice), as a batch of their own."""
        def cut(x):
            return None if x is None else x[rows]
        return Batch(self.counts[rows], self.days[rows], self.returned_only[rows],
                     self.segment[rows], cut(self.histories), cut(self.users), self.fitted,
                     cut(self.interest))


def batch_for_users(data: ShopData, rows: np.ndarray, histories: list | None = None) -> Batch:
    rows = np.asarray(rows, dtype=np.int64)
    return Batch(
        counts=data.user_counts[rows], days=data.user_days[rows],
        returned_only=data.user_returned_only[rows], segment=data.user_segment[rows],
        histories=histories, users=[data.user_ids[r] for r in rows], fitted=True,
    )


def _pseudo_history(data: ShopData, counts: sp.csr_matrix, days: sp.csr_matrix) -> list:
    """A history from fitted counts (oldest first), for the encoder when none was given."""
    ref = pd.Timestamp(data.ref_time) if data.ref_time is not None else None
    hist = []
    for j, d in sorted(zip(days.indices.tolist(), days.data.tolist()), key=lambda x: -x[1]):
        ts = (ref - pd.Timedelta(seconds=round(float(d) * 86400))).to_pydatetime() \
            if ref is not None else None
        hist.append((data.item_ids[j], "purchase", ts))
    return hist


def batch_for_history(data: ShopData, history: list | None, *, user_id: str | None = None,
                      segment_id: int | None = None) -> Batch:
    """A batch of one shopper from an explicit history, or from the fitted data of ``user_id``."""
    n = data.n_items
    seg = -1 if segment_id is None else int(segment_id)
    u = data.user_index.get(str(user_id)) if user_id is not None else None
    if history is None:
        if u is None:
            history = []
        else:
            b = batch_for_users(data, np.array([u]))
            if segment_id is not None:
                b.segment = np.array([seg])
            b.histories = [_pseudo_history(data, b.counts, b.days)]
            return b
    if segment_id is None and u is not None:
        seg = int(data.user_segment[u])
    ref = pd.Timestamp(data.ref_time) if data.ref_time is not None else None
    times: dict[int, set] = {}
    events: dict[int, int] = {}
    last: dict[int, object] = {}
    returns: dict[int, int] = {}
    interest: dict[int, dict] = {}
    for ev in history:
        item, etype = str(ev[0]), str(ev[1])
        ts = ev[2] if len(ev) > 2 else None
        j = data.item_index.get(item)
        if j is None:
            continue
        if etype == "purchase":
            times.setdefault(j, set()).add(ts)
            events[j] = events.get(j, 0) + 1
            if ts is not None and (last.get(j) is None or ts > last[j]):
                last[j] = ts
            else:
                last.setdefault(j, None)
        elif etype == "return":
            returns[j] = returns.get(j, 0) + 1
        elif etype in INTEREST_WEIGHTS:
            kinds = interest.setdefault(j, {})
            kinds[etype] = kinds.get(etype, 0) + 1
    cols = sorted(times)
    cnt = [float(len(times[j])) if None not in times[j] else float(events[j]) for j in cols]
    dd = []
    for j in cols:
        t = last.get(j)
        dd.append(max(0.0, (ref - pd.Timestamp(t)).total_seconds() / 86400.0)
                  if (t is not None and ref is not None) else 0.0)
    counts = sp.csr_matrix((np.array(cnt, np.float32), (np.zeros(len(cols), int), cols)),
                           shape=(1, n))
    days = sp.csr_matrix((np.array(dd, np.float32) + 1e-3, (np.zeros(len(cols), int), cols)),
                         shape=(1, n))
    ro = [j for j, k in returns.items() if k >= events.get(j, 0)]
    returned = sp.csr_matrix((np.ones(len(ro), bool), (np.zeros(len(ro), int), ro)), shape=(1, n))
    return Batch(counts=counts, days=days, returned_only=returned, segment=np.array([seg]),
                 histories=[list(history)], users=[user_id], interest=[interest])


def interest_of(data: ShopData, history) -> dict[int, dict]:
    """{item index: {event type: count}} of a history's views, clicks, carts and favourites."""
    out: dict[int, dict] = {}
    for ev in history or []:
        t = str(ev[1])
        j = data.item_index.get(str(ev[0]))
        if j is not None and t in INTEREST_WEIGHTS:
            out.setdefault(j, {})[t] = out.get(j, {}).get(t, 0) + 1
    return out


def interest_words(kinds: dict) -> str:
    """"put it in the basket once and viewed it twice" (for a marketer's reason)."""
    verbs = {"view": "viewed it", "click": "clicked on it", "cart": "put it in the basket",
             "favorite": "saved it as a favourite"}
    parts = [f"{verbs[t]} {_times(k)}" for t, k in sorted(kinds.items(),
                                                          key=lambda x: -INTEREST_WEIGHTS[x[0]])]
    return " and ".join(parts)




def _times(k: float) -> str:
    k = int(round(k))
    return "once" if k == 1 else ("twice" if k == 2 else f"{k} times")
