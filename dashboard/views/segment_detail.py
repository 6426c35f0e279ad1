"""Segment detail: what sets a segment apart, how it behaves, what it buys, and its rules."""

import streamlit as st

from core import explore as ex
from core.explore import recs
from dashboard import charts
from dashboard import common as c
from dashboard import timecharts

run = c.current_run()
run_id = run["run_id"]
lens, scope = c.lens(), c.scope()
prices = c.shop_has_prices()
opts = c.segment_options(run_id, lens, scope)
if not opts:
    c.page_header("Segment detail")
    c.scope_note(run_id)
    c.empty_state("No segments in this build" if scope is None else "No shoppers here",
                  "Segments appear after `segstudio build` on data with shopper ids."
                  if scope is None else "No shopper is in both. Choose *Everyone* in the sidebar.")
    st.stop()

ids_by_label = list(opts.items())
want = st.session_state.get("segment_id")
index = next((i for i, (_, sid) in enumerate(ids_by_label) if sid == want), 0)
label = st.selectbox("Taste segment" if lens == "taste" else "Lifecycle stage",
                     [k for k, _ in ids_by_label], index=index, key=f"detail_segment_{lens}")
segment_id = opts[label]
st.session_state["segment_id"] = segment_id

with st.spinner("Reading the segment..."):
    d = c.q("segment_detail", run_id, segment_id, lens=lens, scope=scope)
info = d["info"]
st.markdown(f'<h1 style="margin-bottom:0">{c.swatch(info["color"], 22)}'
            f'{c.html.escape(str(info["name"]))}</h1>', unsafe_allow_html=True)
st.caption(info.get("description") or "")
if isinstance(info.get("rule"), str) and info["rule"]:
    st.markdown(f"**Rule:** {c.html.escape(info['rule'])}")
c.scope_note(run_id)
c.weak_warning(run)
cross = c.q("lens_cross", run_id)
if not cross.empty and scope is None:  # the other lens's mix, each a sidebar choice away
    other = ex.other_lens(lens)
    mine = cross[cross[f"{lens}_id"] == segment_id].sort_values(f"{other}_id")
    colors = c.q("segment_colors", run_id, lens=other)
    total = int(mine["users"].sum())
    if total:
        st.markdown(f"**Its shoppers by {c.LENS_NOUN[other]}:** " + " · ".join(
            f"{c.swatch(colors.get(int(r[f'{other}_id'])))}{c.html.escape(str(r[other]))} "
            f"{c.intf(r['users'])} ({c.pct(r['users'] / total, 0)})" for _, r in mine.iterrows()),
            unsafe_allow_html=True)

nums = d["scoped"] or info
feats = d["features"].set_index("feature")["group"].to_dict() if len(d["features"]) else {}
m = st.columns(5 if prices else 4)
m[0].metric("Shoppers", c.intf(nums["size"]))
m[1].metric("Of the filter's shoppers" if d["scoped"] else "Of all shoppers", c.pct(nums["user_share"]))
m[2].metric("Median orders", c.num(feats.get("frequency", info.get("frequency_median")), 0))
hours = d["busiest_hours"]
m[3].metric("Busiest hours", hours or "No clear peak",
            help=f"The two hours with most of the members' activity (whole shop: "
                 f"{d['shop_busiest_hours'] or 'no clear peak'})")
if prices:
    m[4].metric("Revenue", c.money(nums.get("revenue")),
                help=f"{c.pct(nums['revenue_share'])} of the "
                     + ("filter's" if d["scoped"] else "shop's") + " net revenue; median spend "
                     + c.money(feats.get("monetary", info.get("monetary_median"))) + " per shopper")

tabs = st.tabs(["What sets it apart", "Behaviour", "Top items", "Representative shoppers",
                "Bought together", "Recommendations", "Over time"])
with tabs[6]:
    _trend = c.q("trends", run_id=run_id, lens=lens, segment_id=segment_id)
    if _trend.empty:
        st.info("No dated events for these shoppers.")
    else:
        st.plotly_chart(timecharts.trend(_trend, currency=c.currency(), prices=c.shop_has_prices(),
                                         color=info.get("color") or "#4C78A8"),
                        key="detail_trend")
        st.caption("This segment's current members, period by period: revenue, shoppers active "
                   "and new. The filter in the sidebar does not apply here.")
with tabs[0]:
    traits = d["traits"]
    if traits.empty:
        st.info("Nothing sets this segment clearly apart: no theme, category, brand, item or habit "
                "is at least 1.5 times as common here as in the whole shop, held by enough of its "
                "shoppers and significant.")
    else:
        dims = [x for x in ("theme", "category", "brand", "price_band", "item", "behaviour")
                if x in set(traits["dimension"])]
        cols = st.columns(2)
        for i, dim in enumerate(dims):
            with cols[i % 2]:
                st.markdown(f"**{ex.DIMENSION_LABELS.get(dim, dim)}**")
                st.plotly_chart(charts.lift_bars(traits[traits["dimension"] == dim], color=info["color"]),
                                key=f"traits_{dim}", config={"displayModeBar": False})
        st.caption("Only traits at least 1.5 times as common among this segment's shoppers as in the "
                   "whole shop, held by 10% (or 30) of them, and significant. Percentages: share of "
                   "the segment's shoppers vs share of all shoppers.")
