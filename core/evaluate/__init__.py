"""Offline evaluation of the recommenders: chronological hold-out, full-catalogue ranking.

Protocol (``evaluate_recommenders``)
------------------------------------
* **Hold-out.** For every shopper with at least two purchase baskets (``holdout="basket"``) or two
  purchases (``holdout="interaction"``), the last basket (or the last purchase event) is held
  out. "Last" follows the encoder's order of a shopper's events: ``ts`` then ``event_id``.
  Targets: the distinct catalogue items bought in the held-out basket (or the one item).
* **No leakage.** Every model is re-fitted on the events *before* the held-out one: for each
  evaluated shopper, their held-out basket and everything they did from its first event on is
  removed from the data (a filtered view of ``events``) before popularity, segment popularity,
  repeat and the item-kNN co-occurrences are computed. Other shoppers' earlier and later baskets
  stay in (the usual leave-last-basket-out protocol). Segment membership is the run's (from
  profiles of the full history); the per-segment popularity counts are from the filtered data.
* **Hybrid weights** are tuned on a validation split of the *training* data only: each shopper's
  second-to-last basket (purchase) is held out in turn, the components are re-fitted without it
  and everything after, and the weights maximising NDCG@10 there (coordinate ascent over a small
  grid) are used on the test split. They are stored in the hybrid row's ``params`` and used by the
  served hybrid.
* **Encoder.** The run's encoder (``core.encoder``) is trained by the build on the full event
  history except each shopper's last ``val_fraction`` of interactions (1-3 events, for shoppers
  with >= 4 events), which it uses for early stopping. Held-out *interactions* are therefore
  (almost always) not trained on, but held-out *baskets* are mostly inside its training data.
  The evaluation measures and reports that overlap exactly (``encoder_overlap``: share of
  held-out target events inside the encoder's training part) in the encoder and hybrid rows.
* **Ranking.** Full ranking over the catalogue (no sampled negatives). Items that can never be
  recommended (not in the catalogue / not sold in the last ``active_days`` days of the training
  data, returned-only for that shopper) are removed from every list. Two tasks:
  the reported figures are the *next-basket* task (already-bought items allowed, targets = the
  whole held-out basket: repeat purchase is most of a shop's baskets); ``params.new_items``
  holds the same metrics for the *new-items* task (bought items excluded, as the previews do by
  default; targets = held-out items the shopper had not bought before; shoppers with none are
  left out of it). Each task has its own tuned hybrid weights.
  Ties (including items a recommender does not score) are broken by overall popularity.
* **Metrics** (``core.evaluate.metrics``): Recall@10, NDCG@10, HitRate@10, MRR@10 (means over
  shoppers) and catalogue coverage (share of catalogue items in at least one top-10 list).
* **Sampling.** ``max_users`` (default 2,000) evaluated shoppers are drawn with ``seed`` when
  more are eligible; ``tune_users`` (default 600) for the validation split. Documented in the
  stored params.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.evaluate.metrics import per_user_metrics, summarise
from core.progress import NULL, Progress
from core.recommend.data import BASKET_KEY_SQL, DEFAULT_ACTIVE_DAYS, ShopData, first_row
from core.recommend.recommenders import (
    HybridRecommender,
    batch_for_users,
    fit_recommenders,
    normalise,
)

K = 10
DEFAULT_MAX_USERS = 2000
DEFAULT_TUNE_USERS = 600
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
CHUNK = 256


class EvaluationError(ValueError):
    pass


# ---------------------------------------------------------------------------- splits
def _purchases_with_pos(con) -> pd.DataFrame:
    """Every catalogue purchase of a shopper with its position in the shopper's event order."""
    return con.execute(
        f"""
        WITH ue AS (
            SELECT event_id, user_id, item_id, event_type, {BASKET_KEY_SQL} AS bk,
                   row_number() OVER (PARTITION BY user_id
                                      ORDER BY ts NULLS FIRST, event_id) AS pos,
                   count(*) OVER (PARTITION BY user_id) AS n_events
            FROM events WHERE user_id IS NOT NULL)
        SELECT user_id, item_id, bk, pos, n_events FROM ue
        WHERE event_type = 'purchase' AND item_id IN (SELECT item_id FROM items)
        ORDER BY user_id, pos
        """
    ).df()


