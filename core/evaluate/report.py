"""Plain-text tables of an evaluation (the CLI and the bench print these)."""

from __future__ import annotations

LIST_TITLES = {"new_items": "New items only (what the app shows)",
               "repeats": "Repeats allowed (next basket)"}
METRICS = (("recall", "Recall@10"), ("ndcg", "NDCG@10"), ("hitrate", "HitRate@10"),
           ("mrr", "MRR@10"))


def rows_from_result(result: dict) -> list[dict]:
    """Stored-row shape ({recommender, params: {lists, segments, ...}}) from a fresh result."""
    rows = []
    for name, r in result["recommenders"].items():
        p = {key: result.get(key) for key in ("holdout", "k", "users_eligible", "users_sampled",
                                              "warning", "encoder", "catalogue_items",
                                              "users_left_out_for_encoder")}
        p.update(lists=r["lists"], segments=r["segments"])
        if name == "hybrid":
            p.update(weights=result["hybrid_weights"],
                     weights_new_items=result["hybrid_weights_new_items"])
        rows.append({"recommender": name, "params": p})
    return rows


def _cell(m: dict, key: str) -> str:
    lo, hi = m.get(f"{key}_ci") or (None, None)
    v = m[key]
    return f"{v:.4f} [{lo:.3f}-{hi:.3f}]" if lo is not None else f"{v:.4f}"


def format_tables(rows: list[dict], k: int = 10, segments: bool = True) -> str:
    if not rows:
        return "(no evaluation)"
    p = rows[0]["params"]
    hold = {"basket": "last basket", "interaction": "last purchase (leave-one-out)"}.get(
        p.get("holdout"), p.get("holdout"))
    out = [f"Held out: each shopper's {hold}; {p.get('users_eligible', 0):,} shoppers eligible, "
           f"{p.get('users_sampled', 0):,} sampled; full ranking of "
           f"{p.get('catalogue_items', 0):,} catalogue items; 95 % bootstrap intervals."]
    if p.get("users_left_out_for_encoder"):
        out.append(f"({p['users_left_out_for_encoder']:,} shoppers left out: their held-out "
                   "purchase was in the encoder's training data)")
    if p.get("warning"):
        out.append(f"WARNING: {p['warning']}")
    if p.get("encoder") and p["encoder"] != "evaluated":
        out.append(f"Encoder {p['encoder']}")
    for mode, title in LIST_TITLES.items():
        order = sorted(rows, key=lambda r: -r["params"]["lists"][mode][f"ndcg{k}"])
        n = order[0]["params"]["lists"][mode]["users_evaluated"]
        out.append("")
        out.append(f"{title}: {n:,} shoppers evaluated")
        out.append(f"{'recommender':<20}" + "".join(f"{h:>24}" for _, h in METRICS)
                   + f"{'Coverage':>10}{'NDCG vs repeat':>24}")
        for r in order:
            m = r["params"]["lists"][mode]
            ratio = m.get(f"ndcg{k}_vs_repeat")
            rci = m.get(f"ndcg{k}_vs_repeat_ci")
            rs = (f"{ratio:.3f}x [{rci[0]:.3f}-{rci[1]:.3f}]" if ratio is not None and rci
                  else "-")
            out.append(f"{r['recommender']:<20}" + "".join(
                f"{_cell(m, f'{key}{k}'):>24}" for key, _ in METRICS)
                + f"{m['coverage']:>10.1%}{rs:>24}")
    hy = next((r for r in rows if r["recommender"] == "hybrid"), None)
    if hy and hy["params"].get("weights"):
        for key, label in (("weights_new_items", "new items"), ("weights", "repeats")):
            w = ", ".join(f"{a} {b:g}" for a, b in hy["params"][key].items() if b)
            out.append(f"hybrid weights ({label}; tuned on the validation hold-out only): {w}")
    if segments and rows[0]["params"].get("segments"):
        out.append("")
        out.append("NDCG@10 per segment (new items only / repeats allowed; shoppers evaluated)")
        names = [r["recommender"] for r in rows]
        segs = rows[0]["params"]["segments"]
        out.append(f"{'segment':<34}" + "".join(f"{n[:16]:>18}" for n in names))
        for s, info in segs.items():
            for mode in LIST_TITLES:
                label = f"{info['name'][:22]} ({'new' if mode == 'new_items' else 'rep'}, " \
                        f"{info[mode]['users_evaluated']:,})"
                cells = "".join(
                    f"{r['params']['segments'].get(s, {}).get(mode, {}).get(f'ndcg{k}', 0):>18.4f}"
                    for r in rows)
                out.append(f"{label:<34}" + cells)
    return "\n".join(out)
