"""Ingestion: load CSV / TSV / Parquet files (gzip too) into the store, streamed by DuckDB.

    from core.ingest import ingest_file
    report = ingest_file(store, "online_retail.csv.gz", "online-retail")

Formats (see ``core.ingest.formats`` for each one's mapping and quarantine rules): ``online-retail``,
``clickstream``, ``baskets``, ``events`` (any table with a column mapping, ``core.ingest.mapping``).

Promises
--------
* **Nothing is silently dropped.** Every source row is loaded, quarantined (table ``quarantine``:
  raw row as JSON of the source columns, row_number, column_name, reason) or counted as an exact
  duplicate of an earlier row (skipped). Each ingest records and returns
  ``rows_read = rows_loaded + rows_quarantined + rows_duplicate``, with the loaded and quarantined
  counts counted back from the tables, and ``reconciles`` says whether it holds (and, for formats
  with quantity and price, whether the revenue of loaded + quarantined + duplicate rows equals
  the file's).
* **All or nothing.** An ingest is one ``store.write()``: a failure leaves the store as it was.
* **Idempotent.** A file whose SHA-256 matches an earlier ingest is not loaded again; the report
  says so (``skipped_already_ingested``) and names the earlier ingest. To reload the same file
  with other settings, ingest into a fresh store (``--db``).
* **Clear errors.** A missing column lists the columns found and the closest match; the error
  names the file and says how to fix it (``IngestError``, a ``ValueError``).
* Items and users are merged with what the store has (new ids inserted, gaps filled), so several
  files can be ingested into one store.
* **One store per shop.** A store holding the generated demo shop is refused unless ``force``;
  the shop's currency is a store setting (``core.ingest.currency``); a file whose currency
  differs from the store's is refused.
* **Per file.** The headline counts are the event file's; ``files`` holds one reconciliation per
  file read (``--items``, ``--users``, joined tables: ``core.ingest.joins``), and notes starting
  with "warning:" say what loads but does not link up (``core.ingest.linkage``).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from core.ingest import currency, joins, linkage, load
from core.ingest.formats import FORMATS, plan_for
from core.ingest.sidefiles import items_file_plan, users_file_plan
from core.ingest.mapping import load_mapping, merge_flags, normalize
from core.ingest.errors import IngestError
from core.ingest.reader import drop_staging, fingerprint
from core.progress import NULL, Progress

__all__ = ["FORMATS", "IngestError", "ingest_file", "ingest_into", "load_mapping", "merge_flags"]


class _AlreadyIngested(Exception):
    def __init__(self, prior: dict):
        super().__init__("already ingested")
        self.prior = prior


def _prior(con, fp: str) -> dict | None:
    row = con.execute(
        "SELECT ingest_id, source_file, format, finished_at, rows_read, rows_loaded, "
        "rows_quarantined, rows_duplicate FROM ingests WHERE fingerprint = ? "
        "ORDER BY ingest_id LIMIT 1", [fp]).fetchone()
    if row is None:
        return None
    keys = ("ingest_id", "source_file", "format", "finished_at", "rows_read", "rows_loaded",
            "rows_quarantined", "rows_duplicate")
    return dict(zip(keys, row))


def _skipped(path: Path, fmt: str, fp: str, prior: dict) -> dict:
    return {
        **prior,
        "ingest_id": prior["ingest_id"],
        "source_file": str(path),
        "format": fmt,
        "fingerprint": fp,
        "reconciles": True,
        "skipped_already_ingested": True,
        "message": (f"{path} was already ingested (ingest {prior['ingest_id']}, "
                    f"{prior['source_file']}, format {prior['format']}, {prior['finished_at']}): "
                    f"nothing changed. To load it again with other settings, use a fresh store (--db)."),
    }


def ingest_file(store, path, fmt: str, *, mapping: dict | str | Path | None = None,
                items_path=None, users_path=None, force: bool = False, currency: str | None = None,
                progress: Progress = NULL) -> dict[str, Any]:
    """Load ``path`` (format ``fmt``) into ``store`` in one all-or-nothing write; returns the report.

    ``mapping``: a mapping dict (TOML layout or ``merge_flags`` output) or a TOML file path, used
    by ``events`` (and for ``time_format`` by every format). ``items_path``/``users_path``: an item
    catalogue and shopper attributes file loaded in the same write.

    A store that holds the generated demo shop is refused (``IngestError``) unless ``force``:
    real shoppers would be mixed with fake ones. ``currency`` (a symbol such as "$" or a code
    such as "USD") becomes the store's currency setting (``core.ingest.currency``).
    """
    path = Path(path)
    fmt = str(fmt).strip().lower().replace("_", "-")
    if fmt not in FORMATS:
        raise IngestError(f"unknown format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    for p, what in ((path, "data file"), (items_path, "--items file"), (users_path, "--users file")):
        if p is not None and not Path(p).is_file():
            raise IngestError(f"{p}: no such {what}. Check the path (relative to {Path.cwd()}).")
    if isinstance(mapping, (str, Path)):
        opts = load_mapping(mapping)
    else:
        opts = normalize(mapping)
    if currency is not None:
        opts["currency"] = currency
    # a --db that is not a store is refused before a long fingerprint
    reader = store.read() if store.exists() else None
    try:
        if reader is not None and not force:
            refuse_demo(reader, store.path)
        fp = fingerprint(path, progress)
        prior = _prior(reader, fp) if reader is not None else None
    finally:
        if reader is not None:
            reader.close()
    if prior:
        return _skipped(path, fmt, fp, prior)
    try:
        with store.write() as con:
            prior = _prior(con, fp)
            if prior:
                raise _AlreadyIngested(prior)
            if not force:
                refuse_demo(con, store.path)
            return ingest_into(con, path, fmt, opts=opts, items_path=items_path,
                               users_path=users_path, fingerprint=fp, progress=progress)
    except _AlreadyIngested as e:  # a concurrent writer loaded it while we waited for the lock
        return _skipped(path, fmt, fp, e.prior)


def refuse_demo(con, store_path) -> None:
    """Real data is not mixed into a store holding the generated demo shop (unless --force)."""
    row = con.execute("SELECT count(*), (SELECT count(*) FROM users) FROM ingests "
                      "WHERE format = 'demo'").fetchone()
    if row[0]:
        raise IngestError(
            f"{store_path} holds the generated demo shop ({row[1]:,} made-up shoppers); loading "
            f"your data into it would mix real shoppers with fake ones. Load your shop into its own "
            f"store: segstudio ingest FILE --format FORMAT --db data/myshop.duckdb (then "
            f"segstudio build --db data/myshop.duckdb). To mix them on purpose, add --force.")


def ingest_into(con: duckdb.DuckDBPyConnection, path, fmt: str, *, opts: dict | None = None,
                items_path=None, users_path=None, fingerprint: str | None = None,
                progress: Progress = NULL) -> dict[str, Any]:
    """The ingest itself, on a read-write connection (inside the caller's ``store.write()``)."""
    t0 = time.perf_counter()
    started = datetime.now().replace(microsecond=0)
    path = Path(path)
    opts = normalize(opts) if opts is None or "items_columns" not in opts else opts
    # DuckDB tracks progress (read by our bars) but prints nothing itself
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    drop_staging(con)
    ingest_id = int(con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingests").fetchone()[0])
    try:
        main = load.prepare(con, path, lambda s, o: plan_for(fmt, s, o), opts, prefix="_ing_m",
                            lines=(fmt == "baskets"), header=opts.get("header", True) is not False,
                            joins=opts.get("joins"), progress=progress)
        load.write_quarantine(con, main, ingest_id)
        money_notes = currency.settle(con, fmt, opts.get("currency"), main)
        loaded_rel, n_loaded = load.write_events(con, main, ingest_id, progress)
        files = [{"role": "events", **load.counts(con, main, ingest_id, n_loaded)}, *main.joined]
        side = {}
        item_parts = [(load.items_sql(loaded_rel, main.plan), False)]
        users_derived = load.users_sql(loaded_rel, main.plan)
        users_from_file = None
        if items_path is not None:
            # the catalogue's id column may be named like the events' item column
            item_opts = {**opts, "events_item_column": main.plan.mapping.get("item")}
            ip = load.prepare(con, Path(items_path), items_file_plan, item_opts, prefix="_ing_i",
                              joins=opts.get("items_joins"), unique_key="__item_id",
                              header=opts.get("items_header", True) is not False,
                              unique_reason="duplicate item id (the first row is kept)",
                              progress=progress)
            load.write_quarantine(con, ip, ingest_id)
            con.execute(f"CREATE TEMP VIEW _ing_i_ok AS SELECT * FROM {ip.parsed} WHERE __problem IS NULL")
            n = con.execute("SELECT count(*) FROM temp._ing_i_ok").fetchone()[0]
            files += [{"role": "items", **load.counts(con, ip, ingest_id, n)}, *ip.joined]
            side["items"] = (items_path, "_ing_i_ok")
            item_parts.append((
                "SELECT __item_id AS item_id, __title AS title, __description AS description, "
                "__category AS category_path, __brand AS brand, __price AS price FROM temp._ing_i_ok",
                True))
        if users_path is not None:
            up = load.prepare(con, Path(users_path), users_file_plan, opts, prefix="_ing_u",
                              header=opts.get("users_header", True) is not False,
                              unique_key="__user_id",
                              unique_reason="duplicate user id (the first row is kept)",
                              progress=progress)
            load.write_quarantine(con, up, ingest_id)
            con.execute(f"CREATE TEMP VIEW _ing_u_ok AS SELECT * FROM {up.parsed} WHERE __problem IS NULL")
            n = con.execute("SELECT count(*) FROM temp._ing_u_ok").fetchone()[0]
            files.append({"role": "users", **load.counts(con, up, ingest_id, n)})
            side["users"] = (users_path, "_ing_u_ok")
            users_from_file = load.users_sql("temp._ing_u_ok", up.plan)
        with progress.stage("Updating items and shoppers", total=2) as bar:
            item_stats = load.merge_items(con, item_parts, ingest_id)
            bar.advance(1)
            user_stats = load.merge_users(con, users_derived, users_from_file, ingest_id)
            bar.advance(1)
        rev = load.revenue(con, main, ingest_id)
        overlap = load.overlap_with_earlier(con, main, ingest_id, fmt)
        report, details = _report(con, ingest_id, path, fmt, main, files, rev, item_stats,
                                  user_stats, fingerprint, t0)
        details["rows_already_in_store"] = report["rows_already_in_store"] = overlap
        warned = linkage.warnings(con, ingest_id, fmt, main, side)
        if items_path is not None:
            warned += joins.warnings(ip.joined, "catalogue rows")
        report["notes"] = details["notes"] = [*details["notes"], *money_notes, *warned]
        if overlap:
            note = (f"warning: {overlap:,} loaded rows are exact copies of rows loaded by an earlier "
                    f"ingest (the same data in another file?). If so, revenue and counts are now "
                    f"doubled: ingest into a fresh store (--db) instead.")
            report["notes"] = details["notes"] = [*details["notes"], note]
        con.execute(
            "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [ingest_id, started, datetime.now().replace(microsecond=0), str(path.resolve()), fmt,
             fingerprint, report["rows_read"], report["rows_loaded"], report["rows_quarantined"],
             report["rows_duplicate"], json.dumps(details, default=str)],
        )
        return report
    finally:
        drop_staging(con)


def _report(con, ingest_id, path, fmt, main, files, rev, item_stats, user_stats, fp, t0):
    # the headline counts are the event file's rows; side files reconcile on their own lines
    tot = {k: files[0][k] for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")}
    for f in files:
        if f["role"] != "joined":  # joined files reconcile their own way (core.ingest.joins)
            f["reconciles"] = f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"] + f["rows_duplicate"]
    identity = all(f["reconciles"] for f in files)
    reconciles = identity and (rev is None or rev["revenue_reconciles"])
    from core.ingest.status import quarantine_by_file

    reasons, side_reasons = quarantine_by_file(con, ingest_id, files[0]["source_file"])
    events = con.execute("SELECT count(*) FROM events WHERE ingest_id = ?", [ingest_id]).fetchone()[0]
    totals = dict(zip(("users", "items", "events"), con.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM items), "
        "(SELECT count(*) FROM events)").fetchone()))
    details = {
        "files": files,
        "events_loaded": int(events),
        **item_stats,
        **user_stats,
        "revenue": rev,
        "quarantine_reasons": reasons,
        "side_quarantine": side_reasons,
        "mapping": main.plan.mapping,
        "sources": main.plan.sources,
        "event_id_base": main.event_id_base,
        "notes": list(main.plan.notes),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return {
        "ingest_id": ingest_id,
        "source_file": str(path.resolve()),
        "format": fmt,
        **tot,
        "reconciles": bool(reconciles),
        "skipped_already_ingested": False,
        "fingerprint": fp,
        "totals": totals,
        **details,
    }, details
