"""What values are plausible: the date window and the limits on quantities and prices.

Ingest quarantines a row (with the reason) when its time is outside the accepted window or a
quantity or price is not a finite number or is absurdly large; such values would otherwise load
and break every later build (a 44 BC date: "year -44 is out of range") or quietly spoil it (an
``infinity`` date turns every shopper's recency into NULL).

* Dates: from ``DEFAULT_EARLIEST`` (1990-01-01) to a year after today by default; change the
  window per ingest with ``--earliest`` / ``--latest`` (or ``earliest`` / ``latest`` in the mapping
  file) within the hard bounds ``HARD_EARLIEST``..``HARD_LATEST``.
* Quantities: finite, at most ``MAX_QUANTITY`` units on one row (either sign).
* Prices: finite, at most ``MAX_PRICE`` (in the shop's currency; generous for any currency).

``check_inputs`` is the build's own check of what it is about to read, for data loaded before
these rules existed (or written by other means): it names the file, row and column of the first
value a build cannot use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

MAX_QUANTITY = 10_000_000
MAX_PRICE = 10_000_000_000
DEFAULT_EARLIEST = date(1990, 1, 1)
HARD_EARLIEST = date(1900, 1, 1)
HARD_LATEST = date(2100, 12, 31)


class SanityError(ValueError):
    """A value a build cannot use, or a window setting that is not a date; says how to fix it."""


def default_latest(today: date | None = None) -> date:
    t = today or date.today()
    try:
        return t.replace(year=t.year + 1)
    except ValueError:  # 29 February
        return t + timedelta(days=365)


@dataclass(frozen=True)
class DateWindow:
    earliest: date
    latest: date

    @property
    def label(self) -> str:
        return f"{self.earliest.isoformat()} to {self.latest.isoformat()}"

    def sql(self, ts: str) -> str:
        """SQL: the timestamp expression lies inside the window (NULL -> NULL)."""
        hi = datetime.combine(self.latest, datetime.max.time()).replace(microsecond=0)
        return (f"({ts} BETWEEN TIMESTAMP '{self.earliest.isoformat()} 00:00:00' "
                f"AND TIMESTAMP '{hi.isoformat(sep=' ')}')")


def _bound(value, what: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise SanityError(f"{what} must be a date written YYYY-MM-DD (got {value!r}).") from None


def window(earliest=None, latest=None, today: date | None = None) -> DateWindow:
    """The accepted date window from optional bounds (text YYYY-MM-DD or dates)."""
    lo = _bound(earliest, "--earliest") or DEFAULT_EARLIEST
    hi = _bound(latest, "--latest") or default_latest(today)
    if lo < HARD_EARLIEST:
        raise SanityError(f"--earliest {lo} is before {HARD_EARLIEST}: no shop data is that old.")
    if hi > HARD_LATEST:
        raise SanityError(f"--latest {hi} is after {HARD_LATEST}: use a date a shop could have.")
    if lo > hi:
        raise SanityError(f"--earliest {lo} is after --latest {hi}: swap them.")
    return DateWindow(lo, hi)


# ------------------------------------------------------------------ the build's input check
_CHECKS = [
    ("ts", "time", "ts IS NOT NULL AND NOT (isfinite(ts) AND ts BETWEEN TIMESTAMP '{lo}' AND "
     "TIMESTAMP '{hi} 23:59:59')", "is outside the dates a build can use ({lo} to {hi})"),
    ("quantity", "quantity", "quantity IS NOT NULL AND NOT (isfinite(quantity) AND "
     f"abs(quantity) <= {MAX_QUANTITY})", "is not a finite quantity of at most "
     f"{MAX_QUANTITY:,} units"),
    ("unit_price", "price", "unit_price IS NOT NULL AND NOT (isfinite(unit_price) AND "
     f"abs(unit_price) <= {MAX_PRICE})", f"is not a finite price of at most {MAX_PRICE:,}"),
]


def check_inputs(con) -> None:
    """Raise ``SanityError`` naming file, row and column of the first event a build cannot use."""
    lo, hi = HARD_EARLIEST.isoformat(), HARD_LATEST.isoformat()
    for col, role, bad, what in _CHECKS:
        cond = bad.format(lo=lo, hi=hi)
        row = con.execute(
            f"SELECT e.event_id, e.ingest_id, CAST(e.{col} AS VARCHAR), count(*) OVER () "
            f"FROM events e WHERE {cond} ORDER BY e.event_id LIMIT 1").fetchone()
        if row is None:
            continue
        event_id, ingest_id, value, n = row
        info = con.execute("SELECT source_file, details FROM ingests WHERE ingest_id = ?",
                           [ingest_id]).fetchone()
        source, details = (info[0], _json(info[1])) if info else (None, {})
        base = details.get("event_id_base")
        where = (f"{source} row {int(event_id) - int(base):,}" if source and base is not None
                 else f"{source or 'an unrecorded source'} (event {event_id}; loaded before rows "
                      f"were numbered)")
        column = (details.get("sources") or {}).get(role) or role
        more = f" ({n - 1:,} more like it)" if n > 1 else ""
        raise SanityError(
            f"{where}, column {column}: the value {value} {what.format(lo=lo, hi=hi)}{more}. It "
            f"was loaded by ingest {ingest_id} before Segment Studio checked such values. Ingest "
            f"the file again into a fresh store (--db) so these rows go to quarantine, or fix them "
            f"in the file.")


def _json(v) -> dict:
    if isinstance(v, dict):
        return v
    try:
        return json.loads(v) if v else {}
    except (TypeError, ValueError):
        return {}
