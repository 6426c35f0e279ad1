"""Overview: the shop in numbers, its segments as cards, and the health of the data."""

import streamlit as st

from dashboard import charts, timecharts
from dashboard import common as c

c.page_header("Overview", "Who shops here, what they are worth, and how the data was loaded.")
run = c.current_run()
run_id = run["run_id"]
totals = c.q("shop_totals")

prices = c.shop_has_prices()
lens, scope = c.lens(), c.scope()

cols = st.columns(5 if prices else 4)
cols[0].metric("Shoppers", c.intf(totals["users"]))
cols[1].metric("Items", c.intf(totals["items"]))
cols[2].metric("Events", c.intf(totals["events"]))
cols[3].metric("Orders", c.intf(totals["orders"]))
if prices:
    cols[4].metric("Net revenue", c.money(totals["revenue"]))
span = ""
if totals["first_event"] is not None:
    span = f"Data from {totals['first_event']:%d %b %Y} to {totals['last_event']:%d %b %Y}. "
m = run["metrics"]
st.caption(f"{span}Showing build {run_id}, finished {c.when(run['finished_at'])}"
           + (f" · {m.get('method', 'kmeans')} segmentation" if m.get("method") else "")
           + ("" if prices else " · this shop records no prices, so no money figures are shown"))

st.subheader("Taste segments" if lens == "taste" else "Lifecycle stages")
c.scope_note(run_id)
c.weak_warning(run)
segs = c.q("segments", run_id, lens=lens, scope=scope)
if segs.empty:
    c.empty_state("No segments in this build" if scope is None else "No shoppers here",
                  "This build has no shopper segments in this lens (for example, the data has no "
                  "shopper ids). Association rules are still available under **Bought together**."
                  if scope is None else "No shopper is in both. Choose *Everyone* in the sidebar.")
else:
    left, right = st.columns([3, 1])
    with right:
        st.plotly_chart(charts.share_donut(segs["name"], segs["size"], segs["color"]),
                        key="overview_donut", config={"displayModeBar": False})
        st.caption("Share of shoppers per segment" + (" (in the filter)" if scope else ""))
    with left:
        if prices:
            st.caption("Largest revenue first.")
        per_row = 3
        rows = [segs.iloc[i:i + per_row] for i in range(0, len(segs), per_row)]
        for chunk in rows:
            cc = st.columns(per_row)
            for col, r in zip(cc, chunk.itertuples()):
                with col.container(border=True):
                    st.markdown(f'{c.swatch(r.color, 14)}<span class="seg-card-title">'
                                f'{c.html.escape(str(r.name))}</span>', unsafe_allow_html=True)
                    st.markdown(f'<div class="seg-muted">{c.html.escape(str(r.description or ""))}</div>',
                                unsafe_allow_html=True)
                    rule = getattr(r, "rule", None)
                    if isinstance(rule, str) and rule:
                        st.caption(f"Rule: {rule}")
                    a, b = st.columns(2)
                    a.metric("Shoppers", c.intf(r.size), help=f"{c.pct(r.user_share)} of "
                             + ("the shoppers in the filter" if scope else "all shoppers"))
                    if prices:
                        b.metric("Revenue", c.money_short(r.revenue),
                                 help=f"{c.money(r.revenue)}: {c.pct(r.revenue_share)} of the "
                                      + ("filter's" if scope else "shop's") + " net revenue")
                    else:
                        b.metric("Of shoppers", c.pct(r.user_share))
                    if st.button("Open segment", key=f"open_seg_{r.segment_id}",
                                 icon=":material/arrow_forward:"):
                        st.session_state["segment_id"] = int(r.segment_id)
                        st.switch_page("views/segment_detail.py")

