"""The DuckDB store: one file, read by many, written by one build or ingest at a time.

How writes stay invisible until complete
----------------------------------------
A writer (ingest, build) never opens the published file for writing: it takes the store's lock,
works in a private copy and renames it over the store when it succeeds (the protocol is in
``core.store.publish``). Readers (dashboard sessions, ``segstudio status``) open the published
file read-only. They see either the state before a write or the state after it, never half of
one. A reader that already has the old file open keeps reading it (the old inode lives until it
closes); ``Store.version()`` changes after a publish so long-lived readers can reopen. A write
that fails, or a process that is killed half-way, leaves the published file untouched.

Small records (saved segments, and later audiences and export records) live in a second file
beside the store, ``<store>.records.duckdb`` (``core.store.records``), with its own lock: saving
one never copies the store and never waits for a build. ``Store.read()`` attaches both: the
store's tables by their names, the records' as ``records.<table>``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import contextlib

import duckdb

from core.store import records as _records
from core.store.publish import StoreError, not_a_store, os_error, published_write
from core.store.schema import ensure_schema, schema_version


class StoreNotFound(StoreError, FileNotFoundError):
    pass


@dataclass(frozen=True)
class StoreVersion:
    inode: int
    mtime_ns: int
    size: int
    records: tuple[int, int, int] | None = None   # the records file's (inode, mtime_ns, size)

    @property
    def key(self) -> str:
        """A short text key of the whole version (store and records)."""
        r = "-".join(map(str, self.records)) if self.records else "none"
        return f"{self.inode}-{self.mtime_ns}-{self.size}/{r}"

    @property
    def data_key(self) -> str:
        """A key of the store alone: it changes with ingests and builds, not with records."""
        return f"{self.inode}-{self.mtime_ns}-{self.size}"


def _stat(p: Path) -> tuple[int, int, int] | None:
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class Store:
    """A Segment Studio store at ``path`` (a DuckDB file) and its records file beside it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def records_path(self) -> Path:
        return _records.records_path(self.path)

    # ---------------------------------------------------------------- reading
    def exists(self) -> bool:
        return self.path.is_file()

    def version(self) -> StoreVersion | None:
        """Identity of the published files; changes whenever a write is published."""
        main = _stat(self.path)
        if main is None:
            return None
        return StoreVersion(*main, records=_stat(self.records_path))

    def _check_path(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a store file. Give a file name "
                             f"such as {self.path / 'segstudio.duckdb'} to --db.")
        with contextlib.suppress(OSError):
            if self.path.is_file() and self.path.stat().st_size == 0:
                raise StoreError(f"{self.path} is an empty file, not a Segment Studio store. "
                                 f"Delete it, or give --db a new file name to create a store.")

    def read(self) -> "ReadConnection":
        """A read-only connection to the store (and its records) as published now.

        Each call opens the files afresh (attached to a private in-memory database), so a reader
        that calls ``read()`` after a publish sees the new state even while older connections in
        the same process still read the previous one. (A plain ``duckdb.connect(path)`` would
        hand back DuckDB's cached instance of the old file.) ``.cursor()`` gives a connection for
        another thread on the same snapshot.
        """
        self._check_path()
        if not self.exists():
            raise StoreNotFound(
                f"No Segment Studio store at {self.path}. Create one with "
                f"`segstudio demo` (demo shop) or `segstudio ingest FILE --format FORMAT`, "
                f"or point to an existing one with --db / SEGSTUDIO_DB."
            )
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"ATTACH {_sql_str(self.path)} AS store (READ_ONLY)")
        except duckdb.Error as e:
            con.close()
            raise not_a_store(self.path, e) from e
        con.execute("USE store")
        if schema_version(con) is None:
            con.close()
            raise StoreNotFound(f"{self.path} is a DuckDB file but not a Segment Studio store.")
        _records.attach_for_reading(con, self.records_path)
        con.execute("USE store")
        return ReadConnection(con)

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def write(self, wait: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Context manager yielding a read-write connection to a private copy of the store.

        The copy replaces the published store only if the block finishes without an exception.
        """
        self._check_path()
        with published_write(self.path, ensure_schema, wait=wait,
                             busy="another ingest or build") as con:
            yield con

    @contextlib.contextmanager
    def write_records(self, wait: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to a private copy of the records file (saved segments...),
        published on success. It never copies the store and never waits for a build."""
        self._check_path()
        with _records.write(self.path, wait=wait) as con:
            yield con


class ReadConnection:
    """A read-only DuckDB connection to a store snapshot (see ``Store.read``).

    Behaves like ``duckdb.DuckDBPyConnection`` (every attribute is passed through); ``cursor()``
    returns another ``ReadConnection`` on the same snapshot, for use in another thread.
    """

    __slots__ = ("_con",)

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def cursor(self) -> "ReadConnection":
        cur = self._con.cursor()
        cur.execute("USE store")
        return ReadConnection(cur)

    @property
    def raw(self) -> duckdb.DuckDBPyConnection:
        return self._con

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._con.close()
        return False


def _sql_str(s) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def wait_for_version_change(store: Store, old: StoreVersion | None, timeout: float) -> bool:
    """Poll until the published store changes (used by tests and the dashboard's refresh)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if store.version() != old:
            return True
        time.sleep(0.05)
    return False


__all__ = ["ReadConnection", "Store", "StoreError", "StoreNotFound", "StoreVersion",
           "os_error", "wait_for_version_change"]
