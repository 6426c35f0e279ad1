"""Offline evaluation of the recommenders: chronological hold-out, full-catalogue ranking.

Protocol (``evaluate_recommenders``; ``PROTOCOL`` is the text the Model page shows)
-----------------------------------------------------------------------------------------
* **Hold-out.** ``holdout="basket"``: each shopper with two or more purchase baskets has their
  last basket held out (test) and, with three or more, the basket before it (validation) -- the
  build's own split (``core.evaluate.splits.build_split``: each basket held out from the first
  event of its session). ``holdout="interaction"`` (chronological
  leave-one-out): the last purchase event (test) and the one before it (validation).
  A shopper's hold-out is that basket/event and everything they did from it on.
* **No leakage, by construction.** Test: every model (popularity, segment popularity, repeat,
  item-kNN, TIFU-kNN) is fitted on a view of ``events`` without any eligible shopper's test
  hold-out. Validation: fitted without any shopper's validation hold-out (and test hold-out).
  The encoder is trained by the build; its checkpoint records a fingerprint of the events it
  was kept away from (each shopper's last basket) and validated on (the basket before,
  early stopping only). The evaluation recomputes that fingerprint from the data and scores the
  encoder only if it matches, and only for shoppers whose hold-out is entirely after what the
  encoder trained on; otherwise the encoder row is left out with the reason.
* **Segments.** The build's segments were found from full histories; for the evaluation every
  shopper with a hold-out is re-assigned to a segment from their training purchases only
  (``reassign_segments``), so segment popularity cannot read the held-out basket.
* **Hybrid weights** are chosen on the validation hold-out only (coordinate ascent over a grid,
  maximising NDCG@10), separately for each list type, and stored with the hybrid row; so is the
  ``next_basket`` logistic model (learned on the validation baskets, stored with its row).
* **Two list types.** ``new_items`` (the app's default): items the shopper already bought are
  excluded; targets are the held-out items they had not bought before (shoppers with none are
  left out). ``repeats``: bought items allowed; targets are the whole held-out basket.
* **Ranking.** Full ranking over the catalogue (no sampled negatives). Items that can never be
  recommended (not sold in the last ``active_days`` days of the training data, non-merchandise,
  returned-only for that shopper) are removed from every list. Ties go to overall popularity.
* **Figures.** Recall@10, NDCG@10, HitRate@10, MRR@10 (means over shoppers) with 95 % percentile
  bootstrap intervals over shoppers (1,000 resamples, shared by all recommenders), catalogue
  coverage, and the same per segment. Under 200 evaluated shoppers a warning is attached.
* **Sampling.** At most ``max_users`` (default 2,000) evaluated shoppers, drawn with ``seed``;
  ``tune_users`` (default 2,000) validation shoppers.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from core.evaluate.metrics import (
    SMALL_SAMPLE, bootstrap_weights, summarise, summarise_with_intervals)
from core.evaluate.scoring import (  # noqa: F401  (re-exported)
    MODES, WEIGHT_GRID, component_norms, component_topk, tune_weights)
from core.evaluate.splits import (
    encoder_training_cut, fit_sample, holdout_split, new_only, register_cut_view, targets_matrix,
    unregister)
from core.evaluate.validation import (  # noqa: F401  (re-exported)
    ENCODER_BATCH, _histories, reassign_segments, tune_on_validation, validation_cuts)
from core.progress import NULL, Progress
from core.recommend.data import DEFAULT_ACTIVE_DAYS, ShopData
from core.recommend.recommenders import DEFAULT_WEIGHTS, HYBRID_COMPONENTS, fit_recommenders

K = 10
DEFAULT_MAX_USERS = 2000
DEFAULT_TUNE_USERS = 2000
N_BOOT = 1000

PROTOCOL = (
    "How this is measured: for each shopper with at least two baskets we hide their last basket, "
    "with the views and carts of its session before it (in the leave-one-out table, their last "
    "purchase). Every recommender is fitted only on what "
    "happened before each shopper's hidden basket (leave-one-out: before the hidden purchase); "
    "the profile encoder was trained by the build without any shopper's last basket, and is "
    "scored only where that holds. Shoppers' segments are worked out again from their earlier "
    "purchases. The basket before the hidden one is a separate validation set, used only to stop "
    "the encoder's training and to choose the hybrid's weights and fit the next-basket model "
    "(leave-one-out: those two on the purchase before the hidden one). Each recommender then ranks the whole catalogue and we check whether the "
    "hidden items are in its top 10. \"New items only\" (what the app shows) leaves out items "
    "the shopper already bought and scores only the new ones they went on to buy; \"repeats "
    "allowed\" scores the whole basket. Ranges are 95 % bootstrap intervals over shoppers.")


class EvaluationError(ValueError):
    pass


def training_data(con, run_id: int | None, holdout: str = "basket", *,
                  active_days: int = DEFAULT_ACTIVE_DAYS) -> tuple[ShopData, pd.DataFrame]:
    """The data the test split's models are fitted on (every eligible shopper's hold-out and
    what follows removed) and the split itself. For checks and notebooks."""
    split = holdout_split(con, holdout)
    view = register_cut_view(con, "_eval_excl_check", split["test_cut"].astype(np.int64))
    try:
        data = ShopData.load(con, run_id, events_sql=view, active_days=active_days)
    finally:
        unregister(con, "_eval_excl_check")
    return data, split


# ---------------------------------------------------------------------------- main
def evaluate_recommenders(con, run_id: int, *, holdout: str = "basket",
                          max_users: int | None = DEFAULT_MAX_USERS,
                          tune_users: int | None = DEFAULT_TUNE_USERS, seed: int = 42,
                          active_days: int = DEFAULT_ACTIVE_DAYS, k: int = K, write: bool = True,
                          n_boot: int = N_BOOT, progress: Progress = NULL,
                          split: pd.DataFrame | None = None) -> dict:
    """Evaluate every recommender on a chronological hold-out (see module doc); write one row
    per recommender to ``evaluations`` (replacing this run's rows for the same hold-out)."""
    if holdout not in ("basket", "interaction"):
        raise ValueError(f"holdout must be 'basket' or 'interaction' (got {holdout!r}).")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with progress.stage("Evaluating recommenders", total=4) as bar:
        # ``split``: the build's own basket hold-out (``build_split``), passed in so a very
        # large shop's is not computed twice
        given = split if holdout == "basket" else None   # the build's own, when passed
        split = holdout_split(con, holdout) if given is None else split
        n_eligible = len(split)
        if n_eligible == 0:
            raise EvaluationError(
                "No shopper has two or more purchase "
                f"{'baskets' if holdout == 'basket' else 'events'}, so there is nothing to hold "
                "out. The evaluation needs repeat customers with user ids (anonymous baskets "
                "cannot be evaluated).")
        enc_keep, enc_why = encoder_training_cut(con, run_id, given)
        excluded_for_encoder = 0
        if enc_keep is not None:
            # by construction: only shoppers whose hold-out the encoder never trained on
            # (leave-one-out: shoppers with one basket are in the encoder's training whole)
            kept = enc_keep.reindex(split.index)
            ok = kept.notna() & (split["test_cut"] - 1 >= kept)
            excluded_for_encoder = int((~ok).sum())
            split = split[ok.to_numpy()]
            n_eligible = len(split)
            if n_eligible == 0:
                enc_keep, enc_why = None, "no shopper's hold-out lies outside its training data"
                split = holdout_split(con, holdout)
                n_eligible, excluded_for_encoder = len(split), 0
        users = split.index.to_numpy()
        if max_users and n_eligible > max_users:
            users = np.sort(rng.choice(users, size=max_users, replace=False))
        test = split.loc[users]
        fit_users, fit_note = fit_sample(con, test.index, seed)
        bar.advance(1)

        # ---- validation: fitted without every shopper's validation (and test) hold-out
        val = test[test["val_cut"].notna()]
        if enc_keep is not None:
            kept = enc_keep.reindex(val.index)
            val = val[(kept.notna() & (val["val_cut"] - 1 >= kept)).to_numpy()]
        if tune_users and len(val) > tune_users:
            val = val.loc[np.sort(rng.choice(val.index.to_numpy(), size=tune_users,
                                             replace=False))]
        # the validation's models and score arrays are gone before the test's are made
        weights, val_ndcg, nb_models, comps = tune_on_validation(
            con, run_id, split, val, fit_users, enc_keep, active_days, k, seed)
        for mode in MODES:
            weights.setdefault(mode, {n: DEFAULT_WEIGHTS.get(n, 0.0) for n in comps})
        bar.advance(1)

        # ---- test: fitted without every eligible shopper's test hold-out
        view = register_cut_view(con, "_eval_excl_test", split["test_cut"].astype(np.int64),
                                 fit_users)
        try:
            data = ShopData.load(con, run_id, events_sql=view, active_days=active_days)
            moved = reassign_segments(data, split.index)
            recs = fit_recommenders(con, run_id, data, encoder_batch=ENCODER_BATCH,
                                    weights=weights["repeats"],
                                    weights_new=weights["new_items"],
                                    encoder=enc_keep is not None,
                                    next_basket_models=nb_models)
            if enc_why is None and "encoder" not in recs:
                enc_why = fit_recommenders.last_error
            tusers = [u for u in test.index if u in data.user_index]
            rows = np.array([data.user_index[u] for u in tusers], dtype=np.int64)
            names = [n for n in HYBRID_COMPONENTS if n in recs]
            tops = component_topk(recs, data, rows, _histories(con, data, tusers, recs), names,
                                  k, weights, extra=("next_basket",))
            targets = targets_matrix(data, test.loc[tusers, "test_items"].tolist())
            tgt = {"repeats": targets, "new_items": new_only(targets, data.user_counts[rows])}
        finally:
            unregister(con, "_eval_excl_test")
        bar.advance(1)

        seg = data.user_segment[rows]
        results: dict[str, dict] = {}
        per: dict[str, dict] = {m: {} for m in MODES}
        keeps = {m: np.asarray(tgt[m].sum(axis=1)).ravel() > 0 for m in MODES}
        Ws = {m: bootstrap_weights(int(keeps[m].sum()), n_boot, seed) for m in MODES}
        for n in tops["repeats"]:
            lists = {}
            for m in MODES:
                kp = keeps[m]
                lists[m], per[m][n] = summarise_with_intervals(
                    tops[m][n][kp], tgt[m][kp], data.n_items, Ws[m], k)
            results[n] = {"lists": lists,
                          "segments": _segment_rows(per, keeps, seg, data, n, k, n_boot, seed)}
        _paired_ratios(results, per, Ws, k)
        bandit = _bandit(con, data, seg, tusers, keeps, per, seed)
        bar.advance(1)

    users_eval = {m: int(keeps[m].sum()) for m in MODES}
    warning = None
    if min(users_eval.values()) < SMALL_SAMPLE:
        warning = (f"Only {users_eval['new_items']:,} shoppers (new items) and "
                   f"{users_eval['repeats']:,} (repeats) could be evaluated: below "
                   f"{SMALL_SAMPLE}, these figures are rough; read the intervals.")
    best = {m: max(results, key=lambda n: results[n]["lists"][m][f"ndcg{k}"]) for m in MODES}
    out = {
        "holdout": holdout, "k": k, "users_evaluated": users_eval,
        "users_eligible": int(n_eligible), "users_sampled": int(len(test)),
        "users_left_out_for_encoder": excluded_for_encoder, "segment_reassigned": moved,
        "validation_users": int(len(val)), "recommenders": results, "best": best,
        "hybrid_weights": weights["repeats"], "hybrid_weights_new_items": weights["new_items"],
        "validation_ndcg10": val_ndcg, "next_basket_models": nb_models, "warning": warning,
        "encoder": "evaluated" if "encoder" in recs else f"not evaluated: {enc_why}",
        "catalogue_items": data.n_items, "available_items": int(data.active.sum()),
        "max_users": max_users, "seed": seed, "active_days": active_days, "bandit": bandit,
        **({"sample": fit_note} if fit_note else {}),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if write:
        write_evaluations(con, run_id, out)
    return out


def _bandit(con, data, seg, users, keeps, per, seed) -> dict:
    """The Thompson-sampling replay (core.bandit) per list type: which recommender to use for
    each taste segment, learned shopper by shopper in the order of their held-out baskets."""
    from core.bandit.replay import replay_summary

    last = dict(con.execute(
        "SELECT user_id, max(ts) FROM events WHERE event_type = 'purchase' AND user_id IS NOT NULL "
        "GROUP BY user_id").fetchall())
    names = getattr(data, "segment_names", None) or {}
    out = {}
    for mode, kp in keeps.items():
        arms = {n: v["hit"] for n, v in per[mode].items() if n != "hybrid"}
        if not arms or not kp.any():
            continue
        us = [u for u, k_ in zip(users, kp) if k_]
        when = np.array([last.get(u).timestamp() if last.get(u) is not None else 0.0 for u in us])
        segs = [names.get(int(s), f"Segment {int(s)}") if s is not None and s >= 0 else "Unassigned"
                for s in np.asarray(seg)[kp]]
        out[mode] = replay_summary(arms, segs, when, seed=seed)
    return out


def summary(result: dict) -> dict:
    """The headline figures of an evaluation (what the build records in its metrics)."""
    k = result["k"]
    return {
        **{key: result[key] for key in ("holdout", "users_evaluated", "users_eligible", "best",
                                        "warning", "encoder", "seconds")},
        **({"sample": result["sample"]} if result.get("sample") else {}),
        "bandit": result.get("bandit") or {},
        f"ndcg{k}": {m: {n: round(r["lists"][m][f"ndcg{k}"], 4)
                         for n, r in result["recommenders"].items()} for m in MODES},
    }


def _segment_rows(per, keeps, seg, data, name, k, n_boot, seed) -> dict:
    """Per segment and list type: NDCG/Recall@k with intervals and the shoppers evaluated."""
    from core.evaluate.metrics import bootstrap_interval

    out = {}
    for s in sorted(set(int(x) for x in seg)):
        row = {"name": data.segment_names.get(s, "no segment" if s < 0 else f"segment {s}")}
        for m in MODES:
            sel = seg[keeps[m]] == s
            n = int(sel.sum())
            W = bootstrap_weights(n, n_boot // 4, seed + s + 1)
            row[m] = {"users_evaluated": n}
            for key, rep in (("ndcg", "ndcg"), ("recall", "recall")):
                v = per[m][name][key][sel]
                row[m][f"{rep}{k}"] = float(v.mean()) if n else 0.0
                row[m][f"{rep}{k}_ci"] = list(bootstrap_interval(v, W))
        out[str(s)] = row
    return out


def _paired_ratios(results: dict, per: dict, Ws: dict, k: int) -> None:
    """NDCG@k of each recommender divided by "repeat" (personal frequency) on the same
    resamples: the ratio and its 95 % interval, per list type."""
    for m, W in Ws.items():
        base = per[m].get("repeat")
        if base is None or not len(base["ndcg"]):
            continue
        b = W.astype(np.float64) @ base["ndcg"]
        for n, r in results.items():
            a = W.astype(np.float64) @ per[m][n]["ndcg"]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)
            mean_b = base["ndcg"].mean()
            r["lists"][m][f"ndcg{k}_vs_repeat"] = (
                float(per[m][n]["ndcg"].mean() / mean_b) if mean_b > 0 else None)
            ok = ratios[np.isfinite(ratios)]
            r["lists"][m][f"ndcg{k}_vs_repeat_ci"] = (
                [float(x) for x in np.quantile(ok, [0.025, 0.975])] if len(ok) else None)


def write_evaluations(con, run_id: int, result: dict) -> None:
    """One row per recommender; the columns hold the new-items figures (what the app shows),
    ``params`` everything (both list types with intervals, segments, weights, protocol)."""
    k = result["k"]
    con.execute(
        "DELETE FROM evaluations WHERE run_id = ? AND "
        "json_extract_string(params, '$.holdout') = ?", [int(run_id), result["holdout"]])
    common = {key: result[key] for key in (
        "holdout", "k", "users_eligible", "users_sampled", "users_left_out_for_encoder",
        "validation_users", "warning",
        "encoder", "catalogue_items", "available_items", "max_users", "seed", "active_days",
        "users_evaluated")}
    for name, r in result["recommenders"].items():
        m = r["lists"]["new_items"]
        params = {**common, "lists": r["lists"], "segments": r["segments"]}
        if name == "hybrid":
            params.update(weights=result["hybrid_weights"],
                          weights_new_items=result["hybrid_weights_new_items"],
                          validation_ndcg10=result["validation_ndcg10"])
        if name == "next_basket":
            params["model"] = result.get("next_basket_models")
        con.execute(
            "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [int(run_id), name, m[f"recall{k}"], m[f"ndcg{k}"], m[f"hitrate{k}"], m[f"mrr{k}"],
             m["coverage"], m["users_evaluated"], json.dumps(params, default=str)])


def read_evaluations(con, run_id: int, holdout: str | None = None) -> pd.DataFrame:
    """The stored rows of a run (optionally one hold-out), best NDCG@10 first."""
    q = ("SELECT recommender, recall10, ndcg10, hitrate10, mrr10, coverage, users_evaluated, "
         "params FROM evaluations WHERE run_id = ?")
    args: list = [int(run_id)]
    if holdout:
        q += " AND json_extract_string(params, '$.holdout') = ?"
        args.append(holdout)
    return con.execute(q + " ORDER BY ndcg10 DESC", args).df()


__all__ = ["summary", "DEFAULT_MAX_USERS", "EvaluationError", "MODES", "PROTOCOL", "evaluate_recommenders",
           "holdout_split", "read_evaluations", "training_data", "tune_weights",
           "write_evaluations", "summarise"]
