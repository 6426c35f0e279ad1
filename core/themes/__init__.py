"""Item themes: groups of similar items, named in words a marketer understands.

Shops without categories (Online Retail), or with several per item (a film's genres), still need
words for what shoppers like. ``build_themes(con, run_id, text_model)``

1. takes every item that shoppers interacted with and has text, and its cached text embedding
   (``core.embed``; title + description + category path);
2. clusters the embeddings with seeded spherical KMeans (cosine): ``n_themes`` themes, by
   default about sqrt(items / 3) between 4 and 30, never more than a fifth of the items;
3. labels each theme with its distinctive title words (class-based TF-IDF,
   ``core.themes.label``);
4. writes ``item_themes`` (run_id, item_id, theme_id) and ``theme_info`` (run_id, theme_id,
   label, keywords, n_items, buyers, revenue).

Themes are used wherever categories are: preference shares (``user_shares`` dimension 'theme',
written by ``core.features``), segment traits and names, Compare, the map's colouring and the
shopper profile.
"""

from __future__ import annotations

import time

import numpy as np

from core.config import DEFAULT_TEXT_MODEL
from core.progress import NULL, Progress
from core.themes.label import STOPWORDS, ctfidf, label_themes, terms

__all__ = ["STOPWORDS", "build_themes", "ctfidf", "default_n_themes", "label_themes", "terms"]


def default_n_themes(n_items: int) -> int:
    """About sqrt(items / 3), between 4 and 30, and at most a fifth of the items."""
    if n_items < 10:
        return 1 if n_items else 0
    return int(min(max(4, round(np.sqrt(n_items / 3.0))), 30, n_items // 5))


def build_themes(con, run_id: int, text_model: str = DEFAULT_TEXT_MODEL, *,
                 n_themes: int | None = None, seed: int = 42,
                 progress: Progress = NULL) -> dict:
    """Cluster and label the interacted items' text embeddings; returns metrics
    {n_items, n_themes, labels: {theme_id: label}, items_without_text, seconds}."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from core.embed import item_vectors

    t0 = time.perf_counter()
    run_id = int(run_id)
    con.execute("DELETE FROM item_themes WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM theme_info WHERE run_id = ?", [run_id])
    ids, V = item_vectors(con, text_model or DEFAULT_TEXT_MODEL)
    used = {r[0] for r in con.execute(
        "SELECT DISTINCT item_id FROM events WHERE event_type <> 'return'").fetchall()}
    titles = dict(con.execute(
        "SELECT item_id, any_value(coalesce(nullif(trim(title), ''), nullif(trim(description), ''),"
        " category_path) ORDER BY ingest_id DESC NULLS LAST) FROM items GROUP BY item_id"
    ).fetchall())
    keep = [i for i, it in enumerate(ids)
            if it in used and np.any(V[i]) and titles.get(it)]
    n_used = len(used)
    item_ids = [ids[i] for i in keep]
    k = default_n_themes(len(item_ids)) if n_themes is None else int(n_themes)
    k = max(0, min(k, len(item_ids)))
    if k < 2:
        return {"n_items": len(item_ids), "n_themes": 0, "labels": {},
                "items_without_text": n_used - len(item_ids),
                "skipped": "fewer than 10 items with text", "seconds": round(time.perf_counter() - t0, 3)}
    X = V[keep].astype(np.float32)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    with progress.stage("Item themes", total=2) as bar, threadpool_limits(limits=1):
        km = KMeans(k, n_init=3, random_state=int(seed)).fit(X)
        labels = _order_by_size(km.labels_)
        bar.advance(1)
        docs = {c: [titles[item_ids[i]] for i in np.flatnonzero(labels == c)] for c in range(k)}
        named = label_themes(docs)
        bar.advance(1)
    import pandas as pd

    item_theme_df = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan
        "item_id": pd.Series(item_ids, dtype=object), "theme_id": labels.astype(np.int32)})
    con.execute(f"INSERT INTO item_themes SELECT {run_id}, item_id, theme_id FROM item_theme_df")
    con.executemany(
        "INSERT INTO theme_info (run_id, theme_id, label, keywords, n_items) VALUES (?, ?, ?, ?, ?)",
        [[run_id, c, named[c]["label"], named[c]["keywords"], len(docs[c])] for c in range(k)])
    # buyers and revenue per theme, for ordering and for the Compare page
    con.execute(
        """
        UPDATE theme_info SET buyers = s.buyers, revenue = s.revenue
        FROM (SELECT t.theme_id, count(DISTINCT e.user_id) AS buyers,
                     sum(abs(coalesce(e.quantity, 1)) * e.unit_price) AS revenue
              FROM events e JOIN item_themes t ON t.item_id = e.item_id AND t.run_id = ?
              WHERE e.event_type = 'purchase' GROUP BY t.theme_id) s
        WHERE theme_info.run_id = ? AND theme_info.theme_id = s.theme_id
        """, [run_id, run_id])
    return {
        "n_items": len(item_ids),
        "n_themes": k,
        "labels": {c: named[c]["label"] for c in range(k)},
        "items_without_text": n_used - len(item_ids),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _order_by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel 0 = largest theme (ties: lowest original label)."""
    sizes = np.bincount(labels)
    order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], c))
    remap = np.empty(len(sizes), dtype=np.int64)
    remap[order] = np.arange(len(sizes))
    return remap[labels]
