"""Persona previews: items (and the nearest segments) for a typed description of a shopper.

The text is read by ``core.recommend.persona`` (price range, occasions, themes, ignored words);
the understood words are embedded with the run's text model and available items in the price
range are ranked by cosine similarity of their text vectors, items of a recognised theme first
among near-equals (+0.05). A text that only sets a price gets the shop's best sellers in the
range. The nearest segment is the one whose mean item-text vector (over its shoppers' purchases,
weighted by times bought) is most similar.
"""

from __future__ import annotations

import numpy as np

from core.recommend.previews import Engine, PreviewError, _recs, _segment_name, get_engine
from core.recommend.recommenders import Recommendation
from core.store.schema import store_currency


class PersonaPreview(list):
    """The persona's recommendations (a list of dicts like the other previews' items) with the
    persona's details as attributes: text, query, price_cap (= max_price), min_price,
    max_price, occasions, themes, ignored, understood, intent, nearest_segment, segments."""

    def __init__(self, recs, **info):
        super().__init__(recs)
        self.info = info
        for k, v in info.items():
            setattr(self, k, v)

    def to_dict(self) -> dict:
        return {**self.info, "recommendations": list(self)}


def preview_persona(con, run_id: int | None, text: str, *, n: int = 10,
                    max_price: float | None = None, engine: Engine | None = None,
                    embedder=None) -> PersonaPreview:
    """Items (and the nearest segments) for a free-text persona, e.g. "gift shopper looking for
    Christmas decorations under 10 pounds" (read by ``core.recommend.persona``: price range,
    occasions, themes, ignored words). ``run_id=None``: the latest complete build. Returns a
    list of recommendation dicts with ``.intent``, ``.understood``, ``.ignored``,
    ``.price_cap``, ``.nearest_segment`` ... (``.to_dict()`` for JSON)."""
    from core.recommend.persona import parse_persona

    if run_id is None:
        from core.store import latest_run

        r = latest_run(con)
        run_id = r["run_id"] if r else None
    if not text or not text.strip():
        raise PreviewError("The persona text is empty: describe the shopper, e.g. "
                           "'gift shopper looking for Christmas decorations under 10 pounds'.")
    eng = engine or get_engine(con, run_id)
    data = eng.data
    th = eng.themes(con)
    intent = parse_persona(text, vocabulary=eng.vocabulary(), themes=th["keywords"])
    if max_price is not None:
        intent.max_price = float(max_price) if intent.max_price is None \
            else min(intent.max_price, float(max_price))
    ok = data.active & intent.price_ok(data.prices)
    in_theme = np.array([t in intent.themes for t in th["item_theme"]], dtype=bool) \
        if intent.themes else np.zeros(data.n_items, dtype=bool)
    q = None
    if intent.query:
        V = eng.item_vectors(con)
        q = eng.embed_query(intent.query, embedder)
        # einsum, not BLAS: a multi-threaded BLAS matvec spins for tens of ms on a busy CPU
        sim = np.einsum("ij,j->i", V, q)
        ok = ok & eng._has_vector
        key = np.where(ok, sim + 0.05 * in_theme, -np.inf)
    else:  # only a price (or nothing understood): the best sellers in the range
        sim = eng.recs["popularity"].basket_counts.astype(np.float64)
        key = np.where(ok, sim + 1e-6 * in_theme, -np.inf)
    k = min(n, int(ok.sum()))
    if k:
        part = np.argpartition(-key, k - 1)[:k]
        top = part[np.lexsort((part, -key[part]))]
    else:
        top = np.array([], dtype=int)
    recs = []
    for j in top:
        p = data.prices[j]
        price = f"; £{p:.2f}" if np.isfinite(p) else ""
        theme = f"; in the {th['item_theme'][j]} theme" if in_theme[j] else ""
        if intent.query:
            why = f"matches “{intent.query}” (text match {sim[j]:.2f})"
        else:
            why = f"a best seller in the price range: in {int(sim[j]):,} baskets"
        recs.append(Recommendation(data.item_ids[j], data.titles[j], float(sim[j]),
                                   f"{why}{theme}{price}", "persona"))
    nearest = []
    if q is not None:
        segs, M = eng.segment_vectors(con)
        if len(segs):
            ss = np.einsum("ij,j->i", M, q)
            for i in np.argsort(-ss)[:3]:
                nearest.append({"segment_id": segs[i], "segment_name": _segment_name(data, segs[i]),
                                "similarity": float(ss[i])})
    return PersonaPreview(_recs(recs, data), text=text, query=intent.query,
                          price_cap=intent.max_price, min_price=intent.min_price,
                          max_price=intent.max_price, occasions=intent.occasions,
                          themes=intent.themes, ignored=intent.ignored,
                          understood=intent.describe(store_currency(con)), intent=intent.to_dict(),
                          nearest_segment=nearest[0] if nearest else None, segments=nearest)

