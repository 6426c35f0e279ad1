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
    that is also in ``R`` finds itself first (distance 0), as UMAP's own search does."""
    Q, R = np.asarray(Q, np.float32), np.asarray(R, np.float32)
    rn = (R.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    idx = np.empty((len(Q), k), dtype=np.int64)
    dist = np.empty((len(Q), k), dtype=np.float32)
    step = max(1, KNN_BLOCK // max(len(R), 1))
    for s in range(0, len(Q), step):
        q = Q[s:s + step]
        d2 = (q.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)[:, None] + rn[None, :]
        d2 -= 2.0 * (q @ R.T)
        np.maximum(d2, 0.0, out=d2)
        top = top_k(-d2, k)
        idx[s:s + step] = top
        # the chosen neighbours' distances computed directly: the expanded form above loses a
        # point's zero distance to itself to rounding (~1e-3), and UMAP reads the nearest
        # non-zero distance as each point's local scale
        dist[s:s + step] = np.sqrt(((q[:, None, :] - R[top]) ** 2).sum(axis=2))
    return idx, dist
