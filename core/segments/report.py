"""Segment quality in plain words, from a build's stored metrics (light: no numerical libraries,
so `segstudio status` stays quick)."""

from __future__ import annotations

WEAK_STABILITY = 0.7


def weak_reasons(q: dict) -> list[str]:
    """Plain-words reasons a lens's segments are weak (empty when they are sound)."""
    out = []
    seed_s, boot_s = q.get("stability_seed"), q.get("stability_bootstrap")
    low = [v for v in (seed_s, boot_s) if v is not None and v < WEAK_STABILITY]
    if low:
        out.append(f"they are unstable: refitting moves many shoppers (agreement {min(low):.2f} "
                   f"on a 0-1 scale; 0.7 or more is sound)")
    v = q.get("validity") or {}
    seg, pop = v.get("segments"), v.get("popularity")
    if seg and pop and seg.get("ndcg10") is not None and pop.get("ndcg10"):
        lo = seg.get("ci_low")
        if seg["ndcg10"] <= pop["ndcg10"] or (lo is not None and lo <= pop["ndcg10"]):
            out.append("they predict what members buy next no better than the shop's "
                       "best-sellers do")
    return out


ADVICE = {
    "taste": "Try another number of segments (`segstudio build --k 4`), density-based segments "
             "(`--method dbscan`), or a longer stretch of history.",
    "lifecycle": "Lifecycle stages are rules on recency, orders and spend; with little history "
                 "(few repeat buyers) they move easily. Load a longer stretch of history.",
}


def lens_report(metrics: dict) -> dict[str, dict]:
    """Per lens, from a build's metrics: segments, stability (seed, bootstrap), predictive
    validity against the references, and the plain-words reasons it is weak with advice."""
    out = {}
    taste = metrics.get("segments") or {}
    if taste:
        out["taste"] = {"k": taste.get("k"), "stability_seed": taste.get("stability_seed"),
                        "stability_bootstrap": taste.get("stability_bootstrap"),
                        "validity": taste.get("validity"), "silhouette": taste.get("silhouette")}
    life = metrics.get("lifecycle") or {}
    if life:
        q = life.get("quality") or {}
        out["lifecycle"] = {"k": life.get("k"), "stability_seed": q.get("stability_seed"),
                            "stability_bootstrap": q.get("stability_bootstrap"),
                            "validity": q.get("validity"), "silhouette": None}
    for lens, r in out.items():
        r["weak"] = weak_reasons(r)
        r["advice"] = ADVICE[lens] if r["weak"] else None
    return out
