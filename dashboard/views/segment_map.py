"""Segment map: every shopper on a 2-D map; draw a box or lasso to study, save or export a group."""

import os

import streamlit as st

from core import explore as ex
from dashboard import charts
from dashboard import common as c

# points drawn (WebGL); beyond, a sample plus a density layer of everyone (env: SEGSTUDIO_MAP_POINTS)
MAX_POINTS = int(os.environ.get("SEGSTUDIO_MAP_POINTS", 50_000))

c.page_header("Segment map",
              "Shoppers who behave alike sit close together. Drag a box (or switch to the lasso in "
              "the chart's toolbar) to select a group and see what sets it apart.")
run = c.current_run()
run_id = run["run_id"]
if not c.needs("user_map", run_id, "The segment map"):
    st.stop()

lens, scope = c.lens(), c.scope()
prices = c.shop_has_prices()
c.scope_note(run_id)
features = [f for f in c.q("feature_columns", run_id)
            if prices or f not in ex.MONEY_FEATURES | {"price_sensitivity"}]
groupings = {k: v for k, v in (("taste", "Taste segment"), ("lifecycle", "Lifecycle stage"))
             if not c.q("segments", run_id, lens=k).empty}
if "theme" in c.q("dimensions", run_id):
    groupings["theme"] = "Main theme"
predicted = [k for k in ("purchase", "goal", "churn", "value")
             if prices or k != "value"] if c.q("has_rows", "predictions", run_id) else []
pred_labels = {f"{charts.PREDICTION_LABELS['pred:' + k]} (prediction)": f"pred:{k}"
               for k in predicted if c.q("has_prediction", run_id, k)}
by_label = {**{v: k for k, v in groupings.items()}, **pred_labels,
            **{ex.FEATURE_LABELS[f]: f for f in features}}
options = list(by_label)
if not options:
    c.empty_state("Nothing to colour the map by", "This build has no segments, themes or behaviour "
                  "figures for its shoppers.")
    st.stop()
if st.session_state.get("map_color_by") not in options:
    st.session_state["map_color_by"] = groupings.get(lens, options[0])
ctl = st.columns([2, 2, 3])
choice = ctl[0].selectbox("Colour by", options, key="map_color_by",
                          help="Colour shoppers by their taste segment, lifecycle stage or main "
                               "theme, or by a behaviour")
find = ctl[1].text_input("Find a shopper", key="map_find", placeholder="Customer id",
                         help="Type a customer id (or part of one) to mark them on the map")
color_by = by_label.get(choice)
points, total = c.q("map_points", run_id, color_by=color_by, max_points=MAX_POINTS, lens=lens,
                    scope=scope)
sampled = total > len(points)
if sampled:
    ctl[2].info(f"{c.intf(len(points))} of {c.intf(total)} shoppers are drawn as points to keep "
                "the map fast; the grey shading shows where all of them are. Selections include "
                "every shopper inside the area you draw.", icon=":material/filter_alt:")
found = c.q("find_on_map", run_id, find, lens=lens, scope=scope) if find.strip() else None

map_col, side = st.columns([3, 2], gap="medium")
with map_col:
    fig = charts.segment_map(
        points, color_by=color_by, currency=c.currency(), money=prices,
        labels=c.q("map_labels", run_id, color_by=color_by, lens=lens, scope=scope),
        density=c.q("map_density", run_id, scope=scope) if sampled else None, found=found)
    event = st.plotly_chart(fig, key="segment_map", on_select="rerun", selection_mode=("box", "lasso"),
                            config={"displaylogo": False, "scrollZoom": True,
                                    "modeBarButtonsToRemove": ["autoScale2d", "toImage"]})
    st.caption(f"{c.intf(total)} shoppers · hover a point for a summary · double-click to reset")
    if found is not None:
        if found.empty:
            st.caption(f"No shopper on this map matches \u201c{c.html.escape(find.strip())}\u201d.")
        else:
            top = found.iloc[0]
            more = (f" (and {len(found) - 1} more like it: "
                    f"{', '.join(map(str, found['user_id'][1:]))})" if len(found) > 1 else "")
            st.caption(f"\u2605 Shopper {top['user_id']} is in {top['segment']}{more}.")

# The selection: from the chart event, kept in session state so saving/exporting reruns keep it.
sel = (event or {}).get("selection", {}) if event else {}
has_event = bool(sel.get("points") or sel.get("box") or sel.get("lasso"))
sig = repr((sel.get("box"), sel.get("lasso"), sel.get("point_indices"))) if has_event else None
if has_event and sig != st.session_state.get("_map_sel_sig"):
    st.session_state["selected_users"] = ex.selection_user_ids(c.con(), run_id, dict(sel),
                                                               sampled=sampled, scope=scope)
    st.session_state["selection_definition"] = {"box": sel.get("box"), "lasso": sel.get("lasso"),
                                                "run_id": run_id, "sampled": sampled}
    st.session_state["_map_sel_sig"] = sig
