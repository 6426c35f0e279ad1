"""`segstudio ingest`: load a CSV / TSV / Parquet file (gzip too) into the store."""

from __future__ import annotations

from core.cli import UserError, print_json

HELP = "load a data file (online-retail, clickstream, baskets or any event table) into the store"
DESCRIPTION = """\
Load a CSV, TSV or Parquet file (plain or gzipped) into the store. DuckDB streams the file, so
files larger than memory load fine. Rows that cannot be loaded go to a quarantine table with the
raw row and the reason; exact duplicate rows are skipped and counted. Every ingest prints

    rows read = rows loaded + rows quarantined + exact duplicates skipped

and is all-or-nothing. Ingesting the same file (same content) again changes nothing.

Formats:
  online-retail  UCI Online Retail (InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
                 UnitPrice, CustomerID, Country); invoices C... become returns
  clickstream    event_time, event_type, product_id, category_id, category_code, brand, price,
                 user_id, user_session; remove_from_cart becomes a cart event with quantity -1
  baskets        one basket per line, items separated by commas (Groceries)
  events         any table: say which column is which with --*-col flags or --mapping FILE
                 (columns not given are guessed from common names such as user_id, product_id)

Keep one store per shop (--db): a store holding the demo shop refuses real data (--force mixes
them). The shop's currency is a store setting: from --currency, else from the data when it says.
A file without a header row: --no-header, columns named by position (--user-col 1). A mapping
file can also join further tables ([[join]]: orders + order lines + products), take categories
from flag columns, lists or several columns, and map rating / review text (see README.md).

Examples:
  segstudio ingest online_retail.csv.gz --format online-retail --db data/retail.duckdb
  segstudio ingest 2019-Oct.csv.gz --format clickstream --db data/clicks.duckdb
  segstudio ingest groceries.csv --format baskets --db data/groceries.duckdb
  segstudio ingest orders.tsv --format events --user-col customer --item-col sku \\
      --time-col ordered_at --quantity-col qty --price-col price --basket-col order_id \\
      --currency USD --db data/myshop.duckdb
  segstudio ingest u.data --format events --no-header --user-col 1 --item-col 2 \\
      --rating-col 3 --time-col 4 --epoch --db data/ratings.duckdb
  segstudio ingest clicks.parquet --format events --time-col ts --epoch --type-col action --db data/myshop.duckdb
  segstudio ingest my_events.csv --format events --mapping mapping.toml --items items.csv \\
      --users users.csv --db data/myshop.duckdb
"""

_COLS = {
    "user": "user id (missing values load as anonymous rows)",
    "item": "item / product id (required)",
    "time": "event time (timestamp text, or epoch seconds with --epoch)",
    "type": "event type (view, click, cart, purchase, favorite, review, return; others via [types])",
    "quantity": "quantity",
    "price": "unit price",
    "basket": "basket / order / invoice id",
    "session": "session id",
    "rating": "rating value (a number; rows become review events unless a type column says)",
    "review": "review text (stored and embedded with the item's text)",
}


def add_arguments(parser) -> None:
    parser.add_argument("path", help="the data file (.csv, .tsv, .parquet, optionally .gz)")
    parser.add_argument("--format", "-f", required=True, dest="fmt",
                        choices=["online-retail", "clickstream", "baskets", "events"],
                        help="the file's layout")
    g = parser.add_argument_group("column mapping (--format events)")
    g.add_argument("--mapping", help="TOML mapping file ([columns], [types], [items], [users]); "
                   "flags override it")
    for role, text in _COLS.items():
        g.add_argument(f"--{role}-col", dest=f"{role}_col", metavar="COLUMN", help=text)
    g.add_argument("--epoch", nargs="?", const="s", choices=["s", "ms"],
                   help="the time column holds epoch seconds (or --epoch ms for milliseconds)")
    g.add_argument("--no-header", action="store_true",
                   help="the file has no header row: name columns by position, e.g. "
                        "--user-col 1 --item-col 2 --time-col 4")
    g.add_argument("--time-format", metavar="FMT",
                   help="strptime format of the time text, e.g. '%%d/%%m/%%Y %%H:%%M' for day-first dates")
    parser.add_argument("--encoding", help="the CSV's text encoding if not UTF-8, e.g. latin-1, "
                        "cp1252 (UTF-16 and byte-order marks are recognised by themselves)")
    parser.add_argument("--earliest", metavar="YYYY-MM-DD",
                        help="rows dated before this go to quarantine (default 1990-01-01; "
                             "or earliest in segstudio.toml)")
    parser.add_argument("--latest", metavar="YYYY-MM-DD",
                        help="rows dated after this go to quarantine (default a year from today; "
                             "or latest in segstudio.toml)")
    g.add_argument("--items", metavar="FILE", help="item catalogue: id, title, description, "
                   "category, brand, price")
    g.add_argument("--users", metavar="FILE", help="shopper attributes: id + any columns")
    parser.add_argument("--currency", metavar="CUR",
                        help="the shop's currency, a symbol or code ($, USD, €, EUR...), kept as "
                             "the store's setting (default: from the data when it says, else £)")
    parser.add_argument("--force", action="store_true",
                        help="load into a store that holds the demo shop anyway (mixes real and "
                             "made-up shoppers; normally use your own store with --db)")


