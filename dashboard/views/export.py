"""Export: segment lists for campaigns, as CSV (spreadsheet-safe) or Parquet."""

import streamlit as st

import json

from core import explore as ex
from core.audiences.campaign import FRIENDLY, _payload, campaign_frame, list_exports, log_export
from core.predictions.read import scores_table
from dashboard import bulk_recs, common as c

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
    want_recs = "recommendations" in (cols or [])
    n_recs = ex.RECOMMENDED
    if want_recs:
        n_recs = int(st.number_input(
            "Recommended products per shopper", min_value=1, max_value=10, value=ex.RECOMMENDED,
            key="export_n_recs", help="Each shopper's top picks from the hybrid recommender, "
            "exactly what the Recommendations page shows for that shopper: from their purchases, "
            "from what they looked at if they never bought, or the best sellers for a shopper "
            "the build does not know."))
    campaign = st.toggle("For a campaign tool", value=False, key="export_campaign",
                         help="The segment's name and definition on every row, friendly column "
                              "names, whole-number counts, money in cents, prediction scores.")
    fmt = st.radio("Format", ["CSV", "CSV for Excel (with BOM)", "Parquet"]
                   + (["JSON lines (one payload per shopper)"] if campaign else []),
                   horizontal=True, key="export_format")
    use = st.radio("For", ["A spreadsheet", "Another tool"], horizontal=True, key="export_for",
                   help="A spreadsheet (safe): text that starts with = + - @ gets a leading ' so "
                        "Excel or Sheets shows it instead of running it. Another tool: every value "
                        "exactly as stored.")
for_spreadsheet = use == "A spreadsheet"
kind, val = sources[src]
label, ids, _ = ex.resolve_group(c.con(), run_id, (kind, val), lens=lens, scope=scope)
base = [k for k in (cols or ["id"]) if k != "recommendations"]
frame = ex.export_frame(c.con(), run_id, ids, base if "id" in base else ["id"] + base, lens=lens)
limit = bulk_recs.max_shoppers(c.q("shop_totals")["items"]) if want_recs else 0
if want_recs and len(frame) > limit:
    st.info(f"Recommended products are worked out here for lists of up to "
            f"{c.intf(limit)} shoppers of this shop; this one has {c.intf(len(frame))}, so "
            "the file below leaves them out. For the whole list, run "
            f"`{bulk_recs.cli_command(n_recs, '--segment N' if kind == 'segment' else '--saved NAME')}`"
            " (add `--engine ray` to share the work across a Ray cluster).")
elif want_recs:
    frame = ex.add_recommendations(frame, bulk_recs.recommendations(run_id, list(frame["user_id"]),
                                                                    n_recs), n_recs)
if "id" not in base:
    frame = frame.drop(columns=["user_id"])
if scope is not None:
    label += " " + c.q("segment_names", run_id, lens=scope[0]).get(scope[1], "")
if campaign:
    frame = campaign_frame(frame, segment_name=label, definition=label, currency=c.currency(),
                           scores=scores_table(c.con(), run_id))
stem = "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-")
stem = "-".join(p for p in stem.split("-") if p) or "shoppers"
with right:
    with st.container(border=True):
        st.metric("Shoppers", c.intf(len(frame)))
        st.caption(f"{len(frame.columns)} columns")
        if fmt.startswith("CSV"):
            data, ext = ex.to_csv_bytes(frame, for_spreadsheet), "csv"
            if "BOM" in fmt:
                data = b"\xef\xbb\xbf" + data
        elif fmt == "Parquet":
            data, ext = ex.to_parquet_bytes(frame, for_spreadsheet), "parquet"
        else:
            data, ext = "".join(json.dumps(_payload(r), default=str, ensure_ascii=False) + "\n"
                                for r in frame.to_dict("records")).encode("utf-8"), "jsonl"
        who = getattr(getattr(st, "user", None), "email", None) or "dashboard"

        def _log():
            log_export(c.store(), what=label, rows=len(frame), path=f"{stem}.{ext} (download)",
                       fmt=ext, who=str(who))

        st.download_button(f"Download {ext.upper() if ext != 'jsonl' else 'JSON lines'}", data,
                           file_name=f"{stem}.{ext}", type="primary", icon=":material/download:",
                           key="export_download", on_click=_log)
st.markdown("**Preview**")
# the file keeps its column names; hovering a header says what it holds, in words and currency
# (e.g. that the average order value is before returns, beside spend net of them)
meaning = {col: FRIENDLY[col].format(c=c.currency()) for col in frame.columns if col in FRIENDLY
           and FRIENDLY[col] != col}
st.dataframe(frame.head(50), hide_index=True, width="stretch",
             column_config={col: st.column_config.Column(col, help=text)
                            for col, text in meaning.items()})

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

st.subheader("Export log")
log = list_exports(c.con())
if log.empty:
    st.caption("No exports recorded yet: every download here, every `segstudio export` and every "
               "audience export is listed with who, when, what and how many rows.")
else:
    st.dataframe(log, hide_index=True, width="stretch", column_config={
        "export_id": None,
        "exported_at": st.column_config.DatetimeColumn("When", format="D MMM YYYY, HH:mm"),
        "who": "Who", "what": "What",
        "rows": st.column_config.NumberColumn("Rows", format="localized"),
        "path": "File", "format": "Format"})
