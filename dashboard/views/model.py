"""Model and data: builds, their parameters and quality, the encoder's training, the evaluation."""

import json

import streamlit as st

from core import explore as ex
from dashboard import charts
from dashboard import common as c
from dashboard.bandit_view import bandit_section
from dashboard.predictions_view import predictions_section
from dashboard.quality import segment_quality_section

c.page_header("Model and data", "How the segments and recommendations were built, and how good they are.")
run = c.current_run()
run_id = run["run_id"]
m = run["metrics"]

st.subheader(f"Build {run_id}")
q = st.columns(5)
q[0].metric("Segments", c.intf(m.get("k") or len(m.get("sizes") or {})), help=f"method: {m.get('method', '–')}")
q[1].metric("Silhouette", c.num(m.get("silhouette"), 3),
            help="How well separated the segments are (-1 to 1; higher is better)")
q[2].metric("Davies-Bouldin", c.num(m.get("davies_bouldin"), 3),
            help="How compact and distinct the segments are (lower is better)")
q[3].metric("Stability (ARI)", c.num(m.get("stability_ari"), 3),
            help="Agreement between segmentations on resampled data (1 = identical)")
q[4].metric("Build time", f"{c.num(m.get('total_seconds'), 0)} s")

notes = ex.sampling_notes(m)
if notes:
    with st.expander(f"This shop is very large: {len(notes)} step(s) of the build worked on a "
                     "random sample of shoppers or were simplified", icon=":material/info:"):
        st.markdown("\n".join(f"- {n['text']}" for n in notes)
                    + "\n\nEvery shopper still has a segment, a lifecycle stage, a place on the "
                      "map and a score; the quality figures on this page are the sample's.")

# --- segment quality per lens (dashboard/quality.py) -------------------------------------------
segment_quality_section(run)
# --- end of segment quality ----------------------------------------------------------------------

left, right = st.columns(2)
with left:
    st.markdown("**Choosing the number of segments**")
    ks = ex.k_scan(run)
    if ks.empty:
        st.info("This build did not scan k (k was fixed or DBSCAN was used).")
    else:
        st.plotly_chart(charts.k_scan(ks, m.get("k")), key="k_scan")
with right:
    st.markdown("**Profile encoder training**")
    tc = c.q("training_curve", run_id)
    if tc.empty:
        st.info("No training curve in this build.")
    else:
        st.plotly_chart(charts.training_curve(tc), key="training_curve")

EXTRA_LABELS = {"tifu_knn": "Buy again + similar shoppers (TIFU-kNN)",
                "next_basket": "Next basket (learned on validation baskets)"}
LIST_TYPES = {"new_items": "New items only (what the app shows)",
              "repeats": "Repeats allowed (next basket)"}


def _ci(m: dict, key: str) -> str:
    lo, hi = m.get(f"{key}_ci") or (None, None)
    return "–" if lo is None else f"{lo:.3f} – {hi:.3f}"


