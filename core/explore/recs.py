"""Recommendation previews for the dashboard, through core.recommend.

``fit(con, run_id)`` fits every recommender once (the dashboard keeps the result per store
version); ``preview(...)`` asks them for a user, a segment, an edited basket or a typed persona
and returns one DataFrame: recommender, rank, item_id, title, score, reason.
Uses core.recommend's own preview functions when it has them.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

COLUMNS = ["recommender", "rank", "item_id", "title", "score", "reason"]


def available() -> bool:
    try:
        import core.recommend  # noqa: F401
    except ImportError:
        return False
    return True


def fit(con, run_id: int) -> dict:
    """All recommenders of the run, fitted once: {name: recommender}."""
    from core.recommend import fit_recommenders

    return fit_recommenders(con, run_id)


def to_frame(recs: Sequence[Any] | None, recommender: str = "") -> pd.DataFrame:
    rows = []
    for rank, r in enumerate(recs or [], 1):
        get = (lambda k: r.get(k)) if isinstance(r, dict) else (lambda k: getattr(r, k, None))
        rows.append({"recommender": recommender or get("source"), "rank": rank,
                     "item_id": get("item_id"), "title": get("title"), "score": get("score"),
                     "reason": get("reason")})
    return pd.DataFrame(rows, columns=COLUMNS)


def preview(recommenders: dict, kind: str, *, con=None, user_id: str | None = None,
            segment_id: int | None = None, basket: Sequence[str] = (), persona: str = "",
            names: Sequence[str] | None = None, n: int = 10) -> pd.DataFrame:
    """What each recommender would recommend.

    kind: "user" (their history), "segment" (a typical shopper of the segment), "basket" (a basket
    of item ids, e.g. a shopper's history edited), "persona" (a typed description; needs the
    encoder's text model).
    """
    names = [x for x in (names or list(recommenders)) if x in recommenders]
    frames = []
    for name in names:
        r = recommenders[name]
        if kind == "user":
            recs = r.recommend(user_id=str(user_id), n=n)
        elif kind == "segment":
            recs = r.recommend(history=[], segment_id=int(segment_id), n=n)
        elif kind == "basket":
            hist = [(str(i), "purchase", None) for i in basket]
            recs = r.recommend(history=hist, n=n, exclude=tuple(basket))
        elif kind == "persona":
            recs = _persona(r, con, persona, n)
        else:
            raise ValueError(f"unknown preview kind {kind!r}: user, segment, basket or persona")
        frames.append(to_frame(recs, name))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _persona(r, con, text: str, n: int):
    """A typed persona: through core.recommend.preview_persona when it exists, else by asking
    recommenders that accept text."""
    import core.recommend as cr

    if hasattr(r, "recommend_text"):
        return r.recommend_text(text, n=n)
    fn = getattr(cr, "preview_persona", None)
    if fn is not None and con is not None:
        out = fn(con, None, text, n=n)
        return out if isinstance(out, list) else []
    return []
