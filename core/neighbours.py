"""Nearest and best per row: top-k of a score matrix (the ranking kernel of batch scoring and
evaluation) and exact k-nearest neighbours (the map, segments at scale). Shared by stages, so
it belongs to none.

Top-k:

``np.argpartition`` selects row by row on one thread; ``torch.topk`` does the same selection
about 6x faster on a (2,000 x 3,927) float32 block on 2 cores (94 ms against 14 ms, measured),
which is most of the offline evaluation's time (weight tuning ranks the validation shoppers
~180 times). Small blocks (a live preview's one shopper) stay on numpy, so the dashboard never
imports torch just to rank.

Ties: every caller adds a popularity tiebreak far below score differences first, so equal
keys are rare; where they occur, which tied item is taken is unspecified (as with argpartition).
"""

from __future__ import annotations

import numpy as np

TORCH_FROM = 64 * 1024  # elements: below this numpy is as fast and needs no torch import


def top_k(key: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest values of each row of ``key`` (2-D), best first;
    ``-1`` where the value is ``-inf`` (an item that may not be recommended)."""
    k = min(int(k), key.shape[1])
    if k <= 0:
        return np.zeros((key.shape[0], 0), dtype=np.int64)
    if key.size >= TORCH_FROM:
        import torch

        v, i = torch.topk(torch.from_numpy(np.ascontiguousarray(key)), k, dim=1, sorted=True)
        top, pv = i.numpy().astype(np.int64, copy=False), v.numpy()
    else:
        part = np.argpartition(-key, k - 1, axis=1)[:, :k]
        pv = np.take_along_axis(key, part, axis=1)
        order = np.argsort(-pv, axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        pv = np.take_along_axis(pv, order, axis=1)
    top = top.copy() if not top.flags.writeable else top
    top[pv == -np.inf] = -1
    return top


KNN_BLOCK = 20_000_000  # distances per block (80 MB of float32)


def exact_knn(Q: np.ndarray, R: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``Q``'s ``k`` nearest rows of ``R`` (Euclidean), nearest first: ``(indices
    int64, distances float32)``. Blocks of rows keep memory bounded at any size; a row of ``Q``
    that is also in ``R`` finds itself first (distance 0), as UMAP's own search does.

    |q - r|^2 = |q|^2 + |r|^2 - 2 q.r, and |q|^2 is the same along a row, so rows are ranked
    by |r|^2 - 2 q.r: one fused product (``torch.addmm``) and a ``torch.topk`` per block. The
    chosen neighbours' distances are then computed directly and put in order: the expanded form
    loses a point's zero distance to itself to rounding (~1e-3), and UMAP reads the nearest
    non-zero distance as each point's local scale. Placing 20,000 of the million-shopper demo's
    shoppers among 50,000 (74 dimensions, one thread): 6.6 s with numpy's separate passes
    (norms, product, clamp, negation, selection), 5.0 s so; the same neighbours."""
    import torch

    Q, R = np.asarray(Q, np.float32), np.asarray(R, np.float32)
    k = min(int(k), len(R))
    rn = torch.from_numpy((R.astype(np.float64) ** 2).sum(axis=1).astype(np.float32))
    Rt = torch.from_numpy(R).T
    idx = np.empty((len(Q), k), dtype=np.int64)
    dist = np.empty((len(Q), k), dtype=np.float32)
    step = max(1, KNN_BLOCK // max(len(R), 1))
    for s in range(0, len(Q), step):
        q = Q[s:s + step]
        key = torch.addmm(rn, torch.from_numpy(q), Rt, beta=1.0, alpha=-2.0)
        top = torch.topk(key, k, dim=1, largest=False, sorted=True).indices.numpy()
        d = np.sqrt(((q[:, None, :] - R[top]) ** 2).sum(axis=2))
        order = np.argsort(d, axis=1, kind="stable")
        idx[s:s + step] = np.take_along_axis(top, order, axis=1)
        dist[s:s + step] = np.take_along_axis(d, order, axis=1)
    return idx, dist
