"""The evaluation's validation step: segments and models refitted without the hold-outs, and the
hybrid's weights and next-basket models learned on each shopper's validation basket."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from core.evaluate.scoring import MODES, THREADED_ITEMS, component_norms, tune_weights
from core.evaluate.splits import new_only, register_cut_view, targets_matrix, unregister
from core.recommend.data import ShopData
from core.recommend.recommenders import (
    HYBRID_COMPONENTS, batch_for_users, fit_recommenders, interest_of)

# The encoder scores this many shoppers per forward pass here (previews: one each, so their
# scores match the bulk export's to the last digit); on Online Retail its scoring of the
# validation and test shoppers took 4.3 s one by one, 1.3 s in batches, the same NDCG to 4 digits.
ENCODER_BATCH = 256


def reassign_segments(data: ShopData, users) -> int:
    """Segment membership from the training data only, for ``users`` (shoppers with a hold-out):
    the build's segments were found from full histories, so a shopper's membership may reflect
    the very basket that is held out. Each listed shopper gets the segment whose purchase shares
    (segment buyers / segment size, from the training data) best explain what they bought
    before the hold-out (sum of log-lifts, plus the log segment size). Returns how many moved."""
    seg = data.user_segment
    ids = sorted(set(int(s) for s in seg if s >= 0))
    rows = np.array([data.user_index[u] for u in users if u in data.user_index], dtype=np.int64)
    if len(ids) < 2 or not len(rows):
        return 0
    bought = data.user_counts.copy()
    bought.data[:] = 1.0
    all_share = (np.asarray(bought.sum(axis=0)).ravel() + 1.0) / (bought.shape[0] + 2.0)
    L = np.zeros((len(ids), data.n_items))
    prior = np.zeros(len(ids))
    for i, s in enumerate(ids):
        members = np.flatnonzero(seg == s)
        sh = (np.asarray(bought[members].sum(axis=0)).ravel() + 1.0) / (len(members) + 2.0)
        L[i] = np.log(sh / all_share)
        prior[i] = np.log(len(members) / (seg >= 0).sum())
    sc = np.asarray(bought[rows] @ L.T) + prior[None, :]
    new = np.array(ids)[np.argmax(sc, axis=1)]
    has = np.asarray(bought[rows].sum(axis=1)).ravel() > 0
    new = np.where(has, new, seg[rows])
    moved = int((new != seg[rows]).sum())
    data.user_segment = seg.copy()
    data.user_segment[rows] = new
    return moved


def validation_cuts(split: pd.DataFrame) -> pd.Series:
    """Cuts for fitting the validation models: the validation hold-out where there is one,
    else the test hold-out."""
    cuts = split["test_cut"].astype(np.int64).copy()
    has = split["val_cut"].notna()
    cuts[has] = split.loc[has, "val_cut"].astype(np.int64)
    return cuts


def _histories(con, data, users, recs):
    """Event histories from the fitted view: for the encoder, and the views, carts and
    favourites item-kNN reads (read only when the data holds any)."""
    if "encoder" not in recs and not _has_interest(con, data):
        return None
    h = data.histories(con, users)
    return [h[u] for u in users]


def _has_interest(con, data) -> bool:
    rows = con.execute(f"SELECT 1 FROM {data._ev()} e WHERE event_type IN "
                       "('view', 'click', 'cart', 'favorite') LIMIT 1").fetchall()
    return bool(rows)


def tune_on_validation(con, run_id, split, val, fit_users, enc_keep, active_days, k, seed) -> tuple:
    """The hybrid's weights and the next-basket models per list type, learned on the
    validation baskets (``val``) with every shopper's validation and test hold-out removed."""
    weights: dict[str, dict] = {}
    val_ndcg: dict[str, float] = {}
    nb_models: dict[str, dict | None] = {}
    view = register_cut_view(con, "_eval_excl_val", validation_cuts(split), fit_users)
    try:
        dval = ShopData.load(con, run_id, events_sql=view, active_days=active_days)
        reassign_segments(dval, split.index)
        rval = fit_recommenders(con, run_id, dval, encoder=enc_keep is not None,
                                encoder_batch=ENCODER_BATCH)
        comps = [n for n in HYBRID_COMPONENTS if n in rval]
        vusers = [u for u in val.index if u in dval.user_index]
        if vusers:
            vrows = np.array([dval.user_index[u] for u in vusers], dtype=np.int64)
            hv = _histories(con, dval, vusers, rval)
            b = batch_for_users(dval, vrows)
            if hv is not None:
                b.interest = [interest_of(dval, h) for h in hv]
            threads = len(MODES) if dval.n_items <= THREADED_ITEMS else 1
            with ThreadPoolExecutor(max_workers=1) as side:
                # the next-basket models' candidates and features, once for both list types,
                # made beside the components' scores where two threads may run (reads only)
                feats = side.submit(rval["next_basket"].block_features, b) \
                    if threads > 1 else None
                norms = component_norms(rval, dval, vrows, hv, comps)
                cand, X = feats.result() if feats is not None else \
                    rval["next_basket"].block_features(b)
            tv = targets_matrix(dval, val.loc[vusers, "val_items"].tolist())

            def learn_mode(rep: bool):
                """The hybrid's weights and the next-basket model of one list type (reads
                the shared arrays only)."""
                t = tv if rep else new_only(tv, b.counts)
                keep_v = np.asarray(t.sum(axis=1)).ravel() > 0
                if not keep_v.any():
                    return None
                bad = rval["popularity"].mask(b, repeat=rep)[keep_v]
                w, v = tune_weights(norms, bad, t[keep_v], rval["popularity"], k,
                                    rows=np.flatnonzero(keep_v))
                lb = batch_for_users(dval, vrows[keep_v])
                model = rval["next_basket"].learn(lb, t[keep_v], bad, rep, seed,
                                                  features=(cand[keep_v], X[keep_v]))
                return w, v, model

            # the two list types side by side: most of the work is numpy, which lets the other
            # thread run (Online Retail: the validation step 7.0 -> 6.1 s). A large catalogue
            # keeps them one after the other: each holds blocks of shoppers x catalogue scores
            # (~0.4 GB at 50,000 items), measured that way on the million-shopper build.
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for mode, out in zip(MODES, pool.map(learn_mode, MODES.values())):
                    if out is not None:
                        weights[mode], val_ndcg[mode], nb_models[mode] = out
    finally:
        unregister(con, "_eval_excl_val")
    return weights, val_ndcg, nb_models, comps
