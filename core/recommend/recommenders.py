"""The recommenders: one interface, each item with a score and a reason a marketer understands.

Every recommender is fitted once from the store (``fit(con, run_id, data=None)``; pass a shared
``ShopData`` to fit several on one read) and then answers

    recommend(history, n=10, exclude=(), *, user_id=None, segment_id=None, repeat=False)
        -> list[Recommendation]

``history`` is a list of ``(item_id, event_type, ts)`` (the encoder's format). With
``history=None`` and a known ``user_id`` the user's fitted purchases are used. Internally all
recommenders score a *batch* of shoppers at once into a dense (shoppers x catalogue) matrix, so
the offline evaluation and a single preview share one code path.

Filtering (``rank``): unavailable items (see ``core.recommend.data``), items the shopper returned
and kept none of, items in ``exclude`` and -- unless ``repeat=True`` -- items the shopper already
bought are never recommended. Ties (including items a recommender gives no score) are broken by
overall popularity, so every recommender yields a full ranking of the catalogue.

Recommenders
------------
* ``popularity``: baskets containing the item (whole shop).
* ``segment_popularity``: share of the shopper's segment who bought the item (shoppers without a
  segment: share of all shoppers).
* ``repeat``: the shopper's own purchases, times bought x 0.5^(days since last / 365).
* ``item_knn``: item-to-item co-occurrence over baskets: score(j) = sum over the shopper's items i
  of w_i * P(j in basket | i in basket), w_i = 0.5^(days since i was last bought / 30). The reason
  quotes the conditional probability of the strongest contributor.
* ``tifu_knn``: time-decayed personal item frequency blended with the nearest shoppers' (TIFU-KNN;
  ``core.recommend.tifu``).
* ``next_basket``: a logistic model over repeat-purchase signals (TIFU-kNN parts, frequency,
  recency, repeat rate, popularity, item-kNN), learned on validation baskets by the offline
  evaluation (``core.recommend.nextbasket``).
* ``encoder``: ``core.encoder.load_encoder(con, run_id).next_item_scores(history)``.
* ``hybrid``: weighted sum of the components' per-shopper normalised scores (each divided by
  the shopper's maximum; the encoder's as exp(score - max)); items no component scores are
  filled in by popularity. Two weight sets are tuned by the offline evaluation on a validation
  split (each user's last *training* basket): one for lists that may repeat purchases, one for
  new items only (the default); both are stored with the run's ``evaluations`` row; without one,
  ``DEFAULT_WEIGHTS``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.recommend.batch import (  # noqa: F401  (re-exported)
    INTEREST_WEIGHTS,
    Batch,
    _pseudo_history,
    _times,
    batch_for_history,
    batch_for_users,
    interest_of,
    interest_words,
    one_torch_thread,
)
from core.recommend.data import ShopData, first_row
from core.neighbours import top_k

REPEAT_HALF_LIFE_DAYS = 365.0
KNN_HALF_LIFE_DAYS = 30.0
# Up to this many items, where at least DENSE_KNN_FROM of item pairs were bought together, item
# kNN also holds its conditional probabilities as a dense array: a batch's scores are then a
# sparse-by-dense product, the same sums in the same order (identical scores), 5x faster than
# sparse-by-sparse (Online Retail: 3,927 items, 49 % of pairs; 2,048 shoppers 0.54 -> 0.10 s;
# 62 MB). Larger or sparser catalogues keep the sparse product only.
DENSE_KNN_MAX_ITEMS = 6_000
DENSE_KNN_FROM = 0.05
DEFAULT_WEIGHTS = {"tifu_knn": 1.0, "encoder": 0.5, "item_knn": 0.5, "segment_popularity": 0.25}


@dataclass
class Recommendation:
    item_id: str
    title: str
    score: float
    reason: str
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


class Recommender:
    name = "base"
    keeps_zero = False  # whether items with score 0 are still real recommendations
    needs_history = False  # whether scoring reads the event history (not just purchases)

    def fit(self, con, run_id: int | None, data: ShopData | None = None) -> "Recommender":
        self.data = data if data is not None else ShopData.load(con, run_id)
        pop = np.asarray(self.data.baskets.sum(axis=0)).ravel().astype(np.float64)
        self.basket_counts = pop
        # popularity rank in [0, 1) used only to break ties
        order = np.lexsort((-np.arange(len(pop)), pop))
        tb = np.empty(len(pop))
        tb[order] = np.arange(len(pop)) / max(len(pop), 1)
        self.tiebreak = tb
        self._fit(con, run_id)
        return self

    def _fit(self, con, run_id) -> None:
        pass

    def scores(self, batch: Batch) -> np.ndarray:
        raise NotImplementedError

    def reason(self, batch: Batch, row: int, j: int, score: float) -> str:
        raise NotImplementedError

    # -------------------------------------------------------------- ranking
    def mask(self, batch: Batch, repeat: bool = False, exclude=()) -> np.ndarray:
        """Boolean (m, n_items): True where the item may not be recommended."""
        m = len(batch)
        bad = np.broadcast_to(~self.data.active, (m, self.data.n_items)).copy()
        ro = batch.returned_only.tocoo()
        bad[ro.row, ro.col] = True
        if not repeat:
            bc = batch.counts.tocoo()
            bad[bc.row, bc.col] = True
        ex = [self.data.item_index[x] for x in exclude if x in self.data.item_index]
        if ex:
            bad[:, ex] = True
        return bad

    def ranked(self, scores: np.ndarray, bad: np.ndarray, k: int) -> np.ndarray:
        """Top-k item indices per row (best first); excluded items never appear (-1 pads)."""
        key = scores.astype(np.float64) + 1e-9 * self.tiebreak
        key[bad] = -np.inf
        return top_k(key, k)

    def recommend(self, history=None, n: int = 10, exclude=(), *, user_id: str | None = None,
                  segment_id: int | None = None, repeat: bool = False,
                  batch: Batch | None = None) -> list[Recommendation]:
        b = batch if batch is not None else batch_for_history(
            self.data, history, user_id=user_id, segment_id=segment_id)
        return self.recommend_rows(b, n=n, exclude=exclude, repeat=repeat)[0]

    def recommend_rows(self, batch: Batch, n: int = 10, exclude=(), *,
                       repeat: bool = False) -> list[list[Recommendation]]:
        """Top ``n`` for every shopper of ``batch`` at once (row r's list equals ``recommend``
        on row r alone: every score and normalisation is per shopper)."""
        s, reason = self._scores_for(batch, repeat)
        bad = self.mask(batch, repeat=repeat, exclude=exclude)
        if not self.keeps_zero:
            bad |= ~(s > 0)
        top = self.ranked(s, bad, n)
        return [[Recommendation(self.data.item_ids[j], self.data.titles[j], float(s[r, j]),
                                reason(batch, r, int(j), float(s[r, j])), self.name)
                 for j in top[r] if j >= 0]
                for r in range(len(batch))]

    def _scores_for(self, batch: Batch, repeat: bool):
        """Scores for a request and the function giving an item's reason."""
        return self.scores(batch), self.reason


