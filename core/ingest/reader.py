"""Reading source files into DuckDB staging tables (streamed; nothing goes through pandas).

File types
----------
* CSV and TSV, plain or gzip (``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.tab``, ``.txt``): read by
  DuckDB's ``read_csv`` with every column as text (``all_varchar``), so a bad value never aborts the
  read: each value is parsed later, in SQL, and a row whose value does not parse is quarantined.
  TSV is recognised by its name (``.tsv``/``.tab``); otherwise DuckDB sniffs the delimiter.
  Lines that are malformed at the CSV level (too many or too few fields, a stray quote) are
  caught with DuckDB's ``store_rejects`` and quarantined with the raw line and DuckDB's message.
* Parquet (``PAR1`` magic) via ``read_parquet``; typed columns are cast to text so every format is
  parsed by one code path. A gzipped Parquet file (``.parquet.gz``) is first unpacked, streaming,
  into a temporary file (Parquet cannot be read through gzip).

Row numbers
-----------
``row_number`` is the 1-based data row of the source (the header line not counted; for header-less
basket files it is the line number). It comes from the staging table's ``rowid`` (DuckDB keeps
insertion order), shifted past any lines DuckDB rejected as malformed CSV.

Fingerprint
-----------
``fingerprint(path)`` is the SHA-256 of the file's bytes: the same content under another name
is the same file.
"""

from __future__ import annotations

import contextlib
import difflib
import gzip
import hashlib
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

from core.progress import NULL, Progress


class IngestError(ValueError):
    """A problem with the input that the user can fix; the message names file, column and fix."""


RAW_VIEW = "_ing_raw"  # staging view: __rn (row number) + the source columns as VARCHAR


def sql_str(s: str) -> str:
    """A SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def execute_with_progress(con: duckdb.DuckDBPyConnection, sql: str, params=None,
                          bar=None, poll_seconds: float = 0.2):
    """Run one statement, moving ``bar`` (a stage with total=100) with DuckDB's own progress.

    ``con.query_progress()`` is read from a helper thread while the statement runs (DuckDB's
    progress tracking is on, its printing off), so a long read of a big file shows a moving bar.
    """
    if bar is None:
        return con.execute(sql, params or [])
    done = threading.Event()
    shown = [0]

    def poll():
        while not done.wait(poll_seconds):
            try:
                pct = con.query_progress()
            except Exception:  # noqa: BLE001 - progress is best effort
                return
            pct = int(max(0.0, min(99.0, pct)))
            if pct > shown[0]:
                bar.advance(pct - shown[0])
                shown[0] = pct

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        return con.execute(sql, params or [])
    finally:
        done.set()
        t.join()
        bar.advance(100 - shown[0])


def fingerprint(path: Path, progress: Progress = NULL) -> str:
    size = path.stat().st_size
    h = hashlib.sha256()
    with progress.stage(f"Fingerprinting {path.name}", total=size) as bar:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
                bar.advance(len(chunk))
    return h.hexdigest()


def file_kind(path: Path) -> str:
    """'parquet', 'parquet.gz', 'tsv' or 'csv' (by magic bytes, then by name)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    name = path.name.lower()
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as g:
            try:
                inner = g.read(4)
            except (OSError, EOFError) as e:
                raise IngestError(f"{path}: the file looks gzipped but cannot be unpacked ({e}).") from e
        if inner == b"PAR1":
            return "parquet.gz"
        name = name.removesuffix(".gz")
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    if name.endswith(".parquet"):
        raise IngestError(f"{path}: named .parquet but is not a Parquet file (no PAR1 header).")
    return "csv"


@dataclass
class Staged:
    """A source file staged in the connection as ``RAW_VIEW``."""

    path: Path
    kind: str
    columns: list[str]
    rows: int                        # rows staged (good rows)
    rejects: int = 0                 # malformed CSV lines (quarantined separately)


