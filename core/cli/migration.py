"""`segstudio migration`: how shoppers moved between the segments of two builds."""

from __future__ import annotations

from core.cli import UserError, print_json

HELP = "how shoppers moved between segments from one build to another (counts and revenue)"
DESCRIPTION = """\
List the flows of shoppers between the segments of two builds: from which segment to which, how
many shoppers and what they spent between the two builds' data ends. Every shopper of either
build is in one flow ("Not a shopper yet" for shoppers who first appear in the later build).

To see migration on one dataset, build it "as of" two dates:
  segstudio build --as-of 2011-06-01
  segstudio build --as-of 2011-09-01
  segstudio migration                      (the last two builds)
  segstudio migration --from 3 --to 4 --lens lifecycle --json
"""


def add_arguments(parser) -> None:
    parser.add_argument("--from", dest="from_run", type=int, default=None, metavar="RUN",
                        help="the earlier build (default: the build before --to)")
    parser.add_argument("--to", dest="to_run", type=int, default=None, metavar="RUN",
                        help="the later build (default: the latest complete build)")
    parser.add_argument("--lens", choices=["taste", "lifecycle"], default="taste",
                        help="which segments: taste (default) or lifecycle stages")
    parser.add_argument("--top", type=int, default=20, help="flows to print (default 20)")


def run(args, settings) -> int:
    from core.migration import MigrationError, migration, summary
    from core.migration.flows import data_end
    from core.store.schema import store_currency

    store = settings.store()
    con = store.read()
    try:
        builds = [r[0] for r in con.execute(
            "SELECT run_id FROM runs WHERE kind = 'build' AND status = 'complete' "
            "ORDER BY run_id").fetchall()]
        to_run = args.to_run if args.to_run is not None else (builds[-1] if builds else None)
        earlier = [b for b in builds if to_run is not None and b < to_run]
        from_run = args.from_run if args.from_run is not None else (earlier[-1] if earlier else None)
        if to_run is None or from_run is None:
            raise UserError(f"Migration needs two complete builds; {store.path} has "
                            f"{len(builds)}. Build again (e.g. `segstudio build --as-of "
                            "2011-09-01`, then `segstudio build`).")
        try:
            df = migration(con, from_run, to_run, args.lens)
        except MigrationError as e:
            raise UserError(str(e)) from e
        start, end = data_end(con, from_run), data_end(con, to_run)
        currency = store_currency(con, "£")
    finally:
        con.close()
    s = summary(df)
    if args.json:
        print_json({"from_run": from_run, "to_run": to_run, "lens": args.lens,
                    "from_data_end": str(start), "to_data_end": str(end), "currency": currency,
                    **s, "flows": df.to_dict("records")})
        return 0
    period = (f"spent between {start:%Y-%m-%d} and {end:%Y-%m-%d}" if end > start
              else "spent to date")
    print(f"Build {from_run} (data to {start:%Y-%m-%d}) -> build {to_run} (data to {end:%Y-%m-%d}), "
          f"{args.lens} segments: {s['in_both']:,} shoppers in both builds, {s['stayed']:,} stayed, "
          f"{s['moved']:,} moved, {s['new']:,} new")
    print(f"{'from':<34} {'to':<34} {'shoppers':>9} {'revenue':>14}")
    for r in df.head(args.top).to_dict("records"):
        print(f"{r['from_segment'][:34]:<34} {r['to_segment'][:34]:<34} {r['shoppers']:>9,} "
              f"{currency}{r['revenue']:>13,.2f}")
    if len(df) > args.top:
        print(f"... {len(df) - args.top} more flows (--top N, or --json for all)")
    print(f"(revenue: what each flow's shoppers {period})")
    return 0