class PopularityRecommender(Recommender):
    name = "popularity"

    def _fit(self, con, run_id):
        pop = self.basket_counts
        self.rank = np.empty(len(pop), dtype=np.int64)
        self.rank[np.argsort(-pop, kind="stable")] = np.arange(1, len(pop) + 1)
        self.n_baskets = self.data.baskets.shape[0]

    def scores(self, batch):
        return np.broadcast_to(self.basket_counts, (len(batch), self.data.n_items))

    def reason(self, batch, row, j, score):
        return (f"a shop best seller: in {int(self.basket_counts[j]):,} baskets "
                f"(#{int(self.rank[j])} in the shop)")


class SegmentPopularityRecommender(Recommender):
    name = "segment_popularity"

    def _fit(self, con, run_id):
        d = self.data
        bought = d.user_counts.copy()
        bought.data[:] = 1.0
        segs = sorted(set(int(s) for s in d.user_segment if s >= 0))
        self.seg_row = {s: i + 1 for i, s in enumerate(segs)}
        shares = np.zeros((len(segs) + 1, d.n_items), dtype=np.float64)
        nusers = np.zeros(len(segs) + 1)
        shares[0] = np.asarray(bought.sum(axis=0)).ravel()
        nusers[0] = bought.shape[0]
        for s, i in self.seg_row.items():
            rows = np.flatnonzero(d.user_segment == s)
            shares[i] = np.asarray(bought[rows].sum(axis=0)).ravel()
            nusers[i] = len(rows)
        self.seg_buyers = shares.copy()
        self.seg_users = nusers
        self.shares = shares / np.maximum(nusers, 1)[:, None]

    def _rows(self, batch):
        return np.array([self.seg_row.get(int(s), 0) for s in batch.segment], dtype=np.int64)

    def scores(self, batch):
        return self.shares[self._rows(batch)]

    def reason(self, batch, row, j, score):
        r = self.seg_row.get(int(batch.segment[row]), 0)
        pct = 100.0 * self.shares[r, j]
        if r == 0:
            return f"bought by {pct:.0f}% of all shoppers"
        name = self.data.segment_names.get(int(batch.segment[row]),
                                           f"segment {int(batch.segment[row])}")
        lift = self.shares[r, j] / self.shares[0, j] if self.shares[0, j] > 0 else 0.0
        extra = f", {lift:.1f}x the shop average" if lift >= 1.2 else ""
        return f"bought by {pct:.0f}% of shoppers in {name}{extra}"


