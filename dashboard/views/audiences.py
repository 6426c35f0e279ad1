"""Audiences: build a segment from conditions (live count), save it, freeze it for a campaign
with a hold-out group, compare the groups afterwards, and export for a campaign tool."""

import json

import streamlit as st

from core import explore as ex
from core.audiences import DefinitionError, describe, members
from core.audiences.audience import AudienceError, compare, freeze, list_audiences
from core.audiences.campaign import campaign_frame, list_exports, log_export
from core.audiences.conditions import ACTIONS, FEATURE_WORDS, SCORE_WORDS
from core.predictions.read import scores_table
from dashboard import common as c
from dashboard import timecharts

c.page_header("Audiences", "Describe the shoppers you want in plain conditions, see how many match "
              "as you go, save the segment, and freeze it for a campaign with a hold-out group.")
run = c.current_run()
run_id = run["run_id"]
con = c.con()
ss = st.session_state
ss.setdefault("builder", [])
if ss.get("aud_flash"):
    st.success(ss.pop("aud_flash"))

# ----------------------------------------------------------------------------- the builder
st.subheader("Segment builder")
if c.scope() is not None:
    st.caption("The sidebar's filter does not apply here: add an “In a taste segment or "
               "lifecycle stage” condition instead.")
KIND_LABELS = {"prediction": "Predicted behaviour (top % likely to...)",
               "activity": "Bought or viewed something (within N days)",
               "like": "Bought anything like a phrase",
               "segment": "In a taste segment or lifecycle stage",
               "feature": "A shopper figure (orders, spend, recency...)",
               "attribute": "An attribute (country...)",
               "selection": "The current map selection",
               "saved": "In a saved segment"}
