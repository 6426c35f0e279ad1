"""The offline evaluation in a background worker, on a snapshot of the build's store.

The evaluation reads only what the build has written by the time the segments are described
(the encoder, the segments and their names, the events), and it runs on one core. So the build
checkpoints its private copy of the store, copies it to a snapshot file beside it
(``start_evaluation``), and a background worker (``core.engine.background``) evaluates that file
while the build process makes the predictions and the rules; ``finish_evaluation`` collects the
result and writes it into the build's store. Same data, same seed: the same figures as
evaluating in the build process, which is also the fallback when a worker cannot start or dies.
The snapshot is deleted when the result is in (a killed build's snapshot is removed with its
other temporary files by the next write to the store).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from concurrent.futures import Future
from pathlib import Path

from core.progress import NULL, Progress
from core.store.publish import snapshot_for_worker, unlink_shadow


@dataclass
class EvaluationJob:
    run_id: int
    kwargs: dict
    snapshot: Path | None
    future: Future | None
    started: float


WORKER_SHARE = 1 / 16

# What the worker imports before its first job (``core.engine.background.prewarm``): ~2 s of
# one core that would otherwise open the evaluation, the last step of a small shop's build.
WARM_MODULES = ("duckdb", "torch", "sklearn.linear_model", "safetensors.torch", "core.evaluate",
                "core.bandit.replay", "core.embed", "core.encoder.data", "core.encoder.model",
                "core.encoder.runtime")


def evaluate_file(path: str, run_id: int, as_of: str | None = None, **kwargs) -> dict:
    """Evaluate run ``run_id`` of the store file ``path`` (not written to). Runs in the worker.
    A shop that cannot be evaluated returns ``{"skipped": reason}``."""
    import duckdb

    from core.config import duckdb_memory_limit
    from core.evaluate import EvaluationError, evaluate_recommenders

    con = duckdb.connect(str(path))
    try:
        # a sixteenth of the machine (at least 1 GB): the build beside it holds an eighth and
        # the map worker its own. Measured on the million-shopper store: the worker's peak
        # 7.59 GB with an eighth (3 GB), 6.09 GB with 1.5 GB, the same evaluation figures.
        con.execute(f"SET memory_limit = '{duckdb_memory_limit(WORKER_SHARE, floor_gb=1.0)}'")
        if as_of:
            from core.pipeline import _as_of

            _as_of(con, as_of)
        try:
            return evaluate_recommenders(con, run_id, write=False, **kwargs)
        except EvaluationError as e:
            return {"skipped": str(e)}
    finally:
        con.close()


def start_evaluation(con, run_id: int, *, as_of: str | None = None, background: bool = True,
                     **kwargs) -> EvaluationJob:
    """Snapshot the store and start evaluating run ``run_id`` in the background worker (when
    there is one); ``kwargs`` go to ``evaluate_recommenders``."""
    from core.engine.background import worker

    kwargs = {**kwargs, "as_of": as_of}
    w = worker("evaluate") if background else None
    snap = fut = None
    if w is not None:
        try:
            snap = snapshot_for_worker(con, "eval")
            if snap is not None:
                fut = w.submit("core.evaluate.background:evaluate_file", str(snap), int(run_id),
                               **kwargs)
        except Exception:  # no room for the copy, a broken worker: evaluate here instead
            _remove(snap)
            snap = fut = None
    return EvaluationJob(int(run_id), kwargs, snap, fut, time.perf_counter())


def finish_evaluation(con, job: EvaluationJob, progress: Progress = NULL) -> dict:
    """Wait for ``job`` (or evaluate here), write the rows into the build's store and return
    the result; raises ``EvaluationError`` where the shop cannot be evaluated."""
    from core.evaluate import EvaluationError, evaluate_recommenders, write_evaluations

    where, out = "build process", None
    if job.future is not None:
        from core.engine.background import collect

        try:  # a worker that died: evaluated here, same data, same figures
            out, where = collect(job.future, "evaluate", progress, "the offline evaluation")
        finally:
            _remove(job.snapshot)
    if out is None:
        kw = {k: v for k, v in job.kwargs.items() if k != "as_of"}
        out = evaluate_recommenders(con, job.run_id, write=False, progress=progress, **kw)
    if "skipped" in out and "recommenders" not in out:
        raise EvaluationError(out["skipped"])
    write_evaluations(con, job.run_id, out)
    out["evaluated_in"] = where
    return out


def _remove(p: Path | None) -> None:
    if p is not None:
        unlink_shadow(p)  # the snapshot and its WAL, as the store's own temporary copies
