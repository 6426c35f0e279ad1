"""Overview: the shop in numbers, its segments as cards, and the health of the data."""

import streamlit as st

from dashboard import charts
from dashboard import common as c

c.page_header("Overview", "Who shops here, what they are worth, and how the data was loaded.")
run = c.current_run()
run_id = run["run_id"]
totals = c.q("shop_totals")

cols = st.columns(5)
cols[0].metric("Shoppers", c.intf(totals["users"]))
cols[1].metric("Items", c.intf(totals["items"]))
cols[2].metric("Events", c.intf(totals["events"]))
cols[3].metric("Orders", c.intf(totals["baskets"]))
cols[4].metric("Net revenue", c.money(totals["revenue"]))
span = ""
if totals["first_event"] is not None:
    span = f"Data from {totals['first_event']:%d %b %Y} to {totals['last_event']:%d %b %Y}. "
m = run["metrics"]
st.caption(f"{span}Showing build {run_id}, finished {c.when(run['finished_at'])}"
           + (f" · {m.get('method', 'kmeans')} segmentation" if m.get("method") else ""))

st.subheader("Segments")
segs = c.q("segments", run_id)
if segs.empty:
    c.empty_state("No segments in this build",
                  "This build has no shopper segments (for example, the data has no shopper ids). "
                  "Association rules are still available under **Bought together**.")
else:
    left, right = st.columns([3, 1])
    with right:
        st.plotly_chart(charts.share_donut(segs["name"], segs["size"], segs["color"]),
                        key="overview_donut", config={"displayModeBar": False})
        st.caption("Share of shoppers per segment")
    with left:
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
                    a, b = st.columns(2)
                    a.metric("Shoppers", c.intf(r.size), help=f"{c.pct(r.user_share)} of all shoppers")
                    b.metric("Revenue", c.pct(r.revenue_share),
                             help="Share of the shop's net revenue from this segment")
                    if st.button("Open segment", key=f"open_seg_{r.segment_id}",
                                 icon=":material/arrow_forward:"):
                        st.session_state["segment_id"] = int(r.segment_id)
                        st.switch_page("views/segment_detail.py")

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
if health["quarantine_reasons"]:
    with st.expander("Why rows were quarantined"):
        st.dataframe(
            [{"Reason": k, "Rows": v} for k, v in health["quarantine_reasons"].items()],
            hide_index=True, width="stretch",
            column_config={"Rows": st.column_config.NumberColumn(format="localized")})
