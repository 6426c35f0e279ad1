"""The DuckDB store: one file, read by many, written by one build or ingest at a time.

How writes stay invisible until complete
----------------------------------------
DuckDB lets many processes read one file only while no process holds it read-write. So a
writer (ingest, build, saving a segment) never opens the published file for writing. Instead:

1. it takes an exclusive lock (``<store>.lock``) so writers queue instead of racing;
2. copies the published file to a private shadow file ``.<store>.<pid>.<token>.tmp``;
3. does all its work in the shadow file;
4. on success checkpoints, closes, fsyncs and atomically renames the shadow over the store.

Readers (dashboard sessions, ``segstudio status``) open the published file read-only. They see
either the state before a write or the state after it, never half of one. A reader that already
has the old file open keeps reading it (the old inode lives until it closes); ``Store.version()``
changes after a publish so long-lived readers can reopen. A write that fails, or a process that is
killed half-way, leaves the published file untouched; its shadow is removed on failure, or by
the next writer if the process was killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

from core.store.schema import ensure_schema, schema_version


class StoreNotFound(FileNotFoundError):
    pass


@dataclass(frozen=True)
class StoreVersion:
    inode: int
    mtime_ns: int
    size: int


class Store:
    """A Segment Studio store at ``path`` (a DuckDB file)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # ---------------------------------------------------------------- reading
    def exists(self) -> bool:
        return self.path.is_file()

    def version(self) -> StoreVersion | None:
        """Identity of the published file; changes whenever a write is published."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return StoreVersion(st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self) -> "ReadConnection":
        """A read-only connection to the store as published now.

        Each call opens the file afresh (attached to a private in-memory database), so a reader
        that calls ``read()`` after a publish sees the new state even while older connections in
        the same process still read the previous one. (A plain ``duckdb.connect(path)`` would
        hand back DuckDB's cached instance of the old file.) ``.cursor()`` gives a connection for
        another thread on the same snapshot.
        """
        if not self.exists():
            raise StoreNotFound(
                f"No Segment Studio store at {self.path}. Create one with "
                f"`segstudio demo` (demo shop) or `segstudio ingest FILE --format FORMAT`, "
                f"or point to an existing one with --db / SEGSTUDIO_DB."
            )
        con = duckdb.connect(":memory:")
        path = str(self.path).replace("'", "''")
        con.execute(f"ATTACH '{path}' AS store (READ_ONLY)")
        con.execute("USE store")
        if schema_version(con) is None:
            con.close()
            raise StoreNotFound(f"{self.path} is a DuckDB file but not a Segment Studio store.")
        return ReadConnection(con)

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def write(self, wait: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Context manager yielding a read-write connection to a private copy of the store.

        The copy replaces the published store only if the block finishes without an exception.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as lock:
            self._lock(lock, wait)
            try:
                self._remove_stale_shadows()
                shadow = self.path.with_name(
                    f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
                )
                if self.exists():
                    shutil.copyfile(self.path, shadow)
                con = duckdb.connect(str(shadow))
                try:
                    ensure_schema(con)
                    yield con
                    con.execute("CHECKPOINT")
                    con.close()
                except BaseException:
                    with contextlib.suppress(Exception):
                        con.close()
                    _unlink_shadow(shadow)
                    raise
                _fsync(shadow)
                os.replace(shadow, self.path)
                _fsync_dir(self.path.parent)
            finally:
                with contextlib.suppress(Exception):
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _lock(self, lock, wait: bool) -> None:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise RuntimeError(
                    f"Another ingest or build is writing to {self.path}. "
                    f"Wait for it to finish and try again."
                ) from None
            print(
                f"Waiting for another ingest or build to finish writing {self.path.name}...",
                file=sys.stderr,
            )
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)

    def _remove_stale_shadows(self) -> None:
        """Shadows of killed writers (their pid is gone). Called while holding the lock."""
        for p in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            parts = p.name[len(self.path.name) + 2 :].split(".")
            try:
                pid = int(parts[0])
            except (ValueError, IndexError):
                continue
            if pid == os.getpid() or not _pid_alive(pid):
                _unlink_shadow(p)


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


def _unlink_shadow(p: Path) -> None:
    for f in (p, p.with_name(p.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def wait_for_version_change(store: Store, old: StoreVersion | None, timeout: float) -> bool:
    """Poll until the published store changes (used by tests and the dashboard's refresh)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if store.version() != old:
            return True
        time.sleep(0.05)
    return False