def holdout_split(pur: pd.DataFrame, holdout: str) -> pd.DataFrame:
    """Per eligible shopper: test_cut / val_cut (first position held out), and the targets
    (sorted lists of item_ids) of the test and validation hold-outs."""
    if holdout == "basket":
        b = pur.groupby(["user_id", "bk"], sort=False, observed=True)["pos"].min().reset_index()
    elif holdout == "interaction":
        b = pur[["user_id", "bk", "pos"]].copy()
    else:
        raise ValueError(f"holdout must be 'basket' or 'interaction' (got {holdout!r}).")
    b = b.sort_values(["user_id", "pos"], ascending=[True, False], kind="stable")
    b["k"] = b.groupby("user_id", sort=False).cumcount()
    nb = b.groupby("user_id", sort=False).size()
    sel = b[b["k"] <= 1].copy()
    sel["n"] = nb.reindex(sel["user_id"]).to_numpy()
    sel = sel[(sel["n"] >= 2) & ((sel["k"] == 0) | (sel["n"] >= 3))]
    if holdout == "basket":
        items = pur.merge(sel[["user_id", "bk", "k"]], on=["user_id", "bk"])
    else:
        items = pur.merge(sel[["user_id", "pos", "k"]], on=["user_id", "pos"])
    items = items.drop_duplicates(["user_id", "k", "item_id"]).sort_values(
        ["user_id", "k", "item_id"])
    lists = items.groupby(["user_id", "k"], sort=False)["item_id"].agg(list)
    t = sel[sel["k"] == 0].set_index("user_id")
    v = sel[sel["k"] == 1].set_index("user_id")
    out = pd.DataFrame({"test_cut": t["pos"]})
    out["test_items"] = [lists.get((u, 0), []) for u in out.index]
    out["val_cut"] = v["pos"].reindex(out.index)
    out["val_items"] = [lists.get((u, 1)) for u in out.index]
    n_ev = pur.groupby("user_id", sort=False)["n_events"].first()
    out["n_events"] = n_ev.reindex(out.index)
    return out.sort_index()


def _register_cut_view(con, name: str, cuts: pd.Series) -> str:
    """Register the events to drop (shopper's events at/after the cut) and return the SQL of
    the training view of ``events``."""
    cut_df = pd.DataFrame({"user_id": cuts.index.astype(str), "cut": cuts.to_numpy(np.int64)})
    con.register(f"{name}_cuts", cut_df)
    excl = con.execute(
        f"""
        SELECT e.event_id FROM (
            SELECT event_id, user_id,
                   row_number() OVER (PARTITION BY user_id ORDER BY ts NULLS FIRST, event_id) AS pos
            FROM events WHERE user_id IS NOT NULL) e
        JOIN {name}_cuts c USING (user_id) WHERE e.pos >= c.cut
        """
    ).df()
    con.unregister(f"{name}_cuts")
    con.register(name, excl)
    return f"SELECT * FROM events WHERE event_id NOT IN (SELECT event_id FROM {name})"


def _targets(data: ShopData, items: list[list[str]]) -> sp.csr_matrix:
    rows, cols = [], []
    for r, its in enumerate(items):
        for it in its:
            j = data.item_index.get(it)
            if j is not None:
                rows.append(r)
                cols.append(j)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                         shape=(len(items), data.n_items))


def _encoder_overlap(con, run_id: int, split: pd.DataFrame, pur: pd.DataFrame) -> dict | None:
    """Share of held-out target events inside the encoder's training part (see module doc)."""
    row = first_row(con, "SELECT config FROM model_checkpoints WHERE run_id = ? LIMIT 1",
                    [int(run_id)])
    if not row:
        return None
    p = (json.loads(row[0]) or {}).get("params", {})
    vf, mx, mn = float(p.get("val_fraction", 0.1)), int(p.get("max_val_per_user", 3)), \
        int(p.get("min_events_for_val", 4))
    n = split["n_events"].to_numpy(np.float64)
    n_val = np.where(n >= mn, np.clip(np.rint(n * vf), 1, mx), 0)
    train_end = pd.Series(n - n_val, index=split.index)  # positions <= train_end were trained on
    held = pur[pur["user_id"].isin(split.index)]
    held = held[held["pos"] >= split["test_cut"].reindex(held["user_id"]).to_numpy()]
    inside = held["pos"].to_numpy() <= train_end.reindex(held["user_id"]).to_numpy()
    return {"heldout_target_events": int(len(held)),
            "inside_encoder_training": int(inside.sum()),
            "share": float(inside.mean()) if len(held) else 0.0,
            "encoder_val_fraction": vf, "encoder_max_val_per_user": mx}


