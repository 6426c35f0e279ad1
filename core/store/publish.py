"""Publishing a DuckDB file atomically: the one write protocol every file of a store uses.

DuckDB lets many processes read a file only while no process holds it read-write, so a writer
never opens a published file for writing. ``published_write(path, ...)``:

1. takes an exclusive lock (``<file>.lock``), so writers of *that file* queue instead of racing;
2. copies the published file to a private shadow ``.<file>.<pid>.<token>.tmp`` (a copy that
   fails half-way, e.g. on a full disk, is removed before the error is raised);
3. yields a read-write connection to the shadow;
4. on success checkpoints, closes, fsyncs and atomically renames the shadow over the file.

Readers see the state before a write or after it, never half of one; a write that fails, or a
process killed half-way, leaves the published file untouched (its shadow is removed on failure,
or by the next writer of that file when the process was killed).

The store (``core.store.db``) and its records file (``core.store.records``) are two such files,
each with its own lock: a long build holds only the store's lock, so small records writes
(saved segments...) never queue behind it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Callable, Iterator

import duckdb


class StoreError(ValueError):
    """A store file that cannot be opened or written; the message names the file and the fix."""


@contextlib.contextmanager
def published_write(path: Path, prepare: Callable[[duckdb.DuckDBPyConnection], None], *,
                    wait: bool = True, busy: str = "another writer",
                    alias: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a read-write connection to a private copy of ``path``, published on success.

    ``prepare(con)`` runs first on the copy (schema). ``busy`` names the kind of writer in the
    "waiting" message. ``alias``: the copy is attached under that catalog name (and made the
    default), so SQL can name it the way readers do (``records.saved_segments``).
    """
    path = Path(path)
    lock_path = path.with_name(path.name + ".lock")
    made_dir = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise os_error(e, path.parent, action="write the store in") from e
    lock = _take_lock(lock_path, path, wait, busy)
    with lock:
        try:
            remove_stale_shadows(path)
            shadow = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            try:
                if path.exists():
                    shutil.copyfile(path, shadow)
                con = _connect(shadow, alias)
            except BaseException as e:
                unlink_shadow(shadow)
                if isinstance(e, OSError):
                    raise os_error(e, shadow, action="copy the store to") from e
                if isinstance(e, duckdb.Error):
                    raise not_a_store(path, e) from e
                raise
            try:
                prepare(con)
                yield con
                con.execute(f"CHECKPOINT {alias}" if alias else "CHECKPOINT")
                con.close()
                _fsync(shadow)
                os.replace(shadow, path)
            except BaseException:
                with contextlib.suppress(Exception):
                    con.close()
                unlink_shadow(shadow)
                raise
            _fsync_dir(path.parent)
        finally:
            if not path.exists():
                # nothing was ever published (a first write that failed): leave no lock file,
                # and no folder made for it, behind. Unlinked while held; see _take_lock.
                with contextlib.suppress(OSError):
                    lock_path.unlink()
                if made_dir:
                    with contextlib.suppress(OSError):
                        path.parent.rmdir()
            with contextlib.suppress(Exception):
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _take_lock(lock_path: Path, path: Path, wait: bool, busy: str):
    """Open and lock ``lock_path``. A writer whose first write fails removes the lock file while
    holding it, so a waiter may end up holding a lock on a removed file: it checks that the file
    it locked is still the one at ``lock_path`` and otherwise starts again."""
    for attempt in range(100):
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)  # a failed first writer removes it
            lock = open(lock_path, "a+")
        except FileNotFoundError as e:  # the folder went between the two calls: again
            if attempt == 99:
                raise os_error(e, path.parent, action="write the store in") from e
            continue
        except OSError as e:
            raise os_error(e, path.parent, action="write the store in") from e
        try:
            _lock(lock, path, wait, busy)
            mine = os.fstat(lock.fileno())
            try:
                now = os.stat(lock_path)
            except FileNotFoundError:
                now = None
        except BaseException:
            lock.close()
            raise
        if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
            return lock
        lock.close()
    raise StoreError(f"Could not lock {path} for writing: its lock file kept changing. Try again.")


