"""The same segment across builds: match a build's segments to the previous build's by members.

Segments are matched one-to-one by the share of shoppers they have in common (Jaccard index:
shoppers in both / shoppers in either), maximised over all pairs (Hungarian assignment, scipy's
``linear_sum_assignment``). A pair counts as "the same segment" when at least ``MIN_JACCARD`` of
their shoppers are shared. A new build then takes the matched segment's number, hence its colour
on every page, and keeps its name (unless the name now belongs to another segment, or it only
said that nothing set the segment apart, "Broad taste", and this build finds what does).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from core.segments.naming import is_fallback_name
from core.store.schema import LENS_TABLES

MIN_JACCARD = 0.5


def members(con, run_id: int, lens: str = "taste") -> pd.Series:
    """user_id -> segment_id of one build (unassigned shoppers, -1, left out)."""
    table = LENS_TABLES[lens][0]
    df = con.execute(f"SELECT user_id, segment_id FROM {table} WHERE run_id = ? AND "
                     "segment_id >= 0", [run_id]).df()
    return pd.Series(df["segment_id"].to_numpy(), index=df["user_id"].astype(str))


def jaccard_matrix(prev: pd.Series, new: pd.Series) -> tuple[np.ndarray, list[int], list[int]]:
    """Jaccard index of every (new segment, previous segment) pair; rows new ids, cols prev ids."""
    new_ids, prev_ids = sorted(new.unique().tolist()), sorted(prev.unique().tolist())
    both = pd.crosstab(new.rename("new"), prev.rename("prev")).reindex(
        index=new_ids, columns=prev_ids, fill_value=0)
    inter = both.to_numpy(float)
    a = new.value_counts().reindex(new_ids).to_numpy(float)[:, None]
    b = prev.value_counts().reindex(prev_ids).to_numpy(float)[None, :]
    return inter / (a + b - inter), new_ids, prev_ids


def match(prev: pd.Series, new: pd.Series, min_jaccard: float = MIN_JACCARD) -> dict[int, tuple]:
    """{new segment id: (previous segment id, jaccard)} for the pairs that are the same segment."""
    if prev.empty or new.empty:
        return {}
    J, new_ids, prev_ids = jaccard_matrix(prev, new)
    rows, cols = linear_sum_assignment(-J)
    return {int(new_ids[r]): (int(prev_ids[c]), float(J[r, c]))
            for r, c in zip(rows, cols) if J[r, c] >= min_jaccard}


def previous_build(con, run_id: int, lens: str = "taste") -> int | None:
    table = LENS_TABLES[lens][0]
    row = con.execute(
        f"SELECT max(r.run_id) FROM runs r WHERE r.kind = 'build' AND r.status = 'complete' "
        f"AND r.run_id < ? AND EXISTS (SELECT 1 FROM {table} m WHERE m.run_id = r.run_id)",
        [run_id]).fetchone()
    return row[0]


def relabel_like_previous(con, run_id: int, lens: str = "taste") -> dict:
    """Renumber this build's segments so that each one matched to the previous build takes the
    previous number (numbers stay 0..k-1: a previous number beyond this build's k is not taken).
    Returns what was matched, for the run's metrics and ``keep_names``."""
    prev_run = previous_build(con, run_id, lens)
    if prev_run is None:
        return {"previous_run": None, "matched": {}}
    new = members(con, run_id, lens)
    k = int(new.max()) + 1 if len(new) else 0
    pairs = {n: (p, j) for n, (p, j) in match(members(con, prev_run, lens), new).items() if p < k}
    mapping = {n: p for n, (p, _) in pairs.items()}
    free = iter(sorted(set(range(k)) - set(mapping.values())))
    for n in range(k):
        if n not in mapping:
            mapping[n] = next(free)
    table = LENS_TABLES[lens][0]
    if any(n != p for n, p in mapping.items()):
        case = " ".join(f"WHEN {int(n)} THEN {int(p)}" for n, p in mapping.items())
        con.execute(f"UPDATE {table} SET segment_id = CASE segment_id {case} ELSE segment_id END "
                    "WHERE run_id = ?", [run_id])
    return {"previous_run": int(prev_run), "renumbered": {str(n): p for n, p in mapping.items()},
            "matched": {str(p): {"previous_segment": p, "jaccard": round(j, 3)}
                        for n, (p, j) in pairs.items()}}


def keep_names(con, run_id: int, matched: dict, lens: str = "taste") -> list[str]:
    """Give each matched segment its previous name, unless another segment of this build already
    has that name or the previous name was the fallback ("Broad taste") and this build names
    the segment after what sets it apart. Returns the names kept."""
    if not matched.get("matched"):
        return []
    info = LENS_TABLES[lens][1]
    prev = dict(con.execute(f"SELECT segment_id, name FROM {info} WHERE run_id = ?",
                            [matched["previous_run"]]).fetchall())
    now = dict(con.execute(f"SELECT segment_id, name FROM {info} WHERE run_id = ?",
                           [run_id]).fetchall())
    kept = []
    for sid in sorted(map(int, matched["matched"])):
        old = prev.get(sid)
        if is_fallback_name(old) and not is_fallback_name(now.get(sid)):
            continue
        if old and now.get(sid) != old and old not in {v for s, v in now.items() if s != sid}:
            con.execute(f"UPDATE {info} SET name = ? WHERE run_id = ? AND segment_id = ?",
                        [old, run_id, sid])
            now[sid] = old
            kept.append(old)
    return kept
