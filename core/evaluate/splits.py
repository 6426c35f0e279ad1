"""Hold-out splits for the offline evaluation and the check that keeps held-out data away from
every fitted model (see ``core.evaluate`` for the protocol).

* ``basket`` hold-out: the build's own split (``build_split``): each shopper's last basket is the
  test target, the basket before it the validation target; each is held out from the first
  event of its session (the views and carts just before buying would give it away).
* ``interaction`` hold-out (chronological leave-one-out): the last purchase event is the test
  target, the purchase before it the validation target.

``test_cut`` / ``val_cut`` are 1-based positions in the shopper's event order (``ts`` then
``event_id``, the encoder's order): that event and everything after it are held out.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.recommend.data import BASKET_KEY_SQL, ShopData, first_row


def purchases_with_pos(con) -> pd.DataFrame:
    """Every catalogue purchase of a shopper with its position in the shopper's event order."""
    return con.execute(
        f"""
        WITH ue AS (
            SELECT event_id, user_id, item_id, event_type, {BASKET_KEY_SQL} AS bk,
                   row_number() OVER (PARTITION BY user_id
                                      ORDER BY ts NULLS FIRST, event_id) AS pos
            FROM events WHERE user_id IS NOT NULL)
        SELECT user_id, item_id, bk, pos FROM ue
        WHERE event_type = 'purchase' AND item_id IN (SELECT item_id FROM items)
        ORDER BY user_id, pos
        """
    ).df()


def interaction_split(pur: pd.DataFrame) -> pd.DataFrame:
    """Last purchase event (test) and the one before it (validation) per shopper with >= 2."""
    b = pur[["user_id", "item_id", "pos"]].sort_values(["user_id", "pos"], ascending=[True, False],
                                                       kind="stable")
    b["k"] = b.groupby("user_id", sort=False).cumcount()
    n = b.groupby("user_id", sort=False).size()
    b = b[b["user_id"].map(n) >= 2]
    t = b[b["k"] == 0].set_index("user_id")
    v = b[b["k"] == 1].set_index("user_id")
    out = pd.DataFrame(index=pd.Index(t.index.astype(str), name="user_id"))
    out["test_cut"] = t["pos"].to_numpy(np.int64)
    out["test_items"] = [[x] for x in t["item_id"].astype(str)]
    out["val_cut"] = v["pos"].reindex(t.index).to_numpy(np.float64)
    out["val_items"] = [[x] if isinstance(x, str) else None
                        for x in v["item_id"].reindex(t.index)]
    return out.sort_index()


def session_cuts(con, split: pd.DataFrame) -> pd.DataFrame:
    """The split with each cut moved back to the first event of the held-out basket's session:
    on clickstream data a shopper views and carts an item just before buying it, and those
    events would otherwise give the held-out basket away. Data without sessions is unchanged.
    A validation cut that is no longer before the test cut is dropped."""
    out = split.copy()
    for col in ("test_cut", "val_cut"):
        c = out[col].dropna()
        if c.empty:
            continue
        cuts = pd.DataFrame({"user_id": c.index.astype(str),  # noqa: F841 (read by DuckDB)
                             "cut": c.to_numpy(np.int64)})
        con.register("_sess_cuts", cuts)
        try:
            moved = con.execute(
                """
                WITH ue AS (
                    SELECT user_id, session_id, row_number() OVER (
                        PARTITION BY user_id ORDER BY ts NULLS FIRST, event_id) AS pos
                    FROM events WHERE user_id IS NOT NULL),
                s AS (SELECT c.user_id, c.cut, ue.session_id FROM _sess_cuts c
                      JOIN ue ON ue.user_id = c.user_id AND ue.pos = c.cut)
                SELECT s.user_id, least(s.cut, coalesce(min(ue.pos), s.cut)) AS cut
                FROM s LEFT JOIN ue ON ue.user_id = s.user_id AND s.session_id IS NOT NULL
                     AND ue.session_id = s.session_id AND ue.pos <= s.cut
                GROUP BY s.user_id, s.cut
                """).df()
        finally:
            con.unregister("_sess_cuts")
        new = moved.set_index("user_id")["cut"].reindex(out.index)
        out[col] = np.where(new.notna(), new, out[col]).astype(out[col].dtype)
    bad = out["val_cut"].notna() & (out["val_cut"] >= out["test_cut"])
    if bad.any():
        out.loc[bad, "val_cut"] = np.nan
        out.loc[bad, "val_items"] = None
    return out


def build_split(con) -> pd.DataFrame:
    """The build's hold-out with session-aware cuts: what the encoder is kept away from and
    what the evaluation holds out (``core.features.holdout.last_basket_split`` +
    ``session_cuts``)."""
    from core.features.holdout import last_basket_split

    return session_cuts(con, last_basket_split(con))


def holdout_split(con, holdout: str) -> pd.DataFrame:
    if holdout == "basket":
        return build_split(con)
    if holdout == "interaction":
        return interaction_split(purchases_with_pos(con))
    raise ValueError(f"holdout must be 'basket' or 'interaction' (got {holdout!r}).")


