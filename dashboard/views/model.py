"""Model and data: builds, their parameters and quality, the encoder's training, the evaluation."""

import json

import streamlit as st

from core import explore as ex
from dashboard import charts
from dashboard import common as c
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

st.subheader("Offline evaluation of the recommenders")
ev = c.q("evaluations", run_id)
if ev.empty:
    st.info("No offline evaluation in this build (`segstudio build` runs it unless --no-evaluate).")
else:
    ev = ev.assign(recommender=ev["recommender"].map(lambda n: c.RECOMMENDER_LABELS.get(n, n)))
    st.dataframe(ev.drop(columns=["params"]), hide_index=True, width="stretch", column_config={
        "recommender": "Recommender",
        "recall10": st.column_config.NumberColumn("Recall@10", format="%.3f"),
        "ndcg10": st.column_config.NumberColumn("NDCG@10", format="%.3f"),
        "hitrate10": st.column_config.NumberColumn("Hit rate@10", format="%.3f"),
        "mrr10": st.column_config.NumberColumn("MRR@10", format="%.3f"),
        "coverage": st.column_config.NumberColumn("Catalogue coverage", format="percent"),
        "users_evaluated": st.column_config.NumberColumn("Shoppers evaluated", format="localized")})
    st.caption("Each shopper's last basket is hidden; the recommenders see the rest and we check "
               "whether the hidden items are in their top 10.")

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
