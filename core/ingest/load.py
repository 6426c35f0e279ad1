"""The ingest engine: staged file -> deduplicated -> checked -> quarantine / events / items / users.

Every step is one SQL statement over temporary tables in the write connection (no Python row
loops, nothing in pandas), so a file larger than memory streams through DuckDB, which spills to
disk as needed. Temporary objects are named ``_ing_*`` and dropped at the end.

Accounting per source file: rows_read = staged rows + malformed lines; rows_duplicate = rows that
exactly repeat an earlier row (skipped); rows_quarantined = rows in the quarantine table (counted
back from it); rows_loaded = source rows that became events (counted back from the events table),
catalogue rows (--items) or shopper rows (--users).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.ingest.formats import Plan
from core.ingest.joins import apply as join_tables
from core.ingest.reader import (Staged, execute_with_progress, header_looks_like_data, ident,
                                reject_rows_sql, sql_str, stage)
from core.progress import NULL, Progress


@dataclass
class Prepared:
    staged: Staged
    plan: Plan
    prefix: str
    source_file: str
    n_rows: int = 0                                  # rows after skipping exact duplicates
    event_id_base: int | None = None                 # event_id - base = source row (not baskets)
    joined: list = field(default_factory=list)       # accounting of joined files (core.ingest.joins)
    revenue_read: tuple | None = None                # (sum, rows without revenue) of the file

    @property
    def parsed(self) -> str:
        return f"temp.{self.prefix}_parsed"

    @property
    def raw_cols(self) -> str:
        return ", ".join(ident(c) for c in self.staged.columns)

    @property
    def raw_json(self) -> str:
        return "json_object(" + ", ".join(f"{sql_str(c)}, {ident(c)}" for c in self.staged.columns) + ")"

    @property
    def row_hash(self) -> str:
        return f"hash({self.raw_cols})"


def _problem_sql(checks: list[tuple[str, str, str]]) -> tuple[str, str]:
    if not checks:
        return "NULL::VARCHAR", "NULL::VARCHAR"
    reason = "CASE " + " ".join(f"WHEN {c} THEN {sql_str(r)}" for c, _, r in checks) + " END"
    column = "CASE " + " ".join(f"WHEN {c} THEN {sql_str(col)}" for c, col, _ in checks) + " END"
    return reason, column


def prepare(con: duckdb.DuckDBPyConnection, path: Path, plan_fn, opts: dict, *, prefix: str,
            lines: bool = False, header: bool = True, joins: list | None = None, unique_key: str | None = None, unique_reason: str = "",
            progress: Progress = NULL) -> Prepared:
    """Stage ``path``, skip exact duplicates, parse every row and decide its problem (if any)."""
    staged = stage(con, path, lines=lines, view=f"{prefix}_raw", encoding=opts.get("encoding"),
                   header=header, progress=progress)
    joined = join_tables(con, staged, f"{prefix}_raw", joins or [],
                         encoding=opts.get("encoding"), progress=progress)
    plan = plan_fn(staged, opts)
    plan.notes = [*plan.notes, *staged.notes]
    if staged.header and not lines and header_looks_like_data(staged.columns):
        plan.notes.append(
            f"warning: the header row of {Path(path).name} looks like data "
            f"({', '.join(staged.columns[:6])}{', ...' if len(staged.columns) > 6 else ''}): if the "
            f"file has no header row, that first row was not loaded. Ingest it into a fresh store "
            f"with --no-header and columns by position (1, 2, ...).")
    prep = Prepared(staged, plan, prefix, str(Path(path).resolve()), joined=joined)
    cols = prep.raw_cols
    if plan.revenue:  # the file's own revenue, before anything is skipped or quarantined
        prep.revenue_read = con.execute(
            f"SELECT sum({plan.revenue}), count(*) FILTER (WHERE ({plan.revenue}) IS NULL) "
            f"FROM temp.{prefix}_raw").fetchone()
    if plan.dedup:
        rows = (f"SELECT min(__rn) AS __rn, count(*) AS __copies, {cols} "
                f"FROM temp.{prefix}_raw GROUP BY ALL")
    else:
        rows = f"SELECT __rn, 1 AS __copies, {cols} FROM temp.{prefix}_raw"
    extra = []
    for i, expr in enumerate(plan.user_attrs.values()):
        extra.append(f"{expr} AS __ua_{i}")
    if plan.revenue:
        extra.append(f"{plan.revenue} AS __revenue")
    extra_sql = "".join(",\n" + e for e in extra)
    reason, column = _problem_sql(plan.checks)
    final = "SELECT * FROM k"
    if unique_key:  # a second good row for the same id (side files): the first one is kept
        final = f"""SELECT * REPLACE (
                coalesce(__problem, CASE WHEN __keyrank > 1 THEN {sql_str(unique_reason)} END) AS __problem,
                coalesce(__problem_col, CASE WHEN __keyrank > 1 THEN {sql_str(plan.mapping.get('id', unique_key))} END) AS __problem_col)
            FROM (SELECT *, row_number() OVER (PARTITION BY {unique_key}, __problem IS NULL
                                               ORDER BY __rn) AS __keyrank FROM k)"""
    title = ("Skipping exact duplicates and checking rows" if plan.dedup else "Checking rows")
    with progress.stage(title, total=100) as bar:
        execute_with_progress(con, f"""CREATE TEMP TABLE {prefix}_parsed AS
            WITH r AS ({rows}), p AS (
                SELECT __rn, __copies, {cols},
                {plan.field_sql()}{extra_sql}
                FROM r
            ), k AS (SELECT *, {reason} AS __problem, {column} AS __problem_col FROM p)
            {final}""", bar=bar)
    prep.n_rows = con.execute(f"SELECT count(*) FROM {prep.parsed}").fetchone()[0]
    # the staged copy is no longer needed: free its memory / temp space before loading
    con.execute(f"DROP VIEW IF EXISTS temp.{prefix}_raw")
    con.execute(f"DROP TABLE IF EXISTS temp.{prefix}_raw_t")
    return prep


def write_quarantine(con, prep: Prepared, ingest_id: int) -> None:
    con.execute(f"""INSERT INTO quarantine
        SELECT ?, ?, __rn, __problem_col, __problem, {prep.raw_json}, {prep.row_hash}
        FROM {prep.parsed} WHERE __problem IS NOT NULL ORDER BY __rn""",
                [ingest_id, prep.source_file])
    if prep.staged.rejects:
        con.execute(f"""INSERT INTO quarantine
            SELECT ?, ?, row_number, column_name, reason, raw, hash(raw)
            FROM ({reject_rows_sql(prep.prefix + '_raw', lines=prep.plan.baskets or not prep.staged.header)}) ORDER BY row_number""",
                    [ingest_id, prep.source_file])


def counts(con, prep: Prepared, ingest_id: int, loaded: int) -> dict:
    """The file's accounting; quarantined is counted back from the quarantine table."""
    n_rows = prep.n_rows
    quarantined = con.execute(
        "SELECT count(*) FROM quarantine WHERE ingest_id = ? AND source_file = ?",
        [ingest_id, prep.source_file]).fetchone()[0]
    read = prep.staged.rows + prep.staged.rejects
    return {
        "source_file": prep.source_file,
        "rows_read": int(read),
        "rows_loaded": int(loaded),
        "rows_quarantined": int(quarantined),
        "rows_duplicate": int(prep.staged.rows - n_rows),
        "malformed_lines": int(prep.staged.rejects),
    }


