"""Similar shoppers: nearest neighbours in the profile vectors (cosine), with numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd


class ProfileIndex:
    """All profile vectors of a run, L2-normalised, for nearest-neighbour look-ups.

    Load once per run and keep it (the dashboard caches it per store version).
    """

    def __init__(self, user_ids: list[str], vectors: np.ndarray):
        self.user_ids = user_ids
        self.pos = {u: i for i, u in enumerate(user_ids)}
        v = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        self.V = v / np.where(norms == 0, 1, norms)

    @classmethod
    def load(cls, con, run_id: int) -> "ProfileIndex":
        rows = con.execute("SELECT user_id, vector FROM profiles WHERE run_id = ? ORDER BY user_id",
                           [run_id]).fetchall()
        if not rows:
            return cls([], np.zeros((0, 1), dtype=np.float32))
        ids = [r[0] for r in rows]
        return cls(ids, np.array([r[1] for r in rows], dtype=np.float32))

    def __len__(self) -> int:
        return len(self.user_ids)

    def nearest(self, user_id: str, n: int = 10) -> pd.DataFrame:
        """The n most similar other users: user_id, similarity (cosine, 1 = identical)."""
        i = self.pos.get(user_id)
        if i is None:
            return pd.DataFrame(columns=["user_id", "similarity"])
        sims = self.V @ self.V[i]
        sims[i] = -np.inf
        k = min(n, len(sims) - 1)
        if k <= 0:
            return pd.DataFrame(columns=["user_id", "similarity"])
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.lexsort((np.array(self.user_ids, dtype=object)[top].astype(str), -sims[top]))]
        return pd.DataFrame({"user_id": [self.user_ids[j] for j in top],
                             "similarity": sims[top].astype(float)})
