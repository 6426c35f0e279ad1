"""`segstudio export`: a segment's (or saved segment's) shoppers as CSV or Parquet."""

from __future__ import annotations

import contextlib
from pathlib import Path

from core.cli import UserError, print_json

HELP = "export a segment's shoppers as CSV or Parquet (spreadsheet-safe)"
DESCRIPTION = """\
Write the shoppers of a segment (from the latest build) or of a saved segment (saved on the
dashboard's map) to a file, for a campaign tool or a spreadsheet. Every build has two lenses:
--lens taste (the default: what shoppers buy) or --lens lifecycle (new, active, loyal, at risk,
lapsed...); --segment is a segment of that lens, and the file names it (segment_name). The format follows the
extension: .csv, .csv.gz or .parquet. For spreadsheets (the default), text cells that start with
= + - @ get a leading apostrophe, in CSV and Parquet, so a spreadsheet shows them as text instead
of running them; --for tool writes the values exactly as stored.

An existing file is never overwritten without --force; a symbolic link is never written through
(with --force the link itself is replaced); the store itself is never a valid --out; the file
appears only once it is complete.

Column groups (--columns, any of): id, segment, other_segment (the shopper's segment in the other
lens), rfm, attributes, behaviour, predictions, recommendations (default: id segment rfm)

Recommended products (--recommend N, or the recommendations group with 3): each shopper's top N
products from the build's hybrid recommender, with their ids and what they come from (their
purchases, what they looked at, or best sellers for a shopper the build does not know), exactly
what the dashboard's preview of that shopper shows. They are scored for the whole list in
batches, in this process or, with --engine ray, as Ray tasks (on this machine, or a cluster
with --address).

Examples:
  segstudio export --segment 3 --out segment3.csv
  segstudio export --lens lifecycle --segment 3 --out at-risk.csv --columns id segment other_segment
  segstudio export --saved "Christmas lovers" --out xmas.parquet --columns id attributes
  segstudio export --segment 3 --out segment3.csv --force       replace last week's file
  segstudio export --segment 3 --out s3.parquet --for tool      raw values for another program
  segstudio export --segment 3 --out s3.csv --campaign --recommend 3   top 3 products per shopper
  segstudio export --segment 3 --out s3.csv --recommend 5 --engine ray --workers 4
  segstudio status            lists the segments of the latest build
"""


def add_arguments(parser) -> None:
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--segment", type=int, help="segment number (from `segstudio status` or the dashboard)")
    g.add_argument("--saved", metavar="NAME", help="name of a segment saved on the dashboard")
    parser.add_argument("--lens", choices=["taste", "lifecycle"], default="taste",
                        help="which division --segment (and the segment column) refers to: taste "
                             "(default) or lifecycle")
    parser.add_argument("--out", required=True,
                        help="output file: .csv, .csv.gz or .parquet (and .jsonl with --campaign)")
    parser.add_argument("--columns", nargs="+", default=None, metavar="GROUP",
                        help="column groups: id segment other_segment rfm attributes behaviour "
                             "predictions (default id segment rfm)")
    parser.add_argument("--campaign", action="store_true",
                        help="for a campaign tool: the segment's name and definition on every row, "
                             "friendly headers, whole-number counts, money in cents, prediction "
                             "scores; .jsonl writes one payload per shopper")
    parser.add_argument("--raw-headers", action="store_true",
                        help="with --campaign: column names as stored")
    parser.add_argument("--bom", action="store_true",
                        help="with --campaign: CSV with a UTF-8 byte-order mark (Excel)")
    parser.add_argument("--recommend", type=int, default=None, metavar="N",
                        help="add each shopper's top N recommended products (1-20; adds the "
                             "recommendations column group)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="where recommendations are scored: this process (default) or Ray")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="--engine ray: the Ray cluster, HOST:6379 or ray://HOST:10001 "
                             "(default: Ray on this machine)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="--engine ray: workers, one CPU each (default 2)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--for", dest="for_", choices=["spreadsheet", "tool"], default="spreadsheet",
                        help="spreadsheet (default): neutralise text cells that a spreadsheet would "
                             "run as formulas; tool: values exactly as stored")


def _engine(args, columns):
    """The engine that scores the recommendations column (nothing to start without it)."""
    if "recommendations" not in columns:
        return contextlib.nullcontext(None)
    from core.engine import EngineError, make_engine

    try:
        return make_engine(args.engine, address=args.address, workers=args.workers)
    except EngineError as e:
        raise UserError(str(e)) from None


