"""The shop's currency: one store setting (meta key ``currency``) that every command shows.

Decided at ingest, first match wins:

1. ``--currency`` (or ``currency = "..."`` in the mapping file): a symbol ("$", "€") or an ISO
   code ("USD", "eur"), stored as the symbol;
2. the data, when it says: a ``currency`` / ``currency_code`` column with one value in the loaded
   rows; a format whose shop is known (``online-retail``: the UCI shop is British, pounds;
   ``clickstream``: the public dataset's prices are US dollars);
3. otherwise nothing is stored and money shows in the default (£), with a note saying how to set it.

A store is one shop: a file whose currency (given or read from the data) differs from the
store's is refused with the fix. ``core.segments.describe.store_currency`` reads the setting.
"""

from __future__ import annotations

from core.ingest.errors import IngestError
from core.ingest.reader import find_column, ident

SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩",
           "RUB": "₽", "TRY": "₺", "ILS": "₪", "NGN": "₦", "PHP": "₱", "VND": "₫", "UAH": "₴",
           "BRL": "R$", "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "HKD": "HK$", "SGD": "S$",
           "MXN": "MX$", "ZAR": "R", "PLN": "zł", "SEK": "kr", "NOK": "kr", "DKK": "kr",
           "CHF": "CHF ", "CZK": "Kč"}
FORMAT_CURRENCY = {"online-retail": ("£", "the UCI Online Retail shop is British: pounds sterling"),
                   "clickstream": ("$", "the clickstream dataset's prices are US dollars")}
COLUMNS = ["currency", "currency_code", "currencycode"]


def symbol(value: str) -> str:
    """'usd' -> '$', '€' -> '€'; an unknown 3-letter code is kept as 'XYZ '."""
    v = str(value).strip()
    if not v or len(v) > 4 or any(ch.isdigit() for ch in v):
        raise IngestError(f"--currency {value!r} is not a currency: give a symbol such as $, € or "
                          f"£, or a code such as USD, EUR or GBP.")
    if v.upper() in SYMBOLS:
        return SYMBOLS[v.upper()]
    if len(v) == 3 and v.isalpha():
        return v.upper() + " "
    return v


def from_data(con, prep) -> tuple[str | None, str | None]:
    """(symbol, note) from a currency column of the loaded rows, else (None, None)."""
    col = find_column(COLUMNS, prep.staged.columns)
    if col is None:
        return None, None
    vals = [r[0] for r in con.execute(
        f"SELECT DISTINCT upper(trim({ident(col)})) FROM {prep.parsed} "
        f"WHERE __problem IS NULL AND nullif(trim({ident(col)}), '') IS NOT NULL ORDER BY 1 LIMIT 5"
    ).fetchall()]
    if len(vals) == 1:
        try:
            return symbol(vals[0]), f"currency {vals[0]} read from column {col}"
        except IngestError:
            return None, f"warning: column {col} holds {vals[0]!r}, not a currency; use --currency"
    if len(vals) > 1:
        return None, (f"warning: column {col} mixes currencies ({', '.join(vals)}): prices are "
                      f"added up as they are. Convert them to one currency first.")
    return None, None


def settle(con, fmt: str, given: str | None, prep) -> list[str]:
    """Store the shop's currency (or check it against the store's); returns notes for the report."""
    row = con.execute("SELECT value FROM meta WHERE key = 'currency'").fetchone()
    current = row[0] if row and row[0] else None
    data, data_note = from_data(con, prep)
    notes = [data_note] if data_note else []
    if given is not None:
        chosen, why, strict = symbol(given), "from --currency", True
    elif data is not None:
        chosen, why, strict = data, "from the data", True
    elif fmt in FORMAT_CURRENCY:
        chosen, why = FORMAT_CURRENCY[fmt]
        strict = False
    else:
        chosen, why, strict = None, "", False
    if current is not None:
        if chosen is not None and chosen != current and strict:
            raise IngestError(
                f"this store's prices are in {current.strip()} but this file's are in "
                f"{chosen.strip()} ({why}). A store holds one shop: load this file into another "
                f"store with --db (or, if the prices really are in {current.strip()}, pass "
                f"--currency {current.strip()}).")
        return notes
    if chosen is None:
        notes.append("currency not known: money is shown in £. Set it with --currency "
                     "(e.g. --currency USD or --currency €) when you ingest")
        return notes
    con.execute("INSERT INTO meta VALUES ('currency', ?)", [chosen])
    notes.append(f"currency set to {chosen.strip()} ({why})")
    return notes
