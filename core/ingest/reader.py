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
* What the bytes are (encoding, byte-order marks, files that are not tables) is decided first by
  ``core.ingest.source``; text DuckDB cannot decode itself, and files whose line endings mix CRLF
  and LF, are read through a UTF-8 copy it makes.

Counting
--------
Rows read = good records staged + malformed records. DuckDB numbers *records* (a quoted field
that spans lines is one record) and logs one reject row per error, so malformed records are
counted as distinct reject lines, exactly as the quarantine keeps them (one row per record).

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

import difflib
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.ingest import source
from core.ingest.errors import IngestError
from core.progress import NULL, Progress




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
    """SHA-256 of the file's bytes; a gzipped file is also checked to be complete (not cut off)."""
    size = path.stat().st_size
    h = hashlib.sha256()
    gz = None
    with progress.stage(f"Fingerprinting {path.name}", total=size) as bar:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                if gz is None:
                    gz = source.GzipCheck() if chunk[:2] == b"\x1f\x8b" else False
                if gz:
                    gz.feed(chunk)
                h.update(chunk)
                bar.advance(len(chunk))
    if gz and not gz.complete():
        why = f" ({gz.error})" if gz.error else ""
        raise IngestError(f"{path}: the gzip file is damaged or cut off{why}. Check that the "
                          f"download or export finished, then try again.")
    return h.hexdigest()


