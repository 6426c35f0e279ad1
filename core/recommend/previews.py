"""Recommendation previews for the dashboard and the CLI: a shopper, a segment, an edited
history ("what if they also bought X / without Y") and a free-text persona.

Everything fitted is kept in an ``Engine`` (one per store file, run and publish), built once by
``get_engine(con, run_id)`` and cached in the process (the dashboard also keeps it in
``st.cache_resource``); a preview then costs a few milliseconds.

Persona matching: the text is read by ``core.recommend.persona`` (price range, occasions,
themes, ignored words); the understood words are embedded with the run's text model
(``core.embed.TextEmbedder``) and available items in the price range are ranked by cosine
similarity of their text vectors (``item_vectors``), items of a recognised theme first among
near-equals (+0.05). Items without a known price are left out when a range is given. A text that
only sets a price gets the shop's best sellers in the range. The nearest segment is the one whose
mean item-text vector (over its shoppers' purchases, weighted by times bought) is most similar.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.recommend.data import ShopData, first_row
from core.recommend.recommenders import (
    RECOMMENDERS,
    Batch,
    Recommendation,
    batch_for_history,
    batch_for_users,
    fit_recommenders,
    interest_of,
)


class PreviewError(ValueError):
    pass


@dataclass
class Engine:
    run_id: int | None
    data: ShopData
    recs: dict
    text_model: str | None
    encoder_error: str | None = None
    _vectors: np.ndarray | None = None
    _seg_vectors: dict | None = None
    _has_vector: np.ndarray | None = None
    _queries: "OrderedDict[str, np.ndarray]" = field(default_factory=OrderedDict)
    _vocab: frozenset | None = None
    _themes: dict | None = None
    _unseen: dict | None = None      # items without events (core.recommend.persona_preview)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def recommender(self, name: str):
        if name not in self.recs:
            why = f" ({self.encoder_error})" if name == "encoder" and self.encoder_error else ""
            raise PreviewError(
                f"Unknown or unavailable recommender {name!r}{why}. Available: "
                f"{', '.join(n for n in RECOMMENDERS if n in self.recs)}.")
        return self.recs[name]

    def item_vectors(self, con) -> np.ndarray:
        """Catalogue-aligned item text vectors (zero rows for items without text)."""
        with self._lock:
            if self._vectors is None:
                from core.embed import item_vectors

                try:
                    ids, V = item_vectors(con, self.text_model) if self.text_model \
                        else item_vectors(con)
                except RuntimeError as e:
                    raise PreviewError(f"Persona previews need the item text embeddings: {e}") from e
                idx = pd.Index(ids).get_indexer(pd.Index(self.data.item_ids))
                out = np.zeros((self.data.n_items, V.shape[1]), dtype=np.float32)
                out[idx >= 0] = V[idx[idx >= 0]]
                self._vectors = out
                self._has_vector = np.linalg.norm(out, axis=1) > 0
            return self._vectors

    def embed_query(self, text: str, embedder=None) -> np.ndarray:
        """The text model's vector of a persona text; the last 256 texts are kept (Streamlit
        reruns a page on every widget change)."""
        with self._lock:
            v = self._queries.get(text)
            if v is not None and embedder is None:
                self._queries.move_to_end(text)
                return v
        if embedder is None:
            from core.embed import TextEmbedder

            embedder = TextEmbedder(self.text_model, device="cpu") if self.text_model \
                else TextEmbedder(device="cpu")
            cache = True
        else:
            cache = False
        from core.recommend.recommenders import one_torch_thread

        with one_torch_thread():  # one short text: more threads only spin on a busy CPU
            v = np.asarray(embedder.encode([text])[0], dtype=np.float32)
        if cache:
            with self._lock:
                self._queries[text] = v
                while len(self._queries) > 256:
                    self._queries.popitem(last=False)
        return v

    def vocabulary(self) -> frozenset:
        from core.recommend.persona import vocabulary_of

        if self._vocab is None:
            self._vocab = vocabulary_of(self.data.titles)
        return self._vocab

    def themes(self, con) -> dict:
        """{"keywords": {label: [words]}, "item_theme": (n_items,) theme label or None}."""
        with self._lock:
            if self._themes is None:
                kw, item_theme = {}, [None] * self.data.n_items
                try:
                    rows = con.execute("SELECT theme_id, label, keywords FROM theme_info "
                                       "WHERE run_id = ?", [int(self.run_id)]).fetchall()
                    labels = {int(t): str(lb) for t, lb, _ in rows}
                    kw = {str(lb): list(k or []) for _, lb, k in rows}
                    for it, t in con.execute("SELECT item_id, theme_id FROM item_themes "
                                             "WHERE run_id = ?", [int(self.run_id)]).fetchall():
                        j = self.data.item_index.get(str(it))
                        if j is not None:
                            item_theme[j] = labels.get(int(t))
                except Exception:  # a build without themes: personas still work
                    kw, item_theme = {}, [None] * self.data.n_items
                self._themes = {"keywords": kw, "item_theme": item_theme}
            return self._themes

    def segment_vectors(self, con) -> tuple[list[int], np.ndarray]:
        """Unit mean item-text vector per segment (purchases weighted by times bought)."""
        V = self.item_vectors(con)
        with self._lock:
            if self._seg_vectors is None:
                d = self.data
                segs = sorted(set(int(s) for s in d.user_segment if s >= 0))
                M = np.zeros((len(segs), V.shape[1]), dtype=np.float32)
                for i, s in enumerate(segs):
                    w = np.asarray(d.user_counts[np.flatnonzero(d.user_segment == s)].sum(axis=0)).ravel()
                    v = w @ V
                    nrm = np.linalg.norm(v)
                    M[i] = v / nrm if nrm > 0 else v
                self._seg_vectors = {"ids": segs, "M": M}
            return self._seg_vectors["ids"], self._seg_vectors["M"]


_ENGINES: "OrderedDict[tuple, Engine]" = OrderedDict()
_ENGINES_LOCK = threading.Lock()
_MAX_ENGINES = 4


def _engine_key(con, run_id):
    try:
        path = con.execute("SELECT path FROM duckdb_databases() "
                           "WHERE database_name = current_database()").fetchall()[0][0]
    except Exception:
        path = None
    row = first_row(con, "SELECT started_at, data_fingerprint FROM runs WHERE run_id = ?",
                    [int(run_id)]) if run_id is not None else None
    return (path, run_id, tuple(row) if row else None)


def get_engine(con, run_id: int | None, *, refresh: bool = False) -> Engine:
    """The fitted recommenders for ``run_id``, cached per store file and run."""
    key = _engine_key(con, run_id)
    with _ENGINES_LOCK:
        if not refresh and key in _ENGINES:
            _ENGINES.move_to_end(key)
            return _ENGINES[key]
    text_model = None
    if run_id is not None:
        row = first_row(con, "SELECT params FROM runs WHERE run_id = ?", [int(run_id)])
        text_model = (json.loads(row[0]) if row and row[0] else {}).get("text_model")
    data = ShopData.load(con, run_id)
    data.index_histories(con)  # previews read a shopper's events from memory
    recs = fit_recommenders(con, run_id, data, text_model=text_model)
    eng = Engine(run_id, data, recs, text_model, fit_recommenders.last_error)
    with _ENGINES_LOCK:
        _ENGINES[key] = eng
        while len(_ENGINES) > _MAX_ENGINES:
            _ENGINES.popitem(last=False)
    return eng


def _recs(rs: list[Recommendation], data: ShopData) -> list[dict]:
    out = []
    for r in rs:
        d = r.to_dict()
        p = data.prices[data.item_index[r.item_id]]
        d["price"] = None if not np.isfinite(p) else float(p)
        out.append(d)
    return out


def _segment_name(data: ShopData, seg: int | None) -> str | None:
    if seg is None or seg < 0:
        return None
    return data.segment_names.get(int(seg), f"segment {seg}")


def _history_summary(data: ShopData, b: Batch, limit: int = 20) -> list[dict]:
    c, d = b.counts, b.days
    order = np.argsort(d.data, kind="stable")[:limit]
    out = []
    for k in order:
        j = int(c.indices[k])
        last = None
        if data.ref_time is not None:
            last = (pd.Timestamp(data.ref_time) - pd.Timedelta(days=float(d.data[k]))).date()
        out.append({"item_id": data.item_ids[j], "title": data.titles[j],
                    "times": int(c.data[k]), "last": str(last) if last else None})
    return out


# ---------------------------------------------------------------------------- previews
FALLBACK_NOTE = ("Shopper {uid!r} is not in this build's data, so nothing is known about them: "
                 "these are {what} (a fallback, not personal recommendations).")
BROWSING_NOTE = ("Shopper {uid!r} has not bought anything yet: these suggestions come from what "
                 "they viewed, put in the basket or liked{seg}.")
# for a shopper with no purchases: recommenders that need purchases give way to the hybrid
NEEDS_PURCHASES = ("repeat", "tifu_knn", "next_basket")


def reads_history(rec, name: str) -> bool:
    """Whether a shopper's event history is read for recommender ``name``: it scores from it
    (the encoder), or it weighs what they viewed, carted or liked (item-kNN, the hybrid)."""
    return rec.needs_history or name in ("item_knn", "hybrid")


def _segment_of(con, run_id, user_id: str) -> int | None:
    if run_id is None:
        return None
    row = first_row(con, "SELECT segment_id FROM segments WHERE run_id = ? AND user_id = ?",
                    [int(run_id), str(user_id)])
    return int(row[0]) if row and row[0] is not None else None


def _fallback(eng: Engine, user_id: str, n: int, exclude=()) -> dict:
    """The unknown shopper: the shop's best sellers, labelled as a fallback."""
    pop = eng.recs["popularity"]
    rs = pop.recommend(n=n, exclude=exclude, batch=batch_for_history(eng.data, []))
    return {"user_id": user_id, "recommender": "popularity", "repeat": False, "segment_id": None,
            "segment_name": None, "basis": "fallback", "history": [],
            "note": FALLBACK_NOTE.format(uid=user_id, what="the shop's best sellers"),
            "recommendations": _recs(rs, eng.data)}