def _connect(shadow: Path, alias: str | None) -> duckdb.DuckDBPyConnection:
    if alias is None:
        return duckdb.connect(str(shadow))
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{str(shadow).replace(chr(39), chr(39) * 2)}' AS {alias}")
        con.execute(f"USE {alias}")
    except BaseException:
        con.close()
        raise
    return con


def _lock(lock, path: Path, wait: bool, busy: str) -> None:
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not wait:
            raise RuntimeError(f"{busy[0].upper()}{busy[1:]} is writing to {path}. "
                               f"Wait for it to finish and try again.") from None
        print(f"Waiting for {busy} to finish writing {path.name}...", file=sys.stderr)
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)


def remove_stale_shadows(path: Path) -> None:
    """Shadows of killed writers of ``path`` (their pid is gone). Called while holding the lock."""
    for p in path.parent.glob(f".{path.name}.*.tmp"):
        parts = p.name[len(path.name) + 2:].split(".")
        try:
            pid = int(parts[0])
        except (ValueError, IndexError):
            continue
        if pid == os.getpid() or not _pid_alive(pid):
            unlink_shadow(p)


def unlink_shadow(p: Path) -> None:
    if p.is_dir():  # DuckDB's spill folder of a killed build's shadow (<shadow>.tmp)
        shutil.rmtree(p, ignore_errors=True)
        return
    for f in (p, p.with_name(p.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


def not_a_store(path: Path, e: Exception) -> StoreError:
    fix = ("Point --db (or SEGSTUDIO_DB) at a store made by segstudio, or at a new file name to "
           "create one.")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    if head.startswith(b"SQLite format 3"):
        return StoreError(f"{path} is a SQLite database, not a Segment Studio store. {fix}")
    if head[8:12] == b"DUCK":
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return StoreError(f"{path} is a DuckDB file that could not be opened ({first}): it may be "
                          f"damaged or made by another DuckDB version. {fix}")
    return StoreError(f"{path} is not a Segment Studio store (not a DuckDB database file). {fix}")


def os_error(e: OSError, path: Path, action: str = "use") -> StoreError:
    """An OSError as one sentence with the file and the fix."""
    where = e.filename or path
    if e.errno == errno.ENOSPC:
        return StoreError(f"The disk is full: could not {action} {where}. Free some space (or "
                          f"use a store on another disk with --db) and try again.")
    if e.errno in (errno.EACCES, errno.EPERM):
        return StoreError(f"Permission denied: could not {action} {where}. Use a folder you "
                          f"can write to (--db) or fix its permissions.")
    if e.errno == errno.EROFS:
        return StoreError(f"{where} is on a read-only file system: could not {action} it. Use "
                          f"a store on a writable disk (--db).")
    if e.errno == errno.ENAMETOOLONG:
        return StoreError(f"The file name is too long: {str(where)[:80]}... Use a shorter name "
                          f"(at most 255 characters per folder or file name).")
    if e.errno == errno.EISDIR:
        return StoreError(f"{where} is a folder, not a file. Give a file name instead.")
    return StoreError(f"Could not {action} {where}: {e.strerror or e}.")


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


def database_file(con) -> Path | None:
    """The file behind ``con``'s current database (None for an in-memory one)."""
    db = con.execute("SELECT current_database()").fetchone()[0]
    for _, name, file in con.execute("PRAGMA database_list").fetchall():
        if name == db and file:
            return Path(file)
    return None


def snapshot_for_worker(con, tag: str) -> Path | None:
    """Checkpoint the build's private copy of the store and copy it beside itself, for a
    background worker to read while the build goes on writing its own: ``.<shadow>.<tag>.tmp``
    (the shadow's pid is in the name, so a killed build's snapshots are removed with its shadow
    by ``remove_stale_shadows``). None for an in-memory store; raises OSError (no room)."""
    src = database_file(con)
    if src is None:
        return None
    snap = src.with_name(src.name[:-len(".tmp")] + f".{tag}.tmp") if src.name.endswith(".tmp") \
        else src.with_name(f".{src.name}.{tag}.tmp")
    con.execute("CHECKPOINT")
    try:
        shutil.copyfile(src, snap)
    except OSError:
        unlink_shadow(snap)
        raise
    return snap
