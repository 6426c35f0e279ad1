"""Numbers formatted for people: currency, thousands separators, percentages, lifts."""

from __future__ import annotations

import math
import os
from datetime import datetime

DEFAULT_CURRENCY = "£"


def currency_symbol(settings=None, con=None) -> str:
    """The currency shown in front of money: ``$SEGSTUDIO_CURRENCY`` or ``currency = "€"`` in
    segstudio.toml when set (an override), else the store's own currency (set at ingest from
    ``--currency``, the mapping or the data), else £ (Online Retail and the demo are British)."""
    env = os.environ.get("SEGSTUDIO_CURRENCY")
    if env:
        return env
    if settings is not None:
        cur = (getattr(settings, "extra", None) or {}).get("currency")
        if cur:
            return str(cur)
    if con is not None:
        from core.store.schema import store_currency

        return store_currency(con, DEFAULT_CURRENCY)
    return DEFAULT_CURRENCY


def _bad(x) -> bool:
    return x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))


def fmt_int(x) -> str:
    if _bad(x):
        return "–"
    return f"{int(round(float(x))):,}"


def fmt_num(x, digits: int = 1) -> str:
    if _bad(x):
        return "–"
    return f"{float(x):,.{digits}f}"


def fmt_money(x, currency: str = DEFAULT_CURRENCY, digits: int | None = None) -> str:
    """£1,234 for large amounts, £12.50 for small ones; -£3.20 for negatives."""
    if _bad(x):
        return "–"
    x = float(x)
    sign = "-" if x < 0 else ""
    a = abs(x)
    if digits is None:
        digits = 0 if a >= 1000 else 2
    if a >= 10_000_000:
        return f"{sign}{currency}{a / 1e6:,.1f}m"
    return f"{sign}{currency}{a:,.{digits}f}"


def fmt_money_short(x, currency: str = DEFAULT_CURRENCY) -> str:
    """£2.1m, £845k, £9,950, £12.50: money that fits a narrow space (3 significant figures
    from ten thousand up)."""
    if _bad(x):
        return "–"
    a = abs(float(x))
    sign = "-" if float(x) < 0 else ""
    if a >= 999_500:
        return f"{sign}{currency}{a / 1e6:,.{1 if a < 99_950_000 else 0}f}m"
    if a >= 10_000:
        return f"{sign}{currency}{a / 1e3:,.{0 if a >= 99_950 else 1}f}k"
    return fmt_money(x, currency)


def fmt_pct(x, digits: int = 1) -> str:
    """0.234 -> '23.4%'."""
    if _bad(x):
        return "–"
    return f"{100 * float(x):,.{digits}f}%"


def fmt_lift(x) -> str:
    """2.94 -> '2.9×'."""
    if _bad(x):
        return "–"
    return f"{float(x):,.1f}×"


def fmt_when(ts) -> str:
    if ts is None:
        return "–"
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            return ts
    return ts.strftime("%d %b %Y, %H:%M")


def fmt_days(x) -> str:
    if _bad(x):
        return "–"
    x = float(x)
    if x < 1:
        return "today"
    return f"{x:,.0f} day{'s' if round(x) != 1 else ''}"


def fmt_clock(hour) -> str:
    """13.5 -> '13:30' (a time of day from fractional hours)."""
    if _bad(hour):
        return "–"
    minutes = int(round(float(hour) * 60)) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