def preview_user(con, run_id: int, user_id: str, *, n: int = 10, recommender: str = "hybrid",
                 repeat: bool = False, exclude=(), engine: Engine | None = None) -> dict:
    """Top ``n`` for a shopper, with their segment, recent purchases and ``basis``:

    * ``purchases``: a shopper with purchases (views, carts and favourites count too);
    * ``browsing``: a shopper who only viewed, carted or liked items: the encoder, item-kNN
      from the items they looked at, and their segment's favourites (``recommender`` options
      that need purchases give way to the hybrid, said in ``note``);
    * ``fallback``: an id the data does not know: the shop's best sellers, labelled as such.
    """
    eng = engine or get_engine(con, run_id)
    data = eng.data
    user_id = str(user_id)
    rec = eng.recommender(recommender)
    if user_id not in data.user_index:
        hist = data.user_history(con, user_id)
        if not hist:
            return _fallback(eng, user_id, n, exclude)
        seg = _segment_of(con, run_id, user_id)
        note = None
        if recommender in NEEDS_PURCHASES:
            note = (f"{recommender} needs purchases; this shopper has none, so the hybrid "
                    "answers instead.")
            recommender, rec = "hybrid", eng.recommender("hybrid")
        b = batch_for_history(data, hist, user_id=user_id, segment_id=seg)
        rs = rec.recommend(n=n, exclude=exclude, repeat=repeat, batch=b)
        segname = _segment_name(data, seg if seg is not None else -1)
        msg = BROWSING_NOTE.format(uid=user_id, seg=f" and from their segment, {segname}"
                                   if segname else "")
        return {"user_id": user_id, "recommender": recommender, "repeat": repeat,
                "segment_id": seg, "segment_name": segname, "basis": "browsing",
                "history": [], "looked_at": _interest_summary(data, b),
                "note": msg + (" " + note if note else ""), "recommendations": _recs(rs, data)}
    # purchases, returns and segment from the fitted matrices; the event history (views,
    # carts...) is read for the recommenders that use it
    hist = data.user_history(con, user_id) if reads_history(rec, recommender) else None
    b = batch_for_users(data, np.array([data.user_index[user_id]]),
                        histories=[hist] if hist is not None and rec.needs_history else None)
    if hist is not None:
        b.interest = [interest_of(data, hist)]
    rs = rec.recommend(n=n, exclude=exclude, repeat=repeat, batch=b)
    seg = int(b.segment[0])
    return {
        "user_id": user_id, "recommender": recommender, "repeat": repeat,
        "segment_id": seg if seg >= 0 else None, "segment_name": _segment_name(data, seg),
        "basis": "purchases", "note": None,
        "history": _history_summary(data, b),
        "recommendations": _recs(rs, data),
    }