@contextlib.contextmanager
def _parquet_source(path: Path, kind: str) -> Iterator[Path]:
    if kind != "parquet.gz":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="segstudio-ingest-") as d:
        out = Path(d) / (path.name.removesuffix(".gz") or "data.parquet")
        with gzip.open(path, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        yield out


def drop_staging(con: duckdb.DuckDBPyConnection, prefix: str = "_ing_") -> None:
    """Drop every temporary object an ingest created (views first, then tables)."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = 'temp' AND starts_with(table_name, ?)", [prefix]
    ).fetchall()
    for name, typ in sorted(rows, key=lambda r: r[1] != "VIEW"):
        kw = "VIEW" if typ == "VIEW" else "TABLE"
        con.execute(f"DROP {kw} IF EXISTS temp.{ident(name)}")


def stage(con: duckdb.DuckDBPyConnection, path: Path, *, lines: bool = False,
          view: str = RAW_VIEW, encoding: str | None = None, progress: Progress = NULL) -> Staged:
    """Read ``path`` into a temporary table and expose it as ``view`` with a ``__rn`` column.

    ``lines=True`` reads a header-less text file as one column ``line`` (one value per line,
    blank lines kept as NULL) for the basket format.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file. Check the path (it is relative to {Path.cwd()}).")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty. Check that the export finished.")
    kind = file_kind(path)
    table = view + "_t"
    rejects, scans = view + "_rejects", view + "_scans"
    for t in (rejects, scans):
        con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    con.execute(f"DROP VIEW IF EXISTS temp.{view}")
    con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    n_rejects = 0
    with progress.stage(f"Reading {path.name}", total=100) as bar:
        try:
            if kind.startswith("parquet"):
                if lines:
                    raise IngestError(
                        f"{path}: the baskets format reads a text file with one basket per line, "
                        f"not Parquet. Use --format events with --basket-col and --item-col instead."
                    )
                with _parquet_source(path, kind) as src:
                    cols = [r[0] for r in con.execute(
                        f"DESCRIBE SELECT * FROM read_parquet({sql_str(src)})").fetchall()]
                    sel = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in cols)
                    execute_with_progress(con, f"CREATE TEMP TABLE {table} AS SELECT {sel} "
                                          f"FROM read_parquet({sql_str(src)})", bar=bar)
            else:
                if lines:
                    opts = ("header = false, auto_detect = false, columns = {'line': 'VARCHAR'}, "
                            "delim = '\x01', quote = '', escape = ''")
                else:
                    opts = "header = true, all_varchar = true"
                    if kind == "tsv":
                        opts += ", delim = '\t'"
                if encoding:
                    opts += f", encoding = {sql_str(encoding)}"
                opts += f", store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scans}'"
                execute_with_progress(
                    con, f"CREATE TEMP TABLE {table} AS SELECT * FROM read_csv({sql_str(path)}, {opts})",
                    bar=bar)
                n_rejects = con.execute(f"SELECT count(*) FROM temp.{rejects}").fetchone()[0]
        except duckdb.Error as e:
            raise IngestError(
                f"{path}: DuckDB could not read the file as {kind.upper()}: {str(e).splitlines()[0]}. "
                f"Check that it is a UTF-8 CSV/TSV (with a header row) or a Parquet file."
            ) from e
    cols = [r[0] for r in con.execute(f"DESCRIBE temp.{table}").fetchall()]
    n = con.execute(f"SELECT count(*) FROM temp.{table}").fetchone()[0]
    if n_rejects:
        # Good row k (1-based, in file order) sits at data row k + #{rejects j : d_j - j < k},
        # where d_j is reject j's data row and j its rank: d_j - j good rows precede reject j.
        header = 0 if lines else 1
        con.execute(f"""
            CREATE TEMP TABLE {view}_gaps AS
            SELECT d - j AS before, max(j) AS j FROM (
                SELECT line - {header} AS d, row_number() OVER (ORDER BY line) AS j
                FROM (SELECT DISTINCT line FROM temp.{rejects})
            ) GROUP BY ALL
        """)
        con.execute(f"""
            CREATE TEMP VIEW {view} AS
            SELECT t.rowid + 1 + coalesce(g.j, 0) AS __rn, t.*
            FROM temp.{table} t ASOF LEFT JOIN temp.{view}_gaps g ON t.rowid + 1 > g.before
        """)
    else:
        con.execute(f"CREATE TEMP VIEW {view} AS SELECT rowid + 1 AS __rn, * FROM temp.{table}")
    return Staged(path=path, kind=kind, columns=cols, rows=int(n), rejects=int(n_rejects))


def reject_rows_sql(view: str = RAW_VIEW, lines: bool = False) -> str:
    """SELECT of the malformed lines: row_number, column_name, reason, raw JSON."""
    header = 0 if lines else 1
    return f"""
        SELECT line - {header} AS row_number,
               any_value(column_name) AS column_name,
               CASE WHEN lower(CAST(any_value(error_type) AS VARCHAR)) = 'invalid encoding'
                    THEN 'malformed line: invalid encoding (save the file as UTF-8, or pass --encoding latin-1)'
                    ELSE 'malformed line: ' || lower(CAST(any_value(error_type) AS VARCHAR))
                         || ' (fix the quoting or the number of fields on that line)' END AS reason,
               json_object('line', any_value(csv_line), 'error', any_value(error_message)) AS raw
        FROM temp.{view}_rejects GROUP BY line
    """


def resolve_column(wanted: str, columns: list[str], path: Path, *, purpose: str, fix: str) -> str:
    """The file's column named ``wanted`` (exact, else case-insensitive) or a clear error."""
    if wanted in columns:
        return wanted
    folded = {c.lower().strip(): c for c in columns}
    if wanted.lower().strip() in folded:
        return folded[wanted.lower().strip()]
    close = difflib.get_close_matches(wanted.lower(), list(folded), n=1, cutoff=0.5)
    hint = f" The closest match is '{folded[close[0]]}'." if close else ""
    raise IngestError(
        f"{path}: column '{wanted}' ({purpose}) is missing. Columns found: "
        f"{', '.join(columns)}.{hint} {fix}"
    )


def find_column(candidates: list[str], columns: list[str]) -> str | None:
    """The first of ``candidates`` present in ``columns`` (case-insensitive), or None."""
    folded = {c.lower().strip(): c for c in columns}
    for cand in candidates:
        if cand.lower() in folded:
            return folded[cand.lower()]
    return None