def register_cut_view(con, name: str, cuts: pd.Series, users=None) -> str:
    """Register the events to drop (a shopper's events at/after their cut) and return the SQL
    of the training view of ``events``; ``users``: only these shoppers' events (a very large
    shop's evaluation fits on a sample)."""
    cut_df = pd.DataFrame({"user_id": cuts.index.astype(str), "cut": cuts.to_numpy(np.int64)})
    con.register(f"{name}_cuts", cut_df)
    try:
        excl = con.execute(
            f"""
            SELECT e.event_id FROM (
                SELECT event_id, user_id, row_number() OVER (
                    PARTITION BY user_id ORDER BY ts NULLS FIRST, event_id) AS pos
                FROM events WHERE user_id IS NOT NULL) e
            JOIN {name}_cuts c USING (user_id) WHERE e.pos >= c.cut
            """
        ).df()
    finally:
        con.unregister(f"{name}_cuts")
    con.register(name, excl)
    sql = f"SELECT * FROM events WHERE event_id NOT IN (SELECT event_id FROM {name})"
    if users is not None:
        con.register(f"{name}_users", pd.DataFrame({"user_id": pd.Index(users).astype(str)}))
        sql += f" AND user_id IN (SELECT user_id FROM {name}_users)"
    return sql


def unregister(con, name: str) -> None:
    for n in (name, f"{name}_users"):
        try:
            con.unregister(n)
        except Exception:
            pass


def targets_matrix(data: ShopData, items: list) -> sp.csr_matrix:
    rows, cols = [], []
    for r, its in enumerate(items):
        for it in its or []:
            j = data.item_index.get(str(it))
            if j is not None:
                rows.append(r)
                cols.append(j)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                         shape=(len(items), data.n_items))


def new_only(targets: sp.csr_matrix, counts: sp.csr_matrix) -> sp.csr_matrix:
    """Targets the shopper had not bought before."""
    seen = counts.copy()
    seen.data[:] = 1
    out = (targets - targets.multiply(seen)).tocsr()
    out.eliminate_zeros()
    return out


def encoder_training_cut(con, run_id: int, split: pd.DataFrame | None = None
                         ) -> tuple[pd.Series | None, str | None]:
    """Per shopper, the number of leading events the run's encoder may have trained on, checked
    against the checkpoint's fingerprint of the build's hold-out; (None, why) when the encoder
    cannot be evaluated honestly (no checkpoint, or trained on data that is now held out).
    ``split``: the build's hold-out (``build_split``) where the caller has it already; checked
    against the fingerprint all the same."""
    from core.encoder.data import holdout_fingerprint
    from core.features.holdout import cutoffs

    row = first_row(con, "SELECT config FROM model_checkpoints WHERE run_id = ? LIMIT 1",
                    [int(run_id)])
    if not row:
        return None, "this build has no trained encoder"
    h = (json.loads(row[0]) or {}).get("holdout") or {}
    split = build_split(con) if split is None else split
    test, val = cutoffs(split), cutoffs(split, "val_cut")
    if not h.get("test") or h.get("test") != holdout_fingerprint(test):
        return None, ("its training data included baskets that are held out now (trained by an "
                      "older build or before new data came in); run `segstudio build` again")
    if val and h.get("validation") != holdout_fingerprint(val):
        return None, ("it was trained on the validation baskets used to tune the hybrid; run "
                      "`segstudio build` again")
    keep = pd.Series(test, dtype=np.int64)
    if val:
        keep.loc[list(val)] = pd.Series(val, dtype=np.int64)
    return keep, None


# Above this many shoppers the recommenders are fitted on a seeded sample of shoppers (every
# evaluated one included): at a million shoppers fitting on everyone twice took over 20 minutes
# and 12 GB, to score 2,000 of them.
MAX_FIT_SHOPPERS = 100_000


def fit_sample(con, evaluated, seed: int):
    """(shoppers the recommenders are fitted on, the note saying so): None, None up to
    ``MAX_FIT_SHOPPERS``; above, the evaluated shoppers plus a seeded sample of the others."""
    n = con.execute("SELECT count(DISTINCT user_id) FROM events").fetchall()[0][0]
    if n <= MAX_FIT_SHOPPERS:   # a count: no list of every shopper for a shop this size
        return None, None
    everyone = pd.Index([r[0] for r in con.execute(
        "SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL ORDER BY 1").fetchall()])
    others = everyone.difference(pd.Index(evaluated).astype(str))
    pick = np.random.default_rng(seed + 11).choice(
        len(others), max(0, MAX_FIT_SHOPPERS - len(evaluated)), replace=False)
    users = pd.Index(evaluated).astype(str).append(others[np.sort(pick)])
    return users, {
        "shoppers": int(len(users)), "of": int(len(everyone)),
        "why": f"the recommenders were fitted on the history of {len(users):,} of the "
               f"{len(everyone):,} shoppers (the evaluated ones and a random sample of the rest; "
               "everyone would take tens of minutes and gigabytes); shoppers without an id "
               "are left out of that fit"}