cross = c.q("lens_cross", run_id)
if not cross.empty:
    st.subheader("Lifecycle × taste")
    st.caption("Every shopper has a lifecycle stage and a taste segment: how many sit in each "
               "pair" + (", and what they spend" if prices else "") + ". Open a pair to see "
               "those shoppers on every page.")
    show = "users"
    if prices:
        show = st.segmented_control("Show", ["users", "revenue"], default="users", key="cross_show",
                                    format_func=lambda v: {"users": "Shoppers",
                                                           "revenue": "Revenue"}[v]) or "users"
    st.plotly_chart(charts.cross_heatmap(cross, show, c.currency() if show == "revenue" else ""),
                    key="cross_heatmap", config={"displayModeBar": False})
    top = cross.head(12)
    table = {"Lifecycle × taste": top["label"], "Shoppers": [c.intf(v) for v in top["users"]],
             "Of shoppers": [c.pct(v) for v in top["user_share"]]}
    if prices:
        table.update({"Revenue": [c.money(v) for v in top["revenue"]],
                      "Of revenue": [c.pct(v) for v in top["revenue_share"]]})
    st.dataframe(table, hide_index=True, width="stretch")
    pairs = {r.label: (int(r.lifecycle_id), int(r.taste_id)) for r in cross.itertuples()}
    pc = st.columns([3, 1])
    pick = pc[0].selectbox("Open a pair", list(pairs), key="cross_pick",
                           help="Shows the taste segment, narrowed to the lifecycle stage")
    life_id, taste_id = pairs[pick]
    pc[1].markdown("&nbsp;")
    if pc[1].button("Open", key="cross_open", icon=":material/arrow_forward:",
                    on_click=c.set_lens, args=("taste", life_id)):
        st.session_state["segment_id"] = taste_id
        st.switch_page("views/segment_detail.py")

st.subheader("Month by month")
_trend = c.q("trends")  # cached: at 81 M events the query takes seconds
if _trend.empty:
    st.info("No dated events to chart.")
else:
    st.plotly_chart(timecharts.trend(_trend, currency=c.currency(), prices=prices),
                    key="overview_trend")
    st.caption("Active: shoppers with any visit or order in the period; new: their first visit. "
               "**Changes over time** narrows this to a segment or a date range and shows how "
               "shoppers moved between builds.")

st.subheader("Data health")
health = c.q("data_health")
h = st.columns(4)
h[0].metric("Rows read", c.intf(health["rows_read"]))
h[1].metric("Rows loaded", c.intf(health["rows_loaded"]))
h[2].metric("Quarantined", c.intf(health["rows_quarantined"]),
            help="Rows that could not be loaded; kept with the reason, nothing is dropped silently")
h[3].metric("Duplicates skipped", c.intf(health["rows_duplicate"]))
if health["all_reconcile"]:
    st.success("Every ingest reconciles: rows read = loaded + quarantined + duplicates skipped.",
               icon=":material/check_circle:")
else:
    st.error("Some ingests do not reconcile; see the table below and run `segstudio status`.",
             icon=":material/error:")
ing = health["ingests"]
if len(ing):
    show = ing[[x for x in ["ingest_id", "source_file", "format", "rows_read", "rows_loaded",
                            "rows_quarantined", "rows_duplicate", "reconciles"] if x in ing.columns]]
    st.dataframe(show, hide_index=True, width="stretch", column_config={
        "ingest_id": st.column_config.NumberColumn("Ingest"),
        "source_file": "File", "format": "Format",
        "rows_read": st.column_config.NumberColumn("Read", format="localized"),
        "rows_loaded": st.column_config.NumberColumn("Loaded", format="localized"),
        "rows_quarantined": st.column_config.NumberColumn("Quarantined", format="localized"),
        "rows_duplicate": st.column_config.NumberColumn("Duplicates", format="localized"),
        "reconciles": st.column_config.CheckboxColumn("Reconciles"),
    })
if health["quarantine_reasons"] or health["side_quarantine"]:
    with st.expander("Why rows were quarantined"):
        rows_col = {"Rows": st.column_config.NumberColumn(format="localized")}
        if health["quarantine_reasons"]:
            st.caption("Event files (the Quarantined figure above):")
            st.dataframe(
                [{"Reason": k, "Rows": v} for k, v in health["quarantine_reasons"].items()],
                hide_index=True, width="stretch", column_config=rows_col)
        if health["side_quarantine"]:
            st.caption("Item, user and joined files read with them (each reconciles on its own; "
                       "not counted above):")
            st.dataframe(
                [{"File": r["file"], "Reason": r["reason"], "Rows": r["rows"]}
                 for r in health["side_quarantine"]],
                hide_index=True, width="stretch", column_config=rows_col)