@dataclass
class Staged:
    """A source file staged in the connection as ``RAW_VIEW``."""

    path: Path
    kind: str
    columns: list[str]
    rows: int                        # rows staged (good rows)
    rejects: int = 0                 # malformed CSV records (quarantined separately, one per record)
    header: bool = True              # False: no header row, columns are named "1", "2", ...
    notes: list[str] = field(default_factory=list)   # how the bytes were read (encoding...)


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
          view: str = RAW_VIEW, encoding: str | None = None, header: bool = True,
          progress: Progress = NULL) -> Staged:
    """Read ``path`` into a temporary table and expose it as ``view`` with a ``__rn`` column.

    ``lines=True`` reads a header-less text file as one column ``line`` (one value per line,
    blank lines kept as NULL) for the basket format. ``header=False`` reads a CSV / TSV whose
    first line is data: its columns are named by position, "1", "2", ... (Parquet always has
    names).
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file. Check the path (it is relative to {Path.cwd()}).")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty. Check that the export finished.")
    info = source.inspect(path)
    header = header or info.kind.startswith("parquet")  # Parquet always names its columns
    if not lines and header and not info.kind.startswith("parquet") and source.first_line_blank(info):
        raise IngestError(f"{path}: the first line is empty, so the file has no header row. Put the "
                          f"column names on the first line (remove blank lines above them).")
    table = view + "_t"
    rejects, scans = view + "_rejects", view + "_scans"
    for t in (rejects, scans):
        con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    con.execute(f"DROP VIEW IF EXISTS temp.{view}")
    con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    n_rejects, notes = 0, list(info.notes)
    with progress.stage(f"Reading {path.name}", total=100) as bar:
        if info.kind.startswith("parquet"):
            if lines:
                raise IngestError(
                    f"{path}: the baskets format reads a text file with one basket per line, "
                    f"not Parquet. Use --format events with --basket-col and --item-col instead."
                )
            _read_parquet(con, info, table, bar)
        else:
            try:
                with source.readable(info, encoding) as (src, enc, more):
                    _read_csv(con, src, info.kind, enc, lines, table, rejects, scans, bar, header)
            except duckdb.Error as e:
                if not source.mixed_newlines(path, info.gzipped):
                    raise _unreadable(path, info, e) from None
                for t in (rejects, scans, table):
                    con.execute(f"DROP TABLE IF EXISTS temp.{t}")
                try:
                    with source.readable(info, encoding, newlines=True) as (src, enc, more):
                        _read_csv(con, src, info.kind, enc, lines, table, rejects, scans, bar, header)
                except duckdb.Error as e2:
                    raise _unreadable(path, info, e2) from None
            notes += more
            # one per malformed record (DuckDB logs one row per error: a line short of 5
            # columns gives 5), the same grouping the quarantine uses
            n_rejects = con.execute(f"SELECT count(DISTINCT line) FROM temp.{rejects}").fetchone()[0]
    cols = [r[0] for r in con.execute(f"DESCRIBE temp.{table}").fetchall()]
    if not header and not lines:  # columns by position: "1", "2", ...
        for i, c in enumerate(cols, 1):
            con.execute(f"ALTER TABLE temp.{table} RENAME COLUMN {ident(c)} TO {ident(str(i))}")
        cols = [str(i) for i in range(1, len(cols) + 1)]
    n = con.execute(f"SELECT count(*) FROM temp.{table}").fetchone()[0]
    if n_rejects:
        # Good row k (1-based, in file order) sits at data row k + #{rejects j : d_j - j < k},
        # where d_j is reject j's data row and j its rank: d_j - j good rows precede reject j.
        # DuckDB numbers records, not physical lines: a quoted field spanning lines is one.
        header_lines = 0 if (lines or not header) else 1
        con.execute(f"""
            CREATE TEMP TABLE {view}_gaps AS
            SELECT d - j AS before, max(j) AS j FROM (
                SELECT line - {header_lines} AS d, row_number() OVER (ORDER BY line) AS j
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
    if not header and not lines:
        notes.append(f"no header row: columns named by position, 1 to {len(cols)}")
    return Staged(path=path, kind=info.kind, columns=cols, rows=int(n), rejects=int(n_rejects),
                  notes=notes, header=header)


def _read_parquet(con, info: source.SourceInfo, table: str, bar) -> None:
    with source.copy_parquet(info) as src:
        try:
            cols = [r[0] for r in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({sql_str(src)})").fetchall()]
            sel = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in cols)
            execute_with_progress(con, f"CREATE TEMP TABLE {table} AS SELECT {sel} "
                                  f"FROM read_parquet({sql_str(src)})", bar=bar)
        except duckdb.Error as e:
            raise IngestError(
                f"{info.path}: DuckDB could not read the Parquet file ({_first_line(e)}). Check that "
                f"the export finished (a cut-off Parquet file cannot be read), or export it again."
            ) from None


def _read_csv(con, src: Path, kind: str, encoding: str | None, lines: bool, table: str,
              rejects: str, scans: str, bar, header: bool = True) -> None:
    if lines:
        opts = ("header = false, auto_detect = false, columns = {'line': 'VARCHAR'}, "
                "delim = '\x01', quote = '', escape = ''")
    else:
        opts = f"header = {'true' if header else 'false'}, all_varchar = true"
        if kind == "tsv":
            opts += ", delim = '\t'"
    if encoding:
        opts += f", encoding = {sql_str(encoding)}"
    opts += f", store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scans}'"
    execute_with_progress(
        con, f"CREATE TEMP TABLE {table} AS SELECT * FROM read_csv({sql_str(src)}, {opts})", bar=bar)


def _first_line(e: Exception) -> str:
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return first.split("Error: ", 1)[-1]


def _unreadable(path: Path, info: source.SourceInfo, e: Exception) -> IngestError:
    """DuckDB could not read a text file at all: say what we know about why, and the fix."""
    what = "TSV" if info.kind == "tsv" else "CSV"
    msg = _first_line(e)
    if "sniff" in msg.lower():
        return IngestError(
            f"{path}: could not work out the file's layout (delimiter, quoting and header) from its "
            f"first lines. Check that it is a {what} file with a header row and the same number of "
            f"fields on every line; a file with an unusual delimiter can be re-saved with commas.")
    return IngestError(f"{path}: DuckDB could not read the file as {what} ({msg}). Check that it is "
                       f"a {what} file with a header row (UTF-8, or give --encoding).")


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


_DATA_LIKE = r"^\s*[-+]?([0-9][0-9,._:/ -]*|[0-9a-f]{8}-[0-9a-f-]{27})\s*$"


def header_looks_like_data(columns: list[str]) -> bool:
    """True when at least half of the "column names" are numbers, dates or ids (the first row
    of a file without a header row)."""
    import re

    if not columns or [str(c) for c in columns] == [str(i) for i in range(1, len(columns) + 1)]:
        return False  # already named by position
    like = sum(1 for c in columns if re.match(_DATA_LIKE, str(c), re.IGNORECASE))
    return 2 * like >= len(columns)


def no_header_hint(columns: list[str]) -> str:
    """Advice to add --no-header when the header row looks like data, else ''."""
    if not header_looks_like_data(columns):
        return ""
    return (" The first row looks like data, not column names: if the file has no header row, "
            "add --no-header (or header = false in the mapping file) and name columns by "
            f"position, 1 to {len(columns)} (e.g. --user-col 1 --item-col 2).")


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
        f"{', '.join(columns)}.{hint} {fix}{no_header_hint(columns)}"
    )


def find_column(candidates: list[str], columns: list[str]) -> str | None:
    """The first of ``candidates`` present in ``columns`` (case-insensitive), or None."""
    folded = {c.lower().strip(): c for c in columns}
    for cand in candidates:
        if cand.lower() in folded:
            return folded[cand.lower()]
    return None
