"""Model and data: the builds, their k-scan, the encoder's training, the recommenders' offline
evaluation, and each segment lens's quality (stability, predictive validity, silhouette, sizes)."""

from __future__ import annotations

import pandas as pd

from core.explore.base import _df, table_exists


def run_history(con) -> pd.DataFrame:
    from core.store import list_runs

    rows = []
    for r in list_runs(con, "build"):
        m = r["metrics"]
        rows.append({"run": r["run_id"], "finished": r["finished_at"], "method": m.get("method"),
                     "segments": m.get("k") or len(m.get("sizes", {}) or {}),
                     "silhouette": m.get("silhouette"), "davies_bouldin": m.get("davies_bouldin"),
                     "stability_ari": m.get("stability_ari"), "shoppers": m.get("n_users"),
                     "seconds": m.get("total_seconds")})
    return pd.DataFrame(rows)


K_SCAN_COLUMNS = ("candidate", "k", "seed_stability", "silhouette", "val_ndcg10", "chosen",
                  "inertia")


def k_scan(run: dict) -> pd.DataFrame:
    """The options a build tried for the taste lens (k, and per option its seed stability,
    silhouette, validation NDCG@10 and whether it was chosen; older builds: silhouette and
    inertia), from its segments metrics. Only those figures: anything bulkier stored with the
    chosen option (its labels) is left out."""
    m = run.get("metrics") or {}
    scan = m.get("k_scan") or (m.get("segments") or {}).get("k_scan") or []
    df = pd.DataFrame(scan)
    return df[[c for c in K_SCAN_COLUMNS if c in df.columns]]


def training_curve(con, run_id: int) -> pd.DataFrame:
    if not table_exists(con, "training_curve"):
        return pd.DataFrame()
    return _df(con, "SELECT epoch, train_loss, val_ndcg10, val_recall10, seconds FROM training_curve "
                    "WHERE run_id = ? ORDER BY epoch", [run_id])


def evaluations(con, run_id: int) -> pd.DataFrame:
    if not table_exists(con, "evaluations"):
        return pd.DataFrame()
    return _df(con, "SELECT recommender, recall10, ndcg10, hitrate10, mrr10, coverage, users_evaluated, "
                    "params FROM evaluations WHERE run_id = ? ORDER BY ndcg10 DESC NULLS LAST", [run_id])


def quality_table(con, run: dict) -> pd.DataFrame:
    """One row per lens of the build: segments, stability (between seeds and between 80 %
    samples; 1 = the same segments), predictive validity (NDCG@10 of the segment's best-sellers
    on each shopper's held-out last basket, with its 95 % interval) against the whole shop's
    best-sellers and KMeans on TF-IDF/SVD of baskets, silhouette, the segment sizes, and
    whether the lens is weak (``core.segments.report``)."""
    from core.explore.overview import lens_quality, segments

    rows = []
    for lens, r in lens_quality(run).items():
        v = r.get("validity") or {}
        seg, pop, ref = v.get("segments") or {}, v.get("popularity") or {}, \
            v.get("tfidf_kmeans") or {}
        sizes = segments(con, run["run_id"], lens=lens)
        rows.append({
            "lens": r["label"], "segments": r.get("k") if r.get("k") is not None else len(sizes),
            "stability_seed": r.get("stability_seed"),
            "stability_bootstrap": r.get("stability_bootstrap"),
            "ndcg10": seg.get("ndcg10"), "ndcg10_low": seg.get("ci_low"),
            "ndcg10_high": seg.get("ci_high"), "shoppers_evaluated": seg.get("shoppers"),
            "popularity_ndcg10": pop.get("ndcg10"), "tfidf_ndcg10": ref.get("ndcg10"),
            "tfidf_k": ref.get("k"), "ratio_vs_tfidf": v.get("ratio_vs_tfidf"),
            "silhouette": r.get("silhouette"),
            "sizes": " · ".join(f"{n} {int(s):,}" for n, s in zip(sizes.get("name", []),
                                                                sizes.get("size", []))),
            "weak": "; ".join(r["weak"]) or None, "advice": r.get("advice"),
        })
    return pd.DataFrame(rows)


# What each sampled step did, in a marketer's words (the metric keys a stage writes when it works
# on a sample of a very large shop; see README "Very large shops").
_SAMPLED_STEPS = {
    ("encoder", "train_sample"): "The profile encoder learned from",
    ("encoder", "validation_sample"): "The profile encoder was checked on",
    ("segments", "sample"): "Taste segments were chosen and checked on",
    ("lifecycle", "sample"): "The lifecycle stages' held-out check used",
    ("predictions", "sampled"): "Predictions were trained and backtested on",
    ("evaluate", "sample"): "The offline evaluation fitted the recommenders on",
}


def sampling_notes(metrics: dict) -> list[dict]:
    """The steps of a build that worked on a sample of its shoppers: one row each (``step``,
    ``shoppers``, ``of``, ``why``, ``text``: a sentence for the app and the CLI), in build order;
    empty for a shop small enough to use everyone everywhere."""
    out = []
    for (stage, key), what in _SAMPLED_STEPS.items():
        m = metrics.get(stage) or {}
        note = m.get(key) or (m.get("quality") or {}).get(key)
        if not isinstance(note, dict) or not note.get("shoppers"):
            continue
        n, of = int(note["shoppers"]), int(note.get("of") or 0)
        why = note.get("why") or ""
        text = f"{what} {n:,} of {of:,} shoppers ({n / of:.0%})" if of else f"{what} {n:,} shoppers"
        out.append({"step": stage, "shoppers": n, "of": of, "why": why,
                    "text": text + (f": {why}." if why else ".")})
    enc = (metrics.get("predictions") or {}).get("encoder") or {}
    if enc.get("scale"):
        out.append({"step": "predictions", "shoppers": None, "of": None, "why": enc["skipped"],
                    "text": "Predictions left out the shopping-sequence (profile encoder) "
                            f"features: {enc['skipped']}."})
    return out
