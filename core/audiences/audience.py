"""Campaign audiences: a segment frozen when a campaign starts, with a seeded random hold-out
group kept out of the campaign, and the comparison of both groups' purchases since the freeze.

Stored in the records file (``records.audiences``, ``records.audience_members``), so freezing
never copies the store nor waits for a build. The hold-out is drawn from the sorted member ids
with NumPy's generator seeded by the audience's seed: the same members and seed always give the
same hold-out, and treated and hold-out are disjoint by construction.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import numpy as np
import pandas as pd

from core.audiences.definition import describe, members


class AudienceError(ValueError):
    pass


def draw_holdout(user_ids, share: float = 0.10, seed: int = 42) -> tuple[list[str], list[str]]:
    """(treated, holdout): ``round(share * n)`` members drawn at random (seeded) into the
    hold-out; both lists sorted."""
    if not 0 <= share < 1:
        raise AudienceError(f"The hold-out share must be at least 0 and below 1 (got {share}).")
    ids = sorted({str(u) for u in user_ids})
    n_hold = int(round(share * len(ids)))
    perm = np.random.default_rng(seed).permutation(len(ids))
    hold = {ids[i] for i in perm[:n_hold]}
    return [u for u in ids if u not in hold], sorted(hold)


def freeze(store, name: str, *, run_id: int, definition=None, user_ids=None,
           holdout_share: float = 0.10, seed: int = 42) -> int:
    """Freeze a segment (a definition evaluated on ``run_id``, or explicit ``user_ids``) as a
    campaign audience; returns its audience_id."""
    name = " ".join((name or "").split())
    if not name:
        raise AudienceError("Give the audience a name (e.g. 'December win-back').")
    con = store.read()
    try:
        ids = members(con, run_id, definition) if definition is not None else list(user_ids or [])
        frozen_at = con.execute("SELECT max(ts) FROM events").fetchone()[0]
    finally:
        con.close()
    if not ids:
        raise AudienceError("The segment has no shoppers: nothing to freeze.")
    treated, hold = draw_holdout(ids, holdout_share, seed)
    with store.write_records() as con:
        if con.execute("SELECT count(*) FROM records.audiences WHERE lower(name) = lower(?)",
                       [name]).fetchone()[0]:
            raise AudienceError(f"An audience called '{name}' already exists; choose another name.")
        aid = int(con.execute("SELECT coalesce(max(audience_id), 0) + 1 FROM records.audiences")
                  .fetchone()[0])
        con.execute("INSERT INTO records.audiences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [aid, name, datetime.now().replace(microsecond=0), run_id,
                     json.dumps(definition) if definition is not None else None,
                     describe(definition) if definition is not None else
                     f"{len(ids):,} chosen shoppers", frozen_at, holdout_share, seed])
        con.execute("INSERT INTO records.audience_members SELECT ?, unnest(?::VARCHAR[]), 'treated'",
                    [aid, treated])
        if hold:
            con.execute("INSERT INTO records.audience_members SELECT ?, unnest(?::VARCHAR[]), "
                        "'holdout'", [aid, hold])
    return aid


def list_audiences(con) -> pd.DataFrame:
    """Audiences, newest first, with their group sizes (empty for a records file written before
    audiences existed)."""
    have = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'records' "
                       "AND table_name = 'audiences'").fetchone()[0]
    if not have:
        return pd.DataFrame(columns=["audience_id", "name", "description", "created_at",
                                     "frozen_at", "run_id", "holdout_share", "seed", "treated",
                                     "holdout"])
    return con.execute(
        """SELECT a.audience_id, a.name, a.description, a.created_at, a.frozen_at, a.run_id,
                  a.holdout_share, a.seed,
                  count(*) FILTER (m.grp = 'treated') AS treated,
                  count(*) FILTER (m.grp = 'holdout') AS holdout
           FROM records.audiences a LEFT JOIN records.audience_members m USING (audience_id)
           GROUP BY ALL ORDER BY a.audience_id DESC""").df()


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def compare(con, audience_id: int) -> dict:
    """Treated vs hold-out since the freeze: per group shoppers, buyers, conversion (Wilson 95 %
    interval) and revenue per shopper (95 % normal interval); the differences with intervals."""
    a = con.execute("SELECT name, frozen_at FROM records.audiences WHERE audience_id = ?",
                    [audience_id]).fetchone()
    if a is None:
        raise AudienceError(f"There is no audience number {audience_id}.")
    name, frozen_at = a
    df = con.execute(
        """WITH m AS (SELECT user_id, grp FROM records.audience_members WHERE audience_id = ?),
           r AS (SELECT user_id, sum(quantity * unit_price) AS revenue, count(*) AS lines
                 FROM events WHERE event_type = 'purchase' AND ts > ? GROUP BY user_id)
           SELECT m.grp, m.user_id, coalesce(r.revenue, 0) AS revenue, r.lines IS NOT NULL AS bought
           FROM m LEFT JOIN r USING (user_id)""", [audience_id, frozen_at]).df()
    data_end = con.execute("SELECT max(ts) FROM events").fetchone()[0]
    out = {"audience_id": audience_id, "name": name, "frozen_at": str(frozen_at),
           "data_end": str(data_end), "days_since": max(0, (data_end - frozen_at).days),
           "groups": {}}
    for grp in ("treated", "holdout"):
        g = df[df.grp == grp]
        n, k = len(g), int(g.bought.sum())
        rev = g.revenue.to_numpy(float)
        mean = float(rev.mean()) if n else float("nan")
        se = float(rev.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        out["groups"][grp] = {"shoppers": n, "buyers": k,
                              "conversion": k / n if n else float("nan"),
                              "conversion_95": _wilson(k, n),
                              "revenue_per_shopper": mean,
                              "revenue_per_shopper_95": (mean - 1.96 * se, mean + 1.96 * se)}
    t, h = out["groups"]["treated"], out["groups"]["holdout"]
    if t["shoppers"] and h["shoppers"]:
        dc = t["conversion"] - h["conversion"]
        se_c = math.sqrt(t["conversion"] * (1 - t["conversion"]) / t["shoppers"]
                         + h["conversion"] * (1 - h["conversion"]) / h["shoppers"])
        dr = t["revenue_per_shopper"] - h["revenue_per_shopper"]
        se_r = math.sqrt(np.nan_to_num(((t["revenue_per_shopper_95"][1] - t["revenue_per_shopper"])
                                        / 1.96) ** 2)
                         + np.nan_to_num(((h["revenue_per_shopper_95"][1]
                                           - h["revenue_per_shopper"]) / 1.96) ** 2))
        out["difference"] = {"conversion": dc, "conversion_95": (dc - 1.96 * se_c, dc + 1.96 * se_c),
                             "revenue_per_shopper": dr,
                             "revenue_per_shopper_95": (dr - 1.96 * se_r, dr + 1.96 * se_r)}
    warn = []
    if out["days_since"] == 0:
        warn.append("No purchases have been loaded since the freeze yet: ingest newer data.")
    if h["shoppers"] < 100:
        warn.append(f"The hold-out has {h['shoppers']} shoppers: differences this small sample "
                    "shows are uncertain (see the intervals).")
    out["warnings"] = warn
    return out