# ------------------------------------------------------------------ events
def _loaded_view(con, prep: Prepared) -> str:
    """One row per event to load, canonical columns, plus item/user attribute columns."""
    name = f"{prep.prefix}_loaded"
    if prep.plan.baskets:
        line = ident(prep.staged.columns[0])
        con.execute(f"""CREATE TEMP TABLE {name} AS
            SELECT __rn, NULL::VARCHAR AS __user_id, label AS __item_id, 'purchase' AS __type,
                   NULL::TIMESTAMP AS __ts, count(*)::DOUBLE AS __qty, NULL::DOUBLE AS __price,
                   CAST(__rn AS VARCHAR) AS __basket, NULL::VARCHAR AS __session,
                   label AS __title, NULL::VARCHAR AS __description, NULL::VARCHAR AS __category,
                   NULL::VARCHAR AS __brand, any_value(hash({line})) AS __hash
            FROM (SELECT __rn, {line}, unnest(__items) AS label FROM {prep.parsed}
                  WHERE __problem IS NULL)
            GROUP BY __rn, label""")
    else:
        con.execute(f"""CREATE TEMP VIEW {name} AS
            SELECT *, {prep.row_hash} AS __hash FROM {prep.parsed} WHERE __problem IS NULL""")
    return f"temp.{name}"


