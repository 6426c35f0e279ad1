"""Recommended products for a whole list of shoppers (the export's "recommendations" columns),
computed by ``core.recommend.bulk`` with a progress bar, once per list, build and count."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from core.progress import Progress, Stage
from dashboard import common as c

# The page scores lists up to about this many shopper x catalogue-item scores (measured on 2
# cores: 1.7 ms a shopper on Online Retail's 3,927 items, 14 ms on 50,000 items), so at most
# 20,000 shoppers of a 4,000-item shop (~35 s) and 1,600 of a 50,000-item one (~22 s), never
# fewer than MIN_SHOPPERS; longer lists go to the command line (and Ray).
BUDGET = 80_000_000
MIN_SHOPPERS = 1_000


def max_shoppers(n_items: int) -> int:
    """The longest list the page scores for a catalogue of ``n_items``."""
    return int(max(MIN_SHOPPERS, BUDGET // max(int(n_items), 1)))


class _BarStage(Stage):
    def __init__(self, name, total, bar):
        super().__init__(name, total)
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        super().advance(n)
        if self.total:
            self.bar.progress(min(1.0, self.done / self.total),
                              text=f"{self.name}: {c.intf(self.done)} of {c.intf(self.total)}")


class StreamlitProgress(Progress):
    """core's progress stages drawn as an ``st.progress`` bar."""

    def __init__(self, bar) -> None:
        super().__init__()
        self.bar = bar

    def _open(self, name, total):
        return _BarStage(name, total, self.bar)


def cli_command(n: int, what: str) -> str:
    return f"segstudio export {what} --out list.csv --recommend {n} --campaign"


def recommendations(run_id: int, user_ids: list[str], n: int) -> pd.DataFrame:
    """Each shopper's top ``n`` (one row per shopper and rank), computed with a progress bar the
    first time and kept for this session while the list, the build and ``n`` stay the same."""
    from core.recommend.bulk import recommend_shoppers

    digest = hashlib.sha1("\n".join(map(str, user_ids)).encode()).hexdigest()
    key = (str(c.store().path), c._dkey(c.store()), int(run_id), digest, int(n))
    kept = st.session_state.get("_bulk_recs")
    if kept is not None and kept[0] == key:
        return kept[1]
    label = f"Recommending {n} products to each of {c.intf(len(user_ids))} shoppers"
    with st.status(label + "...", expanded=True) as box:
        bar = st.progress(0.0, text="Preparing the recommenders (once per build)...")
        eng = c.rec_engine(run_id)
        recs = recommend_shoppers(c.con(), run_id, user_ids, n=n, preview_engine=eng,
                                  progress=StreamlitProgress(bar))
        box.update(label=f"{label}: done", state="complete", expanded=False)
    st.session_state["_bulk_recs"] = (key, recs)
    return recs
