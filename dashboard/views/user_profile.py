"""Shopper profile: who a shopper is, what they did, what they prefer, who is like them."""

import pandas as pd
import streamlit as st

from core import explore as ex
from core.explore import recs
from core.predictions.read import TITLES, shopper_scores
from core.trends import shopper_activity
from dashboard import charts, timecharts
from dashboard import common as c

c.page_header("Shopper profile", "Look up a shopper by id.")
run = c.current_run()
run_id = run["run_id"]
lens, scope = c.lens(), c.scope()
prices = c.shop_has_prices()
c.scope_note(run_id)

default = st.session_state.get("profile_user") or st.query_params.get("user") or ""
typed = st.text_input("Shopper id", value=default, placeholder="e.g. 17850", key="profile_query")
matches = c.q("find_users", typed or "", 20, run_id=run_id, scope=scope)
if typed and typed in matches:
    user_id = typed
elif matches:
    user_id = st.selectbox("Matching shoppers" if typed else "Or pick one", matches, key="profile_pick")
else:
    c.empty_state("No shopper matches", f"No shopper id contains “{c.html.escape(typed)}”"
                  + (" among the shoppers in the sidebar's filter" if scope else "") + ". "
                  "Shopper ids are shown on the map's hover cards and in exports.")
    st.stop()
st.session_state["profile_user"] = user_id

p = c.q("user_profile", run_id, user_id, lens=lens)
if p is None:
    c.empty_state("Unknown shopper", f"There is no shopper {c.html.escape(user_id)} in the store.")
    st.stop()

color = p["segment_color"] or ex.UNASSIGNED_COLOR
st.markdown(f"### Shopper {c.html.escape(user_id)}")
for name in sorted(p["segments"], key=lambda n: n != lens):  # the sidebar's lens first
    sg = p["segments"][name]
    st.markdown(f'{c.swatch(sg["color"], 14)}{ex.LENS_LABELS[name]}: **{c.html.escape(sg["name"])}**'
                f' — {c.html.escape(sg["rule"] or sg["description"] or "")}', unsafe_allow_html=True)
if p.get("main_theme"):
    from core.themes.label import MIXED, is_mixed

    st.caption(f"Main theme: none clear (most of what they bought is in a mixed group of items: "
               f"{p['main_theme'][len(MIXED):]})" if is_mixed(p["main_theme"])
               else f"Main theme: {p['main_theme']}")
f = p["features"]
m = st.columns(5 if prices else 3)
m[0].metric("Orders", c.intf(f.get("frequency")))
m[1].metric("Last purchase", c.days(f.get("recency_days")) + (" ago" if f.get("recency_days") is not None
                                                             and f.get("recency_days") >= 1 else ""))
m[2].metric("Typical time of day", c.feature_value("mean_hour", f.get("mean_hour")))
if prices:
    m[3].metric("Net spend", c.money(f.get("monetary")))
    m[4].metric("Average order", c.money(f.get("avg_order_value")))
if p["attributes"]:
    st.caption(" · ".join(f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in p["attributes"].items()))

scores = shopper_scores(c.con(), run_id, user_id)
if not scores.empty:
    st.markdown("**Predictions**")
    pc = st.columns(len(scores))
    for col, r in zip(pc, scores.itertuples()):
        title = TITLES.get(r.score, r.score)
        value = c.money(r.value) if r.score == "value" else f"{r.value:.0%}"
        col.metric(title, value, help=f"Higher than {r.percentile:.0f}% of shoppers. "
                   + ("What pushes it up: " + "; ".join(r.reasons) + "."
                      if r.percentile >= 50 and r.reasons is not None and len(r.reasons) else ""))
        high = r.percentile >= 50      # "top 1%" for the highest, "bottom 2%" for the lowest
        rank = (f"top {max(1, round(100 - r.percentile)):.0f}%" if high
                else f"bottom {max(1, round(r.percentile)):.0f}%")
        # what pushes a score up is worth saying only where the score is high
        why = r.reasons[0] if high and r.reasons is not None and len(r.reasons) else ""
        col.caption(f"{rank} of shoppers" + (f" · {why}" if why else ""))
    st.caption("Probabilities over the horizon set for the build (see **Model and data** for "
               "the definitions and how well each did when tested on held-out months).")