class RepeatRecommender(Recommender):
    name = "repeat"

    def scores(self, batch):
        c, d = batch.counts, batch.days
        assert np.array_equal(c.indptr, d.indptr) and np.array_equal(c.indices, d.indices)
        s = c.copy()
        s.data = c.data * np.power(0.5, d.data / REPEAT_HALF_LIFE_DAYS)
        return s.toarray()

    def reason(self, batch, row, j, score):
        k = batch.counts[row, j]
        days = batch.days[row, j]
        when = ""
        if self.data.ref_time is not None:
            last = pd.Timestamp(self.data.ref_time) - pd.Timedelta(days=float(days))
            when = f", last on {last:%d %b %Y}"
        return f"this shopper bought it {_times(k)}{when}"

    def recommend_rows(self, batch, n=10, exclude=(), *, repeat=True):
        # Repeat purchase is the point of this recommender: bought items are allowed.
        return super().recommend_rows(batch, n, exclude, repeat=True)


class ItemKNNRecommender(Recommender):
    """Item-to-item co-occurrence over baskets (conditional probabilities)."""
    name = "item_knn"

    def __init__(self, min_count: int = 1):
        self.min_count = min_count

    def _fit(self, con, run_id):
        B = self.data.baskets
        C = B.T @ B
        # Binary baskets give exact, symmetric counts: the product comes out column-major, and
        # its transpose is the same matrix row-major, with no conversion (0.35 s of a 1.2 s fit
        # on Online Retail)
        C = C.T if C.format == "csc" else C.tocsr()
        C.sum_duplicates()
        C.sort_indices()
        d = C.diagonal().astype(np.float64)
        C.setdiag(0)
        if self.min_count > 1:
            C.data[C.data < self.min_count] = 0
        C.eliminate_zeros()
        inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0).astype(np.float32)
        # P[i, j] = P(j | i): row i of C times 1 / (baskets with i), in float32
        self.P = sp.csr_matrix((C.data.astype(np.float32) * np.repeat(inv, np.diff(C.indptr)),
                                C.indices.copy(), C.indptr.copy()), shape=C.shape)
        n = self.P.shape[0]
        self.P_dense = self.P.toarray() \
            if n <= DENSE_KNN_MAX_ITEMS and self.P.nnz >= DENSE_KNN_FROM * n * n else None
        self.co_counts = C
        self.item_baskets = d

    def weights(self, batch) -> sp.csr_matrix:
        """Purchases weigh 0.5^(days since last bought / 30); items only viewed, carted or
        liked weigh ``INTEREST_WEIGHTS`` of their strongest kind."""
        w = batch.days.copy()
        w.data = np.power(0.5, w.data / KNN_HALF_LIFE_DAYS).astype(np.float32)
        if batch.interest and any(batch.interest):
            rows, cols, vals = [], [], []
            for r, kinds in enumerate(batch.interest):
                for j, kk in (kinds or {}).items():
                    rows.append(r)
                    cols.append(j)
                    vals.append(max(INTEREST_WEIGHTS[t] for t in kk))
            extra = sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=w.shape)
            bought = w.copy()
            bought.data[:] = 1.0
            w = (w + extra - extra.multiply(bought)).tocsr()
        return w

    def scores(self, batch):
        """Read-only; the last batch's are kept (the next-basket model reads the same batch's
        right after the evaluation does)."""
        last = getattr(self, "_last", None)
        if last is not None and last[0] is batch:
            return last[1]
        w = self.weights(batch)
        out = np.asarray(w @ self.P_dense) if self.P_dense is not None else \
            np.asarray((w @ self.P).toarray())
        out.flags.writeable = False
        self._last = (batch, out)
        return out

    def _weights_row(self, batch, row) -> np.ndarray:
        """Dense history weights of one shopper (cached for the reasons of one list)."""
        c = getattr(self, "_wcache", None)
        if c is None or c[0] is not batch or c[1] != row:
            w = self.weights(batch)[row]
            dense = np.zeros(self.data.n_items, dtype=np.float32)
            dense[w.indices] = w.data
            self._wcache = c = (batch, row, dense)
        return c[2]

    def reason(self, batch, row, j, score):
        wts = self._weights_row(batch, row)
        # C is symmetric: column j of P = C[j, i] / baskets(i) over the items i bought with j
        r0, r1 = self.co_counts.indptr[j], self.co_counts.indptr[j + 1]
        ii = self.co_counts.indices[r0:r1]
        p = self.co_counts.data[r0:r1] / np.maximum(self.item_baskets[ii], 1)
        contrib = p * wts[ii]
        if len(ii) == 0 or contrib.max() <= 0:
            return "often bought together with this shopper's items"
        k = int(np.argmax(contrib))
        i = int(ii[k])
        title = self.data.titles[i]
        if batch.interest and batch.counts[row, i] == 0 and i in (batch.interest[row] or {}):
            return (f"in {100.0 * p[k]:.0f}% of baskets that contain {title}; this shopper "
                    f"{interest_words(batch.interest[row][i])}")
        return (f"in {100.0 * p[k]:.0f}% of baskets that contain {title}, which this shopper "
                "bought")


