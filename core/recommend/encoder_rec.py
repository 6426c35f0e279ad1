"""``encoder``: the profile encoder's next-item scores as a recommender."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from core.recommend.batch import _pseudo_history
from core.recommend.data import first_row
from core.recommend.recommenders import Recommender


class EncoderRecommender(Recommender):
    """The profile encoder's next-item scores (core.encoder, trained by the build)."""
    name = "encoder"
    keeps_zero = True
    needs_history = True

    def __init__(self, text_model: str | None = None, forward_batch: int = 1):
        """``forward_batch``: shoppers per forward pass. 1 (the default): each alone, so a
        shopper's scores are the same to the last digit in any batch (a preview and the bulk
        export agree exactly; a batched matrix product rounds differently). The offline
        evaluation, which scores thousands and compares figures to four digits, passes 256."""
        self.text_model = text_model
        self.forward_batch = forward_batch

    def _fit(self, con, run_id):
        from core.encoder import load_encoder

        self.model = load_encoder(con, run_id, device="cpu")
        vocab = pd.Index([str(x) for x in self.model.item_ids])
        self.cat_to_vocab = vocab.get_indexer(pd.Index(self.data.item_ids))
        self.vectors = None
        try:
            from core.embed import item_vectors

            model = self.text_model
            if model is None and run_id is not None:
                row = first_row(con, "SELECT params FROM runs WHERE run_id = ?", [int(run_id)])
                model = (json.loads(row[0]) if row and row[0] else {}).get("text_model")
            ids, V = item_vectors(con, model) if model else item_vectors(con)
            idx = pd.Index(ids).get_indexer(pd.Index(self.data.item_ids))
            self.vectors = np.where((idx >= 0)[:, None], V[np.maximum(idx, 0)], 0.0).astype(np.float32)
        except Exception:  # reasons fall back to a generic sentence
            self.vectors = None

    def scores(self, batch):
        out = np.full((len(batch), self.data.n_items), -np.inf)
        hists = batch.histories or [_pseudo_history(self.data, batch.counts[i], batch.days[i])
                                    for i in range(len(batch))]
        known = self.cat_to_vocab >= 0
        # the encoder looks back at most max_len interactions: hand it only the recent part
        keep = 4 * int(getattr(getattr(self.model, "model", None), "max_len", 50) or 50)
        recent = []
        for h in hists:
            h = list(h)
            if len(h) > keep and all(len(e) > 2 and e[2] is not None for e in h):
                h = sorted(h, key=lambda e: e[2])[-keep:]
            recent.append(h)
        S = self.model.next_item_scores_many(recent, batch=self.forward_batch)
        out[:, known] = S[:, self.cat_to_vocab[known]]
        return out

    def reason(self, batch, row, j, score):
        hist = (batch.histories or [[]])[row] if batch.histories else []
        if self.vectors is not None and hist:
            kinds: dict[int, str] = {}
            for ev in hist:
                i = self.data.item_index.get(str(ev[0]))
                if i is not None and i != j and str(ev[1]) != "return":
                    kinds[i] = str(ev[1])
            if kinds:
                ids = np.fromiter(kinds, dtype=np.int64)
                sim = np.einsum("ij,j->i", self.vectors[ids], self.vectors[j])
                k = int(np.argmax(sim))
                if sim[k] > 0.3:
                    verb = {"purchase": "bought", "view": "viewed", "click": "viewed",
                            "cart": "put in the basket", "favorite": "saved as a favourite"}.get(
                        kinds[int(ids[k])], "looked at")
                    return f"similar to what this shopper {verb}: {self.data.titles[int(ids[k])]}"
        return "fits the pattern of this shopper's recent activity"
