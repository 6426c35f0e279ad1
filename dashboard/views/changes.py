"""Changes over time: the shop's (or a segment's) trends, and how shoppers moved between the
segments of two builds."""

from datetime import datetime, time as dtime

import pandas as pd
import streamlit as st

from core.migration import MigrationError, migration, summary
from core.migration.flows import data_end
from dashboard import common as c
from dashboard import timecharts

c.page_header("Changes over time", "Sales and shoppers period by period, and who moved between "
              "segments from one build to the next.")
run = c.current_run()
run_id = run["run_id"]
con = c.con()
lens, scope = c.lens(), c.scope()
prices = c.shop_has_prices()
c.scope_note(run_id)

st.subheader("Trends")
lo, hi = con.execute("SELECT min(ts), max(ts) FROM events WHERE ts IS NOT NULL").fetchone()
left, right = st.columns([2, 1])
with right:
    rng = st.date_input("Date range", value=(lo.date(), hi.date()), min_value=lo.date(),
                        max_value=hi.date(), key="trend_range",
                        help="Every figure in this section counts only events in the range.")
    # the sidebar's filter narrows the trend to that segment of the other lens
    everyone = ("The whole shop", None) if scope is None else (
        c.q("segment_names", run_id, lens=scope[0]).get(scope[1], "The filter"), scope)
    options = {everyone[0]: everyone[1],
               **{k: (lens, v) for k, v in c.segment_options(run_id, lens).items()}}
    who = st.selectbox("Shoppers", list(options), key="trend_segment")
start = end = None
if isinstance(rng, (tuple, list)) and len(rng) == 2:
    start = datetime.combine(rng[0], dtime.min)
    end = datetime.combine(rng[1], dtime.max)
pick_lens, pick_id = options[who] or (lens, None)
df = c.q("trends", run_id=run_id, lens=pick_lens, segment_id=pick_id, start=start, end=end)
with left:
    if df.empty:
        st.info("No events in this range.")
    else:
        st.plotly_chart(timecharts.trend(df, currency=c.currency(), prices=prices,
                                         title=f"{who}: per {df.attrs['grain']}"),
                        key="trend_chart")
if not df.empty:
    show = df.rename(columns={"period": "Period", "revenue": f"Revenue ({c.currency()})",
                              "orders": "Orders", "active_shoppers": "Active shoppers",
                              "buying_shoppers": "Buying shoppers", "new_shoppers": "New shoppers"})
    if not prices:
        show = show.drop(columns=[f"Revenue ({c.currency()})"])
    with st.expander("The figures"):
        st.dataframe(show, hide_index=True, width="stretch",
                     column_config={"Period": st.column_config.DateColumn(
                         format="MMM YYYY" if df.attrs["grain"] == "month" else "D MMM YYYY")})
        st.caption("Active: any visit or order in the period. Buying: at least one order. New: "
                   "their first visit ever was in the period.")

st.subheader("How shoppers moved between builds")
builds = con.execute(
    "SELECT run_id, finished_at, json_extract_string(params, '$.as_of') AS as_of FROM runs "
    "WHERE kind = 'build' AND status = 'complete' ORDER BY run_id").df()
if len(builds) < 2:
    c.empty_state("One build so far",
                  "Migration compares two builds. Build again later, or build the same data as of "
                  "an earlier date to see how shoppers moved: `segstudio build --as-of 2011-09-01`, "
                  "then `segstudio build`.")
    st.stop()


def _label(r) -> str:
    end_ = f"data to {str(r.as_of)[:10]}" if isinstance(r.as_of, str) and r.as_of else "all data"
    return f"Build {r.run_id} ({end_}, {c.when(r.finished_at)})"


labels = {_label(r): int(r.run_id) for r in builds.itertuples()}
names = list(labels)
a, b = st.columns(2)
src = a.selectbox("From", names, index=len(names) - 2, key="mig_from")
dst = b.selectbox("To", names, index=len(names) - 1, key="mig_to")
try:
    flows = migration(con, labels[src], labels[dst], lens)
except MigrationError as e:
    st.warning(str(e))
    st.stop()
s = summary(flows)
m = st.columns(4)
m[0].metric("In both builds", c.intf(s["in_both"]))
m[1].metric("Stayed", c.intf(s["stayed"]))
m[2].metric("Moved", c.intf(s["moved"]))
m[3].metric("New shoppers", c.intf(s["new"]))
info = ("segment_info" if lens == "taste" else "lifecycle_info")
colors = {}
for rid in (labels[src], labels[dst]):
    for n, col in con.execute(f"SELECT name, color FROM {info} WHERE run_id = ?", [rid]).fetchall():
        colors.setdefault(rid, {})[n] = col
top = flows.head(40)
st.plotly_chart(timecharts.sankey(top, colors.get(labels[src], {}), colors.get(labels[dst], {}),
                                  left=src, right=dst), key="mig_sankey")
if len(flows) > len(top):
    st.caption(f"The 40 largest of {len(flows)} flows; the table lists all.")
t0, t1 = data_end(con, labels[src]), data_end(con, labels[dst])
period = (f"spent between {t0:%d %b %Y} and {t1:%d %b %Y}" if t1 > t0 else "spent to date")
table = flows[["from_segment", "to_segment", "shoppers", "revenue"]]
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "from_segment": "From", "to_segment": "To",
    "shoppers": st.column_config.NumberColumn("Shoppers", format="localized"),
    "revenue": st.column_config.NumberColumn(f"Revenue ({c.currency()})", format="%.2f",
                                             help=f"What the flow's shoppers {period}.")})
st.caption(f"Revenue: what each flow's shoppers {period}. A segment that is the same group of "
           "shoppers in both builds keeps its name and colour.")