def fit_recommenders(con, run_id: int | None, data: ShopData | None = None, *,
                     weights: dict[str, float] | None = None,
                     weights_new: dict[str, float] | None = None, encoder: bool = True,
                     text_model: str | None = None,
                     next_basket_models: dict | None = None,
                     encoder_batch: int = 1) -> dict[str, Recommender]:
    """All recommenders fitted on one read of the store. ``encoder`` is left out (with the
    reason in ``fit_recommenders.last_error``) when the run has no trained encoder;
    ``encoder_batch``: its ``forward_batch``."""
    data = data if data is not None else ShopData.load(con, run_id)
    knn = ItemKNNRecommender().fit(con, run_id, data)
    recs: dict[str, Recommender] = {
        "popularity": PopularityRecommender().fit(con, run_id, data),
        "segment_popularity": SegmentPopularityRecommender().fit(con, run_id, data),
        "repeat": RepeatRecommender().fit(con, run_id, data),
        "item_knn": knn,
        "tifu_knn": TifuKNNRecommender().fit(con, run_id, data),
        "next_basket": NextBasketRecommender(next_basket_models, item_knn=knn).fit(con, run_id,
                                                                                  data),
    }
    fit_recommenders.last_error = None
    if encoder:
        try:
            recs["encoder"] = EncoderRecommender(text_model, encoder_batch).fit(con, run_id,
                                                                                data)
        except Exception as e:  # no encoder module yet, or no checkpoint for this run
            fit_recommenders.last_error = f"{type(e).__name__}: {e}"
    comps = {k: v for k, v in recs.items() if k in HYBRID_COMPONENTS}
    recs["hybrid"] = HybridRecommender(comps, weights, weights_new).fit(con, run_id, data)
    return recs


fit_recommenders.last_error = None

RECOMMENDERS = ("hybrid", "next_basket", "tifu_knn", "encoder", "item_knn", "segment_popularity", "repeat",
                "popularity")
HYBRID_COMPONENTS = ("tifu_knn", "encoder", "item_knn", "segment_popularity", "repeat",
                     "popularity")


from core.recommend.encoder_rec import EncoderRecommender  # noqa: E402  (registered above)
from core.recommend.hybrid import HybridRecommender, normalise  # noqa: E402,F401 (re-exported)
from core.recommend.nextbasket import NextBasketRecommender  # noqa: E402
from core.recommend.tifu import TifuKNNRecommender  # noqa: E402
