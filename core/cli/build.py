"""`segstudio build`: profiles, segments, map, rules and the evaluation, recorded as one run."""

from __future__ import annotations

from core.cli import UserError, print_json

HELP = "build shopper profiles, segments, the map, rules and recommendations (one recorded run)"
DESCRIPTION = """\
Turn the data in the store into what the dashboard shows, as one recorded build:

  1. behaviour features per shopper (recency, frequency, spend, habits, preferences)
  2. text embeddings of the item titles and descriptions
  3. the profile encoder (learns each shopper's taste from their history)
  4. segments (KMeans with the number chosen automatically, or DBSCAN), named and described
  5. the 2-D segment map
  6. association rules ("bought together"), for the whole shop and each segment
  7. an offline evaluation of every recommender

The dashboard keeps showing the previous build until this one has finished; if the build fails
or is interrupted, nothing changes. Saving segments on the dashboard keeps working during a build.
Afterwards the outputs of builds older than the newest 5 are deleted (--keep-runs, keep_runs in
segstudio.toml), except builds a saved segment was made from; the store stops growing.

Examples:
  segstudio build                         automatic number of segments
  segstudio build --k 6                   exactly 6 segments
  segstudio build --method dbscan         density-based segments (some shoppers stay unassigned)
  segstudio build --device cpu --seed 7   reproducible CPU build
  segstudio build --engine ray            heavy stages on Ray on this machine (2 workers)
  segstudio build --engine ray --address ray://head:10001 --workers 8 --shard-dir /mnt/shared
                                          on a Ray cluster (see the README, "Running on Ray")
"""


def add_arguments(parser) -> None:
    parser.add_argument("--method", choices=["kmeans", "dbscan"], default="kmeans",
                        help="how to form segments (default kmeans)")
    parser.add_argument("--k", type=int, default=None,
                        help="number of segments for kmeans (default: chosen automatically)")
    parser.add_argument("--k-min", type=int, default=3, help="smallest k tried (default 3)")
    parser.add_argument("--k-max", type=int, default=6,
                        help="largest k tried (default 6: a handful of segments to act on)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                        help="where to train the encoder (default auto: CUDA if available)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    parser.add_argument("--text-model", default=None,
                        help="sentence-transformers model for item texts "
                             "(default all-MiniLM-L6-v2, bundled)")
    parser.add_argument("--min-support", type=float, default=None,
                        help="association rules: minimum support (default: automatic)")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="association rules: minimum confidence (default: automatic)")
    parser.add_argument("--holdout", choices=["basket", "interaction"], default="basket",
                        help="offline evaluation: hold out each shopper's last basket "
                             "(default) or last interaction")
    parser.add_argument("--no-evaluate", action="store_true",
                        help="skip the offline evaluation of the recommenders")
    parser.add_argument("--horizon", type=float, default=30.0, metavar="DAYS",
                        help="how far the purchase, goal and spend predictions look ahead "
                             "(default 30 days)")
    parser.add_argument("--goal", default=None, metavar="PHRASE",
                        help="a custom prediction goal: a category, theme or title words, e.g. "
                             "'christmas' (likelihood to buy from it)")
    parser.add_argument("--no-predictions", action="store_true",
                        help="skip the per-shopper predictions")
    parser.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                        help="build as if the data ended on this date (only events before it): "
                             "two builds at different dates show how shoppers moved "
                             "(`segstudio migration`)")
    parser.add_argument("--keep-runs", type=int, default=None, metavar="N",
                        help="keep the outputs of the newest N complete builds (default 5, or "
                             "keep_runs in segstudio.toml); builds a saved segment uses are kept too")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="where the heavy stages run: this process (default) or Ray (text "
                             "embedding and profiles on Ray Data, encoder training with DDP on "
                             "Ray Train); needs pip install 'segment-studio[ray]'")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="--engine ray: the Ray cluster, HOST:6379 or ray://HOST:10001 "
                             "(default: start Ray on this machine)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="--engine ray: workers per stage, one CPU (or GPU) each (default 2)")
    parser.add_argument("--shard-dir", default=None, metavar="DIR",
                        help="--engine ray: folder for the shoppers' shard files and training "
                             "checkpoints; on a cluster, storage every node mounts")


