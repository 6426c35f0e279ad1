"""``next_basket``: a logistic model over repeat-purchase signals, learned on validation baskets.

Candidates per shopper: the ``candidates`` items TIFU-kNN scores highest (``core.recommend.tifu``;
ties by popularity). Each candidate is described by the features in ``FEATURES``: the shopper's
time-decayed frequency of the item and their neighbours', how often and how recently (relative
to the shopper's latest purchase) they bought it, whether it was in their latest basket, the
item's popularity (all time and last 30 days), its repeat rate (share of its buyers who bought
it in two or more baskets) and item-kNN co-occurrence. The score is the logistic model's
probability; items outside the candidates score 0.

One model per list type (``repeats``: bought items allowed; ``new_items``): the offline
evaluation learns it (``learn``) on each shopper's validation basket from models fitted before
it, and stores the coefficients with the ``next_basket`` row; the served recommender reads them
from there. Without a learned model the score is TIFU-kNN's own ranking.
"""

from __future__ import annotations

import json

import numpy as np

from core.recommend.data import first_row
from core.recommend.recommenders import ItemKNNRecommender, Recommender
from core.recommend.tifu import TifuKNNRecommender

FEATURES = ("own", "neighbours", "log_times", "share_of_baskets", "log_days_since", "in_latest",
            "log_popularity", "log_recent_popularity", "repeat_rate", "item_knn",
            "log_baskets", "bought", "log_days_if_bought", "share_x_log_baskets")
RECENT_DAYS = 30
LEARN_BLOCK = 4_000_000   # shoppers x items per block of features while learning (32 MB a dense array)


