"""`segstudio rules`: mine association rules from the store's purchase baskets into a file."""

from __future__ import annotations

from pathlib import Path

from core.cli import UserError, print_json

# numpy / pandas are imported where used: `segstudio --help` imports every command module

HELP = "mine association rules ('bought X, also bought Y') from the purchase baskets to a file"
DESCRIPTION = """\
Mine association rules from the store's purchase baskets (an invoice, order or basket; returns
excluded, an item counted once per basket) and write them to a CSV or Parquet file, with item
titles. Each rule has one item on the right-hand side (the arules convention) and the measures
support (share of baskets with every item of the rule), confidence (share of baskets with the
left-hand side that also hold the right-hand side), lift, leverage, conviction and count.

Rules are sorted by lift; with --segment, they are mined on the baskets of that segment's shoppers
(from the latest complete build) and sorted by segment_ratio = confidence in the segment /
confidence over all baskets (how much more the segment follows the rule than everybody).

Thresholds not given are chosen automatically: confidence 0.3, and the largest support of
0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, ... that gives at least 300 rules (never fewer than 5
baskets). --min-len/--max-len count the items of the whole rule (default 2 and 10; --min-len 1
also lists {} => {item}).

Columns: rank, antecedent_ids, antecedent_titles, consequent_id, consequent_title, support,
confidence, lift, leverage, conviction (inf when confidence is 1), count, and segment_ratio with
--segment. In CSV the items of a left-hand side are joined with " | ", and text cells that begin
with = + - @ get a leading ' so a spreadsheet shows them instead of running them as formulas.

Examples:
  segstudio rules --min-support 0.01 --min-confidence 0.5 --out rules.csv
  segstudio rules --min-support 0.001 --min-confidence 0.5 --min-lift 2 --out rules.parquet
  segstudio rules --segment 3 --out segment3_rules.csv       # thresholds chosen automatically
  segstudio rules --min-support 0.006 --min-confidence 0.25 --max-len 3 --out r.csv --json
"""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def add_arguments(parser) -> None:
    parser.add_argument("--min-support", type=float, metavar="S",
                        help="minimum share of baskets holding every item of the rule, in (0, 1] "
                             "(default: chosen automatically)")
    parser.add_argument("--min-confidence", type=float, metavar="C",
                        help="minimum confidence in [0, 1] (default 0.3)")
    parser.add_argument("--min-lift", type=float, metavar="L",
                        help="minimum lift (e.g. 1 keeps only positively associated items)")
    parser.add_argument("--min-len", type=int, default=2, metavar="N",
                        help="minimum items in the whole rule (default 2; 1 allows {} => {item})")
    parser.add_argument("--max-len", type=int, default=10, metavar="N",
                        help="maximum items in the whole rule (default 10)")
    parser.add_argument("--segment", type=int, metavar="N",
                        help="only the baskets of segment N's shoppers in the latest build")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output file: .csv or .parquet (an existing file needs --force)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def _check(args) -> str:
    suffix = Path(args.out).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise UserError(f"--out {args.out}: unknown file type {suffix or '(none)'}; end the name "
                        f"in .csv or .parquet.")
    if args.min_support is not None and not 0 < args.min_support <= 1:
        raise UserError(f"--min-support must be a share of baskets in (0, 1], e.g. 0.01 "
                        f"(got {args.min_support}).")
    if args.min_confidence is not None and not 0 <= args.min_confidence <= 1:
        raise UserError(f"--min-confidence must be in [0, 1], e.g. 0.5 (got {args.min_confidence}).")
    if args.min_len < 1 or args.max_len < args.min_len:
        raise UserError(f"Need 1 <= --min-len <= --max-len (got {args.min_len} and {args.max_len}).")
    return "csv" if suffix == ".csv" else "parquet"


