"""What a source file's bytes are, before DuckDB reads them: kind, compression, text encoding.

``inspect(path)`` looks at the first bytes (unpacked when gzipped) and says what the file is:

* Parquet (``PAR1``), gzipped Parquet, or CSV / TSV text (TSV by its name: ``.tsv``, ``.tab``);
* well-known files that are not tables (an Excel workbook, a zip, a PDF, a SQLite or DuckDB
  database...) and binary data: refused with what the file seems to be and how to export it;
* the text encoding: a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32) or UTF-16 without one
  (every other byte zero) is recognised, so a UTF-16 export from Excel loads instead of
  yielding nonsense columns.

``readable(info, encoding, newlines)`` gives DuckDB something it can read: the file itself when
DuckDB decodes it natively (UTF-8, Latin-1), else a UTF-8 copy in a temporary folder (UTF-16,
UTF-32, cp1252, Shift-JIS...). Files whose line endings mix CRLF and LF, which DuckDB's CSV
reader refuses, are read through a copy with LF endings. Copies are streamed, so size is not a
problem, and are removed when the read is done.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from core.ingest.errors import IngestError

HEAD_BYTES = 1 << 16

# (magic bytes, what it is, how to fix) for files people pick by mistake.
_MAGIC = [
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one)",
     "If it is a workbook, save the sheet as CSV (UTF-8) first; otherwise unzip it"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) or Office file", "Save the sheet as CSV (UTF-8) first"),
    (b"%PDF", "a PDF document", "Export the table as CSV or Parquet instead"),
    (b"SQLite format 3\x00", "a SQLite database", "Export the table as CSV or Parquet first"),
    (b"BZh", "a bzip2 archive", "Unpack it (bunzip2) or recompress it with gzip"),
    (b"\xfd7zXZ\x00", "an xz archive", "Unpack it (unxz) or recompress it with gzip"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "Unpack it first"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive", "Unpack it (unzstd) or recompress it with gzip"),
]


class SourceError(IngestError):
    """A file that is not a readable table; the message names the file and the fix."""


@dataclass
class SourceInfo:
    path: Path
    kind: str                      # 'csv' | 'tsv' | 'parquet' | 'parquet.gz'
    gzipped: bool = False
    encoding: str | None = None    # detected from a byte-order mark or the NUL pattern
    bom: bool = False              # the text starts with a byte-order mark
    head: bytes = b""              # the first bytes of the (unpacked) content
    notes: list[str] = field(default_factory=list)


def _read_head(path: Path) -> tuple[bytes, bool]:
    with open(path, "rb") as f:
        raw = f.read(HEAD_BYTES)
    if raw[:2] != b"\x1f\x8b":
        return raw, False
    try:
        with gzip.open(path, "rb") as g:
            return g.read(HEAD_BYTES), True
    except (OSError, EOFError, zlib.error) as e:
        raise SourceError(f"{path}: the file looks gzipped but cannot be unpacked ({e}). "
                          f"Check that the download or export finished.") from None


def _utf16_without_bom(head: bytes) -> str | None:
    sample = head[:4096]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _binary(head: bytes) -> bool:
    sample = head[:8192]
    if not sample:
        return False
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return control > 0.05 * len(sample)


def inspect(path: Path) -> SourceInfo:
    """Kind, compression and encoding of ``path`` (raises ``SourceError`` for non-tables)."""
    path = Path(path)
    head, gz = _read_head(path)
    name = path.name.lower().removesuffix(".gz") if gz else path.name.lower()
    if head[:4] == b"PAR1":
        return SourceInfo(path, "parquet.gz" if gz else "parquet", gz, head=head)
    if name.endswith(".parquet"):
        raise SourceError(f"{path}: named .parquet but is not a Parquet file (no PAR1 header). "
                          f"Check that the export finished, or rename it if it is a CSV.")
    for magic, what, fix in _MAGIC:
        if head.startswith(magic) or (magic == b"\xfd7zXZ\x00" and head[:6] == magic):
            raise SourceError(f"{path} is {what}, not a CSV, TSV or Parquet table. {fix}.")
    if head.startswith(b"DUCK", 8):
        raise SourceError(f"{path} is a DuckDB database, not a data file. Export the table with "
                          f"COPY ... TO 'file.parquet' first.")
    info = SourceInfo(path, "tsv" if name.endswith((".tsv", ".tab")) else "csv", gz, head=head)
    boms = [(codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
            (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
            (codecs.BOM_UTF16_BE, "utf-16-be")]
    for bom, enc in boms:
        if head.startswith(bom):
            info.encoding, info.bom = enc, True
            if enc != "utf-8":
                info.notes.append(f"text encoding {enc.upper()} recognised from the byte-order mark")
            return info
    guess = _utf16_without_bom(head)
    if guess:
        info.encoding = guess
        info.notes.append(f"text encoding {guess.upper()} recognised (no byte-order mark)")
        return info
    if _binary(head):
        raise SourceError(f"{path} does not look like a text table: its first bytes are binary "
                          f"data. Export the data as CSV (UTF-8), TSV or Parquet.")
    return info


def normal_encoding(name: str | None) -> str:
    """'UTF8' -> 'utf-8', 'iso-8859-1' -> 'latin-1'... (raises SourceError if unknown)."""
    if not name:
        return "utf-8"
    try:
        n = codecs.lookup(name).name
    except LookupError:
        raise SourceError(f"--encoding {name!r} is not a text encoding Python knows. Common "
                          f"ones: utf-8, latin-1, cp1252, utf-16.") from None
    return {"iso8859-1": "latin-1"}.get(n, n)


def mixed_newlines(path: Path, gzipped: bool, limit: int = 1 << 26) -> bool:
    """True when the text mixes line-end styles (CRLF, LF, lone CR), checked over ``limit`` bytes."""
    counts = {"crlf": 0, "lf": 0, "cr": 0}
    prev = b""
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as f:
        seen = 0
        while seen < limit and (chunk := f.read(1 << 20)):
            seen += len(chunk)
            both = prev + chunk
            crlf = both.count(b"\r\n") - prev.count(b"\r\n")
            counts["crlf"] += crlf
            counts["lf"] += chunk.count(b"\n") - crlf
            counts["cr"] += chunk.count(b"\r") - crlf
            prev = chunk[-1:]
            if sum(1 for v in counts.values() if v) > 1:
                return True
    return False


class GzipCheck:
    """Feed a gzip file's bytes; ``complete()`` says whether every member ended properly (a
    download or export that was cut off does not), without keeping the unpacked data."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(31)
        self.error: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self.error:
            return
        try:
            data = chunk
            while data:
                self._d.decompress(data, 1 << 16)
                data = self._d.unconsumed_tail
                while self._d.eof and self._d.unused_data:  # the next gzip member
                    rest = self._d.unused_data
                    self._d = zlib.decompressobj(31)
                    self._d.decompress(rest, 1 << 16)
                    data = self._d.unconsumed_tail + data
        except zlib.error as e:
            self.error = str(e)

    def complete(self) -> bool:
        return self.error is None and self._d.eof