class NextBasketRecommender(Recommender):
    name = "next_basket"
    keeps_zero = False

    def __init__(self, models: dict | None = None, candidates: int = 150,
                 item_knn: ItemKNNRecommender | None = None):
        """``item_knn``: an ``ItemKNNRecommender()`` already fitted on the same data (the one
        ``fit_recommenders`` fits for itself), used instead of fitting another."""
        self.models = models
        self.candidates = candidates
        self.item_knn = item_knn

    def _fit(self, con, run_id):
        d = self.data
        self.tifu_ = TifuKNNRecommender(group_size=20, group_decay=0.9, alpha=0.5).fit(
            con, run_id, d)
        knn = self.item_knn
        same = knn is not None and getattr(knn, "data", None) is d and knn.min_count == 1
        self.knn_ = knn if same else ItemKNNRecommender().fit(con, run_id, d)
        self._last = None
        self.recent_ = np.asarray(
            d.baskets[np.flatnonzero(d.basket_days <= RECENT_DAYS)].sum(axis=0)).ravel() \
            if d.basket_days is not None else np.zeros(d.n_items)
        uc = d.user_counts
        n_buy = np.asarray((uc > 0).sum(axis=0)).ravel()
        n_rep = np.asarray((uc >= 2).sum(axis=0)).ravel()
        self.repeat_rate_ = (n_rep + 1.0) / (n_buy + 10.0)
        if self.models is None and run_id is not None and con is not None:
            try:
                row = first_row(
                    con, "SELECT params FROM evaluations WHERE run_id = ? AND "
                    "recommender = 'next_basket' ORDER BY "
                    "json_extract_string(params, '$.holdout') = 'basket' DESC LIMIT 1",
                    [int(run_id)])
                self.models = (json.loads(row[0]) if row and row[0] else {}).get("model")
            except Exception:
                self.models = None

    # ------------------------------------------------------------------ features
    def features(self, batch) -> tuple[np.ndarray, np.ndarray, dict]:
        """(candidates (m, c) item indices, features (m, c, len(FEATURES)), parts for reasons).
        The last batch's are kept: both list types' scores of one batch read the same."""
        last = getattr(self, "_last", None)
        if last is not None and last[0] is batch:
            return last[1]
        out = self._features(batch)
        self._last = (batch, out)
        return out

    def _features(self, batch) -> tuple[np.ndarray, np.ndarray, dict]:
        V, own = self.tifu_.batch_vectors(batch)
        nb_rows = self.tifu_.neighbour_rows(V, own)
        self.tifu_._nb_cache = (batch, nb_rows)  # the reasons reuse the neighbours
        Vd = V.toarray()
        nbd = np.zeros_like(Vd)
        for r, rows in enumerate(nb_rows):
            if len(rows):
                nbd[r] = np.asarray(self.tifu_.U_[rows].mean(axis=0)).ravel()
        a = self.tifu_.alpha
        tifu = a * Vd + (1 - a) * nbd
        cnt = batch.counts.toarray()
        days = batch.days.toarray()
        has = cnt > 0
        if (own >= 0).all():
            nbask = self.tifu_.n_baskets_[own].astype(np.float64)
        else:
            nbask = np.array([max(len(np.unique(np.floor(batch.days[r].data))),
                                  cnt[r].max(initial=0)) for r in range(len(batch))], float)
            nbask = np.where(own >= 0, self.tifu_.n_baskets_[np.maximum(own, 0)], nbask)
        nbask = np.maximum(nbask, 1.0)
        latest = np.where(has, days, np.inf).min(axis=1)
        latest = np.where(np.isfinite(latest), latest, 0.0)
        rel = np.where(has, days - latest[:, None], 999.0)
        key = tifu + 1e-9 * self.tiebreak
        c = min(self.candidates, key.shape[1])
        cand = np.argpartition(-key, c - 1, axis=1)[:, :c]
        g = lambda A: np.take_along_axis(A, cand, axis=1)  # noqa: E731
        cn, hs, rl = g(cnt), g(has), g(rel)
        share = cn / nbask[:, None]
        lb = np.broadcast_to(np.log1p(nbask)[:, None], cn.shape)
        knn = g(np.asarray(self.knn_.scores(batch)))
        X = np.stack([
            g(Vd), g(nbd), np.log1p(cn), share, np.log1p(rl), hs & (rl < 0.5),
            np.log1p(self.basket_counts[cand]), np.log1p(self.recent_[cand]),
            self.repeat_rate_[cand], knn, lb, hs, np.log1p(rl) * hs, share * lb,
        ], axis=-1).astype(np.float64)
        return cand, X, {"tifu": tifu}

    def _logit(self, X: np.ndarray, model: dict | None) -> np.ndarray:
        if not model:
            return X[..., 0] * 0.5 + X[..., 1] * 0.5  # TIFU-kNN's own blend
        mu, sd = np.asarray(model["mean"]), np.asarray(model["scale"])
        w, b = np.asarray(model["coef"]), float(model["intercept"])
        return ((X - mu) / sd) @ w + b

    def mode_scores(self, batch, repeat: bool) -> np.ndarray:
        cand, X, _ = self.features(batch)
        model = (self.models or {}).get("repeats" if repeat else "new_items")
        z = self._logit(X, model)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))) if model else np.maximum(z, 0)
        out = np.zeros((len(batch), self.data.n_items))
        np.put_along_axis(out, cand, np.maximum(p, 1e-12), axis=1)
        return out

    def scores(self, batch):
        return self.mode_scores(batch, True)

    def _scores_for(self, batch, repeat):
        return self.mode_scores(batch, repeat), self.reason

    def reason(self, batch, row, j, score):
        """The shopper's own purchases, else their similar shoppers', else co-occurrence."""
        r = self.tifu_.reason(batch, row, j, score)
        if r != "bought by shoppers with similar baskets":
            return r
        return self.knn_.reason(batch, row, j, score)

    # ------------------------------------------------------------------ learning
    def block_features(self, batch) -> tuple[np.ndarray, np.ndarray]:
        """``features``' (candidates, features) of every shopper of ``batch``, computed in
        blocks of shoppers: the computation holds several dense shoppers x catalogue arrays
        (2,000 validation shoppers x 50,000 items took the evaluation past 10 GB at once). Each
        shopper's rows depend on that shopper alone, so a subset's are these rows."""
        step = max(1, LEARN_BLOCK // max(1, self.data.n_items))
        parts = [self.features(batch.take(slice(s, s + step)))[:2]
                 for s in range(0, len(batch), step)]
        if not parts:
            return (np.zeros((0, self.candidates), np.int64),
                    np.zeros((0, self.candidates, len(FEATURES))))
        return np.concatenate([c for c, _ in parts]), np.concatenate([x for _, x in parts])

    def learn(self, batch, targets, bad: np.ndarray, repeat: bool, seed: int = 0,
              features: tuple | None = None) -> dict | None:
        """Fit the logistic model of one list type on validation targets (sparse, shoppers x
        items) of ``batch``; ``bad``: items that may not be recommended; ``features``: the
        batch's ``block_features`` where already computed (both list types learn on the same
        shoppers' features). Returns the model (JSON)."""
        from sklearn.linear_model import LogisticRegression

        cand, X = self.block_features(batch) if features is None else features
        ok = ~np.take_along_axis(bad, cand, axis=1)
        step = max(1, LEARN_BLOCK // max(1, self.data.n_items))  # dense targets a block at once
        T = np.concatenate([np.take_along_axis(targets[s:s + step].toarray() > 0,
                                               cand[s:s + step], axis=1)
                            for s in range(0, len(cand), step)]) if len(cand) else ok
        y, Xf = T[ok], X[ok]
        if y.sum() < 5 or (~y).sum() < 5:
            return None
        mu, sd = Xf.mean(axis=0), Xf.std(axis=0) + 1e-9
        m = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit((Xf - mu) / sd, y)
        return {"features": list(FEATURES), "mean": mu.tolist(), "scale": sd.tolist(),
                "coef": m.coef_[0].tolist(), "intercept": float(m.intercept_[0]),
                "trained_on": {"shoppers": int(len(batch)), "candidates": int(len(y)),
                               "positives": int(y.sum())}}
