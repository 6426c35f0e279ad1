"""Item text embeddings: the bundled default model offline, unit vectors, and a cache that only
embeds new or changed item texts."""

from __future__ import annotations

import numpy as np
import pytest

from core.embed import TextEmbedder, embed_items, item_text, item_vectors

ITEMS = [
    # item_id, title, description, category_path
    ("A1", "Red wine glass", "Crystal glass for red wine.", "Home > Kitchen > Glassware"),
    ("A2", "White wine glass", "Crystal glass for white wine.", "Home > Kitchen > Glassware"),
    ("B1", "Garden hose 20 m", None, "Garden > Watering"),
    ("B2", "  ", "", None),                                    # no text at all
    ("C1", "Red wine glass", "Crystal glass for red wine.", "Home > Kitchen > Glassware"),  # = A1
]


def _store_with_items(tmp_store, items=ITEMS):
    with tmp_store.write() as con:
        for i, (item, title, desc, cat) in enumerate(items):
            con.execute("INSERT INTO items VALUES (?, ?, ?, ?, NULL, NULL, 1)",
                        [item, title, desc, cat])
    return tmp_store


def test_item_text_joins_the_present_parts_the_same_in_python_and_sql(tmp_store):
    _store_with_items(tmp_store)
    from core.embed import ITEM_TEXT_SQL

    con = tmp_store.read()
    rows = con.execute(f"SELECT i.item_id, {ITEM_TEXT_SQL}, i.title, i.description, "
                       "i.category_path FROM items i ORDER BY 1").fetchall()
    for item, sql_text, title, desc, cat in rows:
        assert sql_text == item_text(title, desc, cat)
    texts = {r[0]: r[1] for r in rows}
    assert texts["A1"] == "Red wine glass. Crystal glass for red wine. Home > Kitchen > Glassware"
    assert texts["B1"] == "Garden hose 20 m. Garden > Watering"
    assert texts["B2"] == ""


def test_text_embedder_gives_unit_float32_vectors_that_mean_something():
    emb = TextEmbedder()  # the bundled all-MiniLM-L6-v2, offline
    V = emb.encode(["red wine glass", "glass for white wine", "garden hose", "red wine glass"])
    assert V.shape == (4, 384) and V.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(V[0], V[3], atol=1e-6)
    assert V[0] @ V[1] > V[0] @ V[2] + 0.2
    assert emb.encode([]).shape == (0, 384)
    # the loaded model is kept per process
    assert TextEmbedder()._model is emb._model


def test_embed_items_embeds_only_new_or_changed_texts(tmp_store):
    _store_with_items(tmp_store)
    with tmp_store.write() as con:
        m1 = embed_items(con, scope="all")
        assert (m1["n_items"], m1["n_texts"], m1["n_embedded"], m1["items_without_text"]) == (5, 3, 3, 1)
        m2 = embed_items(con, scope="all")
        assert (m2["n_embedded"], m2["n_cached"]) == (0, 3)
        con.execute("UPDATE items SET title = 'Garden hose 30 m' WHERE item_id = 'B1'")
        m3 = embed_items(con, scope="all")
        assert m3["n_embedded"] == 1
        con.execute("INSERT INTO items VALUES ('D1', 'Watering can', NULL, 'Garden > Watering', "
                    "NULL, NULL, 1)")
        assert embed_items(con, scope="all")["n_embedded"] == 1
        assert embed_items(con, scope="all")["n_embedded"] == 0
        assert con.execute("SELECT count(*) FROM item_embeddings").fetchall()[0][0] == 5
    con = tmp_store.read()
    ids, V = item_vectors(con)
    assert ids == ["A1", "A2", "B1", "B2", "C1", "D1"]
    assert V.shape == (6, 384) and V.dtype == np.float32
    norms = np.linalg.norm(V, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 2, 4, 5]], 1.0, atol=1e-5)
    assert norms[3] == 0.0                      # no text: zero vector
    np.testing.assert_array_equal(V[0], V[4])   # same text, one cached vector
    # the cached vector is the model's vector of the item's current text
    fresh = TextEmbedder().encode([item_text("Garden hose 30 m", None, "Garden > Watering")])[0]
    np.testing.assert_allclose(V[2], fresh, atol=1e-5)


def test_item_vectors_says_how_to_fill_a_missing_cache(tmp_store):
    _store_with_items(tmp_store)
    with tmp_store.write() as con:
        con.execute("INSERT INTO events VALUES (1, 'u1', 'A1', 'purchase', NULL, 1, NULL, NULL, "
                    "NULL, 1, NULL)")
    with pytest.raises(RuntimeError, match="embed_items"):
        item_vectors(tmp_store.read())


