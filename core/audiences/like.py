"""'Anything like <a phrase>': catalogue items whose text is closest to the phrase, by the text
model the build used (cosine similarity of sentence-transformers embeddings)."""

from __future__ import annotations

import numpy as np

from core.audiences.conditions import DefinitionError

MIN_SIMILARITY = 0.35


def match_items(con, phrase: str, model_name: str | None = None, top: int = 20,
                min_similarity: float = MIN_SIMILARITY) -> list[dict]:
    """Up to ``top`` items most like ``phrase`` (similarity >= ``min_similarity``): item_id, title,
    similarity, best first. Only items already embedded are searched (by a build, or on demand
    for a persona): every item with events is, and only items with events have buyers."""
    from core.embed import DEFAULT_MODEL, TextEmbedder, _ITEMS_SQL, cached_embeddings_sql

    phrase = " ".join((phrase or "").split())
    if not phrase:
        raise DefinitionError("Type a phrase to match items against (e.g. 'christmas lights').")
    model = model_name or DEFAULT_MODEL
    rows = con.execute(
        f"""SELECT t.item_id, any_value(i.title), any_value(e.vector)
            FROM ({_ITEMS_SQL}) t JOIN {cached_embeddings_sql(con)} e
              ON e.text_hash = t.text_hash AND e.model = ?
            LEFT JOIN items i USING (item_id)
            WHERE t.text <> '' GROUP BY t.item_id ORDER BY t.item_id""", [model]).fetchall()
    if not rows:
        raise DefinitionError("No item texts are embedded yet: run `segstudio build` first.")
    V = np.asarray([r[2] for r in rows], dtype=np.float32)
    V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    q = TextEmbedder(model).encode([phrase])[0]
    sim = V @ (q / max(np.linalg.norm(q), 1e-12))
    order = np.argsort(-sim, kind="stable")[:top]
    return [{"item_id": str(rows[j][0]), "title": rows[j][1], "similarity": round(float(sim[j]), 3)}
            for j in order if sim[j] >= min_similarity]
