"""Recommendation previews for the dashboard, through core.recommend's previews.

``engine(con, run_id)`` fits every recommender of a run once (the dashboard keeps it per store
version); ``preview(...)`` asks it about a shopper, a segment, an edited basket or a typed
persona. Results: {"recs": DataFrame(recommender, rank, item_id, title, score, reason),
"info": {...}, "error": message or None}.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

COLUMNS = ["recommender", "rank", "item_id", "title", "price", "score", "reason"]


def available() -> bool:
    try:
        import core.recommend.previews  # noqa: F401
    except ImportError:
        return False
    return True


def engine(con, run_id: int):
    from core.recommend.previews import get_engine

    return get_engine(con, run_id)


def recommender_names(eng) -> list[str]:
    from core.recommend import RECOMMENDERS

    return [n for n in RECOMMENDERS if n in eng.recs] + [n for n in eng.recs if n not in RECOMMENDERS]


def to_frame(recs: Sequence[Any] | None, recommender: str = "") -> pd.DataFrame:
    rows = []
    for rank, r in enumerate(recs or [], 1):
        get = (lambda k: r.get(k)) if isinstance(r, dict) else (lambda k: getattr(r, k, None))
        rows.append({"recommender": recommender or get("source"), "rank": rank,
                     "item_id": get("item_id"), "title": get("title"), "price": get("price"),
                     "score": get("score"),
                     "reason": get("reason")})
    return pd.DataFrame(rows, columns=COLUMNS)


def preview(eng, kind: str, *, con, run_id: int, names: Sequence[str] = ("hybrid",),
            user_id: str | None = None, segment_id: int | None = None, basket: Sequence[str] = (),
            add: Sequence[str] = (), remove: Sequence[str] = (), persona: str = "",
            n: int = 10) -> dict:
    """What the recommenders would suggest.

    kind: "user" (a shopper's history), "segment" (what the segment buys more than anyone),
    "basket" (a basket of item ids, or a shopper's history with ``add``/``remove`` edits), or
    "persona" (a typed description; a price cap such as "under 10 pounds" is honoured).
    """
    from core.recommend import previews as pv

    frames, info = [], {}
    try:
        if kind == "user":
            for name in names:
                out = pv.preview_user(con, run_id, str(user_id), n=n, recommender=name, engine=eng)
                frames.append(to_frame(out["recommendations"], name))
                info = {"segment_name": out.get("segment_name"), "history": out.get("history"),
                        "looked_at": out.get("looked_at"), "basis": out.get("basis"),
                        "note": out.get("note")}
        elif kind == "segment":
            out = pv.preview_segment(con, run_id, int(segment_id), n=n, engine=eng)
            frames.append(to_frame(out["recommendations"], "segment_popularity"))
            info = {"segment_name": out.get("segment_name"), "size": out.get("size"),
                    "note": out.get("note")}
        elif kind == "basket":
            for name in names:
                if user_id:
                    out = pv.preview_history(con, run_id, user_id=str(user_id), add=list(add),
                                             remove=list(remove), n=n, recommender=name, engine=eng)
                else:
                    hist = [(str(i), "purchase", None) for i in basket]
                    out = pv.preview_history(con, run_id, history=hist, n=n, recommender=name,
                                             engine=eng)
                f = to_frame(out["after"], name)
                f["new"] = f["item_id"].isin(out.get("entered") or []) if user_id else False
                frames.append(f)
                info.setdefault("entered", {})[name] = out.get("entered")
                info.setdefault("left", {})[name] = out.get("left")
        elif kind == "persona":
            out = pv.preview_persona(con, run_id, persona, n=n, engine=eng)
            frames.append(to_frame(list(out), "persona"))
            info = {"price_cap": out.price_cap, "query": out.query, "segments": out.segments,
                    "nearest_segment": out.nearest_segment, "understood": out.understood,
                    "ignored": out.ignored, "min_price": out.min_price,
                    "max_price": out.max_price, "occasions": out.occasions}
        else:
            raise ValueError(f"unknown preview kind {kind!r}: user, segment, basket or persona")
    except pv.PreviewError as e:
        return {"recs": pd.DataFrame(columns=COLUMNS), "info": info, "error": str(e)}
    recs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return {"recs": recs, "info": info, "error": None}