def first_line_blank(info: SourceInfo) -> bool:
    """The text's first line is empty (so there is no header row)."""
    head = info.head
    enc = info.encoding or "utf-8"
    try:
        text = head[:4096].decode({"utf-8": "utf-8-sig"}.get(enc, enc), errors="ignore")
    except LookupError:
        return False
    text = text.lstrip("\ufeff")
    return text.startswith(("\n", "\r"))


@contextlib.contextmanager
def readable(info: SourceInfo, encoding: str | None = None, *,
             newlines: bool = False) -> Iterator[tuple[Path, str | None, list[str]]]:
    """Yield (path DuckDB should read, encoding to give DuckDB, notes).

    ``encoding`` is the user's (``--encoding``); without one the detected encoding is used.
    UTF-8 and Latin-1 are read by DuckDB from the file itself (``newlines=True``: from a copy
    with CRLF turned into LF, for mixed line endings; bad bytes still reach DuckDB, which
    quarantines their lines). Every other encoding is read through a UTF-8 copy (CRLF -> LF).
    """
    notes: list[str] = []
    enc = normal_encoding(encoding) if encoding else (info.encoding or "utf-8")
    if enc in ("utf-16", "utf-32"):  # the byte order from the file, else little-endian
        enc = info.encoding if (info.encoding or "").startswith(enc) else enc + "-le"
    if encoding and info.encoding and info.encoding != "utf-8" and enc != info.encoding:
        notes.append(f"--encoding {encoding} used although the file looks like {info.encoding.upper()}")
    native = enc in ("utf-8", "latin-1")
    if native and not newlines:
        yield info.path, (None if enc == "utf-8" else enc), notes
        return
    with tempfile.TemporaryDirectory(prefix="segstudio-ingest-") as d:
        out = Path(d) / (info.path.name.removesuffix(".gz") if info.gzipped else info.path.name)
        if native:
            _crlf_to_lf(info, out)
            notes.append("line endings mixed CRLF and LF: both read as line breaks")
            yield out, (None if enc == "utf-8" else enc), notes
            return
        notes += _transcode(info, enc, out)
        notes.append(f"read as {enc.upper()} text")
        yield out, None, notes