def training_data(con, run_id: int | None, holdout: str = "basket", *,
                  active_days: int = DEFAULT_ACTIVE_DAYS) -> tuple[ShopData, pd.DataFrame]:
    """The data the test split's models are fitted on (every eligible shopper's hold-out and
    what follows removed) and the split itself. For checks and notebooks."""
    pur = _purchases_with_pos(con)
    split = holdout_split(pur, holdout)
    view = _register_cut_view(con, "_eval_excl_check", split["test_cut"].astype(np.int64))
    try:
        data = ShopData.load(con, run_id, events_sql=view, active_days=active_days)
    finally:
        con.unregister("_eval_excl_check")
    return data, split


# ---------------------------------------------------------------------------- scoring
MODES = {"next_basket": True, "new_items": False}  # mode -> repeat allowed


def _component_topk(recs: dict, data: ShopData, rows: np.ndarray, hists: list | None,
                    names: list[str], k: int, weights: dict[str, dict]):
    """Top-k per mode (next_basket: bought items allowed; new_items: excluded) per component
    and for the hybrid with ``weights[mode]``, for shopper rows, in chunks."""
    tops = {m: {n: [] for n in list(names) + ["hybrid"]} for m in MODES}
    ref = recs["popularity"]
    for s in range(0, len(rows), CHUNK):
        r = rows[s:s + CHUNK]
        b = batch_for_users(data, r, histories=hists[s:s + CHUNK] if hists is not None else None)
        bads = {m: ref.mask(b, repeat=rep) for m, rep in MODES.items()}
        norm = {}
        for n in names:
            sc = recs[n].scores(b)
            for m in MODES:
                tops[m][n].append(ref.ranked(sc, bads[m], k))
            norm[n] = normalise(n, sc).astype(np.float32)
        for m in MODES:
            hy = HybridRecommender.combine(norm, weights[m])
            hy = np.zeros((len(r), data.n_items)) if hy is None else hy
            tops[m]["hybrid"].append(ref.ranked(hy, bads[m], k))
    return {m: {n: np.vstack(v) for n, v in t.items() if v} for m, t in tops.items()}


def _component_norms(recs: dict, data: ShopData, rows: np.ndarray, hists: list | None,
                     names: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, list] = {n: [] for n in names}
    for s in range(0, len(rows), CHUNK):
        b = batch_for_users(data, rows[s:s + CHUNK],
                            histories=hists[s:s + CHUNK] if hists is not None else None)
        for n in names:
            out[n].append(normalise(n, recs[n].scores(b)).astype(np.float32))
    return {n: np.vstack(v) for n, v in out.items() if v}


def _new_only(targets: sp.csr_matrix, counts: sp.csr_matrix) -> sp.csr_matrix:
    """Targets the shopper had not bought before."""
    seen = counts.copy()
    seen.data[:] = 1
    out = (targets - targets.multiply(seen)).tocsr()
    out.eliminate_zeros()
    return out


def tune_weights(norm: dict[str, np.ndarray], bad: np.ndarray, targets: sp.csr_matrix,
                 ranker, k: int = K, grid=WEIGHT_GRID, passes: int = 2) -> tuple[dict, float]:
    """Coordinate ascent over ``grid`` for each component weight, maximising mean NDCG@k,
    from the best single component.
    (float32 scores with the popularity tie-break folded in: fast, ranking as in ``ranked``.)"""
    names = list(norm)
    tb = (1e-6 * ranker.tiebreak).astype(np.float32)
    comp = {n: np.where(bad, np.float32(0), v.astype(np.float32)) for n, v in norm.items()}
    base = np.where(bad, np.float32(-np.inf), tb[None, :]).astype(np.float32)
    kk = min(k, base.shape[1])

    def ndcg(w):
        s = base.copy()
        for n in names:
            if w[n] > 0:
                s += np.float32(w[n]) * comp[n]
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        pv = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-pv, axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        top[np.take_along_axis(pv, order, axis=1) == -np.inf] = -1
        return float(per_user_metrics(top, targets, k)["ndcg"].mean())

    # start from the best single component (so the blend is never worse than it on the
    # validation split), then coordinate ascent
    w, best = None, -1.0
    for n in names:
        cand = {m: (1.0 if m == n else 0.0) for m in names}
        v = ndcg(cand)
        if v > best:
            w, best = cand, v
    for _ in range(passes):
        improved = False
        for n in names:
            for g in grid:
                if g == w[n]:
                    continue
                cand = {**w, n: g}
                if not any(cand.values()):
                    continue
                v = ndcg(cand)
                if v > best + 1e-9:
                    best, w, improved = v, cand, True
        if not improved:
            break
    return w, best