def _interest_summary(data: ShopData, b: Batch, limit: int = 20) -> list[dict]:
    kinds = (b.interest or [{}])[0] or {}
    top = sorted(kinds.items(), key=lambda x: -sum(x[1].values()))[:limit]
    return [{"item_id": data.item_ids[j], "title": data.titles[j], "events": dict(k)}
            for j, k in top]


def preview_segment(con, run_id: int, segment_id: int, *, n: int = 10,
                    engine: Engine | None = None) -> dict:
    """What a segment buys more than anyone: items by share of the segment's shoppers."""
    eng = engine or get_engine(con, run_id)
    data = eng.data
    seg = int(segment_id)
    sp_rec = eng.recs["segment_popularity"]
    if seg not in sp_rec.seg_row:
        if seg in data.segment_names:
            # a segment of browsers only: nothing bought to learn from, so the shop's favourites
            rs = eng.recs["popularity"].recommend(n=n, batch=batch_for_history(data, []))
            return {"segment_id": seg, "segment_name": _segment_name(data, seg), "size": 0,
                    "basis": "fallback",
                    "note": (f"Nobody in {_segment_name(data, seg)} has bought anything yet: "
                             "these are the shop's best sellers (a fallback)."),
                    "recommendations": _recs(rs, data)}
        known = ", ".join(str(s) for s in sorted(data.segment_names)) or "none"
        raise PreviewError(f"There is no segment {seg} in build {run_id} (segments: {known}).")
    b = batch_for_history(data, [], segment_id=seg)
    rs = sp_rec.recommend(n=n, batch=b)
    return {"segment_id": seg, "segment_name": _segment_name(data, seg),
            "size": int(sp_rec.seg_users[sp_rec.seg_row[seg]]), "basis": "segment",
            "note": None, "recommendations": _recs(rs, data)}


