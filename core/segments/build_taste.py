"""The taste lens stage: segments of what shoppers buy (and how they shop), chosen by evidence.

Two candidate divisions are tried for every number of segments k in ``k_range``:

* **taste** - KMeans on the taste vectors (``core.segments.taste``) followed by signature
  refinement (``core.segments.fit``): segments of shoppers whose purchases and expected purchases
  are the same items;
* **taste and habits** - KMeans on the taste vectors joined with the shopping-habit features
  (time of day, weekend, price level, basket size, browsing, returns, season), no refinement.

For each (candidate, k): its predictive validity on the *validation* baskets (each shopper's
second-to-last basket, everything from it on removed before fitting), its stability between two
seeds, and its silhouette. The choice, among options with seed stability >= 0.8 (all options if
none): the options *within reach of the best* - at least half of the best option's gain in
validation NDCG@10 over the whole shop's best-sellers, or within sampling noise of the best
(1.96 paired standard errors) - and among them the clearest separation (highest silhouette;
silhouettes within 0.02 of it count as equally clear), then the best validation NDCG@10.
Segments must predict what members buy, but a marketer acts on segments that are distinct:
among the predictive options the most clearly separated wins. The chosen
option is then refitted on all shoppers (production segments), checked for bootstrap stability,
and scored once on the *test* baskets (each shopper's last basket) against the references
(``core.segments.quality``), so the reported figure was not used to choose. ``k`` given: only that
k. DBSCAN: on taste and habits (its eps from the k-distance knee), scored the same way.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.features.holdout import cutoffs, drop_temp, last_basket_split, register_events_before
from core.progress import NULL, Progress
from core.segments import quality as qm
from core.segments.choice import _bootstrap_ari, _choose, _choose_stable  # noqa: F401
from core.segments.fit import fit_taste, order_by_size
from core.segments.scale import (DEFAULT_STRIDE, SCALE_STRIDE, assign_everyone, fit_sample,
                                 sample_note, write_rows)
from core.segments.taste import (block_scales, combine, habit_matrix, l2_rows, taste_inputs,
                                 taste_vectors)

CANDIDATES = {"taste": "What they buy (taste)", "taste_habits": "Taste and shopping habits"}
N_INIT = 2


def _window(con, run_id, keep, seq, model, device, seed, habits_table=None, cache=None,
            stride=DEFAULT_STRIDE):
    inp = taste_inputs(con, run_id, keep=keep, seq=seq, model=model, device=device, cache=cache,
                       stride=stride)
    XA, svd = taste_vectors(inp.Q, seed=seed)
    H, names = habit_matrix(con, run_id, inp.user_ids, table=habits_table or "user_features") \
        if habits_table is not False else (np.zeros((len(inp.user_ids), 0), np.float32), [])
    return {"inp": inp, "X": {"taste": XA, "taste_habits": combine(XA, H)}, "habit_names": names,
            "svd": svd, "scales": block_scales(XA, H)}


def _as_of_habits(con, run_id: int, keep: dict[str, int], name: str,
                  users: list[str] | None = None) -> str:
    """Behaviour features computed on the events before each shopper's cut (temp tables);
    ``users``: only theirs (the sample of a very large shop)."""
    from core.features import compute_features

    if users is not None:
        wanted = set(users)
        keep = {u: k for u, k in keep.items() if u in wanted}
    view = register_events_before(con, f"_{name}_events", keep, users=users)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _{name}_features AS "
                "SELECT * FROM user_features WHERE false")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _{name}_shares AS "
                "SELECT * FROM user_shares WHERE false")
    compute_features(con, run_id, events=view, features_table=f"_{name}_features",
                     shares_table=f"_{name}_shares")
    drop_temp(con, view)
    return f"_{name}_features"


def _eval_rows(user_ids, split: pd.DataFrame, col_cut: str, col_items: str):
    """(rows of ``user_ids`` with a cut in ``split``, their held-out items), in split order."""
    s = split[split[col_cut].notna()]
    pos = pd.Index(user_ids).get_indexer(s.index)   # -1: not among user_ids
    keep = pos >= 0
    return pos[keep].astype(np.int64), list(s[col_items].to_numpy(dtype=object)[keep])


def _silhouette(X, labels, seed):
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return None
    idx = np.random.default_rng(seed).permutation(len(X))[:2000]
    if len(np.unique(labels[idx])) < 2:
        return None
    return float(silhouette_score(X[idx], labels[idx]))


def segment_taste(con, run_id: int, *, method: str = "kmeans", k: int | None = None,
                  k_range: tuple[int, int] = (3, 6), seed: int = 42, device: str = "cpu",
                  split: pd.DataFrame | None = None, progress: Progress = NULL,
                  engine=None, deferred: list | None = None) -> dict:
    """Write ``segments`` and ``taste_vectors`` for run ``run_id``; return quality metrics.
    ``engine`` (``core.engine``) assigns every shopper under the stability checks' fits.
    ``deferred`` (a list; the build passes one for shops it checks later): the final checks
    (bootstrap stability, the held-out test against the references) are not run here; a
    function ``finish(progress) -> metrics`` that runs them is appended instead, for the build
    to call once the segments' users (descriptions, map, evaluation) are under way. Same
    checks, same figures."""
    from core.encoder.data import load_sequences, take_users
    from core.encoder.runtime import _build_model, _read_checkpoint

    t0 = time.perf_counter()
    run_id, seed = int(run_id), int(seed)
    config, weights, item_ids = _read_checkpoint(con, run_id)
    model, _ = _build_model(config, weights, device)
    all_seq = load_sequences(con, item_ids)
    n = len(all_seq.user_ids)
    if n < 3:
        raise ValueError(f"Run {run_id} has {n} shopper(s); segmenting needs at least 3.")
    # a very large shop: chosen on a sample, everyone assigned afterwards (core.segments.scale)
    sample = fit_sample(n, seed)
    seq = all_seq if sample is None else take_users(all_seq, sample)
    stride = DEFAULT_STRIDE if sample is None else SCALE_STRIDE
    split = last_basket_split(con) if split is None else split
    test_keep = cutoffs(split, "test_cut")
    val_keep = {**test_keep, **cutoffs(split, "val_cut")}
    lo, hi = (int(v) for v in k_range)
    ks = [int(k)] if k else list(range(max(2, lo), max(2, min(hi, n - 1)) + 1))
    from core.encoder.train import torch_settings

    from core.engine.background import inference_threads

    with progress.stage("Taste segments", total=3 + 2 * len(ks)) as bar, \
            threadpool_limits(limits=1 if n < 100_000 else None), \
            torch_settings(device, seed, inference_threads(n)):
        cache: dict = {}
        full = _window(con, run_id, None, seq, model, device, seed, cache=cache, stride=stride)
        bar.advance(1)
        only = None if sample is None else list(seq.user_ids)
        val = _window(con, run_id, val_keep, seq, model, device, seed, cache=cache,
                      habits_table=_as_of_habits(con, run_id, val_keep, "val", only),
                      stride=stride) if split["val_cut"].notna().any() else None
        later = deferred is not None and sample is None   # the caller decides by size

        def test_window():
            return _window(con, run_id, test_keep, seq, model, device, seed, cache=cache,
                           habits_table=_as_of_habits(con, run_id, test_keep, "test", only),
                           stride=stride)

        test = None if later else test_window()
        bar.advance(1)
        inp = full["inp"]
        if method == "dbscan":
            chosen, options = _dbscan_option(full, seed), []
        else:
            options = []
            for kk in ks:
                for cand in CANDIDATES:
                    options.append(_option(cand, kk, full, val, split, seed))
                bar.advance(2)
            chosen = _choose_stable(options, full, seed, given_k=k is not None, engine=engine,
                                    val_pop=_val_popularity(val, split))
        labels = chosen.pop("labels")
        tmodel = chosen.pop("model", None)
        if later:
            def finish(progress: Progress = NULL) -> dict:
                with progress.stage("Checking the taste segments", total=3) as bar3, \
                        threadpool_limits(limits=1), \
                        torch_settings(device, seed, inference_threads(n)):
                    t = time.perf_counter()
                    test = test_window()
                    bar3.advance(1)
                    out = _final_checks(chosen, full, test, split, seed, method, bar3, engine)
                    return {**out, "checks_seconds": round(time.perf_counter() - t, 3)}

            deferred.append(finish)
            extra = {"stability_seed": chosen["seed_stability"]}
            bar.advance(2)
        else:
            extra = _final_checks(chosen, full, test, split, seed, method, bar, engine)
            cache.clear()
    X = full["X"][chosen["candidate"]]
    extra_all = {}
    if sample is None:
        labels = labels_for_quality = order_by_size(labels)
        _write(con, run_id, inp.user_ids, labels, X, tmodel, inp)
    else:
        sample_labels = labels
        with progress.stage("Placing every shopper in a segment", total=n) as bar2, \
                torch_settings(device, seed, inference_threads(n)):
            habits = (habit_matrix(con, run_id, all_seq.user_ids)[0]
                      if chosen["candidate"] == "taste_habits" else None)
            labels = assign_everyone(con, run_id, seq=all_seq, model=model, device=device,
                                     candidate=chosen["candidate"], window=full, tmodel=tmodel,
                                     sample_labels=sample_labels,
                                     habits=habits, progress=bar2)
        extra_all["sample"] = sample_note(len(sample), n)
        labels_for_quality = order_by_size(sample_labels)
    n_seg = int(labels.max()) + 1 if (labels >= 0).any() else 0
    sizes = {int(s): int((labels == s).sum()) for s in range(n_seg)}
    if (labels < 0).any():
        sizes[-1] = int((labels < 0).sum())
    for o in options:
        o.pop("val_scores", None)
    return {
        "method": method, "k": n_seg, "n_users": n, "candidate": chosen["candidate"],
        "candidate_label": CANDIDATES[chosen["candidate"]],
        "refined": bool(tmodel is not None and tmodel.refine),
        "k_chosen_by": "user" if k else chosen.get("chosen_by"),
        "k_scan": options, "sizes": sizes, "habit_features": full["habit_names"],
        "silhouette": _silhouette(X, labels_for_quality, seed) if n_seg >= 2 else None,
        "largest_share": max((v for s, v in sizes.items() if s >= 0), default=0) / n,
        "smallest_share": min((v for s, v in sizes.items() if s >= 0), default=0) / n,
        "noise_share": float((labels < 0).mean()),
        **extra, **extra_all, "seconds": round(time.perf_counter() - t0, 3),
    }


def _option(cand, k, full, val, split, seed) -> dict:
    refine = cand == "taste"
    X, inp = full["X"][cand], full["inp"]
    a, model = fit_taste(X, inp.Q, inp.bought, k, seed=seed, refine=refine, n_init=N_INIT)
    b, _ = fit_taste(X, inp.Q, inp.bought, k, seed=seed + 1, refine=refine, n_init=N_INIT)
    opt = {"candidate": cand, "k": k, "seed_stability": qm.ari(a, b),
           "silhouette": _silhouette(X, a, seed), "labels": a, "model": model}
    if val is not None:
        vi = val["inp"]
        vlab, _ = fit_taste(val["X"][cand], vi.Q, vi.bought, k, seed=seed, refine=refine,
                            n_init=N_INIT)
        rows, items = _eval_rows(vi.user_ids, split, "val_cut", "val_items")
        T = qm.targets_matrix(items, {it: j for j, it in enumerate(vi.item_ids)})
        opt["val_scores"] = qm.segment_popularity_ndcg(vlab, vi.bought, rows, T)
        opt["val_ndcg10"] = float(opt["val_scores"].mean()) if len(rows) else None
    return opt


def _val_popularity(val, split) -> float | None:
    """Validation NDCG@10 of the whole shop's best-sellers (the gain's zero point)."""
    if val is None:
        return None
    vi = val["inp"]
    rows, items = _eval_rows(vi.user_ids, split, "val_cut", "val_items")
    if not len(rows):
        return None
    T = qm.targets_matrix(items, {it: j for j, it in enumerate(vi.item_ids)})
    return float(qm.segment_popularity_ndcg(np.zeros(len(vi.user_ids), np.int64), vi.bought,
                                            rows, T).mean())


def _dbscan_option(full, seed) -> dict:
    from core.segments.cluster import dbscan_fit

    labels, extra = dbscan_fit(full["X"]["taste_habits"], seed=seed)
    return {"candidate": "taste_habits", "labels": labels, "model": None, "dbscan": extra,
            "seed_stability": 1.0, "chosen_by": "k-distance knee"}


def _final_checks(chosen, full, test, split, seed, method, bar, engine=None) -> dict:
    """Bootstrap stability (two 80 % samples) and held-out validity with the references."""
    cand, k = chosen["candidate"], chosen.get("k")
    refine = cand == "taste" and method == "kmeans"
    inp, X = full["inp"], full["X"][cand]
    out = {"stability_seed": chosen["seed_stability"]}
    if method == "kmeans":
        out["stability_bootstrap"] = chosen.pop("stability_bootstrap_checked", None)
        if out["stability_bootstrap"] is None:
            out["stability_bootstrap"] = _bootstrap_ari(chosen, full, seed, engine)
    else:
        out["stability_bootstrap"] = chosen["dbscan"]["stability_ari"]
        out.update({f"dbscan_{key}": v for key, v in chosen["dbscan"].items()
                    if key in ("eps", "min_samples", "space")})
    out["stability_ari"] = min(out["stability_seed"], out["stability_bootstrap"])
    bar.advance(1)
    ti = test["inp"]
    rows, items = _eval_rows(ti.user_ids, split, "test_cut", "test_items")
    if len(rows) == 0:
        out["validity"] = None
        return out
    index = {it: j for j, it in enumerate(ti.item_ids)}
    T = qm.targets_matrix(items, index)
    if method == "kmeans":
        tlab, _ = fit_taste(test["X"][cand], ti.Q, ti.bought, k, seed=seed, refine=refine)
    else:
        from core.segments.cluster import dbscan_fit

        tlab, _ = dbscan_fit(test["X"][cand], eps=chosen["dbscan"]["eps"], seed=seed)
    k_ref = max(2, int(tlab.max()) + 1)
    seg = qm.segment_popularity_ndcg(tlab, ti.bought, rows, T)
    pop = qm.segment_popularity_ndcg(np.zeros(len(tlab), np.int64), ti.bought, rows, T)
    from sklearn.cluster import KMeans

    ref_lab = KMeans(k_ref, n_init=4, random_state=seed).fit(
        qm.tfidf_svd(_counts(ti), seed=seed)).labels_
    ref = qm.segment_popularity_ndcg(ref_lab, ti.bought, rows, T)
    out["validity"] = {
        "protocol": "each shopper's last basket held out; segments fitted on what came before; "
                    "segment ranks items by share of members who bought them (full catalogue); "
                    "NDCG@10",
        "segments": qm.summary("these segments", seg, seed),
        "popularity": qm.summary("whole-shop best-sellers", pop, seed),
        "tfidf_kmeans": {**qm.summary(f"KMeans on TF-IDF/SVD-64 of purchases, k={k_ref}", ref,
                                      seed), "k": k_ref},
        "ratio_vs_tfidf": float(seg.mean() / ref.mean()) if ref.mean() > 0 else None,
        "ratio_vs_tfidf_ci": qm.bootstrap_ratio_ci(seg, ref, seed),
        "ratio_vs_popularity": float(seg.mean() / pop.mean()) if pop.mean() > 0 else None,
    }
    bar.advance(1)
    return out


def _counts(inp) -> "sp.csr_matrix":  # noqa: F821
    """Purchase counts per shopper and item in the window (the TF-IDF reference's input)."""
    return inp.counts if getattr(inp, "counts", None) is not None else inp.bought


def _write(con, run_id, user_ids, labels, X, tmodel, inp) -> None:
    """segments (with distance to the segment's centre) and taste_vectors (the map's input:
    the taste space, plus for refined segments each shopper's standardised signature match)."""
    n_seg = int(labels.max()) + 1 if (labels >= 0).any() else 0
    dist = np.full(len(labels), np.nan)
    for s in range(n_seg):
        m = labels == s
        dist[m] = np.linalg.norm(X[m] - X[m].mean(axis=0), axis=1)
    V = np.asarray(X, np.float32)
    if tmodel is not None and tmodel.refine:
        S = np.asarray((inp.Q @ tmodel.signatures).todense())
        S = (S - S.mean(axis=0)) / np.where(S.std(axis=0) > 0, S.std(axis=0), 1.0)
        V = np.hstack([l2_rows(V), 0.5 * l2_rows(S)]).astype(np.float32)
    con.execute("DELETE FROM segments WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM taste_vectors WHERE run_id = ?", [run_id])
    write_rows(con, run_id, user_ids, labels, dist, V)
