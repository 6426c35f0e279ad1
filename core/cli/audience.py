"""`segstudio audience`: freeze a segment for a campaign with a hold-out group, list audiences,
compare treated and hold-out since the freeze, and export an audience for a campaign tool."""

from __future__ import annotations

from core.cli import UserError, print_json

HELP = "campaign audiences: freeze a segment with a hold-out group, compare, export"
DESCRIPTION = """\
Freeze a segment when a campaign starts: its shoppers are split at random (seeded, so the same
seed gives the same split) into the group the campaign targets and a hold-out group it leaves
out (10 % by default). After newer data is ingested, `compare` shows both groups' purchases since
the freeze: conversion and revenue per shopper with 95 % intervals, and the difference.

A segment is a taste segment (--segment N), a lifecycle stage (--segment N --lens lifecycle), a
saved segment (--saved NAME) or a definition in JSON (--definition, see the README's "Segment
builder"), evaluated on the latest build.

Examples:
  segstudio audience freeze --name "Winter push" --segment 2 --holdout 10
  segstudio audience freeze --name "Top buyers" --definition '{"kind": "prediction", "score": "purchase", "top_percent": 20}'
  segstudio audience list
  segstudio audience compare 1
  segstudio audience export 1 --out winter.csv --bom
"""


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["freeze", "list", "compare", "export"])
    parser.add_argument("audience", nargs="?", type=int, help="audience number (compare, export)")
    parser.add_argument("--name", help="the audience's name (freeze)")
    parser.add_argument("--segment", type=int, help="freeze this segment of the latest build")
    parser.add_argument("--lens", choices=["taste", "lifecycle"], default="taste")
    parser.add_argument("--saved", help="freeze this saved segment (name)")
    parser.add_argument("--definition", help="freeze the shoppers meeting this JSON definition")
    parser.add_argument("--holdout", type=float, default=10.0, metavar="PERCENT",
                        help="share kept out of the campaign (default 10 %%)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the hold-out draw")
    parser.add_argument("--out", help="export: file (.csv, .csv.gz, .parquet or .jsonl)")
    parser.add_argument("--group", choices=["treated", "holdout", "all"], default="treated",
                        help="export: which group (default: the shoppers the campaign targets)")
    parser.add_argument("--bom", action="store_true", help="export: CSV with a UTF-8 BOM (Excel)")
    parser.add_argument("--raw-headers", action="store_true",
                        help="export: column names as stored instead of friendly headers")
    parser.add_argument("--force", action="store_true", help="export: replace an existing file")


def _definition(args, con, run_id: int) -> dict:
    if args.definition:
        from core.audiences import parse

        return parse(args.definition)
    if args.segment is not None:
        from core.store.schema import LENS_TABLES

        row = con.execute(f"SELECT name FROM {LENS_TABLES[args.lens][1]} WHERE run_id = ? AND "
                          "segment_id = ?", [run_id, args.segment]).fetchone()
        if row is None:
            raise UserError(f"The latest build has no {args.lens} segment {args.segment} "
                            "(`segstudio status` lists them).")
        return {"kind": "segment", "lens": args.lens, "segment_id": args.segment, "name": row[0]}
    if args.saved:
        return None
    raise UserError("Say which shoppers to freeze: --segment N, --saved NAME or --definition JSON.")