with st.container(border=True):
    kind = st.selectbox("Add a condition", list(KIND_LABELS), format_func=KIND_LABELS.get,
                        key="b_kind")
    cond: dict | None = None
    if kind == "prediction":
        have = [s for s in SCORE_WORDS if con.execute(
            "SELECT count(*) FROM predictions WHERE run_id = ? AND score = ?", [run_id, s]
        ).fetchone()[0]] if c.q("has_rows", "predictions", run_id) else []
        if not have:
            st.info("This build has no predictions yet: they come with the next `segstudio build`.")
        else:
            a, b = st.columns(2)
            score = a.selectbox("Score", have, format_func=SCORE_WORDS.get, key="b_score")
            top = b.slider("Top %", 1, 100, 20, key="b_top")
            cond = {"kind": "prediction", "score": score, "top_percent": top}
    elif kind in ("activity", "like"):
        a, b, d = st.columns(3)
        action = a.selectbox("Did", [k for k in ACTIONS if k != "reviewed"], key="b_action")
        days = b.number_input("Within the last ... days (0 = any time)", 0, 3650, 30, key="b_days")
        cond = {"kind": kind, "action": action}
        if days:
            cond["within_days"] = int(days)
        if kind == "activity":
            target = d.selectbox("What", ["anything", "a theme", "a category"], key="b_target")
            if target == "a theme":
                rows = con.execute("SELECT theme_id, label FROM theme_info WHERE run_id = ? "
                                   "ORDER BY buyers DESC", [run_id]).fetchall()
                if rows:
                    t = st.selectbox("Theme", rows, format_func=lambda r: r[1], key="b_theme")
                    cond.update(theme=int(t[0]), theme_label=t[1])
            elif target == "a category":
                cats = [r[0] for r in con.execute(
                    "SELECT DISTINCT trim(split_part(unnest(string_split(category_path, '|')), "
                    "' > ', 1)) AS c FROM items WHERE category_path IS NOT NULL ORDER BY 1"
                ).fetchall() if r[0]]
                if cats:
                    cond["category"] = st.selectbox("Category", cats, key="b_cat")
                else:
                    st.caption("This shop's items have no categories; use a theme or a phrase.")
        else:
            phrase = d.text_input("Like", placeholder="christmas lights", key="b_phrase")
            if phrase:
                from core.audiences.like import match_items

                try:
                    found = match_items(con, phrase, run["params"].get("text_model"))
                except DefinitionError as e:
                    found = []
                    st.warning(str(e))
                if found:
                    st.caption("Matched items: " + "; ".join(
                        f"{f['title']} ({f['similarity']:.2f})" for f in found))
                    cond.update(phrase=phrase, items=[f["item_id"] for f in found])
                else:
                    st.caption("No item is close enough to this phrase; try other words.")
                    cond = None
            else:
                cond = None
    elif kind == "segment":
        a, b = st.columns(2)
        lens_ = a.radio("Lens", ["taste", "lifecycle"], horizontal=True, key="b_lens",
                        format_func=lambda x: "Taste segment" if x == "taste" else "Lifecycle stage")
        opts = c.segment_options(run_id, lens_)
        if opts:
            name = b.selectbox("Which", list(opts), key="b_seg")
            cond = {"kind": "segment", "lens": lens_, "segment_id": int(opts[name]),
                    "name": name.split(" (")[0]}
    elif kind == "feature":
        a, b, d = st.columns(3)
        feat = a.selectbox("Figure", list(FEATURE_WORDS), format_func=FEATURE_WORDS.get,
                           key="b_feat")
        op = b.selectbox("Is", [">=", "<=", ">", "<", "="], key="b_op")
        val = d.number_input("Value", value=2.0, key="b_val")
        cond = {"kind": "feature", "feature": feat, "op": op, "value": float(val)}
    elif kind == "attribute":
        keys = [r[0] for r in con.execute(
            "SELECT DISTINCT unnest(json_keys(attributes)) FROM users WHERE attributes IS NOT NULL "
            "ORDER BY 1").fetchall()]
        if not keys:
            st.caption("This shop has no shopper attributes.")
        else:
            a, b = st.columns(2)
            key = a.selectbox("Attribute", keys, key="b_attr")
            vals = [r[0] for r in con.execute(
                "SELECT DISTINCT json_extract_string(attributes, ?) AS v FROM users WHERE v IS NOT "
                "NULL ORDER BY 1 LIMIT 500", [f'$."{key}"']).fetchall()]
            pick = b.multiselect("Is one of", vals, key="b_attr_vals")
            if pick:
                cond = {"kind": "attribute", "attribute": key, "values": pick}
    elif kind == "selection":
        sel = ss.get("selected_users") or []
        if not sel:
            st.caption("Select shoppers on the **Segment map** first (lasso or box).")
        else:
            cond = {"kind": "selection", "user_ids": list(map(str, sel))}
    elif kind == "saved":
        saved = ex.list_saved(con)
        if saved.empty:
            st.caption("No saved segments yet.")
        else:
            pick = st.selectbox("Saved segment", saved.itertuples(), format_func=lambda r: r.name,
                                key="b_saved")
            cond = {"kind": "saved", "saved_id": int(pick.saved_id), "name": pick.name}
    a, b = st.columns([1, 3])
    negate = a.checkbox("NOT (exclude these)", key="b_not")
    if b.button("Add condition", icon=":material/add:", disabled=cond is None, key="b_add"):
        ss["builder"].append({"not": cond} if negate else cond)
        st.rerun()

conds = ss["builder"]
if conds:
    how = st.radio("Shoppers who meet", ["all", "any"], horizontal=True, key="b_how",
                   format_func=lambda x: "all of these" if x == "all" else "any of these")
    for i, cnd in enumerate(conds):
        a, b = st.columns([6, 1])
        a.markdown(f"- {describe(cnd)}")
        if b.button("Remove", key=f"b_rm_{i}"):
            conds.pop(i)
            st.rerun()
    definition = conds[0] if len(conds) == 1 else {how: conds}
    try:
        ids = members(con, run_id, definition)
    except DefinitionError as e:
        st.error(str(e))
        st.stop()
    st.metric("Shoppers who match", c.intf(len(ids)))
    st.caption(f"Definition: {describe(definition)}")
    s1, s2 = st.columns(2)
    with s1.container(border=True):
        st.markdown("**Save as a segment**")
        name = st.text_input("Name", key="b_save_name")
        mode = st.radio("Keeps", ["dynamic", "static"], horizontal=True, key="b_mode",
                        format_func=lambda m: "refreshing with every build" if m == "dynamic"
                        else "these shoppers (a snapshot)")
        if st.button("Save", key="b_save", disabled=not name or not ids):
            try:
                ex.save_segment(c.store(), name, ids, description=describe(definition),
                                source_run_id=run_id,
                                definition={"builder": definition, "mode": mode})
                ss["aud_flash"] = f"Saved '{name}' ({c.intf(len(ids))} shoppers)."
                st.rerun()
            except ValueError as e:
                st.error(str(e))
    with s2.container(border=True):
        st.markdown("**Freeze for a campaign**")
        aname = st.text_input("Audience name", key="b_aud_name")
        hold = st.slider("Hold-out group (kept out of the campaign)", 0, 50, 10, format="%d%%",
                         key="b_hold")
        seed = st.number_input("Seed (the same seed draws the same hold-out)", 0, 10**9, 42,
                               key="b_seed")
        if st.button("Freeze", key="b_freeze", disabled=not aname or not ids):
            try:
                aid = freeze(c.store(), aname, run_id=run_id, definition=definition,
                             holdout_share=hold / 100, seed=int(seed))
                ss["aud_flash"] = f"Audience {aid} '{aname}' frozen."
                st.rerun()
            except (AudienceError, DefinitionError) as e:
                st.error(str(e))
