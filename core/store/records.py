"""Records: the small things people write while they work (saved segments; audiences and export
records to come), kept in a file of their own beside the store.

Why a second file
-----------------
A write to the store copies the whole store and waits for the store's lock, which a build holds
for minutes. People saving a segment on the dashboard must not wait for that, and must not copy
a gigabyte to add ten rows. Records therefore live in ``<store>.records.duckdb`` (``segstudio
.duckdb`` -> ``segstudio.records.duckdb``), written with the same protocol as the store
(``core.store.publish``: lock, private copy, atomic rename) but with **their own lock**:

* a records write copies only the records file (kilobytes to a few megabytes), never the store;
* it never queues behind a build or an ingest (they hold the store's lock, not this one), and a
  build publishes its run without waiting for records writers either;
* readers never see half a write, and a writer that is killed leaves the last state intact.

``Store.read()`` attaches the records file next to the store as the catalog ``records``, and a
records write attaches its private copy under the same name, so SQL names records tables the
same way everywhere: ``SELECT ... FROM records.saved_segments``. Without a records file (nothing
saved yet) readers get empty tables under that name.

Using it from a feature (audiences, export log...)
--------------------------------------------------
1. Add the table to ``RECORDS_DDL`` below (``CREATE TABLE IF NOT EXISTS``; new columns of an
   existing table: ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` in ``RECORDS_MIGRATIONS``).
2. If its rows point at a build (a ``run_id``), add a ``SELECT`` of those run ids to
   ``RUN_REFERENCES``: run retention then keeps those builds.
3. Write with ``with store.write_records() as con: con.execute("INSERT INTO records.x ...")``
   and read with any ``store.read()`` connection (``FROM records.x``, joined freely with the
   store's tables). Keep records small: ids and settings, not copies of build data.

Stores made before records existed kept saved segments inside the store; the first records
write copies them over (``_migrate_legacy``). Readers only ever read ``records.*``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import duckdb

from core.store.publish import StoreError, not_a_store, published_write

RECORDS_VERSION = 1

RECORDS_DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS records_meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    )
    """,
    # Segments a person saved (from a map selection, a filter...). Members in saved_segment_members.
    """
    CREATE TABLE IF NOT EXISTS saved_segments (
        saved_id INTEGER NOT NULL,
        name VARCHAR NOT NULL,
        description VARCHAR,
        created_at TIMESTAMP,
        source_run_id INTEGER,
        definition JSON
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS saved_segment_members (
        saved_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL
    )
    """,
    # Campaign audiences (core.audiences.audience): a frozen segment with a seeded hold-out.
    """
    CREATE TABLE IF NOT EXISTS audiences (
        audience_id INTEGER NOT NULL,
        name VARCHAR NOT NULL,
        created_at TIMESTAMP,
        run_id INTEGER,
        definition JSON,
        description VARCHAR,
        frozen_at TIMESTAMP,          -- the data's last event when frozen
        holdout_share DOUBLE,
        seed INTEGER
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS audience_members (
        audience_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        grp VARCHAR NOT NULL          -- treated | holdout
    )
    """,
    # Every export: when, by whom, what and how many rows (core.audiences.exportlog).
    """
    CREATE TABLE IF NOT EXISTS export_log (
        export_id INTEGER NOT NULL,
        exported_at TIMESTAMP NOT NULL,
        who VARCHAR,
        what VARCHAR,
        rows BIGINT,
        path VARCHAR,
        format VARCHAR
    )
    """,
    # Item text vectors embedded on demand by readers (core.embed.lazy): catalogue items a build
    # left out, embedded when a persona needed them. Same shape as the store's item_embeddings.
    """
    CREATE TABLE IF NOT EXISTS item_embeddings (
        model VARCHAR NOT NULL,
        text_hash VARCHAR NOT NULL,
        vector FLOAT[] NOT NULL
    )
    """,
]

# Statements run after RECORDS_DDL on every write (idempotent: ADD COLUMN IF NOT EXISTS ...).
RECORDS_MIGRATIONS: list[str] = []