# ---------------------------------------------------------------------------- main
def evaluate_recommenders(con, run_id: int, *, holdout: str = "basket",
                          max_users: int | None = DEFAULT_MAX_USERS,
                          tune_users: int | None = DEFAULT_TUNE_USERS, seed: int = 42,
                          active_days: int = DEFAULT_ACTIVE_DAYS,
                          k: int = K, write: bool = True, progress: Progress = NULL) -> dict:
    """Evaluate every recommender on a chronological hold-out (see module doc); write one row
    per recommender to ``evaluations`` (replacing this run's rows for the same hold-out) and
    return {holdout, k, users_evaluated, recommenders: {name: metrics}, best, ...}."""
    if holdout not in ("basket", "interaction"):
        raise ValueError(f"holdout must be 'basket' or 'interaction' (got {holdout!r}).")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with progress.stage("Evaluating recommenders", total=5) as bar:
        pur = _purchases_with_pos(con)
        split = holdout_split(pur, holdout)
        n_eligible = len(split)
        if n_eligible == 0:
            raise EvaluationError(
                f"No shopper has two or more purchase {'baskets' if holdout == 'basket' else 'events'}"
                ", so there is nothing to hold out. The evaluation needs repeat customers with "
                "user ids (anonymous baskets cannot be evaluated).")
        users = split.index.to_numpy()
        if max_users and n_eligible > max_users:
            users = np.sort(rng.choice(users, size=max_users, replace=False))
        split = split.loc[users]
        bar.advance(1)

        # ---- validation split: tune the hybrid's weights on training data only
        val = split[split["val_cut"].notna()]
        if tune_users and len(val) > tune_users:
            val = val.loc[np.sort(rng.choice(val.index.to_numpy(), size=tune_users,
                                             replace=False))]
        cuts_val = split["test_cut"].copy()
        cuts_val.loc[val.index] = val["val_cut"].astype(np.int64)
        weights: dict[str, dict] = {}
        val_ndcg: dict[str, float] = {}
        names_all = ["popularity", "segment_popularity", "repeat", "item_knn", "encoder"]
        try:
            view = _register_cut_view(con, "_eval_excl_val", cuts_val)
            dval = ShopData.load(con, run_id, events_sql=view, active_days=active_days)
            rval = fit_recommenders(con, run_id, dval)
            enc_note = fit_recommenders.last_error
            comps = [n for n in names_all if n in rval and n != "popularity"]
            vrows = np.array([dval.user_index[u] for u in val.index if u in dval.user_index],
                             dtype=np.int64)
            if len(vrows):
                vusers = [dval.user_ids[r] for r in vrows]
                hv = dval.histories(con, vusers) if "encoder" in rval else None
                hv = [hv[u] for u in vusers] if hv is not None else None
                norms = _component_norms(rval, dval, vrows, hv, comps)
                b = batch_for_users(dval, vrows)
                tv = _targets(dval, val.loc[vusers, "val_items"].tolist())
                tv_new = _new_only(tv, b.counts)
                for mode, rep in MODES.items():
                    t = tv if rep else tv_new
                    keep_v = np.asarray(t.sum(axis=1)).ravel() > 0
                    if not keep_v.any():
                        continue
                    bad = rval["popularity"].mask(b, repeat=rep)[keep_v]
                    weights[mode], val_ndcg[mode] = tune_weights(
                        {n: v[keep_v] for n, v in norms.items()}, bad, t[keep_v],
                        rval["popularity"], k)
            bar.advance(1)
        finally:
            con.unregister("_eval_excl_val") if _registered(con, "_eval_excl_val") else None
        from core.recommend.recommenders import DEFAULT_WEIGHTS
        for mode in MODES:
            weights.setdefault(mode, {n: DEFAULT_WEIGHTS.get(n, 0.0) for n in comps})

        # ---- test split
        try:
            view = _register_cut_view(con, "_eval_excl_test", split["test_cut"].astype(np.int64))
            data = ShopData.load(con, run_id, events_sql=view, active_days=active_days)
            recs = fit_recommenders(con, run_id, data, weights=weights["next_basket"],
                                    weights_new=weights["new_items"])
            rows = np.array([data.user_index[u] for u in split.index if u in data.user_index],
                            dtype=np.int64)
            tusers = [data.user_ids[r] for r in rows]
            ht = data.histories(con, tusers) if "encoder" in recs else None
            ht = [ht[u] for u in tusers] if ht is not None else None
            bar.advance(1)
            names = [n for n in names_all if n in recs]
            tops = _component_topk(recs, data, rows, ht, names, k, weights)
            targets = _targets(data, split.loc[tusers, "test_items"].tolist())
            targets_new = _new_only(targets, data.user_counts[rows])
            bar.advance(1)
        finally:
            con.unregister("_eval_excl_test") if _registered(con, "_eval_excl_test") else None

        n_targets = np.asarray(targets.sum(axis=1)).ravel()
        keep = n_targets > 0
        keep_new = np.asarray(targets_new.sum(axis=1)).ravel() > 0
        overlap = _encoder_overlap(con, run_id, split, pur) if "encoder" in recs else None
        results: dict[str, dict] = {}
        base_params = {
            "holdout": holdout, "k": k, "repeat": True, "active_days": active_days,
            "seed": seed, "max_users": max_users, "users_eligible": int(n_eligible),
            "users_sampled": int(len(split)),
            "users_without_reachable_target": int((~keep).sum()),
            "mean_targets": float(n_targets[keep].mean()) if keep.any() else 0.0,
            "catalogue_items": data.n_items, "available_items": int(data.active.sum()),
        }
        for n, top in tops["next_basket"].items():
            m = summarise(top[keep], targets[keep], data.n_items, k)
            params = dict(base_params)
            # the same recommender on items the shopper had not bought (bought items excluded)
            params["new_items"] = summarise(tops["new_items"][n][keep_new], targets_new[keep_new],
                                            data.n_items, k)
            if n == "hybrid":
                params.update(weights=weights["next_basket"],
                              weights_new_items=weights["new_items"],
                              tuned_on_users=int(len(val)), validation_ndcg10=val_ndcg)
            if n in ("encoder", "hybrid") and overlap is not None:
                params["encoder_overlap"] = overlap
            m["params"] = params
            results[n] = m
        bar.advance(1)

    best = max(results, key=lambda n: results[n][f"ndcg{k}"])
    baselines = [n for n in results if n not in ("encoder", "hybrid")]
    best_base = max(baselines, key=lambda n: results[n][f"ndcg{k}"]) if baselines else None
    out = {
        "holdout": holdout, "k": k, "users_evaluated": int(keep.sum()),
        "users_eligible": int(n_eligible), "recommenders": results, "best": best,
        "best_baseline": best_base, "hybrid_weights": weights["next_basket"],
        "hybrid_weights_new_items": weights["new_items"],
        "beats_baselines": bool(best in ("encoder", "hybrid")),
        "encoder": "evaluated" if "encoder" in recs else f"not evaluated ({enc_note})",
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if write:
        write_evaluations(con, run_id, out)
    return out


def _registered(con, name: str) -> bool:
    try:
        con.execute(f"SELECT 1 FROM {name} LIMIT 0")
        return True
    except Exception:
        return False


def write_evaluations(con, run_id: int, result: dict) -> None:
    k = result["k"]
    con.execute(
        "DELETE FROM evaluations WHERE run_id = ? AND "
        "json_extract_string(params, '$.holdout') = ?", [int(run_id), result["holdout"]])
    for name, m in result["recommenders"].items():
        con.execute(
            "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [int(run_id), name, m[f"recall{k}"], m[f"ndcg{k}"], m[f"hitrate{k}"], m[f"mrr{k}"],
             m["coverage"], m["users_evaluated"], json.dumps(m["params"], default=str)])


def read_evaluations(con, run_id: int, holdout: str | None = None) -> pd.DataFrame:
    """The stored rows of a run (optionally one hold-out), best NDCG@10 first."""
    q = ("SELECT recommender, recall10, ndcg10, hitrate10, mrr10, coverage, users_evaluated, "
         "params FROM evaluations WHERE run_id = ?")
    args: list = [int(run_id)]
    if holdout:
        q += " AND json_extract_string(params, '$.holdout') = ?"
        args.append(holdout)
    return con.execute(q + " ORDER BY ndcg10 DESC", args).df()


__all__ = ["DEFAULT_MAX_USERS", "evaluate_recommenders", "training_data", "holdout_split", "read_evaluations", "tune_weights",
           "write_evaluations", "EvaluationError"]
