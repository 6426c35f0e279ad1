"""SQL expressions that parse text values (every staged column is VARCHAR).

Each function returns a SQL expression over a column expression; a value that does not parse
gives NULL, which the format's checks turn into a quarantine reason. Nothing here raises on data.
"""

from __future__ import annotations

from core.ingest.reader import sql_str
from core.ingest.sanity import MAX_PRICE, MAX_QUANTITY

# Tried in order after DuckDB's own ISO parser (2011-12-09 12:50:00, 2011-12-09T12:50:00.123,
# 2011-12-09, '... UTC'). Slashed dates are read month-first (the UCI Online Retail CSV writes
# 12/1/2010 8:26); give --time-format '%d/%m/%Y %H:%M' for day-first data.
TIME_FORMATS = [
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%m/%d/%y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y%m%d",
]

EPOCH_SCALE = {"s": 1_000_000, "ms": 1_000}
# Epoch values outside this range (seconds) are not plausible timestamps (years ~1653..5138).
_EPOCH_MIN, _EPOCH_MAX = -1e10, 1e11


def text(x: str) -> str:
    """Trimmed text; empty becomes NULL."""
    return f"nullif(trim({x}), '')"


def number(x: str) -> str:
    return f"TRY_CAST(trim({x}) AS DOUBLE)"


def timestamp(x: str, *, epoch: str | None = None, time_format: str | None = None) -> str:
    """A TIMESTAMP from text: ISO/US/European text, an explicit strptime format, or epoch s/ms."""
    if epoch:
        scale = EPOCH_SCALE[epoch]
        v = f"TRY_CAST(trim({x}) AS DOUBLE)"
        lo, hi = _EPOCH_MIN * (scale / 1e6) ** -1, _EPOCH_MAX * (scale / 1e6) ** -1
        return (f"CASE WHEN {v} BETWEEN {lo!r} AND {hi!r} "
                f"THEN make_timestamp(CAST(round({v} * {scale}) AS BIGINT)) END")
    if time_format:
        return f"try_strptime(trim({x}), {sql_str(time_format)})"
    fmts = "[" + ", ".join(sql_str(f) for f in TIME_FORMATS) + "]"
    # Unflagged epoch times are read too: a whole number of 9-10 digits is epoch seconds, of
    # 12-13 digits epoch milliseconds (both 1973-2286; MovieLens' ratings, RetailRocket's
    # events). Eight digits stay dates (20240131).
    return (f"CASE WHEN regexp_full_match(trim({x}), '[0-9]{{9,10}}') "
            f"THEN {timestamp(x, epoch='s')} "
            f"WHEN regexp_full_match(trim({x}), '[0-9]{{12,13}}') THEN {timestamp(x, epoch='ms')} "
            f"ELSE coalesce(TRY_CAST(trim({x}) AS TIMESTAMP), try_strptime(trim({x}), {fmts})) END")


def category_path(x: str, sep: str = ".") -> str:
    """'electronics.audio.headphone' -> 'electronics > audio > headphone'."""
    return f"nullif(array_to_string(list_filter(list_transform(string_split({text(x)}, {sql_str(sep)}), lambda s: trim(s)), lambda s: s <> ''), ' > '), '')"


def revenue(qty: str, price: str) -> str:
    """quantity * price of a row, NULL unless both are finite and plausible (see core.ingest.sanity),
    so one absurd row cannot swamp or overflow the file's revenue reconciliation."""
    return (f"CASE WHEN abs({qty}) <= {MAX_QUANTITY} AND abs({price}) <= {MAX_PRICE} "
            f"THEN {qty} * {price} END")
