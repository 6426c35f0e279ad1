"""Embedding catalogue items on demand: the items a build left out (no events) when a persona or
a page needs them, cached.

``ensure_embedded(con, item_ids, model_name)`` returns the text vectors of the given items,
embedding only those whose (model, text hash) is in no cache yet, and keeps what it embedded:

* on a writable connection (a build, ``Store.write()``): in the store's ``item_embeddings``;
* on a read-only store connection (``Store.read()``: the dashboard, ``segstudio recommend``):
  in the records file beside the store (``records.item_embeddings``), through the small-write
  path (``Store.write_records()``: its own lock, a copy of the records file only, never the
  store, never waiting for a build). A store never takes a write from a reader;
* when that write is impossible (a read-only folder, a records file another process holds for
  long): in this process only, said in the result (``stored == "memory"``).

Every vector embedded here is also kept in the process (by model and text hash), so a second
call on a connection opened before the write embeds nothing either. ``item_vectors`` and
``cached_embeddings_sql`` read the store's cache and the records' together.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from core.embed import DEFAULT_MODEL, _ITEMS_SQL, TextEmbedder, cached_embeddings_sql

PROCESS_CACHE_SIZE = 50_000   # vectors kept in the process (384 floats: about 75 MB)
_CACHE: "OrderedDict[tuple[str, str], np.ndarray]" = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass
class Embedded:
    """The vectors of the asked items that have text ({item_id: float32 vector}), how many texts
    this call embedded, and where they were kept: 'store', 'records', 'memory' or None (nothing
    new). ``note`` says why a write fell back to memory."""
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    n_embedded: int = 0
    stored: str | None = None
    note: str | None = None


def ensure_embedded(con, item_ids, model_name: str | None = DEFAULT_MODEL, device: str = "cpu",
                    embedder=None) -> Embedded:
    """The text vectors of ``item_ids`` (items without text are left out), embedding with
    ``model_name`` only the texts no cache holds, and caching them (see the module doc).
    ``embedder``: anything with ``encode(texts) -> (n, d)`` to use instead of the model."""
    model = model_name or DEFAULT_MODEL
    ids = sorted({str(i) for i in item_ids})
    out = Embedded()
    if not ids:
        return out
    texts = con.execute(
        f"SELECT item_id, text, text_hash FROM ({_ITEMS_SQL}) "
        "WHERE text <> '' AND item_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY item_id",
        [ids]).fetchall()
    hashes = sorted({h for _, _, h in texts})
    found: dict[str, np.ndarray] = {}
    if hashes:
        for h, v in con.execute(
                f"SELECT text_hash, any_value(vector) FROM {cached_embeddings_sql(con)} "
                "WHERE model = ? AND text_hash IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1",
                [model, hashes]).fetchall():
            found[h] = np.asarray(v, dtype=np.float32)
    with _CACHE_LOCK:
        for h in hashes:
            if h not in found and (model, h) in _CACHE:
                found[h] = _CACHE[(model, h)]
                _CACHE.move_to_end((model, h))
    todo = sorted({(h, t) for _, t, h in texts if h not in found})
    if todo:
        enc = embedder or TextEmbedder(model, device)
        V = np.asarray(enc.encode([t for _, t in todo]), dtype=np.float32)
        new = {h: V[k] for k, (h, _) in enumerate(todo)}
        found.update(new)
        with _CACHE_LOCK:
            _CACHE.update({(model, h): v for h, v in new.items()})
            while len(_CACHE) > PROCESS_CACHE_SIZE:
                _CACHE.popitem(last=False)
        out.n_embedded = len(new)
        out.stored, out.note = _keep(con, model, new)
    out.vectors = {i: found[h] for i, _, h in texts if h in found}
    return out


def _keep(con, model: str, new: dict[str, np.ndarray]) -> tuple[str, str | None]:
    """Write new vectors to the store (writable connection) or the records file (a reader)."""
    import pandas as pd

    lazy_embeddings = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan
        "model": model, "text_hash": list(new), "vector": [v.tolist() for v in new.values()]})
    insert = ("INSERT INTO {t} SELECT model, text_hash, CAST(vector AS FLOAT[]) "
              "FROM lazy_embeddings n WHERE NOT EXISTS (SELECT 1 FROM {t} e "
              "WHERE e.model = n.model AND e.text_hash = n.text_hash)")
    current = con.execute("SELECT path, readonly FROM duckdb_databases() "
                          "WHERE database_name = current_database()").fetchall()
    if current and not current[0][1]:
        con.execute(insert.format(t="item_embeddings"))
        return "store", None
    path = current[0][0] if current else None
    if not path:
        return "memory", "the connection is read-only and belongs to no store file"
    from core.store import Store, StoreError

    try:
        with Store(path).write_records() as rec:
            rec.execute(insert.format(t="records.item_embeddings"))
    except (StoreError, OSError) as e:
        return "memory", f"kept in this process only: {e}"
    return "records", None


def clear_process_cache() -> None:
    """Forget the vectors kept in this process (tests; a changed text model)."""
    with _CACHE_LOCK:
        _CACHE.clear()