def test_only_items_with_events_are_embedded_by_default(tmp_store):
    """Cost follows the shop: a catalogue item nobody touched is not embedded (zero vector)."""
    _store_with_items(tmp_store)
    with tmp_store.write() as con:
        for i, item in enumerate(["A1", "B1", "B1", "B2"], 1):
            con.execute("INSERT INTO events VALUES (?, 'u1', ?, 'purchase', NULL, 1, NULL, NULL, "
                        "NULL, 1, NULL)", [i, item])
        m = embed_items(con, spare_items=0)
        # texts of A1 and B1 (B2 has none); A2 and C1 have text but no events
        assert (m["scope"], m["n_texts"], m["n_embedded"], m["items_not_embedded"]) == \
            ("interacted", 2, 2, 2)
        assert con.execute("SELECT count(*) FROM item_embeddings").fetchall()[0][0] == 2
    ids, V = item_vectors(tmp_store.read())
    norms = dict(zip(ids, np.linalg.norm(V, axis=1).round(5)))
    assert norms == {"A1": 1.0, "A2": 0.0, "B1": 1.0, "B2": 0.0, "C1": 1.0}  # C1 shares A1's text
    with pytest.raises(ValueError, match="scope"):
        embed_items(tmp_store.read(), scope="some")
    # a few items without events are embedded too (a small catalogue is embedded whole)
    with tmp_store.write() as con:
        m = embed_items(con, spare_items=1)
        assert (m["n_embedded"], m["items_not_embedded"]) == (1, 1)  # A2 (first by id); not C1
        m = embed_items(con)
        assert (m["n_embedded"], m["items_not_embedded"]) == (0, 0)
    ids, V = item_vectors(tmp_store.read())
    assert np.linalg.norm(V[ids.index("A2")]) == pytest.approx(1.0, abs=1e-5)


def _cache_counts(store) -> tuple[int, int]:
    with store.read() as con:
        return con.execute("SELECT (SELECT count(*) FROM item_embeddings), "
                           "(SELECT count(*) FROM records.item_embeddings)").fetchall()[0]


def test_ensure_embedded_embeds_only_missing_items_and_caches_them(tmp_store):
    """Items a build left out are embedded when asked for, once: by a reader into the records
    file (the small-write path, never the store), by a writer into the store."""
    from core.embed import clear_process_cache, ensure_embedded

    _store_with_items(tmp_store)
    with tmp_store.write() as con:
        con.execute("INSERT INTO events VALUES (1, 'u1', 'A1', 'purchase', NULL, 1, NULL, NULL, "
                    "NULL, 1, NULL)")
        embed_items(con, spare_items=0)                       # A1 (and C1, the same text)
    clear_process_cache()
    assert _cache_counts(tmp_store) == (1, 0)
    store_mtime = tmp_store.path.stat().st_mtime_ns
    with tmp_store.read() as con:
        got = ensure_embedded(con, ["A1", "A2", "B1", "B2", "C1", "nope"])
    assert (got.n_embedded, got.stored) == (2, "records")    # A2 and B1; B2 has no text
    assert sorted(got.vectors) == ["A1", "A2", "B1", "C1"]
    assert _cache_counts(tmp_store) == (1, 2)
    assert tmp_store.path.stat().st_mtime_ns == store_mtime  # the store was not written
    fresh = TextEmbedder().encode(["Garden hose 20 m. Garden > Watering"])[0]
    np.testing.assert_allclose(got.vectors["B1"], fresh, atol=1e-5)
    # a second call embeds nothing: from the records file (process cache cleared) ...
    clear_process_cache()
    with tmp_store.read() as con:
        again = ensure_embedded(con, ["A2", "B1"])
        ids, V = item_vectors(con)                            # readers see them too
    assert (again.n_embedded, again.stored) == (0, None)
    np.testing.assert_allclose(again.vectors["B1"], got.vectors["B1"], atol=1e-6)
    assert np.linalg.norm(V[ids.index("A2")]) == pytest.approx(1.0, abs=1e-5)
    # ... or from the process, on a connection opened before the write (a dashboard session)
    with tmp_store.write() as con:
        con.execute("UPDATE items SET title = 'Blue wine glass' WHERE item_id = 'A2'")
    with tmp_store.read() as one, tmp_store.read() as two:
        assert ensure_embedded(one, ["A2"]).n_embedded == 1      # the changed text
        assert ensure_embedded(two, ["A2"]).n_embedded == 0
    assert _cache_counts(tmp_store) == (1, 3)
    # a writer (a build) keeps them in the store; it reads the store's cache only
    with tmp_store.write() as con:
        w = ensure_embedded(con, ["A1", "B1"])
        assert (w.n_embedded, w.stored) == (1, "store")             # B1
    assert _cache_counts(tmp_store) == (2, 3)


def test_review_text_is_embedded_with_the_item_text(tmp_store):
    _store_with_items(tmp_store)
    with tmp_store.write() as con:
        con.execute("INSERT INTO events VALUES (1, 'u1', 'B1', 'review', NULL, 1, NULL, NULL, NULL, 1, NULL), "
                    "(2, 'u2', 'B1', 'review', NULL, 1, NULL, NULL, NULL, 1, NULL), "
                    "(3, 'u2', 'A1', 'purchase', NULL, 1, NULL, NULL, NULL, 1, NULL)")
        con.execute("INSERT INTO event_reviews VALUES (1, 5, 'Long enough for the whole lawn.', 1), "
                    "(2, 2, '  ', 1)")
        embed_items(con)
        from core.embed import _ITEMS_SQL

        texts = dict(con.execute(f"SELECT item_id, text FROM ({_ITEMS_SQL})").fetchall())
    assert texts["B1"] == "Garden hose 20 m. Garden > Watering. Long enough for the whole lawn."
    assert texts["A1"] == "Red wine glass. Crystal glass for red wine. Home > Kitchen > Glassware"
    assert texts["B2"] == ""
    ids, V = item_vectors(tmp_store.read())
    fresh = TextEmbedder().encode([texts["B1"]])[0]
    np.testing.assert_allclose(V[ids.index("B1")], fresh, atol=1e-5)


def test_unknown_model_and_missing_gpu_are_explained(tmp_path):
    with pytest.raises(RuntimeError, match="Could not load the text model"):
        TextEmbedder(str(tmp_path / "no-such-model"))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            TextEmbedder(device="cuda")