# SELECTs of the build run ids that records point at (run retention keeps those builds).
RUN_REFERENCES: list[str] = [
    "SELECT source_run_id AS run_id FROM records.saved_segments WHERE source_run_id IS NOT NULL",
    "SELECT run_id FROM records.audiences WHERE run_id IS NOT NULL",
]

ALIAS = "records"  # the catalog name of the records file, for readers and writers alike

# Tables copied from a store made before the records file existed.
_LEGACY_TABLES = ("saved_segments", "saved_segment_members")


def records_path(store_path: Path) -> Path:
    p = Path(store_path)
    if p.suffix:
        return p.with_name(f"{p.stem}.records{p.suffix}")
    return p.with_name(p.name + ".records.duckdb")


def ensure_records_schema(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in RECORDS_DDL:
        con.execute(ddl)
    for sql in RECORDS_MIGRATIONS:
        con.execute(sql)
    con.execute("INSERT OR IGNORE INTO records_meta VALUES ('records_version', ?)",
                [str(RECORDS_VERSION)])


@contextlib.contextmanager
def write(store_path: Path, wait: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a private copy of the records file, published on success."""
    store_path = Path(store_path)

    def prepare(con):
        ensure_records_schema(con)
        _migrate_legacy(con, store_path)

    with published_write(records_path(store_path), prepare, wait=wait,
                         busy="another save", alias=ALIAS) as con:
        yield con


def _migrate_legacy(con: duckdb.DuckDBPyConnection, store_path: Path) -> None:
    """Once per records file: copy saved segments that an older store kept inside itself."""
    if con.execute("SELECT 1 FROM records_meta WHERE key = 'legacy_copied'").fetchone():
        return
    if store_path.is_file() and store_path.stat().st_size > 0:
        try:
            con.execute(f"ATTACH {_sql_str(store_path)} AS legacy (READ_ONLY)")
        except duckdb.Error as e:
            raise not_a_store(store_path, e) from e
        try:
            have = {r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'legacy'").fetchall()}
            for t in _LEGACY_TABLES:
                if t in have:
                    con.execute(f"INSERT INTO records.main.{t} SELECT * FROM legacy.main.{t}")
        finally:
            con.execute("DETACH legacy")
    con.execute("INSERT INTO records_meta VALUES ('legacy_copied', 'yes')")


def clear(store_path: Path) -> None:
    """Delete every record (a replaced demo shop: its saved segments name other shoppers)."""
    if not records_path(store_path).is_file():
        return
    with write(store_path) as con:
        for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                "current_database() AND table_name <> 'records_meta'").fetchall():
            con.execute(f'DELETE FROM "{t}"')


def attach_for_reading(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Attach the records file read-only as ``records`` to a reader's connection (already
    holding the store as ``store``). Without a records file (nothing saved since records
    existed) the reader gets in-memory tables under that name: empty, or holding the saved
    segments an older store kept inside itself."""
    if not Path(path).is_file():
        con.execute(f"ATTACH ':memory:' AS {ALIAS}")
        con.execute(f"USE {ALIAS}")
        for ddl in RECORDS_DDL:
            con.execute(ddl)
        have = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'store'").fetchall()}
        for t in _LEGACY_TABLES:
            if t in have:
                con.execute(f"INSERT INTO {ALIAS}.main.{t} SELECT * FROM store.main.{t}")
        return
    try:
        con.execute(f"ATTACH {_sql_str(path)} AS {ALIAS} (READ_ONLY)")
    except duckdb.Error as e:
        raise StoreError(
            f"{path} (the store's saved segments) could not be opened: "
            f"{str(e).splitlines()[0]}. Move it aside to start without saved segments.") from e


def runs_in_use(store_path: Path) -> set[int]:
    """Build run ids that records point at, as published now (for run retention)."""
    path = records_path(store_path)
    if not path.is_file():
        return set()
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_sql_str(path)} AS {ALIAS} (READ_ONLY)")
        ids: set[int] = set()
        for sql in RUN_REFERENCES:
            try:
                ids.update(int(r[0]) for r in con.execute(sql).fetchall() if r[0] is not None)
            except duckdb.CatalogException:  # a table this records file does not have yet
                continue
        return ids
    finally:
        con.close()


def _sql_str(s) -> str:
    return "'" + str(s).replace("'", "''") + "'"
