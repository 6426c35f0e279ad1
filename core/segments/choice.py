"""Choosing among the taste lens's options (``core.segments.build_taste``): the rule its module
doc states (stable, within reach of the best held-out score, then the clearest separation),
and the bootstrap check that sets aside an option whose segments move under resampling."""

from __future__ import annotations

import numpy as np

from core.segments import quality as qm
from core.segments.fit import fit_taste

MIN_SEED_STABILITY = 0.8
REACH = 0.5
SILHOUETTE_TIE = 0.02  # silhouettes closer than this are not a clearer separation


def _choose(options: list[dict], given_k: bool, val_pop: float | None = None) -> dict:
    eligible = [o for o in options if o["seed_stability"] >= MIN_SEED_STABILITY] or options
    scored = [o for o in eligible if o.get("val_ndcg10") is not None]
    if scored:
        best = max(scored, key=lambda o: (o["val_ndcg10"], -o["k"]))
        base = val_pop if val_pop is not None else 0.0
        reach = base + REACH * (best["val_ndcg10"] - base)
        near = [o for o in scored if o["val_ndcg10"] >= reach or best["val_ndcg10"] - o["val_ndcg10"]
                <= 1.96 * qm.paired_diff_se(best["val_scores"], o["val_scores"])]
        # closed under noise: an option that predicts as well as one already near, within noise,
        # is near too (a validation difference of 0.0001 must not decide between k and k+1)
        grew = True
        while grew:
            grew = False
            for o in scored:
                if any(o is n for n in near):
                    continue
                if any(abs(n["val_ndcg10"] - o["val_ndcg10"])
                       <= 1.96 * qm.paired_diff_se(n["val_scores"], o["val_scores"]) for n in near):
                    near.append(o)
                    grew = True
        how = (f"within reach of the best validation NDCG@10 ({REACH:.0%} of its gain over "
               "best-sellers, or within noise), then the clearest separation (silhouette, "
               f"ties within {SILHOUETTE_TIE}) unless another predicts validation baskets "
               "better beyond noise")
    else:
        near, how = eligible, "silhouette (no shopper has 3 baskets to validate on)"
    sil = {id(o): o["silhouette"] if o["silhouette"] is not None else -2.0 for o in near}
    top = max(sil.values())
    clear = [o for o in near if sil[id(o)] >= top - SILHOUETTE_TIE]
    # Among clear separations, the clearest wins unless another predicts the validation baskets
    # better beyond noise (1.96 paired standard errors): a validation difference within noise
    # must not trade a clear structure for a blurrier one.
    clearest = max(clear, key=lambda o: (sil[id(o)], -o["k"]))
    better = [o for o in clear if o is not clearest and o.get("val_scores") is not None
              and clearest.get("val_scores") is not None
              and o["val_ndcg10"] - clearest["val_ndcg10"]
              > 1.96 * qm.paired_diff_se(o["val_scores"], clearest["val_scores"])]
    chosen = max(better, key=lambda o: (o["val_ndcg10"], -o["k"])) if better else clearest
    out = {key: v for key, v in chosen.items()}
    for o in options:
        o["chosen"] = o is chosen
    out["chosen_by"] = "user" if given_k else how
    out["_option"] = chosen
    return out


MIN_BOOTSTRAP_STABILITY = 0.7
MAX_STABILITY_RETRIES = 3


def _bootstrap_ari(option: dict, full, seed: int, engine=None) -> float:
    """Agreement (ARI) between two fits on different 80 % samples of the shoppers, each
    assigning every shopper (on ``engine``: here, or Ray tasks over chunks of rows)."""
    cand, k = option["candidate"], option["k"]
    inp, X = full["inp"], full["X"][cand]
    labs = []
    for i in (0, 1):
        idx = np.sort(np.random.default_rng(seed + 100 + i).choice(
            len(X), max(k + 1, int(0.8 * len(X))), replace=False))
        _, m = fit_taste(X[idx], inp.Q[idx], inp.bought[idx], k, seed=seed + i,
                         refine=cand == "taste")
        labs.append(m.assign(X, inp.Q) if engine is None else engine.assign(m, X, inp.Q))
    return float(qm.ari(*labs))


def _choose_stable(options: list[dict], full, seed: int, *, given_k: bool,
                   val_pop: float | None, engine=None) -> dict:
    """``_choose``, then check the choice on two 80 % samples: an option whose segments move
    under resampling (bootstrap ARI below 0.7) is set aside and the choice made again among the
    rest (at most 3 times; a k the user gave is kept). The scan stored in the run keeps figures
    only, with each checked option's bootstrap stability."""
    pool = list(options)
    chosen = _choose(pool, given_k=given_k, val_pop=val_pop)
    for _ in range(0 if given_k else MAX_STABILITY_RETRIES):
        opt = chosen["_option"]
        opt["bootstrap_stability"] = chosen["stability_bootstrap_checked"] = _bootstrap_ari(
            opt, full, seed, engine)
        if opt["bootstrap_stability"] >= MIN_BOOTSTRAP_STABILITY:
            break
        rest = [o for o in pool if o is not opt]
        if not rest:
            break
        pool = rest
        chosen = _choose(pool, given_k=given_k, val_pop=val_pop)
        chosen["chosen_by"] += (" (options whose segments moved between 80% samples, "
                                f"bootstrap ARI below {MIN_BOOTSTRAP_STABILITY}, set aside)")
    for o in options:
        o["chosen"] = o is chosen["_option"]
        o.pop("labels", None)
        o.pop("model", None)
    chosen.pop("_option", None)
    return chosen
