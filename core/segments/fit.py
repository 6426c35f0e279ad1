"""Fitting taste segments: KMeans with (optionally) signature refinement, and assignment.

*Signature refinement* (``refine=True``). KMeans on the taste vectors gives a first division.
Then, repeatedly: each segment's *signature* is its ``signature_size`` items most often bought by
its members (share of members who bought each; ties by overall share), weighted like a top-N
list (1 / log2(rank + 1)); each shopper moves to the segment whose signature covers most of
their expected items, ``Q[u] @ signature``. This stops when nobody moves (at most ``iters``
rounds) or when a segment would empty. Segments then mean "shoppers whose purchases and expected
purchases are these items" - what a merchandiser acts on - rather than mere distance in a space.

A fitted segmentation (``TasteModel``) assigns any shopper: by signature coverage when refined,
else by the nearest KMeans centre; the same rule is used for the production segments, the
bootstrap stability check and the held-out check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans


@dataclass
class TasteModel:
    k: int
    refine: bool
    centres: np.ndarray | None = None        # (k, d) KMeans centres in the candidate's space
    signatures: sp.csr_matrix | None = None  # (n_items, k) rank weights of each signature
    top_items: list[list[int]] | None = None  # each segment's signature items, best first

    def assign(self, X: np.ndarray | None, Q: sp.csr_matrix | None,
               chunk: int = 50_000) -> np.ndarray:
        """Segment of each shopper: best signature coverage, else nearest centre."""
        n = Q.shape[0] if self.refine else len(X)
        out = np.zeros(n, np.int64)
        c2 = None if self.refine else (np.asarray(self.centres, np.float64) ** 2).sum(1)
        for i in range(0, n, chunk):
            if self.refine:
                S = np.asarray((Q[i:i + chunk] @ self.signatures).todense())
                out[i:i + chunk] = S.argmax(axis=1)
            else:
                x = np.asarray(X[i:i + chunk], np.float64)
                out[i:i + chunk] = (c2[None] - 2 * x @ self.centres.T).argmin(axis=1)
        return out


def member_shares(labels: np.ndarray, bought: sp.csr_matrix, k: int) -> np.ndarray:
    """(k, n_items): share of each segment's members who bought each item."""
    n = len(labels)
    ind = sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    sizes = np.maximum(np.bincount(labels, minlength=k), 1).astype(np.float64)
    return np.asarray((ind @ bought).todense()) / sizes[:, None]


def ranked_items(shares: np.ndarray, overall: np.ndarray, top: int) -> list[np.ndarray]:
    """Each row's ``top`` items by share, ties by overall share, then item index."""
    out = []
    idx = np.arange(shares.shape[1])
    for row in shares:
        order = np.lexsort((idx, -overall, -row))
        out.append(order[:top])
    return out


def signature_matrix(top_items: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    k = len(top_items)
    rows, cols, vals = [], [], []
    for c, items in enumerate(top_items):
        w = 1.0 / np.log2(np.arange(len(items)) + 2.0)
        rows.extend(items.tolist())
        cols.extend([c] * len(items))
        vals.extend(w.tolist())
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_items, k))


def fit_taste(X: np.ndarray, Q: sp.csr_matrix, bought: sp.csr_matrix, k: int, *, seed: int,
              refine: bool, n_init: int = 4, signature_size: int = 20, iters: int = 15,
              ) -> tuple[np.ndarray, TasteModel]:
    """Fit k segments on the rows given; returns (labels, model)."""
    km = KMeans(int(k), n_init=n_init, random_state=int(seed)).fit(X)
    labels = km.labels_.astype(np.int64)
    if not refine:
        return labels, TasteModel(int(k), False, centres=km.cluster_centers_)
    overall = np.asarray(bought.mean(axis=0)).ravel()
    n_items = bought.shape[1]
    model = None
    for _ in range(int(iters)):
        tops = ranked_items(member_shares(labels, bought, k), overall, signature_size)
        W = signature_matrix(tops, n_items)
        new = np.asarray((Q @ W).todense()).argmax(axis=1).astype(np.int64)
        if len(np.unique(new)) < k:  # a segment would empty: keep the last full division
            break
        model = TasteModel(int(k), True, signatures=W, top_items=[t.tolist() for t in tops])
        done = np.array_equal(new, labels)
        labels = new  # = model.assign(Q): labels and model always agree
        if done:
            break
    if model is None:  # refinement could not keep k segments: plain KMeans
        return labels, TasteModel(int(k), False, centres=km.cluster_centers_)
    return labels, model


def order_by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel 0 = largest (ties: lowest first index); -1 stays -1."""
    lab = np.asarray(labels)
    ids = [s for s in np.unique(lab) if s >= 0]
    first = {s: int(np.flatnonzero(lab == s)[0]) for s in ids}
    order = sorted(ids, key=lambda s: (-(lab == s).sum(), first[s]))
    remap = {s: i for i, s in enumerate(order)}
    return np.array([remap.get(s, -1) for s in lab], dtype=np.int64)