def run(args, settings) -> int:
    from core.pipeline import BuildParams, build
    from core.progress import TqdmProgress

    params = BuildParams(
        method=args.method, k=args.k, k_range=(args.k_min, args.k_max),
        device=args.device or settings.device,
        seed=args.seed if args.seed is not None else settings.seed,
        text_model=args.text_model or settings.text_model,
        min_support=args.min_support, min_confidence=args.min_confidence,
        evaluate=not args.no_evaluate, eval_holdout=args.holdout,
        predictions=not args.no_predictions, horizon_days=args.horizon, goal=args.goal,
        as_of=args.as_of, engine=args.engine, ray_address=args.address, workers=args.workers,
        shard_dir=args.shard_dir,
    )
    store = settings.store()
    if not store.exists():
        raise UserError(
            f"No store at {store.path}. Create one with `segstudio demo` or "
            "`segstudio ingest FILE --format FORMAT` first (or pass --db)."
        )
    keep = settings.keep_runs if args.keep_runs is None else args.keep_runs
    if keep < 1:
        raise UserError(f"--keep-runs must be at least 1 (got {keep}): the newest build is always kept.")
    metrics = build(store, params, progress=TqdmProgress(enabled=not (args.quiet or args.json)),
                    keep_runs=keep)
    names = _segment_names(store, metrics["run_id"])
    if args.json:
        print_json({**metrics, "segments": names})
        return 0
    as_of = f" as of {metrics['as_of'][:10]}" if metrics.get("as_of") else ""
    print(f"Build {metrics['run_id']}{as_of} complete in {metrics['total_seconds']:.1f} s "
          f"({metrics['n_users']:,} shoppers, {metrics['n_items']:,} items, "
          f"{metrics['n_events']:,} events).")
    eng = metrics.get("engine") or {}
    if eng.get("engine", "local") != "local":
        print(f"  engine     {eng['engine']}, {eng['workers']} workers, {eng.get('address')}")
    for name, secs in metrics["stage_seconds"].items():
        note = ""
        if name == "map" and metrics["map"].get("laid_out_in") == "background worker":
            note = (f"  (laid out in {metrics['map']['layout_seconds']:.1f} s in the background, "
                    "beside the stages above)")
        print(f"  {name:<10} {secs:8.1f} s{note}")
    for name, why in metrics.get("skipped", {}).items():
        print(f"  {name:<10}  skipped: {why}")
    ret = metrics.get("retention") or {}
    if ret.get("pruned"):
        print(f"Removed the outputs of old build(s) {', '.join(map(str, ret['pruned']))}; keeping "
              f"{', '.join(map(str, ret['kept']))}.")
    from core.cli.status import segment_quality_lines

    for lens, label in (("lifecycle", "Lifecycle stages"), ("taste", "Taste segments")):
        rows = [s for s in names if s["lens"] == lens]
        if rows:
            print(f"{label}:")
        for s in rows:
            print(f"  {s['segment_id']:>3}  {s['name']:<36} {s['size']:>8,} shoppers "
                  f"({s['user_share']:.0%})")
    for line in segment_quality_lines(metrics):
        print(line)
    print("Open the dashboard with `segstudio serve`.")
    return 0


def _segment_names(store, run_id: int) -> list[dict]:
    from core.segments.lenses import LENSES, lens

    con = store.read()
    out = []
    try:
        for name in LENSES:
            L = lens(name)
            rows = con.execute(
                f"SELECT segment_id, name, size, user_share, description FROM {L.info} "
                "WHERE run_id = ? ORDER BY segment_id", [run_id]).fetchall()
            out += [dict(zip(("segment_id", "name", "size", "user_share", "description"), r),
                         lens=name) for r in rows]
    finally:
        con.close()
    return out