def neutralise(value):
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def output_frame(rules: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """The file's columns; lists are kept in Parquet and joined with ' | ' in CSV."""
    import numpy as np
    import pandas as pd

    cols = {
        "rank": np.arange(1, len(rules) + 1),
        "antecedent_ids": [list(map(str, a)) for a in rules["antecedent"]],
        "antecedent_titles": [list(map(str, a)) for a in rules["antecedent_titles"]],
        "consequent_id": [str(c[0]) for c in rules["consequent"]],
        "consequent_title": [str(t) for t in rules["consequent_title"]],
    }
    for c in ("support", "confidence", "lift", "leverage", "conviction", "count", "segment_ratio"):
        if c in rules:
            cols[c] = rules[c].to_numpy()
    out = pd.DataFrame(cols)
    if fmt == "csv":
        for c in ("antecedent_ids", "antecedent_titles"):
            out[c] = [" | ".join(x) for x in out[c]]
        for c in ("antecedent_ids", "antecedent_titles", "consequent_id", "consequent_title"):
            out[c] = out[c].map(neutralise)
    return out


def _describe(r) -> str:
    import pandas as pd

    lhs = ", ".join(r["antecedent_titles"]) or "(any basket)"
    s = (f"{{{lhs}}} => {{{r['consequent_title']}}}  lift {r['lift']:.2f}  confidence "
         f"{r['confidence']:.2f}  support {r['support']:.4f}  ({r['count']} baskets)")
    if "segment_ratio" in r and pd.notna(r["segment_ratio"]):
        s += f"  segment ratio {r['segment_ratio']:.2f}"
    return s


def run(args, settings) -> int:
    from core.progress import TqdmProgress
    from core.rules import (
        DEFAULT_MIN_CONFIDENCE,
        NoBuildError,
        auto_rules,
        baskets_from_store,
        mine_rules,
        segment_ratios,
        to_baskets,
        with_titles,
    )
    from core.rules.mining import TooManyItemsets, sort_rules
    from core.store import latest_run

    fmt = _check(args)
    protect = [settings.store().path, settings.store().records_path]
    from core.explore.export import check_output

    check_output(args.out, force=args.force, protect=protect)  # before mining, not after
    progress = TqdmProgress(enabled=not (args.quiet or args.json))
    min_conf = DEFAULT_MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    con = settings.store().read()
    try:
        run_id = None
        everything = to_baskets(baskets_from_store(con))
        if everything.n_baskets == 0:
            raise UserError("The store has no purchase baskets (purchase events with a basket, "
                            "session or shopper). Load data with `segstudio ingest` or "
                            "`segstudio demo` first.")
        baskets = everything
        if args.segment is not None:
            try:
                run = latest_run(con, "build")
                if run is None:
                    raise NoBuildError()
            except NoBuildError:
                raise UserError("--segment needs segments, and the store has no complete build "
                                "yet: run `segstudio build` first.") from None
            run_id = int(run["run_id"])
            known = [r[0] for r in con.execute(
                "SELECT DISTINCT segment_id FROM segments WHERE run_id = ? ORDER BY 1",
                [run_id]).fetchall()]
            if args.segment not in known:
                raise UserError(f"Segment {args.segment} is not in build {run_id}; its segments "
                                f"are {', '.join(map(str, known)) or '(none)'}.")
            baskets = to_baskets(baskets_from_store(con, segment_id=args.segment, run_id=run_id))
            if baskets.n_baskets == 0:
                raise UserError(f"Segment {args.segment}'s shoppers have no purchase baskets.")
        with progress.stage("Mining rules", total=1) as bar:
            try:
                if args.min_support is None:
                    rules, support = auto_rules(
                        baskets, min_confidence=min_conf, min_lift=args.min_lift,
                        min_len=args.min_len, max_len=args.max_len)
                else:
                    support = args.min_support
                    rules = mine_rules(baskets, min_support=support, min_confidence=min_conf,
                                       min_lift=args.min_lift, min_len=args.min_len,
                                       max_len=args.max_len)
            except TooManyItemsets as e:
                raise UserError(str(e)) from None
            bar.advance(1)
        if args.segment is not None and len(rules):
            rules = rules.assign(segment_ratio=segment_ratios(everything, rules))
            rules = sort_rules(rules, by=("segment_ratio", "lift"))
        rules = with_titles(con, rules)
    finally:
        con.close()

    out = output_frame(rules, fmt)
    path = Path(args.out)
    from core.explore.export import atomic_output

    with atomic_output(path, force=args.force, protect=protect) as tmp:  # never half a file
        if fmt == "csv":
            out.to_csv(tmp, index=False)
        else:
            out.to_parquet(tmp, index=False)
    top = [_describe(r) for _, r in rules.head(5).iterrows()]
    summary = {
        "out": str(path), "format": fmt, "rules": int(len(rules)),
        "baskets": int(baskets.n_baskets), "segment": args.segment, "run_id": run_id,
        "min_support": support, "support_chosen_automatically": args.min_support is None,
        "min_confidence": min_conf, "min_lift": args.min_lift, "min_len": args.min_len,
        "max_len": args.max_len,
        "by_length": {int(k): int(v) for k, v in
                      (rules["antecedent"].map(len) + 1).value_counts().sort_index().items()},
        "top": top,
    }
    if args.json:
        print_json(summary)
        return 0
    scope = f"segment {args.segment} (build {run_id})" if args.segment is not None else "all"
    auto = " (chosen automatically)" if args.min_support is None else ""
    print(f"Wrote {len(rules):,} rules to {path} from {baskets.n_baskets:,} baskets of {scope} "
          f"shoppers: support >= {support:g}{auto}, confidence >= {min_conf:g}"
          + (f", lift >= {args.min_lift:g}" if args.min_lift is not None else "") + ".")
    if not len(rules):
        print("No rule passed: try a lower --min-support or --min-confidence.")
    for line in top:
        print("  " + line)
    return 0