def _edited_batch(data: ShopData, b: Batch, add, rm: set) -> Batch:
    """A one-shopper batch with the items in ``rm`` removed (purchases and returns) and one more
    purchase of each item in ``add`` today."""
    import scipy.sparse as sp

    drop = np.array([data.item_index[x] for x in rm], dtype=np.int64)
    cnt = b.counts.toarray()[0]
    days = b.days.toarray()[0]
    ret = b.returned_only.toarray()[0]
    cnt[drop] = 0
    days[drop] = 0
    ret[drop] = False
    for x in add:
        j = data.item_index[str(x)]
        cnt[j] += 1
        days[j] = 1e-3
        ret[j] = False
    nz = np.flatnonzero(cnt)
    z = np.zeros(len(nz), dtype=np.int64)
    shape = (1, data.n_items)
    return Batch(counts=sp.csr_matrix((cnt[nz].astype(np.float32), (z, nz)), shape=shape),
                 days=sp.csr_matrix((days[nz].astype(np.float32), (z, nz)), shape=shape),
                 returned_only=sp.csr_matrix(ret[None, :]), segment=b.segment.copy(),
                 histories=None, users=b.users)


def preview_history(con, run_id: int, *, user_id: str | None = None, history: list | None = None,
                    add=(), remove=(), n: int = 10, recommender: str = "hybrid",
                    repeat: bool = False, engine: Engine | None = None) -> dict:
    """Recommendations for an edited history: the shopper's (or the given) history plus
    purchases of ``add`` now, minus every event of the items in ``remove``. Returns the lists
    before and after and what entered/left the top ``n``."""
    eng = engine or get_engine(con, run_id)
    data = eng.data
    unknown = [x for x in list(add) + list(remove) if str(x) not in data.item_index]
    if unknown:
        raise PreviewError(f"Item(s) {', '.join(map(repr, unknown))} are not in the catalogue "
                           "(`items` table). Use item ids such as "
                           f"{data.item_ids[0]!r}.")
    rec = eng.recommender(recommender)
    rm = {str(x) for x in remove}
    now = data.ref_time
    known_user = history is None and user_id is not None and str(user_id) in data.user_index
    if history is None and user_id is not None and not known_user:
        raise PreviewError(f"Shopper {user_id!r} is not in this store; pass history=... instead.")
    if known_user:
        # the shopper's fitted purchases, edited in place (no pass over a long history);
        # the event history is read only for the encoder
        hist = data.user_history(con, str(user_id)) if rec.needs_history else None
        b0 = batch_for_users(data, np.array([data.user_index[str(user_id)]]),
                             histories=[hist] if hist is not None else None)
        b1 = _edited_batch(data, b0, add, rm)
        if hist is not None:
            b1.histories = [[e for e in hist if str(e[0]) not in rm]
                            + [(str(x), "purchase", now) for x in add]]
    else:
        history = list(history or [])
        edited = [e for e in history if str(e[0]) not in rm] + \
            [(str(x), "purchase", now) for x in add]
        b0 = batch_for_history(data, history, user_id=user_id)
        b1 = batch_for_history(data, edited, user_id=user_id)
    before = rec.recommend(n=n, repeat=repeat, batch=b0)
    after = rec.recommend(n=n, repeat=repeat, batch=b1)
    ids0, ids1 = [r.item_id for r in before], [r.item_id for r in after]
    return {
        "user_id": user_id, "recommender": recommender, "added": [str(x) for x in add],
        "removed": sorted(rm), "before": _recs(before, data), "after": _recs(after, data),
        "entered": [i for i in ids1 if i not in ids0], "left": [i for i in ids0 if i not in ids1],
    }


def parse_price_cap(text: str) -> tuple[float | None, str]:
    """(upper price bound, text without the price phrases). "gift under £10" -> (10.0, "gift")."""
    from core.recommend.persona import parse_price

    _, hi, _, rest = parse_price(text)
    return hi, rest or text


from core.recommend.persona_preview import PersonaPreview, preview_persona  # noqa: E402


__all__ = ["Engine", "PersonaPreview", "PreviewError", "get_engine", "parse_price_cap", "preview_history",
           "preview_persona", "preview_segment", "preview_user"]
