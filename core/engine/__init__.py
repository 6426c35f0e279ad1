"""Where the build's heavy stages run: this process ("local", the default) or a Ray cluster ("ray").

An engine does three things for the pipeline, each with the same inputs and outputs whatever
runs it, so the stages (``core.embed``, ``core.encoder``) stay engine-agnostic:

- ``embed_texts(texts, model_name, device)``: L2-normalised text vectors, in input order;
- ``sequence_vectors(con, config, weights, item_ids, pooling, device)``: the encoder's pooled
  representation of every shopper with interactions, as ``(user_ids, S)``;
- ``fit_encoder(job)``: the encoder's training loop (``core.encoder.loop.fit``) on prepared
  windows, returning the best weights and the training curve;
- ``assign(model, X, Q)``: every shopper's segment under a fitted ``core.segments.fit.TasteModel``
  (nearest KMeans centre, or best signature coverage), row by row;
- ``map_chunks(fn, shared, chunks)``: independent batches of shoppers through one function with
  the same fitted models, e.g. recommendation scoring for a campaign list
  (``core.recommend.bulk``).

``LocalEngine`` runs them in this process, exactly as the build always has. ``RayEngine``
(``core/engine/ray_engine.py``, imported only when asked for) runs the first two as Ray Data
``map_batches`` over shards (texts; shoppers, read per shard from Parquet that DuckDB writes) and
the third as a Ray Train ``TorchTrainer`` with DDP, and assignment and ``map_chunks`` as Ray tasks over
row chunks. Features stay in DuckDB, and results are
written back through the store's normal write path by the stage that asked for them.

``make_engine(name, address=..., workers=...)`` picks one; use it as a context manager so a Ray
session started for a build is shut down afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.progress import NULL, Progress

ENGINES = ("local", "ray")


class EngineError(ValueError):
    """An engine that cannot start or run; the message says what to fix (CLI exit code 2)."""


@dataclass
class FitJob:
    """Everything the encoder's training loop needs, prepared by ``core.encoder.train``."""

    n_items: int
    text: np.ndarray                         # (n_items, text_dim) item text vectors
    train: tuple                             # (items, types, gaps, targets) windows
    val: tuple                               # core.encoder.data.validation_set output
    params: dict[str, Any]
    max_epochs: int
    device: str
    seed: int


@dataclass
class FitResult:
    state: dict                              # best epoch's weights (CPU tensors)
    curve: list[dict] = field(default_factory=list)
    best_epoch: int = 1
    train_seconds: float = 0.0
    workers: int = 1


class Engine:
    """The local engine: every stage in this process (the build's behaviour without --engine)."""

    name = "local"
    workers = 1

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"engine": self.name, "workers": self.workers}

    def text_batch(self, n_texts: int) -> int:
        """How many of ``n_texts`` texts one call of the text model gets (its precision on a
        CPU depends on it: ``core.embed.precision``)."""
        return n_texts

    def embed_texts(self, texts: list[str], model_name: str, device: str,
                    progress_stage=None) -> np.ndarray:
        from core.embed import TextEmbedder

        return TextEmbedder(model_name, device).encode(texts, progress_stage=progress_stage)

    def sequence_vectors(self, con, config: dict, weights: bytes, item_ids: list[str],
                         pooling: str, device: str, progress: Progress = NULL
                         ) -> tuple[list[str], np.ndarray]:
        from core.encoder.data import load_sequences
        from core.encoder.runtime import _build_model, _pooled
        from core.encoder.train import torch_settings

        from core.engine.background import inference_threads

        model, p = _build_model(config, weights, device)
        seq = load_sequences(con, item_ids)
        with progress.stage("Profiles", total=len(seq.user_ids)) as bar, \
                torch_settings(device, 0, p["threads"] or inference_threads(len(seq.user_ids))):
            S = _pooled(model, seq, pooling, device, bar)
        return seq.user_ids, S

    def assign(self, model, X, Q) -> np.ndarray:
        return model.assign(X, Q)

    def share(self, obj):
        """``obj`` (fitted models) ready to hand to ``map_chunks`` many times."""
        return obj

    def map_chunks(self, fn, shared, chunks: list, stage=None) -> list:
        """``[fn(shared, chunk) for chunk in chunks]``, in order: ``shared`` (fitted models) is
        handed over once, each chunk (a batch of shoppers) is independent of the others.
        ``stage`` (a progress stage) advances by ``len(chunk)`` as each one finishes."""
        out = []
        for chunk in chunks:
            out.append(fn(shared, chunk))
            if stage is not None:
                stage.advance(len(chunk))
        return out

    def fit_encoder(self, job: FitJob, progress: Progress = NULL) -> FitResult:
        from core.encoder.loop import fit

        with progress.stage("Training profile encoder", total=job.max_epochs) as bar:
            return fit(job, on_epoch=lambda row: bar.advance(1))


LocalEngine = Engine
LOCAL = LocalEngine()


def make_engine(name: str = "local", *, address: str | None = None, workers: int | None = None,
                shard_dir: str | None = None) -> Engine:
    """The engine called ``name``. "ray" imports Ray now and connects to ``address`` (None: a
    local Ray on this machine) with ``workers`` workers per stage (default 2)."""
    name = (name or "local").lower()
    if name == "local":
        if address or shard_dir:
            raise EngineError("--address and --shard-dir are for --engine ray; add --engine ray "
                              "or leave them out.")
        return LOCAL
    if name == "ray":
        from core.engine.ray_engine import RayEngine

        return RayEngine(address=address, workers=workers, shard_dir=shard_dir)
    raise EngineError(f"engine must be one of {', '.join(ENGINES)} (got {name!r}).")


__all__ = ["ENGINES", "Engine", "EngineError", "FitJob", "FitResult", "LOCAL", "LocalEngine",
           "make_engine"]
