"""``hybrid``: the weighted blend of the other recommenders' per-shopper normalised scores
(``core.recommend.recommenders`` describes it with the rest)."""

from __future__ import annotations

import json

import numpy as np

from core.recommend.data import first_row
from core.recommend.recommenders import DEFAULT_WEIGHTS, Recommender


def normalise(name: str, s: np.ndarray) -> np.ndarray:
    """Per-shopper scale to [0, 1]: divide by the row maximum (encoder: exp(score - max))."""
    s = np.asarray(s, dtype=np.float64)
    if name == "encoder":
        mx = np.max(np.where(np.isfinite(s), s, -np.inf), axis=1, keepdims=True)
        mx = np.where(np.isfinite(mx), mx, 0.0)
        with np.errstate(invalid="ignore", over="ignore"):
            out = np.exp(np.where(np.isfinite(s), s, -np.inf) - mx)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    mx = s.max(axis=1, keepdims=True)
    return np.divide(s, mx, out=np.zeros_like(s), where=mx > 0)


class HybridRecommender(Recommender):
    """Weighted blend of the components' normalised scores; reason of the largest share.

    Two weight sets, both tuned by the offline evaluation: ``weights`` for lists that may
    repeat past purchases (``repeat=True``, the next-basket task) and ``weights_new`` for lists
    of items the shopper has not bought (the default of ``recommend``). Items no component
    scores are filled in by overall popularity (with its reason)."""
    name = "hybrid"
    keeps_zero = True

    def __init__(self, components: dict[str, Recommender], weights: dict[str, float] | None = None,
                 weights_new: dict[str, float] | None = None):
        self.components = components
        self.weights = dict(weights) if weights else None
        self.weights_new = dict(weights_new) if weights_new else None

    @property
    def needs_history(self) -> bool:
        ws = {**(self.weights or {}), **(self.weights_new or {})}
        return any(self.components[k].needs_history for k, w in ws.items()
                   if w > 0 and k in self.components)

    def _fit(self, con, run_id):
        if (self.weights is None or self.weights_new is None) and run_id is not None:
            try:
                row = first_row(
                    con, "SELECT params FROM evaluations WHERE run_id = ? AND recommender = 'hybrid' "
                    "ORDER BY json_extract_string(params, '$.holdout') = 'basket' DESC, "
                    "users_evaluated DESC LIMIT 1", [int(run_id)])
                prm = json.loads(row[0]) if row and row[0] else {}
            except Exception:
                prm = {}
            if self.weights is None and prm.get("weights"):
                self.weights = {k: float(v) for k, v in prm["weights"].items()}
            if self.weights_new is None and prm.get("weights_new_items"):
                self.weights_new = {k: float(v) for k, v in prm["weights_new_items"].items()}
        self.weights = {k: v for k, v in (self.weights or DEFAULT_WEIGHTS).items()
                        if k in self.components}
        self.weights_new = {k: v for k, v in (self.weights_new or DEFAULT_WEIGHTS).items()
                            if k in self.components}

    def raw_scores(self, batch, weights=None) -> dict[str, np.ndarray]:
        w = self.weights if weights is None else weights
        return {k: self.components[k].scores(batch) for k, v in w.items() if v > 0}

    def component_scores(self, batch, weights=None) -> dict[str, np.ndarray]:
        return {k: normalise(k, v) for k, v in self.raw_scores(batch, weights).items()}

    @staticmethod
    def combine(norm: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray | None:
        out = None
        for k, w in weights.items():
            if w > 0 and k in norm:
                out = w * norm[k] if out is None else out + w * norm[k]
        return out

    def scores(self, batch, weights=None):
        return self._blend(batch, self.weights if weights is None else weights)[0]

    def _blend(self, batch, weights):
        raw = self.raw_scores(batch, weights)
        norm = {k: normalise(k, v) for k, v in raw.items()}
        out = self.combine(norm, weights)
        if out is None:
            out = np.zeros((len(batch), self.data.n_items))
        return out, raw, norm

    def _scores_for(self, batch, repeat):
        weights = self.weights if repeat else self.weights_new
        out, raw, norm = self._blend(batch, weights)

        def reason(b, row, j, score):
            if norm:
                best = max(norm, key=lambda k: weights[k] * norm[k][row, j])
                if weights[best] * norm[best][row, j] > 0:
                    return self.components[best].reason(b, row, j, float(raw[best][row, j]))
            pop = self.components.get("popularity")
            return pop.reason(b, row, j, 0.0) if pop is not None else "popular in the shop"

        return out, reason

    def reason(self, batch, row, j, score):
        return self._scores_for(batch, True)[1](batch, row, j, score)
