"""Export: segment lists for campaigns, as CSV (spreadsheet-safe) or Parquet."""

import streamlit as st

from core import explore as ex
from dashboard import common as c

c.page_header("Export", "Download a list of shoppers for a campaign. For a spreadsheet, text that "
              "could run as a formula is neutralised (CSV and Parquet).")
run = c.current_run()
run_id = run["run_id"]
lens, scope = c.lens(), c.scope()
c.scope_note(run_id)

sources: dict[str, tuple] = {}
noun = "Taste segment" if lens == "taste" else "Lifecycle stage"
for label, sid in c.segment_options(run_id, lens, scope).items():
    sources[f"{noun}: {label}"] = ("segment", sid)
saved = ex.list_saved(c.con())
for r in saved.itertuples():
    sources[f"Saved: {r.name} ({c.intf(r.size)} shoppers)"] = ("saved", int(r.saved_id))
if st.session_state.get("selected_users"):
    sources[f"Current map selection ({c.intf(len(st.session_state['selected_users']))} shoppers)"] = \
        ("users", tuple(st.session_state["selected_users"]))
if not sources:
    c.empty_state("Nothing to export yet", "Segments appear after a build; saved selections after you "
                  "save one on the **Segment map**.")
    st.stop()

left, right = st.columns([2, 1])
with left:
    src = st.selectbox("Shoppers", list(sources), key="export_source")
    cols = st.multiselect("Columns", list(ex.COLUMN_GROUPS), default=list(ex.DEFAULT_COLUMNS),
                          format_func=lambda k: ex.COLUMN_GROUPS[k], key="export_columns")
    fmt = st.radio("Format", ["CSV", "Parquet"], horizontal=True, key="export_format")
    use = st.radio("For", ["A spreadsheet", "Another tool"], horizontal=True, key="export_for",
                   help="A spreadsheet (safe): text that starts with = + - @ gets a leading ' so "
                        "Excel or Sheets shows it instead of running it. Another tool: every value "
                        "exactly as stored.")
for_spreadsheet = use == "A spreadsheet"
kind, val = sources[src]
label, ids, _ = ex.resolve_group(c.con(), run_id, (kind, val), lens=lens, scope=scope)
frame = ex.export_frame(c.con(), run_id, ids, cols or ["id"], lens=lens)
if scope is not None:
    label += " " + c.q("segment_names", run_id, lens=scope[0]).get(scope[1], "")
stem = "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-")
stem = "-".join(p for p in stem.split("-") if p) or "shoppers"
with right:
    with st.container(border=True):
        st.metric("Shoppers", c.intf(len(frame)))
        st.caption(f"{len(frame.columns)} columns")
        if fmt == "CSV":
            st.download_button("Download CSV", ex.to_csv_bytes(frame, for_spreadsheet), file_name=f"{stem}.csv",
                               mime="text/csv", type="primary", icon=":material/download:",
                               key="export_download")
        else:
            st.download_button("Download Parquet", ex.to_parquet_bytes(frame, for_spreadsheet), file_name=f"{stem}.parquet",
                               mime="application/octet-stream", type="primary",
                               icon=":material/download:", key="export_download")
st.markdown("**Preview**")
st.dataframe(frame.head(50), hide_index=True, width="stretch")

if not saved.empty:
    st.subheader("Saved segments")
    st.dataframe(saved[["name", "description", "size", "created_at"]], hide_index=True, width="stretch",
                 column_config={"name": "Name", "description": "Description",
                                "size": st.column_config.NumberColumn("Shoppers", format="localized"),
                                "created_at": st.column_config.DatetimeColumn("Saved",
                                                                              format="D MMM YYYY, HH:mm")})
    with st.expander("Delete a saved segment"):
        names = {f"{r.name} ({c.intf(r.size)} shoppers)": int(r.saved_id) for r in saved.itertuples()}
        victim = st.selectbox("Saved segment", list(names), key="delete_pick")
        if st.button("Delete", key="delete_saved", icon=":material/delete:"):
            ex.delete_saved(c.store(), names[victim])
            st.success("Deleted.")
            st.rerun()
