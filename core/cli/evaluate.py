"""`segstudio evaluate`: the offline evaluation of the recommenders of the latest build."""

from __future__ import annotations

import json

from core.cli import UserError, print_json

HELP = "offline evaluation of the recommenders (Recall/NDCG/HitRate/MRR@10, coverage)"
DESCRIPTION = """\
Show how well each recommender predicted shoppers' held-out last basket (or last purchase) in the
latest complete build: Recall@10, NDCG@10, HitRate@10, MRR@10 over a full ranking of the
catalogue, and catalogue coverage. Models are re-fitted without the held-out data (no leakage).

The build stores the evaluation for its hold-out (basket by default); asking for the other
hold-out, or --recompute, computes it now and saves it with the build.

Examples:
  segstudio evaluate
  segstudio evaluate --holdout interaction
  segstudio evaluate --json
"""


def add_arguments(parser) -> None:
    parser.add_argument("--holdout", choices=["basket", "interaction"], default="basket",
                        help="hold out each shopper's last basket (default) or last purchase")
    parser.add_argument("--recompute", action="store_true",
                        help="compute again even if the build already has this evaluation")
    parser.add_argument("--max-users", type=int, default=None,
                        help="evaluate at most this many shoppers (seeded sample; default 2,000)")


COLS = [("recall10", "Recall@10"), ("ndcg10", "NDCG@10"), ("hitrate10", "HitRate@10"),
        ("mrr10", "MRR@10"), ("coverage", "Coverage")]


def _rows_from_store(con, run_id, holdout):
    from core.evaluate import read_evaluations

    df = read_evaluations(con, run_id, holdout)
    rows = []
    for r in df.to_dict("records"):
        r["params"] = json.loads(r["params"]) if r["params"] else {}
        rows.append(r)
    return rows


def run(args, settings) -> int:
    from core.evaluate import DEFAULT_MAX_USERS, EvaluationError, evaluate_recommenders
    from core.progress import TqdmProgress
    from core.store import latest_run

    store = settings.store()
    con = store.read()
    try:
        run_ = latest_run(con)
        if run_ is None:
            raise UserError(f"No complete build in {store.path}: run `segstudio build` first, "
                            "then `segstudio evaluate`.")
        rid = run_["run_id"]
        rows = [] if args.recompute else _rows_from_store(con, rid, args.holdout)
    finally:
        con.close()
    if not rows:
        progress = TqdmProgress(enabled=not (args.quiet or args.json))
        try:
            with store.write() as wcon:
                evaluate_recommenders(wcon, rid, holdout=args.holdout, seed=settings.seed,
                                      max_users=args.max_users or DEFAULT_MAX_USERS,
                                      progress=progress)
        except EvaluationError as e:
            raise UserError(str(e)) from e
        con = store.read()
        try:
            rows = _rows_from_store(con, rid, args.holdout)
        finally:
            con.close()
    if args.json:
        print_json({"run_id": rid, "holdout": args.holdout, "recommenders": rows})
        return 0
    p = rows[0]["params"] if rows else {}
    print(f"Build {rid}: held out each shopper's last {args.holdout} "
          f"({rows[0]['users_evaluated']:,} shoppers evaluated of {p.get('users_eligible', '?'):,} "
          f"eligible; full ranking of {p.get('catalogue_items', '?'):,} catalogue items)")
    print(f"{'recommender':<20}" + "".join(f"{h:>12}" for _, h in COLS))
    for r in rows:
        print(f"{r['recommender']:<20}" + "".join(f"{r[c]:>12.4f}" for c, _ in COLS))
    hy = next((r for r in rows if r["recommender"] == "hybrid"), None)
    if hy and hy["params"].get("weights"):
        w = ", ".join(f"{k} {v:g}" for k, v in hy["params"]["weights"].items())
        print(f"hybrid weights (tuned on a validation split): {w}")
    enc = next((r for r in rows if r["recommender"] == "encoder"), None)
    if enc and enc["params"].get("encoder_overlap"):
        o = enc["params"]["encoder_overlap"]
        print(f"note: {o['share']:.0%} of the held-out purchases were inside the encoder's "
              "training data (it holds out only each shopper's last few interactions)")
    return 0
