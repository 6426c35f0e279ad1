"""The taste lens's shopper representation: what each shopper buys and is expected to buy.

For shopper u, over the events kept for them (all of them in production; those before a
held-out basket when segments are checked):

* ``H[u]`` - their history: the distinct items they bought, each weighted equally (shoppers who
  never bought: the items they viewed, carted or saved);
* ``P[u]`` - the profile encoder's expectation: the mean, over every ``stride``-th (2nd) of their
  last ``positions`` (20) interactions, of its next-item probabilities (softmax over the
  catalogue, each position reading up to max_len interactions back), kept to its ``top_n`` (256)
  most likely items (every 2nd position halves the cost; on Online Retail the segments' held-out
  figures were the same within noise);
* ``Q[u] = (1 - w) H[u] + w P[u]`` (each part sums to 1; w = ``encoder_weight``, default 0.5; a
  shopper with no history is all P).

``taste_vectors`` = rows of sqrt(Q) (the Hellinger embedding, in which Euclidean distance
compares two distributions), reduced to ``dims`` dimensions by a seeded truncated SVD and scaled
to unit length. Measured on Online Retail (``bench/bench_segments.py``): the encoder's part makes
segments stable between seeds, the history makes them predict what members buy; either alone
does worse. ``habits`` are the shopping-habit features (time of day, weekend, price level, basket
size, browsing, returns, seasonality) standardised, for the "taste and habits" candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from core.config import CACHE_BLOCK_SCORES

# behaviour features that describe how someone shops rather than their lifecycle (recency,
# orders, spend and tenure belong to the lifecycle lens)
HABIT_FEATURES = ["avg_order_value", "return_rate", "views_per_purchase", "basket_size",
                  "evening_share", "weekend_share", "mean_hour", "price_sensitivity", "diversity",
                  "holiday_share"]


@dataclass
class TasteInputs:
    """Per shopper (rows, ``user_ids`` sorted) over the catalogue columns ``item_ids``."""

    user_ids: list[str]
    item_ids: list[str]
    Q: sp.csr_matrix            # expected-item distribution, rows sum to 1
    bought: sp.csr_matrix       # 1 where the shopper bought the item (history window)
    n_events: np.ndarray        # events kept per shopper
    counts: sp.csr_matrix | None = None  # purchase events per shopper and item (window)


def l2_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(n > 0, n, 1.0)


def _history(seq, keep_ends: np.ndarray, purchase_code: int, return_code: int, n_items: int):
    """(H rows normalised, bought binary, purchase counts) from each shopper's interactions
    before keep_ends. H: the distinct items bought, or for a shopper who never bought, the
    distinct items they interacted with other than by returning them; each weighted equally.
    Vectorised over every shopper's rows (the rows of ``take_users`` need not be contiguous)."""
    n = len(seq.user_ids)
    starts = np.asarray(seq.starts, np.int64)
    lens = np.maximum(np.asarray(keep_ends, np.int64) - starts, 0)
    row = np.repeat(np.arange(n), lens)
    first = np.cumsum(lens) - lens
    pos = np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(first - starts, lens)
    items, types = np.asarray(seq.items)[pos], np.asarray(seq.types)[pos]

    def mat(keep):
        return sp.csr_matrix((np.ones(int(keep.sum()), np.float64), (row[keep], items[keep])),
                             shape=(n, n_items))  # duplicates summed: counts

    C = mat(types == purchase_code)
    C.sum_duplicates()
    B = C.copy()
    B.data[:] = 1.0
    N = mat(types != return_code)
    N.sum_duplicates()
    N.data[:] = 1.0
    has_b = np.diff(B.indptr) > 0
    H = (sp.diags(has_b.astype(np.float64)) @ B + sp.diags((~has_b).astype(np.float64)) @ N)
    H.eliminate_zeros()
    sums = np.asarray(H.sum(axis=1)).ravel()
    H = sp.diags(np.where(sums > 0, 1.0 / np.maximum(sums, 1), 0.0)) @ H
    return H.tocsr(), B.tocsr(), C.tocsr()


