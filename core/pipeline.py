"""`segstudio build`: every stage in order, as one recorded run.

    item text embeddings -> item themes -> features -> held-out baskets -> profile encoder
    (trained without them) -> profiles -> lifecycle lens -> taste lens -> segment descriptions
    (both lenses) -> map -> predictions -> association rules -> the lenses' quality checks ->
    offline evaluation

All stages run inside one ``store.write()``: the run row is written with status 'running' and
finished at the end, and the store is published only if every stage succeeded. A build that
fails or is killed half-way therefore leaves the last complete run serving, untouched.

``BuildParams.engine`` chooses where the heavy stages (text embedding, encoder training, profile
inference) run: this process, or Ray (``core.engine``; started before the store is locked and
shut down after the build).

On 2+ cores three steps run in background workers (``core.engine.background``) while this
process goes on: the predictions are made on a snapshot of the store from after the features,
while the build's encoder trains and the segments are fitted, and collected after the quality
checks (on a shop above ``core.predictions.background.BACKGROUND_MAX_SHOPPERS`` only their own
encoder trains there, and the rest runs here after the descriptions); the offline evaluation
runs on a snapshot of
the store from after the descriptions, while the rules and the quality checks are made here;
the map is laid out from after the descriptions, or on a shop under ``CHECKS_LATER_BELOW``
shoppers from after the checks, so that the evaluation, the last to finish there, has a core to
itself until then. Each is collected where its stage used to run, gives the same result as
running here, and runs here when a worker fails.

Each stage is a plain function ``stage(con, run_id, ..., progress) -> metrics`` in its own
package; this module only orders them, times them and records their metrics in the run.
Stages that need shoppers (profiles, segments, map) are skipped, with a note in the run, on
data that has none (e.g. anonymous baskets such as Groceries); rules still run.

Before any stage, ``check_inputs`` validates the events the build will read (finite times in a
plausible range, finite and sane quantities and prices) and names the file, row and column of
anything that slipped past an older ingest. After the last stage, run retention
(``core.store.retention``) deletes the outputs of builds older than the newest ``keep_runs``
(default 5), keeping any build a saved segment points at.
"""

from __future__ import annotations

import time
from datetime import datetime
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from core.config import DEFAULT_TEXT_MODEL, duckdb_memory_limit
from core.progress import NULL, Progress
from core.store import Store, finish_run, start_run, update_run_metrics
from core.store.records import runs_in_use
from core.store.retention import DEFAULT_KEEP_RUNS, prune_runs


@dataclass
class BuildParams:
    method: str = "kmeans"              # kmeans | dbscan
    k: int | None = None                # None: chosen automatically over k_range
    # From 3: on weakly structured shops (Online Retail: silhouette 0.06-0.13 for every k) the
    # silhouette peaks at a trivial 2-way split, which tells a marketer nothing; 3+ segments do.
    k_range: tuple[int, int] = (3, 6)
    device: str = "auto"                # auto | cpu | cuda
    seed: int = 42
    text_model: str = DEFAULT_TEXT_MODEL
    min_support: float | None = None    # rules; None: chosen automatically
    min_confidence: float | None = None
    evaluate: bool = True               # run the offline evaluation of the recommenders
    eval_holdout: str = "basket"        # basket | interaction
    encoder: dict[str, Any] = field(default_factory=dict)  # encoder hyper-parameters
    currency: str = "£"                 # for descriptions, unless the store sets its own
    predictions: bool = True            # scores per shopper (core.predictions), backtested
    horizon_days: float = 30.0          # what the purchase, goal and value scores look ahead
    goal: str | None = None             # custom goal: a category, theme or title phrase
    as_of: str | None = None            # build as if the data ended at this date (YYYY-MM-DD)
    engine: str = "local"               # local | ray: where the heavy stages run (core.engine)
    ray_address: str | None = None      # engine ray: the cluster (None: Ray on this machine)
    workers: int | None = None          # engine ray: workers per stage (default 2)
    shard_dir: str | None = None        # engine ray: shard files + checkpoints (shared storage)

    def __post_init__(self) -> None:
        if self.method not in ("kmeans", "dbscan"):
            raise ValueError(f"method must be 'kmeans' or 'dbscan' (got {self.method!r}).")
        if self.k is not None and self.k < 2:
            raise ValueError(f"k must be at least 2 (got {self.k}).")
        if not 1 <= self.horizon_days <= 365:
            raise ValueError(f"horizon_days must be between 1 and 365 (got {self.horizon_days}).")
        if self.as_of is not None:
            try:
                self.as_of = datetime.fromisoformat(str(self.as_of)).isoformat(sep=" ")
            except ValueError:
                raise ValueError(f"as_of must be a date like 2011-09-01 (got {self.as_of!r}).") from None
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be 'local' or 'ray' (got {self.engine!r}).")
        if self.engine == "local" and (self.ray_address or self.workers or self.shard_dir):
            raise ValueError("--address, --workers and --shard-dir are for --engine ray: add "
                             "--engine ray, or leave them out.")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1 (got {self.workers}).")
        if self.eval_holdout not in ("basket", "interaction"):
            raise ValueError(f"eval_holdout must be 'basket' or 'interaction' (got {self.eval_holdout!r}).")