elif not has_event and st.session_state.get("_map_sel_sig"):
    st.session_state.pop("selected_users", None)
    st.session_state["_map_sel_sig"] = None
ids = st.session_state.get("selected_users") or []

with side:
    if not ids:
        with st.container(border=True):
            st.markdown("#### Select a group")
            st.markdown("Drag on the map to draw a box around some shoppers (or pick the lasso in "
                        "the chart toolbar). You'll see here how big the group is, what sets it "
                        "apart from the whole shop, and you can save it as a segment or export it.")
        segs = c.q("segments", run_id, lens=lens, scope=scope)
        if not segs.empty:
            st.markdown("**Taste segments**" if lens == "taste" else "**Lifecycle stages**")
            st.markdown("  \n".join(f"{c.swatch(r.color)}{c.html.escape(str(r.name))} · "
                                    f"{c.intf(r.size)}" for r in segs.itertuples()),
                        unsafe_allow_html=True)
    else:
        summary = ex.group_summary(c.con(), run_id, ids, lens=lens)
        st.markdown("#### Your selection")
        m = st.columns(3)
        m[0].metric("Shoppers", c.intf(summary["size"]))
        m[1].metric("Of all shoppers", c.pct(summary["user_share"]))
        if prices:
            m[2].metric("Revenue share", c.pct(summary["revenue_share"]))
        else:
            m[2].metric("Busiest hours", summary["busiest_hours"] or "No clear peak")
        mix = summary["segment_mix"]
        st.markdown(("**Taste segments in it:** " if lens == "taste" else "**Lifecycle stages in it:** ")
                    + " · ".join(
            f"{c.swatch(r.color)}{c.html.escape(str(r.segment))} {c.intf(r.users)}"
            for r in mix.head(6).itertuples()), unsafe_allow_html=True)
        tabs = st.tabs(["What sets it apart", "Behaviour", "Save or export"])
        with tabs[0]:
            traits = ex.group_traits(c.con(), run_id, ids, top=5, min_lift=1.5,
                                     min_users=max(3, -(-len(ids) // 10)))
            if traits.empty:
                st.caption("Nothing sets these shoppers clearly apart: no theme, category, brand "
                           "or price band takes 1.5 times the whole shop's share of their activity "
                           "among at least a tenth of them.")
            for dim, d in traits.groupby("dimension", sort=False):
                st.markdown(f"**{ex.DIMENSION_LABELS.get(dim, dim)}**")
                st.plotly_chart(charts.lift_bars(d.rename(columns={"value": "label"}),
                                                 support_col="group_share", pop_col="population_share",
                                                 color="#4C5FD5"),
                                key=f"sel_traits_{dim}", config={"displayModeBar": False})
            if not traits.empty:
                st.caption("Lift: how many times more of the group's activity goes there than the "
                           "whole shop's (1.5 times or more, among at least a tenth of the group). "
                           "Percentages: share of activity, group vs shop.")
        with tabs[1]:
            c.behaviour_table(summary["features"], "Selection")
        with tabs[2]:
            with st.form("save_selection", clear_on_submit=False):
                name = st.text_input("Segment name", placeholder="e.g. Big-basket gift buyers",
                                     key="save_name")
                desc = st.text_input("Description (optional)", key="save_desc")
                saved = st.form_submit_button("Save as a segment", type="primary",
                                              icon=":material/bookmark_add:")
            if saved:
                try:
                    sid = ex.save_segment(c.store(), name, ids, description=desc, source_run_id=run_id,
                                          definition=st.session_state.get("selection_definition"))
                    st.session_state["last_saved"] = {"saved_id": sid, "name": " ".join(name.split())}
                    st.success(f"Saved “{' '.join(name.split())}” ({c.intf(len(ids))} shoppers). "
                               "Find it under Compare and Export.", icon=":material/check_circle:")
                except ex.SavedSegmentError as e:
                    st.error(str(e))
            frame = ex.export_frame(c.con(), run_id, ids, ex.DEFAULT_COLUMNS, lens=lens)
            fname = (st.session_state.get("last_saved", {}).get("name") or "selection")
            fname = "".join(ch if ch.isalnum() else "-" for ch in fname.lower()).strip("-") or "selection"
            st.download_button(f"Download CSV ({c.intf(len(frame))} shoppers)", ex.to_csv_bytes(frame),
                               file_name=f"{fname}.csv", mime="text/csv", key="download_selection_csv",
                               on_click="ignore",
                               icon=":material/download:")
            st.download_button("Download Parquet", ex.to_parquet_bytes(frame),
                               file_name=f"{fname}.parquet", mime="application/octet-stream",
                               key="download_selection_parquet", on_click="ignore")
            st.caption("Columns: shopper id, segment, recency, orders, net spend, average order "
                       "value (before returns). More columns on the Export page.")
