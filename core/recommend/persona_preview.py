"""Persona previews: items (and the nearest segments) for a typed description of a shopper.

The text is read by ``core.recommend.persona`` (price range, occasions, themes, ignored words);
the understood words are embedded with the run's text model and available items in the price
range are ranked by cosine similarity of their text vectors, items of a recognised theme first
among near-equals (+0.05). Besides the available items (``core.recommend.data``), a text match
may suggest a catalogue item nobody has interacted with yet (a new arrival, said in the reason):
the build embeds only items with events (``core.embed``), so the ones whose title shares a word
with the persona (at most ``LAZY_CANDIDATES``, most shared words first) are embedded on demand and
cached (``core.embed.ensure_embedded``). A text that only sets a price gets the shop's best sellers in the
range. The nearest segment is the one whose mean item-text vector (over its shoppers' purchases,
weighted by times bought) is most similar.
"""

from __future__ import annotations

import numpy as np

from core.recommend.previews import Engine, PreviewError, _recs, _segment_name, get_engine
from core.recommend.persona import _WORD, _forms
from core.recommend.recommenders import Recommendation
from core.store.schema import store_currency


LAZY_CANDIDATES = 200


def _unseen(eng: Engine, con) -> dict:
    """{"mask": merchandise catalogue items without any event, "index": {word form: [item]}
    over those of them without a text vector yet}; once per engine."""
    with eng._lock:
        if eng._unseen is None:
            from core.recommend.data import non_merchandise_matcher

            d = eng.data
            seen = {str(r[0]) for r in con.execute(
                f"SELECT DISTINCT item_id FROM {d.events_sql}").fetchall()}
            nm = non_merchandise_matcher()
            mask = np.array([it not in seen and not nm.search(t)
                             for it, t in zip(d.item_ids, d.titles)], dtype=bool)
            eng._unseen = {"mask": mask, "index": None}
        return eng._unseen


def _embed_unseen(eng: Engine, con, query: str, allowed: np.ndarray, embedder=None) -> int:
    """Give the ``allowed`` items without a text vector whose title shares a word with
    ``query`` their vectors (embedded on demand, cached); returns how many were embedded."""
    from core.embed import ensure_embedded

    u = _unseen(eng, con)
    eng.item_vectors(con)
    with eng._lock:
        if u["index"] is None:
            index: dict[str, list[int]] = {}
            for j in np.flatnonzero(u["mask"] & ~eng._has_vector):
                for f in {f for w in _WORD.findall(eng.data.titles[j]) for f in _forms(w)}:
                    index.setdefault(f, []).append(int(j))
            u["index"] = index
        hits: dict[int, int] = {}
        for f in {f for w in _WORD.findall(query) for f in _forms(w)}:
            for j in u["index"].get(f, ()):
                if allowed[j] and not eng._has_vector[j]:
                    hits[j] = hits.get(j, 0) + 1
    todo = sorted(hits, key=lambda j: (-hits[j], j))[:LAZY_CANDIDATES]
    if not todo:
        return 0
    from core.recommend.recommenders import one_torch_thread

    with one_torch_thread():  # a few short texts: more threads only spin on a busy CPU
        got = ensure_embedded(con, [eng.data.item_ids[j] for j in todo], eng.text_model,
                              embedder=embedder)
    with eng._lock:
        for j in todo:
            v = got.vectors.get(eng.data.item_ids[j])
            if v is not None:
                eng._vectors[j] = v
                eng._has_vector[j] = True
    return got.n_embedded


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
    new = np.zeros(data.n_items, dtype=bool)
    if intent.query:  # a text match may find an item nobody has interacted with yet
        new = _unseen(eng, con)["mask"] & intent.price_ok(data.prices)
        _embed_unseen(eng, con, intent.query, new, embedder)
        ok = ok | new
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
        theme += "; new: nobody has looked at it yet" if new[j] else ""
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

