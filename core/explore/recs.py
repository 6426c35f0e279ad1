"""Recommendation previews for the dashboard, through core.recommend (when it is installed).

Every function returns None when core.recommend is not available (the page then says so),
and otherwise a DataFrame: item_id, title, score, reason, source.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd


def available() -> bool:
    try:
        import core.recommend  # noqa: F401
    except ImportError:
        return False
    return True


def recommender_names() -> list[str]:
    try:
        import core.recommend as r
    except ImportError:
        return []
    names = getattr(r, "RECOMMENDERS", None)
    if isinstance(names, dict):
        return list(names)
    if isinstance(names, (list, tuple)):
        return [getattr(n, "name", str(n)) for n in names]
    return ["hybrid"]


def to_frame(recs: Sequence[Any] | None) -> pd.DataFrame:
    rows = []
    for r in recs or []:
        get = (lambda k: r.get(k)) if isinstance(r, dict) else (lambda k: getattr(r, k, None))
        rows.append({"item_id": get("item_id"), "title": get("title"), "score": get("score"),
                     "reason": get("reason"), "source": get("source")})
    return pd.DataFrame(rows, columns=["item_id", "title", "score", "reason", "source"])


def _call(fn_name: str, *args, **kwargs) -> pd.DataFrame | None:
    try:
        import core.recommend as r
    except ImportError:
        return None
    fn = getattr(r, fn_name, None)
    if fn is None:
        return None
    out = fn(*args, **kwargs)
    if isinstance(out, dict):  # {recommender: [Recommendation]}
        frames = []
        for name, recs in out.items():
            f = to_frame(recs)
            f["recommender"] = name
            frames.append(f)
        return pd.concat(frames, ignore_index=True) if frames else to_frame([])
    return to_frame(out)