def write_events(con, prep: Prepared, ingest_id: int, progress: Progress = NULL) -> tuple[str, int]:
    """Insert the loaded rows as events; returns (loaded relation, source rows loaded).

    event_id = the store's previous largest event_id (``prep.event_id_base``) + the source row
    number, so an event can be traced back to its file row (baskets: numbered in order)."""
    with progress.stage("Loading events", total=100) as bar:
        loaded = _loaded_view(con, prep)
        base = int(con.execute("SELECT coalesce(max(event_id), 0) FROM events").fetchone()[0])
        prep.event_id_base = None if prep.plan.baskets else base
        # one event per source row: event_id = base + row number; baskets: numbered in order
        event_id = (f"{base} + row_number() OVER (ORDER BY __rn, __item_id)" if prep.plan.baskets
                    else f"{base} + __rn")
        execute_with_progress(con, f"""INSERT INTO events
            SELECT {event_id}, __user_id, __item_id, __type, __ts, __qty, __price, __basket,
                   __session, {int(ingest_id)}, __hash
            FROM {loaded} ORDER BY __rn, __item_id""", bar=bar)
        if any(prep.plan.fields.get(f, "NULL") != "NULL" for f in ("__rating", "__review")):
            con.execute(f"""INSERT INTO event_reviews
                SELECT {base} + __rn, __rating, __review, {int(ingest_id)} FROM {loaded}
                WHERE __rating IS NOT NULL OR __review IS NOT NULL ORDER BY __rn""")
    if prep.plan.baskets:
        n = con.execute("SELECT count(DISTINCT basket_id) FROM events WHERE ingest_id = ?",
                        [ingest_id]).fetchone()[0]
    else:
        n = con.execute("SELECT count(*) FROM events WHERE ingest_id = ?", [ingest_id]).fetchone()[0]
    return loaded, int(n)


# ------------------------------------------------------------------ items and users
def _mode(src: str, key: str, col: str) -> str:
    """Most frequent non-NULL value of ``col`` per ``key`` (ties: alphabetically first)."""
    return (f"(SELECT {key} AS k, first(v ORDER BY n DESC, v) AS v FROM "
            f"(SELECT {key}, {col} AS v, count(*) AS n FROM {src} WHERE {col} IS NOT NULL "
            f"GROUP BY ALL) GROUP BY ALL)")


def items_sql(src: str, plan: Plan) -> str:
    """Items from loaded rows: the most frequent title/description/category/brand per item and
    the median positive price."""
    attrs = {"title": "__title", "description": "__description", "category_path": "__category",
             "brand": "__brand"}
    joins, sel = [], []
    for i, (out, col) in enumerate(attrs.items()):
        if plan.fields.get(col, "NULL") == "NULL" and not plan.baskets:
            sel.append(f"NULL::VARCHAR AS {out}")
            continue
        joins.append(f"LEFT JOIN {_mode(src, '__item_id', col)} m{i} ON m{i}.k = keys.item_id")
        sel.append(f"m{i}.v AS {out}")
    return f"""
        SELECT keys.item_id, {', '.join(sel)}, keys.price
        FROM (SELECT __item_id AS item_id, median(__price) FILTER (WHERE __price > 0) AS price
              FROM {src} GROUP BY 1) keys
        {' '.join(joins)}
    """


def users_sql(src: str, plan: Plan) -> str:
    """Users from loaded rows with a user id: attributes (most frequent value of each) and the
    first event time. NULL attributes are left out of the JSON."""
    joins, pairs = [], []
    for i, key in enumerate(plan.user_attrs):
        joins.append(f"LEFT JOIN {_mode(src, '__user_id', f'__ua_{i}')} a{i} ON a{i}.k = keys.user_id")
        pairs.append(f"{sql_str(key)}, a{i}.v")
    obj = f"json_merge_patch('{{}}', json_object({', '.join(pairs)}))" if pairs else "'{}'::JSON"
    return f"""
        SELECT keys.user_id, {obj} AS attributes, keys.first_seen
        FROM (SELECT __user_id AS user_id, min(__ts) AS first_seen FROM {src}
              WHERE __user_id IS NOT NULL GROUP BY 1) keys
        {' '.join(joins)}
    """


def merge_items(con, parts: list[tuple[str, bool]], ingest_id: int) -> dict:
    """Upsert items. ``parts`` = [(SELECT, from_file)]; catalogue (--items) values win over values
    derived from events, and over what the store already has; derived values only fill gaps."""
    empty = ("SELECT NULL::VARCHAR AS item_id, NULL::VARCHAR AS title, NULL::VARCHAR AS description, "
             "NULL::VARCHAR AS category_path, NULL::VARCHAR AS brand, NULL::DOUBLE AS price WHERE false")
    d = next((s for s, from_file in parts if not from_file), empty)
    f = next((s for s, from_file in parts if from_file), empty)
    con.execute(f"""CREATE TEMP TABLE _ing_item_updates AS
        SELECT coalesce(f.item_id, d.item_id) AS item_id,
               coalesce(f.title, d.title) AS title, coalesce(f.description, d.description) AS description,
               coalesce(f.category_path, d.category_path) AS category_path,
               coalesce(f.brand, d.brand) AS brand, coalesce(f.price, d.price) AS price,
               f.item_id IS NOT NULL AS from_file
        FROM ({d}) d FULL JOIN ({f}) f ON f.item_id = d.item_id""")
    pick = lambda c: (f"CASE WHEN n.from_file THEN coalesce(n.{c}, items.{c}) "  # noqa: E731
                      f"ELSE coalesce(items.{c}, n.{c}) END")
    con.execute(f"""UPDATE items SET title = {pick('title')}, description = {pick('description')},
            category_path = {pick('category_path')}, brand = {pick('brand')}, price = {pick('price')}
        FROM temp._ing_item_updates n WHERE items.item_id = n.item_id""")
    new = con.execute("""INSERT INTO items
        SELECT n.item_id, n.title, n.description, n.category_path, n.brand, n.price, ?
        FROM temp._ing_item_updates n
        WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.item_id = n.item_id)
        ORDER BY n.item_id""", [ingest_id]).fetchone()[0]
    seen = con.execute("SELECT count(*) FROM temp._ing_item_updates").fetchone()[0]
    return {"items_in_file": int(seen), "items_new": int(new)}


