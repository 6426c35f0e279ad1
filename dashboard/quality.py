"""The Model page's section on segment quality, per lens: how stable the segments are, whether
they predict what members buy next better than the references, how separated and how big they
are, and the lifecycle rules with this build's figures. Rendering only: the figures come from
``core.explore`` (stored build metrics, ``core.segments.report``)."""

from __future__ import annotations

import streamlit as st

from core import explore as ex
from dashboard import common as c


def _ndcg(row) -> str:
    if row["ndcg10"] is None or row["ndcg10"] != row["ndcg10"]:
        return "–"
    ci = ""
    if row["ndcg10_low"] == row["ndcg10_low"] and row["ndcg10_low"] is not None:
        ci = f" ({c.num(row['ndcg10_low'], 3)}–{c.num(row['ndcg10_high'], 3)})"
    return c.num(row["ndcg10"], 3) + ci


def segment_quality_section(run: dict) -> None:
    st.subheader("How good are the segments?")
    table = ex.quality_table(c.con(), run)
    if table.empty:
        st.info("This build recorded no segment quality (it predates the lenses, or had too few "
                "shoppers). The next `segstudio build` measures it.")
        return
    measures = {  # one row per measure, one column per lens: narrow enough to read whole
        "Segments": lambda r: c.intf(r["segments"]),
        "Stability between seeds (0-1)": lambda r: c.num(r["stability_seed"], 2),
        "Stability between 80% samples (0-1)": lambda r: c.num(r["stability_bootstrap"], 2),
        "Predicts the next basket: NDCG@10 (95% interval)": _ndcg,
        "… the whole shop's best-sellers": lambda r: c.num(r["popularity_ndcg10"], 3),
        "… a TF-IDF clustering of baskets, same number of segments":
            lambda r: c.num(r["tfidf_ndcg10"], 3),
        "Segments vs the TF-IDF clustering": lambda r: c.num(r["ratio_vs_tfidf"], 2) + "×"
        if r["ratio_vs_tfidf"] is not None and r["ratio_vs_tfidf"] == r["ratio_vs_tfidf"] else "–",
        "Silhouette (-1 to 1)": lambda r: c.num(r["silhouette"], 2),
        "Shoppers evaluated": lambda r: c.intf(r["shoppers_evaluated"]),
    }
    wide = {"Measure": list(measures)}
    for _, r in table.iterrows():
        wide[r["lens"]] = [fn(r) for fn in measures.values()]
    st.dataframe(wide, hide_index=True, width="stretch", key="segment_quality")
    st.markdown("  \n".join(f"**{r.lens} sizes:** {c.html.escape(r.sizes)}"
                             for r in table.itertuples() if r.sizes))
    st.caption("Stability: agreement (adjusted Rand index, 1 = the same segments) between fits with "
               "two seeds, and between fits on two 80% samples; 0.7 or more is sound. Predicts next "
               "basket: each shopper's last basket is held out of every model; each segment ranks "
               "items by the share of its members who bought them, scored on the held-out baskets "
               "against the whole shop's best-sellers and KMeans on a TF-IDF/SVD of baskets with "
               "the same number of segments. Silhouette: how separated the segments are (-1 to 1).")
    for r in table.itertuples():
        if r.weak:
            st.warning(f"{r.lens} segments are weak: {r.weak}. {r.advice or ''}",
                       icon=":material/warning:")
    life = c.q("segments", run["run_id"], lens="lifecycle")
    if not life.empty and "rule" in life.columns and life["rule"].notna().any():
        st.markdown("**Lifecycle rules in this build** (the first that matches gives the stage)")
        life = life.sort_values("position" if "position" in life.columns else "segment_id")
        st.dataframe({"Stage": life["name"], "Rule": life["rule"].fillna(""),
                      "Shoppers": [c.intf(v) for v in life["size"]]},
                     hide_index=True, width="stretch",
                     column_config={"Rule": st.column_config.TextColumn("Rule", width="large")})
