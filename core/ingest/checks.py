"""Row checks shared by the formats: a check is (SQL condition, column, reason); a row fails the
first check that is true and goes to quarantine with that column and reason.

Missing or unparseable values, times outside the accepted date window, and numbers that are not
finite (NaN, infinity, 1e309) or absurdly large: the limits are in ``core.ingest.sanity``.
"""

from __future__ import annotations

from core.ingest import parse, sanity
from core.ingest.errors import IngestError

Check = tuple[str, str, str]


def missing_or_bad(raw: str, parsed: str, column: str, what: str) -> list[Check]:
    """Two checks: the value is missing; the value is there but does not parse."""
    return [
        (f"{parse.text(raw)} IS NULL", column, f"missing {column}"),
        (f"{parsed} IS NULL", column, f"{column} is not {what}"),
    ]


def window(opts: dict) -> sanity.DateWindow:
    try:
        return sanity.window(opts.get("earliest"), opts.get("latest"))
    except sanity.SanityError as e:
        raise IngestError(str(e)) from None


def plausible_time(parsed: str, column: str, opts: dict) -> list[Check]:
    """A parsed time outside the accepted window (infinity, 'epoch', year 9999, 44 BC...)."""
    w = window(opts)
    return [(f"NOT {w.sql(parsed)}", column,
             f"{column} outside the accepted dates ({w.label}; change with --earliest / --latest)")]


def plausible_number(parsed: str, column: str, limit: int, unit: str = "") -> list[Check]:
    """NaN, infinity (1e309...) or an absurd magnitude."""
    return [
        (f"NOT isfinite({parsed})", column, f"{column} is not a finite number (NaN or infinity)"),
        (f"abs({parsed}) > {limit}", column, f"{column} is implausibly large (over {limit:,}{unit})"),
    ]


def plausible_qty(parsed: str, column: str) -> list[Check]:
    return plausible_number(parsed, column, sanity.MAX_QUANTITY, " units")


def plausible_price(parsed: str, column: str) -> list[Check]:
    return plausible_number(parsed, column, sanity.MAX_PRICE)