def _crlf_to_lf(info: SourceInfo, out: Path) -> None:
    """Byte-level copy with CRLF and lone CR turned into LF (safe for UTF-8 and Latin-1, where CR
    and LF are single bytes)."""
    opener = gzip.open if info.gzipped else open
    pending_cr = False
    with opener(info.path, "rb") as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 22):
            if pending_cr:
                chunk = b"\r" + chunk
            pending_cr = chunk.endswith(b"\r")
            if pending_cr:
                chunk = chunk[:-1]
            dst.write(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        if pending_cr:
            dst.write(b"\n")


def _transcode(info: SourceInfo, enc: str, out: Path) -> list[str]:
    """Stream the file into ``out`` as UTF-8 (no BOM) with CRLF and lone CR -> LF; returns notes."""
    opener = gzip.open if info.gzipped else open
    codec = enc
    if info.bom and enc == info.encoding:  # decoders that drop the byte-order mark
        codec = {"utf-16-le": "utf-16", "utf-16-be": "utf-16", "utf-32-le": "utf-32",
                 "utf-32-be": "utf-32"}.get(enc, enc)
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    notes: list[str] = []
    offset = 0
    pending_cr = False
    with opener(info.path, "rb") as src, open(out, "w", encoding="utf-8", newline="") as dst:
        while True:
            chunk = src.read(1 << 22)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                if not chunk and e.end >= len(e.object):  # the file ends mid-character
                    notes.append("the file ends in the middle of a character (cut off?): "
                                 "the incomplete last character was dropped")
                    text = ""
                else:
                    raise SourceError(
                        f"{info.path}: not valid {enc.upper()} text near byte {offset + e.start:,}. "
                        f"Say the file's encoding with --encoding (e.g. latin-1, cp1252, "
                        f"utf-16).") from None
            offset += len(chunk)
            if pending_cr:
                text = "\r" + text
            pending_cr = text.endswith("\r") and bool(chunk)
            if pending_cr:
                text = text[:-1]
            dst.write(text.replace("\r\n", "\n").replace("\r", "\n"))
            if not chunk:
                if pending_cr:
                    dst.write("\n")
                break
    return notes


def copy_parquet(info: SourceInfo) -> contextlib.AbstractContextManager[Path]:
    """A gzipped Parquet file unpacked (streaming) into a temporary file; others as they are."""
    @contextlib.contextmanager
    def ctx():
        if info.kind != "parquet.gz":
            yield info.path
            return
        with tempfile.TemporaryDirectory(prefix="segstudio-ingest-") as d:
            out = Path(d) / (info.path.name.removesuffix(".gz") or "data.parquet")
            with gzip.open(info.path, "rb") as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
            yield out
    return ctx()
