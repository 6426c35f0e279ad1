"""Bought together: association rules for the whole shop and per segment."""

import streamlit as st

from core import explore as ex

from dashboard import charts
from dashboard import common as c

c.page_header("Bought together",
              "Association rules: “shoppers who bought A also bought B in x% of baskets”.")
run = c.current_run()
run_id = run["run_id"]
mined = run["metrics"].get("rules") or {}
if mined and not mined.get("n_rules") and not mined.get("n_segment_rules"):
    # the build looked and found nothing: say so, not "not in this build yet"
    n = int(mined.get("n_baskets") or 0)
    if n == 0:
        body = "This shop's data has no purchases, so no items are bought together."
    else:
        sup = mined.get("min_support")
        body = (f"The build looked through {c.intf(n)} baskets, for the whole shop and each taste "
                "segment, and found no pair of items bought together often enough"
                + (f" (in at least {sup:.1%} of baskets" if sup else " (")
                + f", with the second item in at least {mined.get('min_confidence', 0):.0%} of "
                "the baskets holding the first). Shoppers here rarely buy the same items together.")
    c.empty_state("No items are bought together often enough for a rule", body)
    st.stop()
if not c.needs("rules", run_id, "Association rules"):
    st.stop()

if c.scope() is not None or c.lens() != "taste":
    st.caption("Rules are found on the baskets of the whole shop and of each taste segment; the "
               "sidebar's lens and filter do not change them.")
seg_opts = {"Every rule": "all", "Whole shop": None}
seg_opts.update({f"Taste segment: {k}": v for k, v in c.segment_options(run_id, "taste").items()})
f = st.columns([2, 2, 1, 1, 1])
scope = f[0].selectbox("Rules for", list(seg_opts), key="rules_scope")
search = f[1].text_input("Item search", placeholder="e.g. lantern or an item code", key="rules_search")
min_support = f[2].number_input("Min support", 0.0, 1.0, 0.0, step=0.005, format="%.3f", key="rules_sup")
min_conf = f[3].slider("Min confidence", 0.0, 1.0, 0.0, step=0.05, key="rules_conf")
min_lift = f[4].number_input("Min lift", 0.0, 1000.0, 1.0, step=0.5, key="rules_lift")

rules = c.q("rules_table", run_id, segment_id=seg_opts[scope], min_support=min_support,
            min_confidence=min_conf, min_lift=min_lift, search=search, limit=5000)
if rules.empty:
    c.empty_state("No rules match", "Loosen the filters (lower support, confidence or lift), or "
                  "clear the item search.")
    st.stop()
st.caption(f"{c.intf(len(rules))} rules" + (" (the 5,000 strongest)" if len(rules) == 5000 else "")
           + (" · strongest lift first" if not isinstance(seg_opts[scope], int) else
              " · only rules this segment follows at least "
              f"{ex.SPECIFIC_RATIO:.1f} times as often as the whole shop, the most specific first"))
tabs = st.tabs(["Table", "Support and confidence", "Network"])
with tabs[0]:
    st.dataframe(rules[["if_bought", "then_buys", "confidence", "lift", "support", "count", "segment"]],
                 hide_index=True, width="stretch", height=520, column_config={
                     "if_bought": st.column_config.TextColumn("If they bought", width="large"),
                     "then_buys": st.column_config.TextColumn("They also buy", width="large"),
                     "segment": "Segment",
                     "support": st.column_config.NumberColumn("Support", format="percent",
                                                              help="Share of baskets with all these items"),
                     "confidence": st.column_config.ProgressColumn(
                         "Confidence", format="percent", min_value=0, max_value=1,
                         help="Share of baskets with the first items that also have the last one"),
                     "lift": st.column_config.NumberColumn(
                         "Lift", format="%.1f×", help="How much likelier than by chance"),
                     "count": st.column_config.NumberColumn("Baskets", format="localized")})
with tabs[1]:
    st.plotly_chart(charts.rules_scatter(rules.head(3000)), key="rules_scatter")
with tabs[2]:
    n = st.slider("Rules shown", 10, 150, 40, step=10, key="rules_graph_n")
    graph = ex.rule_graph(rules, max_rules=n)
    st.plotly_chart(charts.rule_network(graph), key="rules_network")
    st.caption("Items are dots (bigger = in more rules); arrows point from what was bought to what "
               "is bought with it; thicker = higher lift.")
