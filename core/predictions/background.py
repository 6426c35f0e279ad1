"""The predictions stage in a background worker, on a snapshot of the build's store.

The predictions read only the events, the items' text vectors and the themes (for a goal):
nothing the build writes after its features stage. So on a shop of up to
``BACKGROUND_MAX_SHOPPERS`` the build snapshots its private copy of the store right after the
features (``start_predictions``), and a background worker (``core.engine.background``) trains
the predictions' own encoder and backtests every score on that file while the build trains its
encoder and fits the segments on the other core; ``finish_predictions`` collects the rows and
writes them into the build's store. Same data, same seed: the same scores as in the build
process, which is also the fallback when a worker cannot start or dies.

Before, the worker trained only the predictions' encoder, and the rest of the stage (describing
each shopper at every cut-off, fitting and backtesting every score) ran in the build process
after the segments, while the segments had left the second core idle. On Online Retail
(2 cores) that rest was ~20 s of the build's critical path.

A larger shop keeps today's order (the encoder in a worker, the rest in the build after the
segments): its windows are computed on a sample, but the final cut-off's frame covers every
shopper, and beside the segments' peak it would not fit the million-shopper build's 12 GB.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from core.progress import NULL, Progress
from core.store.publish import snapshot_for_worker, unlink_shadow

# Shops up to this many shoppers make their predictions in a worker beside the segments.
BACKGROUND_MAX_SHOPPERS = 100_000


@dataclass
class PredictionsJob:
    run_id: int
    kwargs: dict
    snapshot: Path | None
    future: Future | None
    asof: object = None     # the encoder started for the in-process path (``start_encoder``)


def start_predictions(con, run_id: int, *, n_shoppers: int, as_of: str | None = None,
                      background: bool = True, **kwargs) -> PredictionsJob:
    """Snapshot the store and start the whole predictions stage in the background worker (a shop
    of up to ``BACKGROUND_MAX_SHOPPERS``, where there is a worker); otherwise start only the
    predictions' own encoder there (``start_encoder``) and leave the rest to
    ``finish_predictions``. ``kwargs`` go to ``compute_predictions``."""
    from core.engine.background import worker
    from core.predictions.stage import start_encoder

    w = worker("predictions") if background and n_shoppers <= BACKGROUND_MAX_SHOPPERS else None
    snap = fut = None
    if w is not None:
        try:
            snap = snapshot_for_worker(con, "predict")
            if snap is not None:
                fut = w.submit("core.predictions.background:predict_file", str(snap),
                               int(run_id), as_of=as_of, **kwargs)
        except Exception:  # no room for the copy, a broken worker: predict in the build
            _remove(snap)
            snap = fut = None
    job = PredictionsJob(int(run_id), kwargs, snap, fut)
    if fut is None:
        job.asof = start_encoder(con, run_id, horizon_days=kwargs.get("horizon_days", 30.0),
                                 goal=kwargs.get("goal"), seed=kwargs.get("seed", 42),
                                 encoder=kwargs.get("encoder"))
    return job


WORKER_SHARE = 1 / 16


def predict_file(path: str, run_id: int, as_of: str | None = None, **kwargs) -> tuple:
    """``compute_predictions`` for run ``run_id`` of the snapshot ``path``. Runs in the worker."""
    import duckdb

    from core.config import duckdb_memory_limit
    from core.predictions.stage import compute_predictions

    con = duckdb.connect(str(path))
    try:
        # the build beside it holds an eighth of the machine, the other workers their own
        con.execute(f"SET memory_limit = '{duckdb_memory_limit(WORKER_SHARE, floor_gb=1.0)}'")
        if as_of:
            from core.pipeline import _as_of

            _as_of(con, as_of)
        t = time.perf_counter()
        out, rows = compute_predictions(con, run_id, **kwargs)
        out["computed_seconds"] = round(time.perf_counter() - t, 3)
        if isinstance(out.get("encoder"), dict) and "trained_in" in out["encoder"]:
            out["encoder"]["trained_in"] = "background worker, with the predictions"
        return out, rows
    finally:
        con.close()


def finish_predictions(con, job: PredictionsJob, progress: Progress = NULL) -> dict:
    """Wait for ``job`` (or make the predictions here), write its rows into the build's store
    and return the metrics, with where they were made and how long the build waited."""
    from core.predictions.stage import compute_predictions, store_predictions

    where, result = "build process", None
    t_wait = time.perf_counter()
    if job.future is not None:
        from core.engine.background import collect

        try:  # a worker that died: made here, same data, same scores
            result, where = collect(job.future, "predictions", progress, "the predictions")
        finally:
            _remove(job.snapshot)
    waited = time.perf_counter() - t_wait
    if result is None:
        result = compute_predictions(con, job.run_id, started=job.asof, progress=progress,
                                     **job.kwargs)
    out, rows = result
    store_predictions(con, job.run_id, rows)
    out["made_in"] = where
    if where == "background worker":
        out["build_waited_seconds"] = round(waited, 3)
    return out


def _remove(p: Path | None) -> None:
    if p is not None:
        unlink_shadow(p)
