"""Every failure a person can cause or fix, as one plain sentence with the fix (exit code 2).

``explain(exc)`` returns that sentence, or None for an unexpected error (a bug), which the CLI
reports in one line too (exit code 1) and shows in full only with ``--debug``.
"""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb

from core.store.publish import os_error

EXIT_USER = 2
EXIT_BUG = 1


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _duckdb(e: duckdb.Error) -> str | None:
    msg = str(e)
    low = msg.lower()
    first = _one_line(msg.splitlines()[0] if msg else type(e).__name__)
    if "no space left" in low or "disk is full" in low:
        return ("The disk is full (DuckDB could not write its data or temporary files). Free some "
                "space, or point --db (and TMPDIR) at a disk with room, and try again.")
    if "not a valid duckdb database" in low or "not a duckdb" in low or "sqlite" in low:
        return (f"The store file is not a Segment Studio store ({first}). Point --db at a store made "
                f"by segstudio, or at a new file name to create one.")
    if "permission denied" in low or "read-only file system" in low:
        return (f"Permission denied ({first}). Use a store in a folder you can write to (--db) or "
                f"fix the folder's permissions.")
    if isinstance(e, duckdb.OutOfMemoryException) or "out of memory" in low:
        return ("DuckDB ran out of memory. Close other programs and try again, or use a machine "
                "with more memory.")
    if isinstance(e, duckdb.IOException):
        return f"A file could not be read or written ({first}). Check the path and free disk space."
    return None


def explain(e: BaseException) -> str | None:
    """One sentence for an expected failure, None for a bug."""
    from core.cli import UserError
    from core.config import ConfigError
    from core.store.schema import SchemaVersionError

    if isinstance(e, (UserError, ConfigError, SchemaVersionError)):
        return _one_line(e)
    if isinstance(e, ValueError) and not isinstance(e, UnicodeError):
        return _one_line(e)  # our own errors are ValueErrors whose message carries the fix
    if isinstance(e, OSError):
        path = Path(e.filename) if getattr(e, "filename", None) else Path(".")
        if e.errno == errno.ENOENT:
            return _one_line(f"{path}: no such file or folder. Check the path (it is relative to "
                             f"{Path.cwd()}).") if e.filename else _one_line(e)
        return _one_line(os_error(e, path))
    if isinstance(e, RuntimeError) and "is writing to" in str(e):
        return _one_line(e)  # a writer that would have to wait (wait=False)
    if isinstance(e, UnicodeDecodeError):
        return _one_line(f"A file is not valid {e.encoding} text (byte {e.start}). Give its "
                         f"encoding (e.g. --encoding latin-1) or save it as UTF-8.")
    if isinstance(e, duckdb.Error):
        msg = _duckdb(e)
        return None if msg is None else _one_line(msg)
    if isinstance(e, MemoryError):
        return "Out of memory. Close other programs or use a smaller file, and try again."
    return None


def bug_line(e: BaseException) -> str:
    text = _one_line(e)[:300]
    return (f"internal error: {type(e).__name__}: {text}. This is a bug in Segment Studio; run the "
            f"command again with --debug to see the details, and report them.")
