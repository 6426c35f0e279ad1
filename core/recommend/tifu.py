"""Next-basket recommender in the TIFU-KNN family (Hu et al., SIGIR 2020): what a shopper buys
again, weighted towards their recent baskets, blended with what their most similar shoppers buy.

Shopper vector (over the catalogue): the shopper's baskets, newest first, are cut into groups of
``group_size``; inside a group the i-th newest basket weighs ``basket_decay ** i``; the g-th
newest group weighs ``group_decay ** g``; each group is the weighted mean of its baskets and the
vector is the weighted mean of the groups (the paper's time-decayed "personal item frequency").

Score = ``alpha`` x the shopper's vector + (1 - ``alpha``) x the mean vector of their
``neighbours`` most similar shoppers (cosine similarity of the vectors; the shopper themself
excluded). Items neither the shopper nor a neighbour bought score 0 (ties go to popularity).

Reasons, for a marketer: "this shopper bought it in 3 of their 5 baskets, last on 02 Dec 2011";
"bought by 12 of this shopper's 300 most similar shoppers".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.recommend.recommenders import Recommender, _times


def _vectors(B: sp.csr_matrix, owner: np.ndarray, age: np.ndarray, n_users: int,
             group_size: int, basket_decay: float, group_decay: float) -> sp.csr_matrix:
    """(n_users x items) TIFU vectors from baskets B (rows), their owner row and age in days."""
    ok = owner >= 0
    rows = np.flatnonzero(ok)
    if not len(rows):
        return sp.csr_matrix((n_users, B.shape[1]), dtype=np.float32)
    o = owner[rows]
    order = np.lexsort((age[rows], o))         # per owner, newest first
    rows, o = rows[order], o[order]
    start = np.r_[0, np.flatnonzero(np.diff(o)) + 1]
    rank = np.arange(len(o)) - np.repeat(start, np.diff(np.r_[start, len(o)]))
    n_b = np.bincount(o, minlength=n_users)[o]
    g, i = rank // group_size, rank % group_size
    n_groups = (n_b + group_size - 1) // group_size
    in_group = np.minimum(group_size, n_b - g * group_size)   # baskets in this basket's group
    # paper: group = (1/m) sum r_b^i b_i, user = (1/k) sum r_g^g group
    w = (basket_decay ** i) / in_group * (group_decay ** g) / n_groups
    W = sp.csr_matrix((w.astype(np.float32), (o, rows)), shape=(n_users, B.shape[0]))
    return (W @ B).tocsr().astype(np.float32)


class TifuKNNRecommender(Recommender):
    """Time-decayed personal item frequency blended with nearest neighbours' (TIFU-KNN)."""
    name = "tifu_knn"

    def __init__(self, group_size: int = 7, basket_decay: float = 0.9, group_decay: float = 0.7,
                 neighbours: int = 300, alpha: float = 0.7):
        self.group_size = group_size
        self.basket_decay = basket_decay
        self.group_decay = group_decay
        self.neighbours = neighbours
        self.alpha = alpha

    def _fit(self, con, run_id):
        d = self.data
        self.U_ = _vectors(d.baskets, d.basket_user, d.basket_days, len(d.user_ids),
                           self.group_size, self.basket_decay, self.group_decay)
        nrm = np.sqrt(np.asarray(self.U_.multiply(self.U_).sum(axis=1)).ravel())
        self.Un_ = (sp.diags(np.divide(1.0, nrm, out=np.zeros_like(nrm), where=nrm > 0)
                             .astype(np.float32)) @ self.U_).tocsr()
        self.UnT_ = self.Un_.T.tocsr()
        self.bought_ = self.U_.copy()
        self.bought_.data[:] = 1.0
        self.n_baskets_ = np.bincount(d.basket_user[d.basket_user >= 0],
                                      minlength=len(d.user_ids))

    # ------------------------------------------------------------------ vectors of a batch
    def batch_vectors(self, batch) -> tuple[sp.csr_matrix, np.ndarray]:
        """(shopper vectors, fitted row or -1) for a batch: fitted shoppers' own vectors;
        others (edited or new histories) from their purchases grouped into baskets by day."""
        d = self.data
        m = len(batch)
        own = np.full(m, -1, dtype=np.int64)
        if getattr(batch, "fitted", False) and batch.users is not None:
            own = np.array([d.user_index.get(str(u), -1) for u in batch.users], dtype=np.int64)
        if (own >= 0).all():
            return self.U_[own], own
        out = []
        for r in range(m):
            if own[r] >= 0:
                out.append(self.U_[own[r]])
                continue
            c = batch.counts[r]
            days = batch.days[r]
            if c.nnz == 0:
                out.append(sp.csr_matrix((1, d.n_items), dtype=np.float32))
                continue
            # one basket per distinct day of last purchase; an item bought k times appears in
            # its last basket plus k - 1 older ones (no older dates are known)
            key = np.floor(days.data).astype(np.int64)
            uniq, inv = np.unique(key, return_inverse=True)
            extra = np.maximum(c.data.astype(np.int64) - 1, 0)
            brow, bcol = list(inv), list(days.indices)
            bage = list(uniq.astype(np.float64))
            nxt = len(uniq)
            for j, k in zip(days.indices[extra > 0], extra[extra > 0]):
                for _ in range(int(k)):
                    brow.append(nxt)
                    bcol.append(j)
                    bage.append(float(uniq.max()) + 1 + nxt)
                    nxt += 1
            B = sp.csr_matrix((np.ones(len(brow), np.float32), (brow, bcol)),
                              shape=(nxt, d.n_items))
            B.data[:] = 1.0
            out.append(_vectors(B, np.zeros(nxt, np.int64), np.array(bage), 1, self.group_size,
                                self.basket_decay, self.group_decay))
        return sp.vstack(out).tocsr(), own

    def neighbour_rows(self, V: sp.csr_matrix, own: np.ndarray) -> list[np.ndarray]:
        nrm = np.sqrt(np.asarray(V.multiply(V).sum(axis=1)).ravel())
        Vn = sp.diags(np.divide(1.0, nrm, out=np.zeros_like(nrm), where=nrm > 0)
                      .astype(np.float32)) @ V
        S = np.asarray((Vn @ self.UnT_).toarray())
        k = min(self.neighbours, max(S.shape[1] - 1, 0))
        out = []
        for r in range(S.shape[0]):
            s = S[r]
            if own[r] >= 0:
                s[own[r]] = -1.0
            if k <= 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            top = np.argpartition(-s, k - 1)[:k]
            out.append(top[s[top] > 0])
        return out

    def scores(self, batch):
        V, own = self.batch_vectors(batch)
        nb = self.neighbour_rows(V, own)
        m = len(batch)
        rows = np.repeat(np.arange(m), [len(x) for x in nb])
        cols = np.concatenate(nb) if nb else np.zeros(0, np.int64)
        wts = np.concatenate([np.full(len(x), 1.0 / len(x)) for x in nb if len(x)]) \
            if len(cols) else np.zeros(0)
        A = sp.csr_matrix((wts.astype(np.float32), (rows, cols)), shape=(m, self.U_.shape[0]))
        out = self.alpha * V.toarray().astype(np.float64)
        out += (1.0 - self.alpha) * np.asarray((A @ self.U_).toarray())
        self._nb_cache = (batch, nb)
        return out

    def _row_cache(self, batch, row):
        """Dense purchases, days and neighbours' buyer counts of one shopper (for reasons)."""
        c = getattr(self, "_rcache", None)
        if c is None or c[0] is not batch or c[1] != row:
            cache = getattr(self, "_nb_cache", None)
            if cache is None or cache[0] is not batch:
                self.scores(batch)
                cache = self._nb_cache
            nb = cache[1][row]
            n_buy = np.asarray(self.bought_[nb].sum(axis=0)).ravel() if len(nb) else None
            self._rcache = c = (batch, row, batch.counts[row].toarray().ravel(),
                                batch.days[row].toarray().ravel(), nb, n_buy)
        return c

    def reason(self, batch, row, j, score):
        d = self.data
        _, _, cnt, days, nb, n_buy = self._row_cache(batch, row)
        k = float(cnt[j])
        if k > 0:
            own = d.user_index.get(str(batch.users[row])) if (
                getattr(batch, "fitted", False) and batch.users) else None
            when = ""
            if d.ref_time is not None:
                last = pd.Timestamp(d.ref_time) - pd.Timedelta(days=float(days[j]))
                when = f", last on {last:%d %b %Y}"
            if own is not None:
                return (f"this shopper bought it in {int(k)} of their "
                        f"{int(self.n_baskets_[own])} baskets{when}")
            return f"this shopper bought it {_times(k)}{when}"
        if n_buy is not None and n_buy[j] > 0:
            pct = 100.0 * n_buy[j] / len(nb)
            return (f"bought by {pct:.0f}% ({int(n_buy[j])}) of the {len(nb)} shoppers whose "
                    "baskets are most like this shopper's")
        return "bought by shoppers with similar baskets"