def merge_users(con, derived: str | None, from_file: str | None, ingest_id: int) -> dict:
    """Upsert users: attributes are merged (the --users file wins over values derived from
    events, and both over what the store had), first_seen is the earliest."""
    if derived is None and from_file is None:
        return {"users_in_file": 0, "users_new": 0}
    empty = "SELECT NULL::VARCHAR AS user_id, NULL::JSON AS attributes, NULL::TIMESTAMP AS first_seen WHERE false"
    con.execute(f"""CREATE TEMP TABLE _ing_user_updates AS
        SELECT coalesce(f.user_id, d.user_id) AS user_id,
               json_merge_patch(coalesce(d.attributes, '{{}}'), coalesce(f.attributes, '{{}}')) AS attributes,
               least(d.first_seen, f.first_seen) AS first_seen
        FROM ({derived or empty}) d FULL JOIN ({from_file or empty}) f ON f.user_id = d.user_id""")
    con.execute("""UPDATE users SET
            attributes = json_merge_patch(coalesce(users.attributes, '{}'), n.attributes),
            first_seen = least(users.first_seen, n.first_seen)
        FROM temp._ing_user_updates n WHERE users.user_id = n.user_id""")
    new = con.execute("""INSERT INTO users
        SELECT n.user_id, n.attributes, n.first_seen, ? FROM temp._ing_user_updates n
        WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = n.user_id)
        ORDER BY n.user_id""", [ingest_id]).fetchone()[0]
    seen = con.execute("SELECT count(*) FROM temp._ing_user_updates").fetchone()[0]
    return {"users_in_file": int(seen), "users_new": int(new)}


def overlap_with_earlier(con, prep: Prepared, ingest_id: int, fmt: str) -> int:
    """Loaded rows whose raw-row hash matches an event of an earlier ingest of the same format
    (a warning sign that the same data came in twice under another file). Not for baskets,
    where identical lines are different shoppers' baskets."""
    if prep.plan.baskets:
        return 0
    return int(con.execute("""
        SELECT count(*) FROM events e WHERE e.ingest_id = ? AND e.row_hash IN (
            SELECT x.row_hash FROM events x JOIN ingests i ON i.ingest_id = x.ingest_id
            WHERE i.format = ?)""", [ingest_id, fmt]).fetchone()[0])


# ------------------------------------------------------------------ revenue reconciliation
def revenue(con, prep: Prepared, ingest_id: int) -> dict | None:
    """sum(quantity * price) of the file vs loaded + quarantined + duplicates (when both exist)."""
    if not prep.plan.revenue:
        return None
    read, unparseable = prep.revenue_read
    q, dup = con.execute(
        f"SELECT sum(__revenue) FILTER (WHERE __problem IS NOT NULL), "
        f"sum((__copies - 1) * __revenue) FROM {prep.parsed}").fetchone()
    types = list(prep.plan.revenue_types or ())
    loaded = con.execute("SELECT sum(quantity * unit_price) FROM events WHERE ingest_id = ? "
                         "AND (len(?::VARCHAR[]) = 0 OR list_contains(?::VARCHAR[], event_type))",
                         [ingest_id, types, types]).fetchone()[0]
    read, q, dup, loaded = (float(x or 0.0) for x in (read, q, dup, loaded))
    total = loaded + q + dup
    return {
        "revenue_read": round(read, 2),
        "revenue_loaded": round(loaded, 2),
        "revenue_quarantined": round(q, 2),
        "revenue_duplicate": round(dup, 2),
        "rows_without_revenue": int(unparseable),
        "revenue_reconciles": abs(read - total) <= 0.005 + 1e-9 * abs(read),
    }
