"""The sidebar's date range: every page's figures count only the events in it.

The range reaches the queries as a temporary view on the session's own read connection
(``core.explore.restrict_events``): the store is never changed and other sessions are not
affected. Cached query results are keyed by the range.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import streamlit as st

KEY = "date_range"


def current() -> tuple[str, str] | None:
    """(start, end) as ISO text with end exclusive, or None for all dates."""
    return st.session_state.get("_date_range_applied")


def sidebar(con) -> None:
    lo, hi = con.execute("SELECT min(ts), max(ts) FROM store.main.events "
                         "WHERE ts IS NOT NULL").fetchone()
    if lo is None:
        st.session_state["_date_range_applied"] = None
        return
    with st.sidebar:
        value = st.session_state.get(KEY) or (lo.date(), hi.date())
        rng = st.date_input("Dates", value=value, min_value=lo.date(), max_value=hi.date(),
                            key=KEY, format="DD/MM/YYYY",
                            help="Count only what happened between these dates, on every page "
                                 "(segments themselves stay as the build made them).")
    applied = None
    if isinstance(rng, (tuple, list)) and len(rng) == 2 and (rng[0], rng[1]) != (lo.date(), hi.date()):
        applied = (datetime.combine(rng[0], time.min).isoformat(sep=" "),
                   datetime.combine(rng[1] + timedelta(days=1), time.min).isoformat(sep=" "))
    st.session_state["_date_range_applied"] = applied


def note() -> None:
    rng = current()
    if rng:
        end = datetime.fromisoformat(rng[1]) - timedelta(days=1)
        st.info(f"Figures count only {datetime.fromisoformat(rng[0]):%d %b %Y} to {end:%d %b %Y} "
                "(change it in the sidebar).", icon=":material/date_range:")
