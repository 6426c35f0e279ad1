"""Compare: two or more segments (or saved segments) side by side."""

import pandas as pd
import streamlit as st

from core import explore as ex
from dashboard import charts
from dashboard import common as c

c.page_header("Compare", "Put segments and saved selections side by side.")
run = c.current_run()
run_id = run["run_id"]
lens, scope = c.lens(), c.scope()
prices = c.shop_has_prices()
c.scope_note(run_id)

choices: dict[str, tuple] = {}
for label, sid in c.segment_options(run_id, lens, scope).items():
    choices[label] = ("segment", sid)
saved = ex.list_saved(c.con())
for r in saved.itertuples():
    choices[f"Saved: {r.name} ({c.intf(r.size)} shoppers)"] = ("saved", int(r.saved_id))
if len(choices) < 2:
    c.empty_state("Not enough to compare",
                  "Comparing needs at least two segments or saved selections. Save a selection on "
                  "the **Segment map**, or run a build with more segments.")
    st.stop()

labels = list(choices)
picked = st.multiselect("Groups to compare", labels, default=labels[:min(3, len(labels))],
                        key=f"compare_groups_{lens}", max_selections=6)
views = [*c.q("dimensions", run_id), "item"]  # only what the data has: no empty brands or prices
if st.session_state.get("compare_dim") not in views:
    st.session_state["compare_dim"] = views[0]
dim = st.segmented_control("Preferences by", views, format_func=lambda d: ex.DIMENSION_LABELS[d],
                           key="compare_dim") or views[0]
if len(picked) < 2:
    st.info("Pick at least two groups.")
    st.stop()

with st.spinner("Comparing..."):
    res = c.q("compare_groups", run_id, tuple(choices[p] for p in picked), dimension=dim,
              lens=lens, scope=scope)
summ = res["summary"]
cols = st.columns(len(summ))
fallback = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2"]
colors = {}
for i, (col, r) in enumerate(zip(cols, summ.itertuples())):
    color = r.color if isinstance(r.color, str) else fallback[i % len(fallback)]
    colors[r.group] = color
    with col.container(border=True):
        st.markdown(f'{c.swatch(color, 14)}<span class="seg-card-title">{c.html.escape(r.group)}</span>',
                    unsafe_allow_html=True)
        st.metric("Shoppers", c.intf(r.users), help=f"{c.pct(r.user_share)} of all shoppers")
        if prices:
            st.metric("Revenue share", c.pct(r.revenue_share))
        st.markdown(f"Median orders **{c.num(r.median_orders, 0)}**"
                    + (f" · median spend **{c.money(r.median_spend)}** per shopper" if prices else "")
                    + f"  \nLast purchase typically **{c.days(r.median_recency_days)}** ago"
                    + f"  \nBusiest hours **{r.busiest_hours or 'no clear peak'}**")

if dim == "item":
    st.subheader("Items: share of each group's shoppers who bought them")
else:
    st.subheader(f"{ex.DIMENSION_LABELS[dim]}: share of each group's activity")
sh = res["shares"]
if sh.empty:
    st.info("No preference data for these groups.")
else:
    sh = sh.assign(value=sh["value"].astype(str).str.slice(0, 40))
    st.plotly_chart(charts.bars_by_group(sh, x="value", y="share", group="group", colors=colors,
                                         yaxis="Share of shoppers" if dim == "item"
                                         else "Share of activity"), key="compare_shares")
    if dim == "price_band":
        st.caption("Price bands by the quartiles of the shop's item prices, cheapest first.")

st.subheader("Behaviour side by side (medians)")
f = res["features"]
if not prices and not f.empty:
    f = f[~f["feature"].isin(ex.MONEY_FEATURES | {"price_sensitivity"})]
if not f.empty:
    wide = f.pivot_table(index=["feature", "label"], columns="group", values="value", sort=False)
    table = pd.DataFrame({"Behaviour": [lbl for _, lbl in wide.index]})
    for g in [p for p in summ["group"]]:
        if g in wide.columns:
            table[g] = [c.feature_value(feat, v) for (feat, _), v in zip(wide.index, wide[g])]
    st.dataframe(table, hide_index=True, width="stretch")
