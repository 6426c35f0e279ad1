"""What the recommenders are fitted on: the shop's purchases as sparse matrices, read once.

``ShopData.load(con, run_id)`` reads the store with a handful of DuckDB aggregations and keeps:

* the catalogue (``items``; one row per item_id, the most recently ingested one) with titles and
  prices (``items.price``, else the median unit price paid);
* which catalogue items are *available* (see the rule below);
* ``user_counts`` (users x items, CSR): in how many distinct baskets the user bought the item,
  with ``user_days`` on the same pattern: days from the user's last purchase of it to the
  reference time (the data's last event);
* ``user_returned_only`` (users x items, CSR bool): items the user returned and kept none of
  (returned units >= bought units) -- never recommended to that user;
* ``baskets`` (baskets x items, CSR binary): every purchase basket, anonymous ones included
  (basket = ``basket_id``, else ``session_id``, else user + day), with ``basket_user`` (the
  shopper's row, -1 when anonymous) and ``basket_days`` (age in days at the reference time);
* segment membership (``segments``) and names (``segment_info``) of the run.

Availability rule (documented for marketers): an item can be recommended only if it is in the
catalogue (``items``) **and** was bought at least once in the last ``active_days`` days (default
90) before the data's last event **and** is merchandise: gift vouchers, charges, fees and
adjustments (``NON_MERCHANDISE_PHRASES`` anywhere in the title, ``NON_MERCHANDISE_TITLES`` as the
whole title: "Dotcomgiftshop Gift Voucher £20.00", "PACKING CHARGE", "Next Day Carriage",
"POSTAGE", "Manual"...; configurable) are never recommended.
Events for item_ids missing from ``items`` are ignored. Data without timestamps: every catalogue
item bought at least once is available.

``events_sql`` lets the offline evaluation fit on a filtered view of ``events`` (the held-out
baskets removed) without copying anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp

# the basket key (the basket id, else the session, else the user's day): one definition, in
# the features stage, for every stage
from core.features.holdout import BASKET_KEY_SQL  # noqa: F401 - also imported from here

DEFAULT_ACTIVE_DAYS = 90

# Non-merchandise: never recommended. A title is non-merchandise when it contains one of
# NON_MERCHANDISE_PHRASES (as whole words) or is, as a whole, one of NON_MERCHANDISE_TITLES.
# Extend both with SEGSTUDIO_NON_MERCHANDISE ("phrase; =whole title; ...") or the
# ``non_merchandise`` argument of ``ShopData.load``.
NON_MERCHANDISE_PHRASES = (
    "gift voucher", "gift card", "gift certificate", "e-voucher", "voucher", "packing charge",
    "bank charge", "bank charges", "amazon fee", "service fee", "booking fee", "delivery charge",
    "delivery charges", "shipping charge", "surcharge", "adjust bad debt", "manual adjustment",
    "stock adjustment", "cruk commission", "dotcom postage",
)
NON_MERCHANDISE_TITLES = (
    "postage", "carriage", "next day carriage", "next day postage", "delivery", "shipping",
    "discount", "manual", "samples", "fee", "fees", "charges", "adjustment",
)


def non_merchandise_matcher(extra=None):
    """A compiled regex for non-merchandise titles: the defaults plus ``extra`` (phrases; a
    leading '=' means the whole title) and the SEGSTUDIO_NON_MERCHANDISE setting."""
    import os

    phrases, titles = list(NON_MERCHANDISE_PHRASES), list(NON_MERCHANDISE_TITLES)
    more = list(extra or []) + [x for x in os.environ.get("SEGSTUDIO_NON_MERCHANDISE", "")
                                .split(";")]
    for x in more:
        x = x.strip().lower()
        if x.startswith("="):
            titles.append(x[1:].strip())
        elif x:
            phrases.append(x)
    alt = lambda xs: "|".join(re.escape(x).replace(r"\ ", r"\s+") for x in xs if x)  # noqa: E731
    return re.compile(rf"^\s*(?:{alt(titles)})\s*$|\b(?:{alt(phrases)})\b", re.IGNORECASE)


NON_PRODUCT_TITLE = non_merchandise_matcher()




def first_row(con, sql: str, params=None):
    """The first row of a query or None. (fetchall: DuckDB 2 refuses new work on a connection
    with an unfinished result, which fetchone leaves behind.)"""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def nice_title(title: str | None, item_id: str) -> str:
    """Readable title: ALL-CAPS source titles become sentence case; missing -> the item id."""
    t = (title or "").strip()
    if not t:
        return f"item {item_id}"
    if t.isupper():
        t = t.capitalize()
    return t


@dataclass
class ShopData:
    item_ids: list[str]
    titles: list[str]
    prices: np.ndarray                 # float64, NaN where unknown
    active: np.ndarray                 # bool (n_items,)
    user_ids: list[str]
    user_counts: sp.csr_matrix         # float32 (n_users, n_items): baskets with the item
    user_days: sp.csr_matrix           # float32, same pattern: days since last bought
    user_returned_only: sp.csr_matrix  # bool (n_users, n_items)
    baskets: sp.csr_matrix             # float32 binary (n_baskets, n_items)
    user_segment: np.ndarray           # int64 (n_users,), -1 = none
    segment_names: dict[int, str]
    ref_time: datetime | None
    basket_user: np.ndarray | None = None  # int64 (n_baskets,): user row, -1 anonymous
    basket_days: np.ndarray | None = None  # float64 (n_baskets,): days before ref_time
    active_days: int = DEFAULT_ACTIVE_DAYS
    events_sql: str = "events"
    item_index: dict[str, int] = field(default_factory=dict)
    user_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, con, run_id: int | None = None, *, events_sql: str = "events",
             active_days: int = DEFAULT_ACTIVE_DAYS, non_merchandise=None) -> "ShopData":
        ev = events_sql if events_sql == "events" else f"({events_sql})"
        cat = con.execute(
            f"""
            WITH it AS (
                SELECT item_id, title, price FROM items
                QUALIFY row_number() OVER (PARTITION BY item_id
                                           ORDER BY ingest_id DESC NULLS LAST) = 1),
            paid AS (
                SELECT item_id, median(unit_price) AS p FROM {ev} e
                WHERE event_type = 'purchase' AND unit_price > 0 GROUP BY item_id)
            SELECT it.item_id, it.title, coalesce(it.price, paid.p) AS price
            FROM it LEFT JOIN paid USING (item_id) ORDER BY it.item_id
            """
        ).df()
        item_ids = cat["item_id"].astype(str).tolist()
        titles = [nice_title(t if isinstance(t, str) else None, i)
                  for t, i in zip(cat["title"].tolist(), item_ids)]
        prices = cat["price"].to_numpy(dtype=np.float64, na_value=np.nan)
        item_pos = pd.Index(item_ids)

        ref = con.execute(f"SELECT max(ts) FROM {ev} e").fetchall()[0][0]
        if ref is not None:
            act = con.execute(
                f"SELECT DISTINCT item_id FROM {ev} e WHERE event_type = 'purchase' "
                f"AND ts >= ? - INTERVAL (?) DAY", [ref, int(active_days)]
            ).df()
        else:
            act = con.execute(
                f"SELECT DISTINCT item_id FROM {ev} e WHERE event_type = 'purchase'").df()
        active = np.zeros(len(item_ids), dtype=bool)
        ai = item_pos.get_indexer(act["item_id"].astype(str))
        active[ai[ai >= 0]] = True
        nm = non_merchandise_matcher(non_merchandise)
        for j, t in enumerate(cat["title"].tolist()):
            if isinstance(t, str) and nm.search(t):
                active[j] = False

        # Per user and item: baskets bought in, last purchase, units bought and returned.
        # Read as Arrow and matched through each column's distinct values: at a million
        # shoppers a Python string per row (user, item, basket) took gigabytes.
        ui = _arrow(con,
            f"""
            SELECT user_id, item_id,
                   count(DISTINCT {BASKET_KEY_SQL}) FILTER (event_type = 'purchase') AS n,
                   max(ts) FILTER (event_type = 'purchase') AS last_ts,
                   sum(abs(coalesce(quantity, 1))) FILTER (event_type = 'purchase') AS bought,
                   sum(abs(coalesce(quantity, 1))) FILTER (event_type = 'return') AS returned
            FROM {ev} e
            WHERE user_id IS NOT NULL AND event_type IN ('purchase', 'return')
            GROUP BY user_id, item_id
            """)
        c = _codes(ui.column("item_id"), item_pos)
        in_cat = c >= 0
        ui, c = ui.filter(in_cat), c[in_cat]
        u_dict, u_codes = _dictionary(ui.column("user_id"))
        present = np.unique(u_codes)
        user_ids = sorted(u_dict[present].tolist())
        user_pos = pd.Index(user_ids)
        r = user_pos.get_indexer(u_dict)[u_codes] if len(u_codes) else np.zeros(0, np.int64)
        n = _numbers(ui.column("n"), np.float32)
        shape = (len(user_ids), len(item_ids))
        bought_mask = n > 0
        counts = sp.csr_matrix((n[bought_mask], (r[bought_mask], c[bought_mask])), shape=shape)
        if ref is not None:
            last = pd.to_datetime(ui.column("last_ts").to_pandas())
            days = ((pd.Timestamp(ref) - last).dt.total_seconds() / 86400.0)
            days = days.to_numpy(dtype=np.float32, na_value=0.0)
        else:
            days = np.zeros(len(ui), dtype=np.float32)
        # +1e-3 keeps explicit zeros (bought on the last day) in the sparsity pattern
        udays = sp.csr_matrix((days[bought_mask] + 1e-3, (r[bought_mask], c[bought_mask])),
                              shape=shape)
        bq = _numbers(ui.column("bought"), np.float64)
        rq = _numbers(ui.column("returned"), np.float64)
        del ui
        ro = (rq > 0) & (rq >= bq)
        returned_only = sp.csr_matrix((np.ones(int(ro.sum()), dtype=bool), (r[ro], c[ro])),
                                      shape=shape)

        bk = _arrow(con,
            f"""
            SELECT {BASKET_KEY_SQL} AS basket, item_id, any_value(user_id) AS user_id,
                   min(ts) AS ts
            FROM {ev} e
            WHERE event_type = 'purchase'
            GROUP BY ALL
            ORDER BY ts, basket, item_id
            """)
        bc = _codes(bk.column("item_id"), item_pos)
        keep = bc >= 0
        bk, bc = bk.filter(keep), bc[keep]
        # basket numbers in order of first appearance (as pandas.factorize numbers them): by time,
        # then key (a parallel GROUP BY returns rows in any order, and the same store gave other
        # neighbours' sums, hence other evaluation figures, from one run to the next)
        _, codes = _dictionary(bk.column("basket"))
        n_b = int(codes.max()) + 1 if len(codes) else 0
        baskets = sp.csr_matrix(
            (np.ones(len(codes), dtype=np.float32), (codes, bc)), shape=(n_b, len(item_ids)))
        # per basket: its shopper (row of user_ids, -1 anonymous) and days before ref_time
        basket_user = np.full(n_b, -1, dtype=np.int64)
        basket_days = np.zeros(n_b, dtype=np.float64)
        if n_b:
            basket_user[codes] = _codes(bk.column("user_id"), user_pos)
            if ref is not None:
                ts = pd.to_datetime(bk.column("ts").to_pandas())
                age = (pd.Timestamp(ref) - ts).dt.total_seconds() / 86400.0
                age = age.to_numpy(dtype=np.float64, na_value=0.0)
                np.maximum.at(basket_days, codes, age)
        del bk
        user_segment = np.full(len(user_ids), -1, dtype=np.int64)
        segment_names: dict[int, str] = {}
        if run_id is not None:
            seg = con.execute(
                "SELECT user_id, segment_id FROM segments WHERE run_id = ?", [int(run_id)]
            ).df()
            if len(seg):
                si = user_pos.get_indexer(seg["user_id"].astype(str))
                ok = si >= 0
                user_segment[si[ok]] = seg["segment_id"].to_numpy()[ok]
            segment_names = {
                int(s): str(nm) for s, nm in con.execute(
                    "SELECT segment_id, name FROM segment_info WHERE run_id = ?", [int(run_id)]
                ).fetchall()
            }
        return cls(
            item_ids=item_ids, titles=titles, prices=prices, active=active, user_ids=user_ids,
            user_counts=counts, user_days=udays, user_returned_only=returned_only,
            baskets=baskets, user_segment=user_segment, segment_names=segment_names,
            ref_time=ref, basket_user=basket_user, basket_days=basket_days,
            active_days=int(active_days), events_sql=events_sql,
        )

    # ------------------------------------------------------------------ histories
    def _ev(self) -> str:
        return "events" if self.events_sql == "events" else f"({self.events_sql})"

    def index_histories(self, con, max_events: int = 20_000_000) -> bool:
        """Keep every shopper's events in memory (compact arrays) so that ``user_history`` is a
        slice, not a query (~20 ms on Online Retail's 540k events). Skipped above
        ``max_events``. Returns whether the index was built."""
        ev = self._ev()
        n = con.execute(f"SELECT count(*) FROM {ev} e WHERE user_id IS NOT NULL").fetchall()[0][0]
        if n > max_events:
            return False
        df = con.execute(
            f"SELECT user_id, item_id, event_type, ts FROM {ev} e WHERE user_id IS NOT NULL "
            "ORDER BY user_id, ts NULLS FIRST, event_id").df()
        users, ucodes = np.unique(df["user_id"].astype(str).to_numpy(), return_index=True)
        ends = np.r_[ucodes[1:], len(df)]
        icode, iuniq = pd.factorize(df["item_id"].astype(str))
        tcode, tuniq = pd.factorize(df["event_type"].astype(str))
        ts = pd.to_datetime(df["ts"])
        self._hist_index = {
            "pos": {u: (int(a), int(b)) for u, a, b in zip(users, ucodes, ends)},
            "item": icode.astype(np.int32), "items": np.asarray(iuniq, dtype=object),
            "type": tcode.astype(np.int8), "types": np.asarray(tuniq, dtype=object),
            "ts": ts.to_numpy(), "has_ts": ts.notna().to_numpy(),
        }
        return True

    def user_history(self, con, user_id: str) -> list[tuple[str, str, datetime | None]]:
        """The user's events (item_id, event_type, ts) in time order, from the fitted view."""
        h = getattr(self, "_hist_index", None)
        if h is not None:
            a, b = h["pos"].get(str(user_id), (0, 0))
            if a == b:
                return []
            ts = pd.DatetimeIndex(h["ts"][a:b]).to_pydatetime()
            return [(i, t, s if ok else None) for i, t, s, ok in zip(
                h["items"][h["item"][a:b]].tolist(), h["types"][h["type"][a:b]].tolist(), ts,
                h["has_ts"][a:b].tolist())]
        return [
            (str(i), str(t), ts) for i, t, ts in con.execute(
                f"SELECT item_id, event_type, ts FROM {self._ev()} e WHERE user_id = ? "
                "ORDER BY ts NULLS FIRST, event_id", [str(user_id)]
            ).fetchall()
        ]

    def histories(self, con, user_ids: list[str]) -> dict[str, list[tuple]]:
        """Histories of many users in one query (for the evaluation), or from memory where
        ``index_histories`` kept them (the preview engine)."""
        if getattr(self, "_hist_index", None) is not None:
            return {str(u): self.user_history(con, u) for u in user_ids}
        want = pd.DataFrame({"user_id": list(map(str, user_ids))})
        con.register("_rec_hist_users", want)
        try:
            df = con.execute(
                f"""
                SELECT e.user_id, e.item_id, e.event_type, e.ts
                FROM {self._ev()} e JOIN _rec_hist_users w USING (user_id)
                ORDER BY e.user_id, e.ts NULLS FIRST, e.event_id
                """
            ).df()
        finally:
            con.unregister("_rec_hist_users")
        out: dict[str, list[tuple]] = {u: [] for u in want["user_id"]}
        if len(df):
            ts = df["ts"].dt.to_pydatetime() if hasattr(df["ts"], "dt") else df["ts"]
            for u, i, t, s in zip(df["user_id"].tolist(), df["item_id"].tolist(),
                                  df["event_type"].tolist(), list(ts)):
                out[u].append((i, t, None if pd.isna(s) else s))
        return out


def _arrow(con, sql: str):
    """A query's result as an Arrow table. execute(), not sql(): DuckDB 2 refuses a relation
    query while an earlier execute() result on the connection is unfinished (its Arrow output
    copies the rows once more and warns; still far smaller than a Python object per value)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return con.execute(sql).to_arrow_table()


def _dictionary(col) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values as strings, each row's position among them; -1 for nulls) of an Arrow
    column, values numbered in order of first appearance."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    enc = pc.dictionary_encode(pc.cast(arr, pa.string()))
    values = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return values, idx


def _codes(col, index: pd.Index) -> np.ndarray:
    """Each row's position in ``index`` (-1: null or not in it), matching distinct values only."""
    values, idx = _dictionary(col)
    if not len(idx):
        return idx
    pos = np.append(index.get_indexer(values), -1)  # idx -1 (null) -> the appended -1
    return pos[idx]


def _numbers(col, dtype) -> np.ndarray:
    """An Arrow number column as numpy, nulls as 0."""
    return col.to_pandas().to_numpy(dtype=dtype, na_value=0)