class BuildError(ValueError):
    """A build that cannot start on this store; the message says how to fix it."""


def _count(con, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def _as_of(con, as_of: str) -> int:
    """Make every stage of this build see only the events before ``as_of``: a temporary view
    named ``events`` shadows the table for this connection (temporary objects are found first
    and are never written to the store). Returns the number of events the build will use."""
    db = con.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    stamp = datetime.fromisoformat(as_of).isoformat(sep=" ")     # our own text, never the user's
    con.execute(f'CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM "{db}".main.events '
                f"WHERE ts < TIMESTAMP '{stamp}'")
    return _count(con, "SELECT count(*) FROM events")


def _evaluated(result: dict) -> dict:
    from core.evaluate import summary

    return {**summary(result), "evaluated_in": result["evaluated_in"]}


def build(store: Store, params: BuildParams | None = None, progress: Progress = NULL, *,
          keep_runs: int = DEFAULT_KEEP_RUNS) -> dict:
    """Run every stage on the store's data and publish the result as a complete run.

    Returns the run's metrics: one entry per stage plus ``stage_seconds`` and ``total_seconds``,
    and ``retention`` (builds pruned and kept; see ``core.store.retention``).
    """
    from core.engine import make_engine

    params = params or BuildParams()
    t_start = time.perf_counter()
    _warm_workers_early(store, params)
    # Ray starts (or connects) before the store is locked: a bad address fails at once.
    from core.encoder.data import sequences_cached

    # One read of the shoppers' sequences serves every stage (the encoder, the profiles, the
    # segments, the predictions' encoder): at 81 M events each read took over a minute.
    with make_engine(params.engine, address=params.ray_address, workers=params.workers,
                     shard_dir=params.shard_dir) as engine, sequences_cached():
        return _build(store, params, progress, engine, keep_runs, t_start)


# Below this many shoppers the lenses' quality checks (the lifecycle's held-out check, the taste
# segments' bootstrap stability and held-out test) run after the rules, while the workers make the
# map and the evaluation that wait on the segments (Online Retail: ~5 s off the critical path);
# above it they run in their stages, where the million-shopper build's memory was measured.
CHECKS_LATER_BELOW = 100_000

# DuckDB's share of the machine in the build while the map and evaluation workers run (a quarter
# before): at a million shoppers the three processes together reached 17 GB.
WITH_WORKERS = 0.125


# Below this many events two background workers are started early and import their modules,
# one after the other, first thing in the build: the evaluation's, then the map's (UMAP), while
# this process imports its own modules and loads the text model (one core; the embedding that
# follows uses both, and a process beside it slowed it 4.4 -> 9.5 s). The map's worker then loads
# UMAP's kernels after the embedding, beside the single-threaded themes and features. Online
# Retail: ~2 s off the evaluation, the last step, and ~3 s off the map beside it. Larger shops
# start them when they are needed: the million-shopper build's memory was measured so.
PREWARM_BELOW_EVENTS = 5_000_000


def _warm_workers_early(store: Store, params: BuildParams) -> None:
    """On a shop under ``PREWARM_BELOW_EVENTS`` events with the local engine, start the
    evaluation's worker importing its modules, then the map's importing UMAP, before this process
    imports its own and loads the text model (one busy core, ~3.5 s on Online Retail). A store
    that cannot be read here is left to the build, which says why."""
    if params.engine != "local":
        return
    from core.engine.background import prewarm
    from core.evaluate.background import WARM_MODULES
    from core.maps.umap_map import WARM_MODULES as MAP_MODULES

    try:
        with store.read() as con:
            n_events = _count(con, "SELECT count(*) FROM events")
    except Exception:  # noqa: BLE001 - the build's own checks report it
        return
    if n_events < PREWARM_BELOW_EVENTS:
        prewarm(([("evaluate", WARM_MODULES, None)] if params.evaluate else [])
                + [("map", MAP_MODULES, None)])


def _build(store: Store, params: BuildParams, progress: Progress, engine, keep_runs: int,
           t_start: float) -> dict:
    from core.embed import embed_items, resolve_device
    from core.encoder import compute_profiles, train_encoder
    from core.evaluate import EvaluationError
    from core.evaluate.background import finish_evaluation, start_evaluation
    from core.evaluate.splits import session_cuts
    from core.features import compute_features
    from core.features.holdout import cutoffs, last_basket_split
    from core.ingest.sanity import SanityError, check_inputs
    from core.engine.background import prewarm
    from core.maps.umap_map import WARM_MODULES as MAP_MODULES, finish_map, start_map
    from core.migration.matching import keep_names, relabel_like_previous
    from core.predictions.background import finish_predictions, start_predictions
    from core.rules import build_rules
    from core.segments import assign_lifecycle, describe_segments, segment_taste
    from core.store.schema import store_currency
    from core.segments.lifecycle import lifecycle_quality
    from core.themes import build_themes

    with store.write() as con:
        con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
        n_events = _count(con, "SELECT count(*) FROM events")
        if n_events == 0:
            raise BuildError(
                f"The store {store.path} holds no events yet, so there is nothing to build. "
                "Load data first: `segstudio demo` for the demo shop, or "
                "`segstudio ingest FILE --format FORMAT`."
            )
        if params.as_of:
            n_events = _as_of(con, params.as_of)
            if n_events == 0:
                raise BuildError(f"No events before {params.as_of[:10]} (--as-of): choose a later "
                                 "date, or build without --as-of.")
        early = params.engine == "local" and n_events < PREWARM_BELOW_EVENTS
        try:
            check_inputs(con)
        except SanityError as e:
            raise BuildError(f"The build cannot use the data: {e}") from None
        run_id = start_run(con, "build", asdict(params))
        metrics: dict[str, Any] = {"run_id": run_id, "stage_seconds": {}, "skipped": {},
                                   "engine": engine.describe()}
        if params.as_of:
            metrics["as_of"] = params.as_of

        def stage(name: str, fn: Callable[[], dict | None]) -> dict:
            t0 = time.perf_counter()
            progress.message(f"[{name}]")
            out = fn() or {}
            # DuckDB 2 refuses new work on a connection whose last execute() result was not read
            # to its end; a stage's trailing statement must not break the next stage.
            con.complete()
            metrics["stage_seconds"][name] = round(time.perf_counter() - t0, 3)
            metrics[name] = out
            return out

        stage("embed", lambda: embed_items(con, params.text_model, device=params.device,
                                           progress=progress, engine=engine))
        if early:
            prewarm([("map", MAP_MODULES, "core.maps.umap_map:warm_layout")])
        stage("themes", lambda: build_themes(con, run_id, params.text_model, seed=params.seed,
                                             progress=progress))
        stage("features", lambda: compute_features(con, run_id, progress=progress))
        n_users = _count(con, f"SELECT count(*) FROM user_features WHERE run_id = {run_id}")
        metrics["n_users"] = n_users
        metrics["n_events"] = n_events
        metrics["n_items"] = _count(con, "SELECT count(*) FROM items")
        currency = store_currency(con, params.currency)
        predict_encoder = {"device": params.device, "text_model": params.text_model,
                           "params": params.encoder or None}
        from core.predictions.stage import ENCODER_MAX_SHOPPERS, encoder_note

        if n_users > ENCODER_MAX_SHOPPERS:  # a very large shop: behaviour features only
            predict_encoder = None

        map_job = pred_job = eval_job = None
        later, pending = False, []

        def collect_predictions() -> None:
            stage("predictions", lambda: finish_predictions(con, pred_job, progress))
            if predict_encoder is None and isinstance(metrics.get("predictions"), dict):
                metrics["predictions"]["encoder"] = encoder_note(n_users)

        if n_users >= 3:
            if params.predictions:  # made in a background worker while the stages below run
                pred_job = start_predictions(con, run_id, n_shoppers=n_users,
                                             as_of=params.as_of,
                                             horizon_days=params.horizon_days, goal=params.goal,
                                             seed=params.seed, encoder=predict_encoder)
            split = last_basket_split(con)
            metrics["held_out"] = {"shoppers": int(len(split)),
                                   "with_validation_basket": int(split["val_cut"].notna().sum())}
            enc_split = session_cuts(con, split)  # held out from the session's first event
            stage("encoder", lambda: train_encoder(
                con, run_id, device=params.device, seed=params.seed,
                text_model=params.text_model, params=params.encoder or None,
                cutoffs=cutoffs(enc_split), val_cutoffs=cutoffs(enc_split, "val_cut"),
                progress=progress, engine=engine))
            stage("profiles", lambda: compute_profiles(con, run_id, device=params.device,
                                                       progress=progress, engine=engine))
            # the quality checks of both lenses, on a small shop, run after the rules, while the
            # map and the evaluation (which need the segments) are made in the workers
            later = n_users < CHECKS_LATER_BELOW
            stage("lifecycle", lambda: {**assign_lifecycle(con, run_id, currency=currency),
                                        **({} if later else {"quality": lifecycle_quality(
                                            con, split, seed=params.seed)})})
            seg = stage("segments", lambda: segment_taste(
                con, run_id, method=params.method, k=params.k, k_range=tuple(params.k_range),
                seed=params.seed, device=resolve_device(params.device), split=split,
                progress=progress, engine=engine, deferred=pending if later else None))
            # The same segment keeps its number (so its colour) and name from the previous build.
            seg["matched_previous"] = relabel_like_previous(con, run_id, "taste")
            if isinstance(seg.get("sizes"), dict) and seg["matched_previous"].get("renumbered"):
                ren = {int(k): v for k, v in seg["matched_previous"]["renumbered"].items()}
                seg["sizes"] = {ren.get(int(s), int(s)): n for s, n in seg["sizes"].items()}
            # The headline quality figures, at the top level for `segstudio status` and the UI.
            for key in ("method", "k", "silhouette", "stability_ari", "sizes"):
                if key in seg:
                    metrics[key] = seg[key]
            stage("describe", lambda: {
                lens: describe_segments(con, run_id, lens=lens, currency=currency,
                                        progress=progress)
                for lens in ("lifecycle", "taste")})
            metrics["describe"]["names_kept"] = keep_names(con, run_id, seg["matched_previous"])
            # laid out in a background worker while the predictions, rules and checks are
            # collected and made here; on a small shop once the checks are done (below)
            if not later:
                map_job = start_map(con, run_id, seed=params.seed)
            if params.evaluate:  # on a snapshot, in another worker, while the rules are made
                eval_job = start_evaluation(con, run_id, as_of=params.as_of,
                                            split=enc_split if not params.as_of else None,
                                            holdout=params.eval_holdout, seed=params.seed)
            from core.engine.background import busy

            if busy():  # the workers hold their own DuckDB and models beside this process
                con.execute(f"SET memory_limit = '{duckdb_memory_limit(WITH_WORKERS)}'")
            if pred_job is not None and not later:
                collect_predictions()
        else:
            why = (f"{n_users} shopper(s) with an id in the data: profiles, segments and the map "
                   "need at least 3 (anonymous baskets still give association rules)")
            for name in ("encoder", "profiles", "lifecycle", "segments", "describe", "map",
                         "predictions"):
                metrics["skipped"][name] = why
        stage("rules", lambda: build_rules(
            con, run_id, min_support=params.min_support, min_confidence=params.min_confidence,
            progress=progress))
        if later:
            def checks() -> dict:
                t = time.perf_counter()
                metrics["lifecycle"]["quality"] = lifecycle_quality(con, split, seed=params.seed)
                out = {"lifecycle_seconds": round(time.perf_counter() - t, 3)}
                for finish in pending:
                    metrics["segments"].update(finish(progress))
                    out["segments_seconds"] = metrics["segments"]["checks_seconds"]
                if "stability_ari" in metrics["segments"]:  # the headline figure, as above
                    metrics["stability_ari"] = metrics["segments"]["stability_ari"]
                return out

            stage("checks", checks)
            # The evaluation, the longest of the steps after the descriptions (~15 s of one
            # core on Online Retail), has the other core to itself until here; the map (~4 s)
            # takes this one now (laid out beside the checks, it stretched the evaluation).
            map_job = start_map(con, run_id, seed=params.seed)
            # The predictions' worker (its own encoder, then the backtest) is collected here on a
            # small shop: nothing above reads them, and collected after the descriptions the build
            # waited for it (Online Retail: 2.5-4.0 s of an idle core) while it had the rules and
            # the checks to make.
            if pred_job is not None:
                collect_predictions()
        if eval_job is not None:
            try:
                stage("evaluate", lambda: _evaluated(finish_evaluation(con, eval_job, progress)))
            except EvaluationError as e:  # e.g. a ratings shop: no purchases to hold out
                con.complete()
                metrics["skipped"]["evaluate"] = str(e)
        elif params.evaluate and n_users < 3:
            metrics["skipped"]["evaluate"] = "no shoppers to hold out baskets for"
        if map_job is not None:
            stage("map", lambda: finish_map(con, run_id, map_job, progress=progress))
        metrics["total_seconds"] = round(time.perf_counter() - t_start, 3)
        finish_run(con, run_id, metrics)
        # records are read as published now; a save during the build is in the records file
        metrics["retention"] = prune_runs(con, keep_runs, protect=runs_in_use(store.path))
        update_run_metrics(con, run_id, {"retention": metrics["retention"]})
    return metrics