def evaluation_section(run_id: int) -> None:
    """The recommenders' offline evaluation: both list types with 95 % intervals, the
    leave-one-out table when computed, per-segment NDCG, and the protocol in plain words."""
    import pandas as pd

    from core.evaluate import PROTOCOL

    st.subheader("Offline evaluation of the recommenders")
    ev = c.q("evaluations", run_id)
    if ev.empty:
        st.info("No offline evaluation in this build (`segstudio build` runs it unless "
                "--no-evaluate).")
        return
    ev = ev.assign(p=ev["params"].map(lambda x: json.loads(x) if isinstance(x, str) else {}))
    ev = ev[ev["p"].map(lambda p: "lists" in p)]
    if ev.empty:
        st.info("This build's evaluation predates confidence intervals: run "
                "`segstudio evaluate --recompute` to see it here.")
        return
    label = lambda n: c.RECOMMENDER_LABELS.get(n, EXTRA_LABELS.get(n, n))  # noqa: E731
    for holdout, title in (("basket", "Each shopper's last basket held out"),
                           ("interaction", "Leave-one-out: each shopper's last purchase held out")):
        part = ev[ev["p"].map(lambda p: p.get("holdout")) == holdout]
        if part.empty:
            continue
        p0 = part["p"].iloc[0]
        st.markdown(f"**{title}** — {p0.get('users_sampled', 0):,} shoppers sampled of "
                    f"{p0.get('users_eligible', 0):,} eligible; the whole catalogue of "
                    f"{p0.get('catalogue_items', 0):,} items ranked")
        if p0.get("warning"):
            st.warning(p0["warning"])
        if p0.get("encoder") and p0["encoder"] != "evaluated":
            st.info(f"Profile encoder {p0['encoder']}.")
        for mode, mtitle in LIST_TYPES.items():
            rows = []
            for n, p in zip(part["recommender"], part["p"]):
                m = p["lists"][mode]
                rows.append({"Recommender": label(n), "NDCG@10": m["ndcg10"],
                             "NDCG@10 95 % range": _ci(m, "ndcg10"),
                             "Recall@10": m["recall10"], "Recall@10 95 % range": _ci(m, "recall10"),
                             "Hit rate@10": m["hitrate10"], "MRR@10": m["mrr10"],
                             "Catalogue coverage": m["coverage"],
                             "vs Buy again": m.get("ndcg10_vs_repeat"),
                             "Shoppers evaluated": m["users_evaluated"]})
            df = pd.DataFrame(rows).sort_values("NDCG@10", ascending=False)
            st.caption(mtitle)
            st.dataframe(df, hide_index=True, width="stretch", column_config={
                "NDCG@10": st.column_config.NumberColumn(format="%.3f"),
                "Recall@10": st.column_config.NumberColumn(format="%.3f"),
                "Hit rate@10": st.column_config.NumberColumn(format="%.3f"),
                "MRR@10": st.column_config.NumberColumn(format="%.3f"),
                "Catalogue coverage": st.column_config.NumberColumn(format="percent"),
                "vs Buy again": st.column_config.NumberColumn(
                    format="%.2fx", help="NDCG@10 divided by that of 'Buy again'"),
                "Shoppers evaluated": st.column_config.NumberColumn(format="localized")})
        with st.expander("How well each recommender serves each segment (NDCG@10)"):
            seg_rows = []
            for n, p in zip(part["recommender"], part["p"]):
                for s, info in (p.get("segments") or {}).items():
                    for mode, mtitle in LIST_TYPES.items():
                        m = info[mode]
                        seg_rows.append({"Segment": info["name"], "List": mtitle,
                                         "Recommender": label(n), "NDCG@10": m["ndcg10"],
                                         "95 % range": _ci(m, "ndcg10"),
                                         "Shoppers": m["users_evaluated"]})
            if seg_rows:
                st.dataframe(pd.DataFrame(seg_rows), hide_index=True, width="stretch",
                             column_config={"NDCG@10": st.column_config.NumberColumn(
                                 format="%.3f")})
    st.caption(PROTOCOL)


evaluation_section(run_id)

# --- recommender per segment (dashboard/bandit_view.py) -----------------------------------------
bandit_section(run)
# --- predictions (dashboard/predictions_view.py) ------------------------------------------------
predictions_section(run)
# --- end of predictions ----------------------------------------------------------------------------

st.subheader("Build history")
hist = c.q("run_history")
st.dataframe(hist, hide_index=True, width="stretch", column_config={
    "run": "Build", "finished": st.column_config.DatetimeColumn("Finished", format="D MMM YYYY, HH:mm"),
    "method": "Method", "segments": "Segments",
    "silhouette": st.column_config.NumberColumn("Silhouette", format="%.3f"),
    "davies_bouldin": st.column_config.NumberColumn("Davies-Bouldin", format="%.3f"),
    "stability_ari": st.column_config.NumberColumn("Stability", format="%.3f"),
    "shoppers": st.column_config.NumberColumn("Shoppers", format="localized"),
    "seconds": st.column_config.NumberColumn("Seconds", format="%.0f")})
with st.expander("Build parameters"):
    st.code(json.dumps(run["params"], indent=2, default=str), language="json")
with st.expander("Stage timings and details"):
    st.json({k: v for k, v in m.items() if k not in ("k_scan",)}, expanded=False)