else:
    st.caption("Add conditions above; the count updates as you go.")

# ----------------------------------------------------------------------------- audiences
st.subheader("Campaign audiences")
auds = list_audiences(con)
if auds.empty:
    st.caption("No audiences yet: freeze a segment above when a campaign starts.")
else:
    pick = st.selectbox("Audience", auds.itertuples(), key="aud_pick",
                        format_func=lambda r: f"{r.name} (frozen {r.frozen_at:%d %b %Y}, "
                                              f"{r.treated:,} targeted, {r.holdout:,} held out)")
    rcon = con
    out = compare(rcon, int(pick.audience_id))
    st.caption(f"{pick.description}. {out['days_since']} days of data since the freeze.")
    st.plotly_chart(timecharts.treated_vs_holdout(out, currency=c.currency()), key="aud_chart")
    for w in out["warnings"]:
        st.info(w)
    fmt = st.radio("Export as", ["CSV", "CSV for Excel (with BOM)", "Parquet", "JSON lines"],
                   horizontal=True, key="aud_fmt")
    grp = st.radio("Shoppers", ["treated", "holdout", "all"], horizontal=True, key="aud_grp",
                   format_func={"treated": "Targeted", "holdout": "Held out",
                                "all": "Both"}.get)
    friendly = st.toggle("Friendly column names", value=True, key="aud_friendly")
    groups = ["treated", "holdout"] if grp == "all" else [grp]
    uids = [r[0] for r in rcon.execute(
        "SELECT user_id FROM records.audience_members WHERE audience_id = ? AND "
        "list_contains(?, grp) ORDER BY user_id", [int(pick.audience_id), groups]).fetchall()]
    frame = campaign_frame(ex.export_frame(rcon, int(pick.run_id), uids), segment_name=pick.name,
                           definition=pick.description, currency=c.currency(),
                           friendly=friendly, scores=scores_table(rcon, int(pick.run_id)))
    ext = {"CSV": "csv", "CSV for Excel (with BOM)": "csv", "Parquet": "parquet",
           "JSON lines": "jsonl"}[fmt]
    if ext == "csv":
        data = ex.to_csv_bytes(frame)
        if "BOM" in fmt:
            data = b"\xef\xbb\xbf" + data
    elif ext == "parquet":
        data = ex.to_parquet_bytes(frame)
    else:
        from core.audiences.campaign import _payload

        data = "".join(json.dumps(_payload(r), default=str, ensure_ascii=False) + "\n"
                       for r in frame.to_dict("records")).encode("utf-8")
    stem = "".join(ch if ch.isalnum() else "-" for ch in pick.name.lower()).strip("-") or "audience"
    user = getattr(getattr(st, "user", None), "email", None) or ss.get("signed_in_as") or "dashboard"

    def _log():
        log_export(c.store(), what=f"audience {pick.audience_id} '{pick.name}' ({grp})",
                   rows=len(frame), path=f"{stem}.{ext} (download)", fmt=ext, who=str(user))

    st.download_button(f"Download {c.intf(len(frame))} shoppers", data, file_name=f"{stem}.{ext}",
                       type="primary", icon=":material/download:", key="aud_download",
                       on_click=_log)

st.subheader("Export log")
log = list_exports(con)
if log.empty:
    st.caption("No exports recorded yet.")
else:
    st.dataframe(log, hide_index=True, width="stretch", column_config={
        "export_id": None, "exported_at": st.column_config.DatetimeColumn("When",
                                                                          format="D MMM YYYY, HH:mm"),
        "who": "Who", "what": "What", "rows": st.column_config.NumberColumn("Rows",
                                                                            format="localized"),
        "path": "File", "format": "Format"})