with tabs[1]:
    f = d["features"]
    c.behaviour_table(f, "This segment")
    skip = set() if prices else ex.MONEY_FEATURES | {"price_sensitivity"}
    feats_shown = [x for x in ["recency_days", "frequency", "monetary", "avg_order_value", "basket_size",
                               "price_sensitivity"] if x in set(f["feature"]) and x not in skip]
    st.caption("Distributions: the box holds the middle half of the shoppers, the line is the "
               "median, the whiskers reach from the 5th to the 95th percentile. Money and counts "
               "are on log scales, which leave out shoppers at zero.")
    cols = st.columns(2)
    for i, feat in enumerate(feats_shown):
        dist = c.q("feature_distribution", run_id, feat, segment_id, lens=lens, scope=scope)
        label_ = ex.FEATURE_LABELS[feat] + (f" ({c.currency()})" if feat in ex.MONEY_FEATURES else "")
        with cols[i % 2]:
            st.plotly_chart(charts.distribution(dist, label_, info["color"],
                                                log=feat in ex.LOG_FEATURES),
                            key=f"dist_{feat}", config={"displayModeBar": False})
with tabs[2]:
    ti = d["top_items"]
    if ti.empty:
        st.info("No purchases recorded for this segment.")
    else:
        show = ["title"] + (["category"] if ti["category"].notna().any() else []) + ["buyers", "units"] \
            + (["revenue"] if prices else [])
        st.dataframe(ti[show], hide_index=True, width="stretch", column_config={
            "title": "Item", "category": "Category",
            "buyers": st.column_config.NumberColumn("Buyers", format="localized"),
            "units": st.column_config.NumberColumn("Units", format="localized"),
            "revenue": st.column_config.NumberColumn(f"Revenue ({c.currency()})", format="localized")})
with tabs[3]:
    reps = d["representatives"]
    if reps.empty:
        st.info("No representative shoppers recorded.")
    else:
        show = ["user_id", "orders", "recency_days"] + (["spend", "avg_order_value"] if prices else [])
        st.dataframe(reps[show], hide_index=True, width="stretch", column_config={
            "user_id": "Shopper", "orders": st.column_config.NumberColumn("Orders"),
            "spend": st.column_config.NumberColumn(f"Spend ({c.currency()})", format="%.2f"),
            "recency_days": st.column_config.NumberColumn("Days since last purchase", format="%.0f"),
            "avg_order_value": st.column_config.NumberColumn(f"Average order ({c.currency()})",
                                                             format="%.2f")})
        pick = st.selectbox("Open a shopper's profile", list(reps["user_id"]), key="rep_pick")
        if st.button("Open profile", icon=":material/person:"):
            st.session_state["profile_user"] = pick
            st.switch_page("views/user_profile.py")
with tabs[4]:
    rules = d["rules"]
    if lens != "taste":
        st.info("Bought-together rules are found for each taste segment. Switch the sidebar to "
                "**Taste** (and, if you like, narrow it to this stage) to see them.")
    elif rules.empty:
        st.info("No bought-together rules that this segment follows clearly more often than the "
                "whole shop.")
    else:
        st.caption("Only rules this segment's shoppers follow at least "
                   f"{ex.SPECIFIC_RATIO:.1f} times as often as the whole shop, the most specific "
                   "first. Rules are found on all of the segment's baskets (the sidebar filter does "
                   "not apply to them).")
        st.dataframe(rules[["if_bought", "then_buys", "segment_ratio", "confidence", "lift", "support"]],
                     hide_index=True, width="stretch", column_config={
                         "if_bought": "If they bought", "then_buys": "They also buy",
                         "segment_ratio": st.column_config.NumberColumn(
                             "vs whole shop", format="%.1f×",
                             help="How many times as often as the whole shop this segment's "
                                  "shoppers follow the rule (confidence here ÷ confidence overall)"),
                         "confidence": st.column_config.ProgressColumn("Confidence", format="percent",
                                                                       min_value=0, max_value=1),
                         "lift": st.column_config.NumberColumn("Lift", format="%.1f×"),
                         "support": st.column_config.NumberColumn("Support", format="percent")})
with tabs[5]:
    if not recs.available():
        st.info("Recommendation previews appear here once the recommender module is installed.")
    elif lens != "taste":
        st.info("Recommendations per segment are made for taste segments: switch the sidebar to "
                "**Taste** to see them.")
    else:
        with st.spinner("Asking the recommenders..."):
            prev = c.recommend_preview("segment", run_id, segment_id=segment_id)
        st.caption("What this segment buys more than the rest of the shop.")
        c.show_recommendations(prev, key="segment_recs")