EXPECTED_CHUNK_SCORES = CACHE_BLOCK_SCORES   # next-item scores a chunk of shoppers holds


def _expected(model, seq, keep_ends: np.ndarray, top_n: int, device: str,
              positions: int = 20, cache: dict | None = None, stride: int = 1) -> sp.csr_matrix:
    """Mean next-item probabilities over each shopper's last ``positions`` kept interactions
    (the encoder reads up to max_len before each), top_n kept and renormalised. Rows of
    shoppers with no kept events are empty. ``cache`` ({(user, end): (values, items)}) lets
    several windows share the shoppers whose window is the same."""
    import torch

    from core.encoder.data import last_window

    n, n_items, L = len(seq.user_ids), model.n_items, model.max_len
    k = int(min(top_n, n_items))
    P_ = int(min(positions, L))
    scored = len(range((P_ - 1) % stride, P_, stride))  # positions scored per shopper
    # Small chunks keep each chunk's logits and softmax in the processor's cache
    # (``CACHE_BLOCK_SCORES``). One position (a very large shop), for the top-k: at 50,000 items
    # 0.45 -> 0.31 ms per shopper from 256 to 32 shoppers a chunk.
    chunk = int(max(1, min(256, (1.6e6 if scored == 1 else EXPECTED_CHUNK_SCORES)
                           // max(1, scored * n_items))))
    data = np.zeros((n, k), np.float32)
    idx = np.zeros((n, k), np.int64)
    keep_cache = cache is not None
    cache = {} if cache is None else cache
    ends = np.asarray(keep_ends)
    todo = []
    for u in np.flatnonzero(ends > np.asarray(seq.starts)):
        hit = cache.get((int(u), int(ends[u])))
        if hit is None:
            todo.append(u)
        else:
            data[u], idx[u] = hit
    with torch.inference_mode():
        E = model.item_matrix()
        E1 = E[1:].contiguous()  # (n_items, d): one contiguous matrix product per chunk
        for i in range(0, len(todo), chunk):
            us = todo[i:i + chunk]
            win = [last_window(seq, seq.starts[u], ends[u], L) for u in us]
            items, types, gaps = (torch.as_tensor(np.stack(c), device=device) for c in zip(*win))
            if scored == 1:
                h = model(items, types, gaps, E, last=True)
                # one position (the last, always an interaction): the top_n of a softmax,
                # renormalised, is the softmax of the top_n logits; no pass over the catalogue
                # for the softmax (at a million shoppers and 50,000 items this is most of it)
                v, j = torch.topk(torch.nn.functional.linear(h[:, 0], E1, model.item_bias)
                                  .float(), k, dim=-1)
                v = torch.softmax(v, dim=-1).cpu().numpy()
            else:
                h = model(items, types, gaps, E)[:, -P_:][:, (P_ - 1) % stride::stride]
                # the softmax of the positions that hold an interaction only (a short history's
                # window starts with padding: 13 % of the positions on Online Retail)
                valid = types[:, -P_:][:, (P_ - 1) % stride::stride] > 0
                p = torch.softmax(model.scores(h[valid], E).float(), dim=-1)
                pm = torch.zeros(len(us), p.shape[1], device=p.device).index_add_(
                    0, valid.nonzero()[:, 0], p)
                pm /= valid.sum(1, keepdim=True).clamp_min(1)
                v, j = torch.topk(pm, k, dim=-1)
                v = (v / v.sum(-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()
            j = j.cpu().numpy()
            data[us], idx[us] = v, j
            if keep_cache:
                for r, u in enumerate(us):
                    cache[(int(u), int(ends[u]))] = (v[r], j[r])
    rows = np.repeat(np.arange(n), k)
    P = sp.csr_matrix((data.ravel().astype(np.float64), (rows, idx.ravel())), shape=(n, n_items))
    P.eliminate_zeros()
    return P


def taste_inputs(con, run_id: int, *, keep: dict[str, int] | None = None,
                 encoder_weight: float = 0.5, top_n: int = 256, positions: int = 20,
                 stride: int = 2, device: str = "cpu", seq=None, model=None,
                 cache: dict | None = None) -> TasteInputs:
    """``TasteInputs`` of run ``run_id``'s shoppers, each cut to their first ``keep[u]``
    interactions when given (the encoder's vocabulary is the catalogue)."""
    from core.encoder.data import load_sequences
    from core.encoder.model import TYPE_CODES
    from core.encoder.runtime import _build_model, _read_checkpoint

    config, weights, item_ids = _read_checkpoint(con, run_id)
    if model is None:
        model, _ = _build_model(config, weights, device)
    if seq is None:
        seq = load_sequences(con, item_ids)
    ends = seq.ends.copy()
    if keep:
        for u, uid in enumerate(seq.user_ids):
            k = keep.get(uid)
            if k is not None:
                ends[u] = min(ends[u], seq.starts[u] + max(int(k), 0))
    H, B, C = _history(seq, ends, TYPE_CODES["purchase"], TYPE_CODES["return"], len(item_ids))
    if B.nnz == 0:  # a shop without purchases: what shoppers interacted with stands in
        B = (H > 0).astype(np.float64).tocsr()
        C = B
    P = _expected(model, seq, ends, top_n, device, positions=positions, cache=cache,
                  stride=stride)
    w = float(encoder_weight)
    has_h = np.asarray(H.sum(axis=1)).ravel() > 0
    wh = np.where(has_h, 1.0 - w, 0.0)
    wp = np.where(has_h, w, 1.0)
    Q = (sp.diags(wh) @ H + sp.diags(wp) @ P).tocsr()
    return TasteInputs(seq.user_ids, list(item_ids), Q, B, ends - seq.starts, C)


def taste_vectors(Q: sp.csr_matrix, dims: int = 64, seed: int = 42):
    """(unit-length SVD coordinates of sqrt(Q), the fitted SVD) - the taste space."""
    from sklearn.decomposition import TruncatedSVD

    R = Q.copy()
    R.data = np.sqrt(R.data)
    d = int(max(1, min(dims, R.shape[1] - 1, R.shape[0] - 1)))
    svd = TruncatedSVD(d, random_state=int(seed), algorithm="randomized", n_iter=5)
    return l2_rows(svd.fit_transform(R)).astype(np.float32), svd


def habit_matrix(con, run_id: int, user_ids: list[str], table: str = "user_features"):
    """(standardised habit features in ``user_ids`` order, their names); see HABIT_FEATURES."""
    from core.features import feature_matrix

    uid, X, names = feature_matrix(con, run_id, columns=HABIT_FEATURES, table=table)
    pos = {u: i for i, u in enumerate(uid)}
    out = np.zeros((len(user_ids), X.shape[1]), np.float32)
    idx = np.array([pos.get(u, -1) for u in user_ids])
    ok = idx >= 0
    out[ok] = X[idx[ok]]
    return out, names


def block_scales(taste: np.ndarray, habits: np.ndarray) -> tuple[float, float]:
    """Each block's root mean squared row length (what ``combine`` divides it by)."""
    def rms(X):
        ms = float((np.asarray(X, np.float64) ** 2).sum(axis=1).mean()) if X.size else 0.0
        return np.sqrt(ms) if ms > 0 else 1.0

    return rms(taste), rms(habits)


def combine(taste: np.ndarray, habits: np.ndarray, habit_weight: float = 0.5,
            scales: tuple[float, float] | None = None) -> np.ndarray:
    """[taste, habits], each block scaled to its share of the total variance (``scales``: the
    blocks' scales measured on other rows, for shoppers assigned after a fit on a sample)."""
    w = float(habit_weight)
    if habits.shape[1] == 0:
        return np.asarray(taste, np.float32)
    st, sh = scales or block_scales(taste, habits)
    return np.hstack([np.sqrt(1 - w) * (taste / st), np.sqrt(w) * (habits / sh)]).astype(np.float32)