def _frame(con, args, columns, extra) -> tuple:
    """The export table, what it is (for the log), the segment's name and definition."""
    from core import explore as ex
    from core.store import latest_run

    run_ = latest_run(con)
    if args.segment is not None:
        if run_ is None:
            raise UserError("No complete build yet: run `segstudio build` first.")
        segs = ex.segments(con, run_["run_id"], lens=args.lens)
        names = {int(r.segment_id): str(r.name) for r in segs.itertuples()}
        if args.segment not in names:
            listed = ", ".join(f"{i} ({n})" for i, n in sorted(names.items())) or "none"
            raise UserError(f"Segment {args.segment} is not in build {run_['run_id']} "
                            f"({args.lens} lens); its {args.lens} segments are {listed}.")
        try:
            df = ex.segment_export(con, run_["run_id"], args.segment, columns, lens=args.lens,
                                   **extra)
        except ValueError as e:
            raise UserError(str(e)) from e
        what = f"{args.lens} segment {args.segment} '{names[args.segment]}'"
        seg_name, definition = names[args.segment], f"{args.lens} segment {args.segment}"
    else:
        try:
            df = ex.saved_export(con, run_["run_id"] if run_ else None, args.saved, columns,
                                 lens=args.lens, **extra)
        except ex.SavedSegmentError as e:
            raise UserError(str(e)) from e
        what = f"saved segment '{args.saved}'"
        saved = ex.find_saved(con, args.saved)
        seg_name, definition = saved["name"], saved.get("description") or saved["name"]
    if args.campaign:
        from core.audiences.campaign import campaign_frame
        from core.predictions.read import scores_table
        from core.store.schema import store_currency

        df = campaign_frame(df, segment_name=seg_name, definition=definition,
                            currency=store_currency(con, "£"), friendly=not args.raw_headers,
                            scores=scores_table(con, run_["run_id"]) if run_ else None)
    return df, what


def run(args, settings) -> int:
    from core import explore as ex

    columns = list(args.columns or ex.DEFAULT_COLUMNS)
    n_rec = ex.RECOMMENDED
    if args.recommend is not None:
        if not 1 <= args.recommend <= 20:
            raise UserError(f"--recommend {args.recommend}: give 1 to 20 products per shopper.")
        n_rec = args.recommend
        if "recommendations" not in columns:
            columns.append("recommendations")
    if (args.address or args.workers) and args.engine != "ray":
        raise UserError("--address and --workers are for --engine ray; add --engine ray or leave "
                        "them out.")
    unknown = [c for c in columns if c not in ex.COLUMN_GROUPS]
    if unknown:
        raise UserError(f"unknown column group(s) {', '.join(unknown)}; choose from "
                        f"{', '.join(ex.COLUMN_GROUPS)}")
    exts = (".csv", ".csv.gz", ".parquet") + ((".jsonl",) if args.campaign else ())
    if not args.out.lower().endswith(exts):
        raise UserError(f"--out {args.out}: use a {', '.join(exts)} file name")
    store = settings.store()
    protect = [store.path, store.records_path]
    ex.check_output(args.out, force=args.force, protect=protect)  # before any work
    con = store.read()
    try:
        with _engine(args, columns) as eng:
            extra = {}
            if "recommendations" in columns:
                from core.progress import TqdmProgress

                extra = {"recommended": n_rec, "engine": eng,
                         "progress": TqdmProgress(enabled=not (args.quiet or args.json))}
            df, what = _frame(con, args, columns, extra)
    finally:
        con.close()
    if args.campaign:
        from core.audiences.campaign import write_campaign

        path = write_campaign(df, args.out, bom=args.bom, force=args.force, protect=protect,
                              for_spreadsheet=args.for_ == "spreadsheet")
    else:
        path = ex.write_export(df, args.out, force=args.force, protect=protect,
                               for_spreadsheet=args.for_ == "spreadsheet")
    from core.audiences.campaign import log_export

    log_export(store, what=what, rows=len(df), path=str(Path(path).resolve()),
               fmt=Path(path).name.split(".", 1)[-1])
    result = {"out": str(path), "rows": len(df), "columns": list(df.columns), "what": what,
              "lens": args.lens}
    if args.json:
        print_json(result)
    elif not args.quiet:
        print(f"Wrote {len(df):,} shoppers of {what} to {path} ({len(df.columns)} columns).")
    return 0
