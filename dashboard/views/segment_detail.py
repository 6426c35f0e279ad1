"""Segment detail: what sets a segment apart, how it behaves, what it buys, and its rules."""

import streamlit as st

from core import explore as ex
from core.explore import recs
from dashboard import charts
from dashboard import common as c

run = c.current_run()
run_id = run["run_id"]
opts = c.segment_options(run_id)
if not opts:
    c.page_header("Segment detail")
    c.empty_state("No segments in this build", "Segments appear after `segstudio build` on data with "
                  "shopper ids.")
    st.stop()

ids_by_label = list(opts.items())
want = st.session_state.get("segment_id")
index = next((i for i, (_, sid) in enumerate(ids_by_label) if sid == want), 0)
label = st.selectbox("Segment", [k for k, _ in ids_by_label], index=index, key="detail_segment")
segment_id = opts[label]
st.session_state["segment_id"] = segment_id

with st.spinner("Reading the segment..."):
    d = c.q("segment_detail", run_id, segment_id)
info = d["info"]
st.markdown(f'<h1 style="margin-bottom:0">{c.swatch(info["color"], 22)}'
            f'{c.html.escape(str(info["name"]))}</h1>', unsafe_allow_html=True)
st.caption(info.get("description") or "")

m = st.columns(5)
m[0].metric("Shoppers", c.intf(info["size"]))
m[1].metric("Of all shoppers", c.pct(info["user_share"]))
m[2].metric("Revenue share", c.pct(info["revenue_share"]))
m[3].metric("Median orders", c.num(info["frequency_median"], 0))
m[4].metric("Median spend", c.money(info["monetary_median"]))

tabs = st.tabs(["What sets it apart", "Behaviour", "Top items", "Representative shoppers",
                "Bought together", "Recommendations"])
with tabs[0]:
    traits = d["traits"]
    if traits.empty:
        st.info("No traits were computed for this segment.")
    else:
        dims = [x for x in ("category", "brand", "price_band", "item") if x in set(traits["dimension"])]
        cols = st.columns(2)
        for i, dim in enumerate(dims):
            with cols[i % 2]:
                st.markdown(f"**{ex.DIMENSION_LABELS.get(dim, dim)}**")
                st.plotly_chart(charts.lift_bars(traits[traits["dimension"] == dim], color=info["color"]),
                                key=f"traits_{dim}", config={"displayModeBar": False})
        st.caption("Lift: how many times more common among this segment's shoppers than in the whole "
                   "shop. Percentages: share of the segment's shoppers vs share of all shoppers.")
with tabs[1]:
    f = d["features"]
    c.behaviour_table(f, "This segment")
    feats = [x for x in ["recency_days", "frequency", "monetary", "avg_order_value", "basket_size",
                         "price_sensitivity"] if x in set(f["feature"])]
    cols = st.columns(2)
    for i, feat in enumerate(feats):
        dist = c.q("feature_distribution", run_id, feat, segment_id)
        with cols[i % 2]:
            st.plotly_chart(charts.distribution(dist, ex.FEATURE_LABELS[feat], info["color"]),
                            key=f"dist_{feat}", config={"displayModeBar": False})
with tabs[2]:
    ti = d["top_items"]
    if ti.empty:
        st.info("No purchases recorded for this segment.")
    else:
        st.dataframe(ti[["title", "category", "buyers", "units", "revenue"]], hide_index=True,
                     width="stretch", column_config={
                         "title": "Item", "category": "Category",
                         "buyers": st.column_config.NumberColumn("Buyers", format="localized"),
                         "units": st.column_config.NumberColumn("Units", format="localized"),
                         "revenue": st.column_config.NumberColumn(f"Revenue ({c.currency()})",
                                                                  format="localized")})
with tabs[3]:
    reps = d["representatives"]
    if reps.empty:
        st.info("No representative shoppers recorded.")
    else:
        st.dataframe(reps[["user_id", "orders", "spend", "recency_days", "avg_order_value"]],
                     hide_index=True, width="stretch", column_config={
                         "user_id": "Shopper", "orders": st.column_config.NumberColumn("Orders"),
                         "spend": st.column_config.NumberColumn(f"Spend ({c.currency()})", format="%.2f"),
                         "recency_days": st.column_config.NumberColumn("Days since last purchase",
                                                                       format="%.0f"),
                         "avg_order_value": st.column_config.NumberColumn(
                             f"Average order ({c.currency()})", format="%.2f")})
        pick = st.selectbox("Open a shopper's profile", list(reps["user_id"]), key="rep_pick")
        if st.button("Open profile", icon=":material/person:"):
            st.session_state["profile_user"] = pick
            st.switch_page("views/user_profile.py")
with tabs[4]:
    rules = d["rules"]
    if rules.empty:
        st.info("No association rules specific to this segment at the build's thresholds.")
    else:
        st.dataframe(rules[["if_bought", "then_buys", "confidence", "lift", "segment_ratio", "support"]],
                     hide_index=True, width="stretch", column_config={
                         "if_bought": "If they bought", "then_buys": "They also buy",
                         "confidence": st.column_config.ProgressColumn("Confidence", format="percent",
                                                                       min_value=0, max_value=1),
                         "lift": st.column_config.NumberColumn("Lift", format="%.1f×"),
                         "segment_ratio": st.column_config.NumberColumn(
                             "vs whole shop", format="%.1f×",
                             help="Confidence in this segment ÷ confidence in the whole shop"),
                         "support": st.column_config.NumberColumn("Support", format="percent")})
with tabs[5]:
    if not recs.available():
        st.info("Recommendation previews appear here once the recommender module is installed.")
    else:
        with st.spinner("Asking the recommenders..."):
            prev = c.recommend_preview("segment", run_id, segment_id=segment_id)
        st.caption("What this segment buys more than the rest of the shop.")
        c.show_recommendations(prev, key="segment_recs")