def run(args, settings) -> int:
    from core.audiences.audience import compare, freeze, list_audiences
    from core.store import latest_run

    store = settings.store()
    if args.action == "freeze":
        if not args.name:
            raise UserError("Give the audience a name: --name 'Winter push'.")
        con = store.read()
        try:
            run_ = latest_run(con)
            if run_ is None:
                raise UserError("No complete build yet: run `segstudio build` first.")
            d = _definition(args, con, run_['run_id'])
            ids = None
            if d is None:
                from core.explore.saved import find_saved, saved_members

                s = find_saved(con, args.saved)
                ids, d = saved_members(con, s["saved_id"]), {
                    "kind": "saved", "saved_id": int(s["saved_id"]), "name": s["name"]}
        finally:
            con.close()
        aid = freeze(store, args.name, run_id=run_["run_id"], definition=d if ids is None else None,
                     user_ids=ids, holdout_share=args.holdout / 100, seed=args.seed)
        args.action, args.audience = "list", None
        con = store.read()
        try:
            row = list_audiences(con).set_index("audience_id").loc[aid]
        finally:
            con.close()
        if args.json:
            print_json({"audience_id": aid, **row.to_dict()})
        else:
            print(f"Audience {aid} '{row['name']}' frozen: {int(row['treated']):,} shoppers to "
                  f"target, {int(row['holdout']):,} held out (seed {args.seed}); {row['description']}")
        return 0
    con = store.read()
    try:
        if args.action == "list":
            df = list_audiences(con)
            if args.json:
                print_json(df.to_dict("records"))
            elif df.empty:
                print("No audiences yet: `segstudio audience freeze --name NAME --segment N`.")
            else:
                for r in df.to_dict("records"):
                    print(f"{r['audience_id']:>3}  {r['name']:<30} frozen {r['frozen_at']:%Y-%m-%d}  "
                          f"{r['treated']:>7,} targeted  {r['holdout']:>6,} held out  "
                          f"{r['description']}")
            return 0
        if args.audience is None:
            raise UserError(f"Which audience? `segstudio audience {args.action} N` "
                            "(`segstudio audience list` shows the numbers).")
        if args.action == "compare":
            out = compare(con, args.audience)
            if args.json:
                print_json(out)
                return 0
            from core.store.schema import store_currency

            cur = store_currency(con, "£")
            print(f"Audience {args.audience} '{out['name']}': {out['days_since']} days of data "
                  f"since the freeze ({out['frozen_at'][:10]} to {out['data_end'][:10]})")
            for g in ("treated", "holdout"):
                s = out["groups"][g]
                lo, hi = s["conversion_95"]
                rlo, rhi = s["revenue_per_shopper_95"]
                print(f"  {'targeted' if g == 'treated' else 'held out':<9} {s['shoppers']:>7,} "
                      f"shoppers, {s['buyers']:,} bought: conversion {s['conversion']:.1%} "
                      f"[{lo:.1%}-{hi:.1%}], revenue per shopper {cur}{s['revenue_per_shopper']:,.2f} "
                      f"[{cur}{rlo:,.2f}-{cur}{rhi:,.2f}]")
            if "difference" in out:
                d = out["difference"]
                print(f"  difference: conversion {d['conversion']:+.1%} "
                      f"[{d['conversion_95'][0]:+.1%} to {d['conversion_95'][1]:+.1%}], revenue per "
                      f"shopper {cur}{d['revenue_per_shopper']:+,.2f}")
            for w in out["warnings"]:
                print(f"  note: {w}")
            return 0
        return _export(args, store, con)
    finally:
        con.close()


def _export(args, store, con) -> int:
    from core.audiences.campaign import campaign_frame, log_export, write_campaign
    from core.explore.export import export_frame
    from core.predictions.read import scores_table
    from core.store.schema import store_currency

    if not args.out:
        raise UserError("Where to? --out FILE (.csv, .csv.gz, .parquet or .jsonl).")
    row = con.execute("SELECT name, description, run_id FROM records.audiences WHERE "
                      "audience_id = ?", [args.audience]).fetchone()
    if row is None:
        raise UserError(f"There is no audience number {args.audience} (`segstudio audience list`).")
    name, description, run_id = row
    grp = ["treated", "holdout"] if args.group == "all" else [args.group]
    ids = [r[0] for r in con.execute(
        "SELECT user_id FROM records.audience_members WHERE audience_id = ? AND "
        "list_contains(?, grp) ORDER BY user_id", [args.audience, grp]).fetchall()]
    frame = campaign_frame(export_frame(con, run_id, ids), segment_name=name,
                           definition=description, currency=store_currency(con, "£"),
                           friendly=not args.raw_headers, scores=scores_table(con, run_id))
    path = write_campaign(frame, args.out, bom=args.bom, force=args.force,
                          protect=[store.path, store.records_path])
    log_export(store, what=f"audience {args.audience} '{name}' ({args.group})", rows=len(frame),
               path=str(path.resolve()), fmt=path.suffix.lstrip("."))
    if args.json:
        print_json({"path": str(path), "rows": len(frame)})
    else:
        print(f"Wrote {len(frame):,} shoppers of audience '{name}' ({args.group}) to {path}.")
    return 0
