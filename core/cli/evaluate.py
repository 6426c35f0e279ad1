"""`segstudio evaluate`: the offline evaluation of the recommenders of the latest build."""

from __future__ import annotations

import json

from core.cli import UserError, print_json, require_build

HELP = "offline evaluation of the recommenders (Recall/NDCG/HitRate/MRR@10, coverage)"
DESCRIPTION = """\
Show how well each recommender predicted shoppers' held-out last basket (or, with
--holdout interaction, their last purchase: chronological leave-one-out) in the latest complete
build: Recall@10, NDCG@10, HitRate@10, MRR@10 with 95 % bootstrap intervals over shoppers, over a
full ranking of the catalogue, and catalogue coverage; for lists of new items only (what the app
shows) and lists that may repeat purchases; and NDCG@10 per segment. Every model, the encoder
included, is fitted only on events before each shopper's held-out basket; the basket before it
tunes the hybrid. Fewer than 200 evaluated shoppers print a warning.

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


def _rows_from_store(con, run_id, holdout):
    from core.evaluate import read_evaluations

    df = read_evaluations(con, run_id, holdout)
    rows = []
    for r in df.to_dict("records"):
        r["params"] = json.loads(r["params"]) if r["params"] else {}
        rows.append(r)
    if any("lists" not in r["params"] for r in rows):
        return []  # stored by an older version, without intervals: compute again
    return rows


def run(args, settings) -> int:
    from core.evaluate import DEFAULT_MAX_USERS, EvaluationError, evaluate_recommenders
    from core.progress import TqdmProgress

    store = settings.store()
    con = store.read()
    try:
        run_ = require_build(con, store.path, then=", then `segstudio evaluate`")
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
    from core.evaluate.report import format_tables

    print(f"Build {rid}")
    print(format_tables(rows))
    return 0