def _print_report(r: dict) -> None:
    if r.get("skipped_already_ingested"):
        print(r["message"])
        return
    n = lambda x: f"{x:,}"  # noqa: E731
    ok = "reconciles" if r["reconciles"] else "DOES NOT RECONCILE"
    print(f"Ingest {r['ingest_id']}: {r['source_file']} ({r['format']}) in {r['seconds']:.1f} s")
    print(f"  rows read {n(r['rows_read'])} = loaded {n(r['rows_loaded'])} + quarantined "
          f"{n(r['rows_quarantined'])} + exact duplicates skipped {n(r['rows_duplicate'])}  ({ok})")
    for line in file_lines(r.get("files", [])):
        print(line)
    rev = r.get("revenue")
    if rev:
        print(f"  revenue {rev['revenue_read']:,.2f} = loaded {rev['revenue_loaded']:,.2f} + "
              f"quarantined {rev['revenue_quarantined']:,.2f} + duplicates "
              f"{rev['revenue_duplicate']:,.2f}"
              + (f" ({n(rev['rows_without_revenue'])} rows without a usable quantity/price)"
                 if rev["rows_without_revenue"] else ""))
    print(f"  loaded {n(r['events_loaded'])} events; {n(r['items_new'])} new items, "
          f"{n(r['users_new'])} new shoppers. Store now: " +
          ", ".join(f"{n(v)} {k}" for k, v in r["totals"].items()))
    for note in r.get("notes", []):
        print(f"  {note}" if note.startswith("warning") else f"  note: {note}")
    if r["quarantine_reasons"]:
        print("  quarantined rows by reason (see the quarantine table; `segstudio status`):")
        for reason, k in r["quarantine_reasons"].items():
            print(f"    {n(k):>9}  {reason}")
    for q in r.get("side_quarantine") or []:
        print(f"  quarantined in {q['file']}: {n(q['rows'])}  {q['reason']}")


def file_lines(files: list[dict], indent: str = "    ") -> list[str]:
    """One reconciliation line per file, when an ingest read more than the event file."""
    if len(files) < 2:
        return []
    n = lambda x: f"{x:,}"  # noqa: E731
    out = []
    for f in files:
        ok = "" if f.get("reconciles", True) else "  (DOES NOT RECONCILE)"
        if f.get("role") == "joined":
            out.append(f"{indent}joined file {f['source_file']} ({f['key']}): read {n(f['rows_read'])}"
                       f" = used {n(f['rows_used'])} + matching no row {n(f['rows_unmatched'])} + "
                       f"repeated key {n(f['rows_repeated_key'])} + no key "
                       f"{n(f['rows_missing_key'])} + malformed {n(f['malformed_lines'])}{ok}")
            continue
        out.append(f"{indent}{f.get('role', 'file')} file {f['source_file']}: read {n(f['rows_read'])}"
                   f" = loaded {n(f['rows_loaded'])} + quarantined {n(f['rows_quarantined'])} + "
                   f"duplicates {n(f['rows_duplicate'])}{ok}")
    return out


def _setting(settings, key: str) -> str | None:
    v = settings.extra.get(key)
    return None if v is None else str(v)


def run(args, settings) -> int:
    from core.ingest import IngestError, ingest_file, load_mapping, merge_flags
    from core.progress import TqdmProgress

    try:
        mapping = load_mapping(args.mapping) if args.mapping else None
        mapping = merge_flags(
            mapping, columns={role: getattr(args, f"{role}_col") for role in _COLS},
            epoch=args.epoch, time_format=args.time_format, encoding=args.encoding,
            no_header=args.no_header,
            # flag > mapping file > segstudio.toml > default
            earliest=args.earliest or (None if (mapping or {}).get("earliest")
                                       else _setting(settings, "earliest")),
            latest=args.latest or (None if (mapping or {}).get("latest")
                                   else _setting(settings, "latest")),
        )
        if args.fmt != "events" and any(getattr(args, f"{role}_col") for role in _COLS):
            raise UserError(f"--*-col flags apply to --format events only; --format {args.fmt} "
                            f"has a fixed layout. Use --format events to map columns yourself.")
        report = ingest_file(
            settings.store(), args.path, args.fmt, mapping=mapping, items_path=args.items,
            users_path=args.users, force=args.force, currency=args.currency, progress=TqdmProgress(enabled=not (args.quiet or args.json)),
        )
    except IngestError as e:
        raise UserError(str(e)) from None
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    return 0 if report["reconciles"] else 1