tabs = st.tabs(["Preferences", "Timeline", "Similar shoppers", "Recommendations", "All behaviour"])
with tabs[0]:
    dims = [*c.q("dimensions", run_id), "hour", "weekday"]  # only what the data has
    cols = st.columns(2)
    shown = 0
    for dim in dims:
        time_dim = dim in ("hour", "weekday")
        pref = c.q("user_preferences", run_id, user_id, dim, 8,
                   every_value=time_dim or dim == "price_band", lens=lens)
        if pref.empty or not (pref["user"] > 0).any():
            continue
        if dim == "hour":
            pref = pref.assign(_k=pd.to_numeric(pref["value"], errors="coerce")).sort_values("_k")
            pref["value"] = [f"{int(k):02d}:00" if k == k else v for k, v in zip(pref["_k"], pref["value"])]
        with cols[shown % 2]:
            st.markdown(f"**{ex.DIMENSION_LABELS.get(dim, dim)}**")
            st.plotly_chart(charts.preference_bars(pref, color, vertical=time_dim), key=f"pref_{dim}",
                            config={"displayModeBar": False})
        shown += 1
    if not shown:
        st.info("No preference data for this shopper.")
    else:
        st.caption("Share of this shopper's activity, against the average shopper of their "
                   + ("taste segment" if lens == "taste" else "lifecycle stage")
                   + " and of the whole shop.")
with tabs[1]:
    tl = c.q("user_timeline", user_id, 500)
    if tl.empty:
        st.info("No events for this shopper.")
    else:
        act = shopper_activity(c.con(), user_id)
        if not act.empty:
            st.plotly_chart(timecharts.activity(act, currency=c.currency()), key="profile_activity",
                            config={"displayModeBar": False})
        counts = tl["event_type"].value_counts()
        st.caption(" · ".join(f"{c.intf(v)} {k}{'s' if v != 1 else ''}" for k, v in counts.items())
                   + (" (latest 500 shown)" if len(tl) == 500 else ""))
        keep = [col for col in ["ts", "event_type", "title", "category", "quantity", "unit_price",
                                "basket_id"] if col in ("ts", "event_type", "title") or tl[col].notna().any()]
        st.dataframe(tl[keep],
                     hide_index=True, width="stretch", height=420, column_config={
                         "ts": st.column_config.DatetimeColumn("When", format="D MMM YYYY, HH:mm"),
                         "event_type": "What", "title": "Item", "category": "Category",
                         "quantity": st.column_config.NumberColumn("Qty"),
                         "unit_price": st.column_config.NumberColumn(f"Price ({c.currency()})",
                                                                     format="%.2f"),
                         "basket_id": "Order"})
with tabs[2]:
    if not c.q("has_rows", "profiles", run_id):
        st.info("Similar shoppers need the profile vectors of a build.")
    else:
        near = c.profile_index(run_id).nearest(user_id, 10)
        if near.empty:
            st.info("This shopper has no profile vector in this build.")
        else:
            info = c.q("user_summaries", run_id, tuple(near["user_id"]), lens=lens)
            table = near.merge(info, on="user_id", how="left")
            st.dataframe(table[["user_id", "similarity", "segment", "orders"] + (["spend"] if prices else [])
                               + ["recency_days"]],
                         hide_index=True, width="stretch", column_config={
                             "user_id": "Shopper",
                             "similarity": st.column_config.ProgressColumn("Similarity", min_value=0,
                                                                           max_value=1, format="%.2f"),
                             "segment": ex.LENS_LABELS[lens], "orders": st.column_config.NumberColumn("Orders"),
                             "spend": st.column_config.NumberColumn(f"Spend ({c.currency()})",
                                                                    format="%.2f"),
                             "recency_days": st.column_config.NumberColumn("Days since last purchase",
                                                                           format="%.0f")})
            st.caption("Nearest shoppers by their learned profile (cosine similarity, 1 = identical).")
with tabs[3]:
    if not recs.available():
        st.info("Recommendation previews appear here once the recommender module is installed.")
    else:
        with st.spinner("Asking the recommenders..."):
            prev = c.recommend_preview("user", run_id, user_id=user_id, names=("hybrid",))
        c.show_recommendations(prev, key="profile_recs")
with tabs[4]:
    rows = [{"Behaviour": ex.FEATURE_LABELS[k], "This shopper": c.feature_value(k, f.get(k))}
            for k in ex.FEATURE_LABELS if k in f and f.get(k) is not None and f.get(k) == f.get(k)]
    st.dataframe(rows, hide_index=True, width="stretch")
