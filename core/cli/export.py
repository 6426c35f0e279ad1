"""`segstudio export`: a segment's (or saved segment's) shoppers as CSV or Parquet."""

from __future__ import annotations

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
lens), rfm, attributes, behaviour (default: id segment rfm)

Examples:
  segstudio export --segment 3 --out segment3.csv
  segstudio export --lens lifecycle --segment 3 --out at-risk.csv --columns id segment other_segment
  segstudio export --saved "Christmas lovers" --out xmas.parquet --columns id attributes
  segstudio export --segment 3 --out segment3.csv --force       replace last week's file
  segstudio export --segment 3 --out s3.parquet --for tool      raw values for another program
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
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--for", dest="for_", choices=["spreadsheet", "tool"], default="spreadsheet",
                        help="spreadsheet (default): neutralise text cells that a spreadsheet would "
                             "run as formulas; tool: values exactly as stored")


def run(args, settings) -> int:
    from core import explore as ex
    from core.store import latest_run

    columns = args.columns or list(ex.DEFAULT_COLUMNS)
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
                df = ex.segment_export(con, run_["run_id"], args.segment, columns, lens=args.lens)
            except ValueError as e:
                raise UserError(str(e)) from e
            what = f"{args.lens} segment {args.segment} '{names[args.segment]}'"
            seg_name, definition = names[args.segment], f"{args.lens} segment {args.segment}"
        else:
            try:
                df = ex.saved_export(con, run_["run_id"] if run_ else None, args.saved, columns,
                                     lens=args.lens)
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
