"""Recommend: what would we recommend to a shopper, a segment, an edited basket or a persona?"""

import streamlit as st

from core.explore import recs
from dashboard import common as c

c.page_header("Recommend", "A live preview of what the recommenders would suggest, and why.")
run = c.current_run()
run_id = run["run_id"]
if not recs.available():
    c.empty_state("Recommendations are not available yet",
                  "The recommender module is not installed in this Segment Studio.")
    st.stop()

with st.spinner("Preparing the recommenders (once per build)..."):
    eng = c.rec_engine(run_id)
names = recs.recommender_names(eng)
EXTRA_LABELS = {"tifu_knn": "Buy again + similar shoppers", "next_basket": "Next basket (learned)"}
label = lambda n: c.RECOMMENDER_LABELS.get(n, EXTRA_LABELS.get(n, n))  # noqa: E731


def bandit_pick(run: dict, user_id: str):
    """(segment name, recommender) the replay chose for this shopper's taste segment, if any."""
    b = ((run["metrics"].get("evaluate") or {}).get("bandit") or {}).get("new_items") or {}
    row = c.con().execute("SELECT i.name FROM segments s JOIN segment_info i USING (run_id, "
                          "segment_id) WHERE s.run_id = ? AND s.user_id = ?",
                          [run["run_id"], str(user_id)]).fetchone()
    seg = b.get("segments", {}).get(row[0]) if row else None
    return (row[0], seg["choice"]) if seg and seg["choice"] in names else None

mode = st.segmented_control("Recommend for", ["A shopper", "A segment", "An edited basket", "A persona"],
                            default="A shopper", key="rec_mode") or "A shopper"
left, right = st.columns([1, 2], gap="large")
kwargs, many = None, mode in ("A shopper", "An edited basket")
with left:
    if many:
        chosen = st.multiselect("Recommenders side by side", names,
                                default=[x for x in ("hybrid", "item_knn", "popularity") if x in names],
                                format_func=label, key="rec_models", max_selections=4)
    n = st.slider("How many suggestions", 3, 20, 6, key="rec_n")
    if mode == "A shopper":
        q = st.text_input("Shopper id", key="rec_user_q", value=st.session_state.get("profile_user") or "")
        users = c.q("find_users", q, 20)
        if users:
            kwargs = {"kind": "user", "user_id": st.selectbox("Shopper", users, key="rec_user"),
                      "names": tuple(chosen)}
            pick = bandit_pick(run, kwargs["user_id"])
            if pick and st.toggle(f"Use the recommender chosen for {pick[0]}: {label(pick[1])}",
                                  key="rec_bandit",
                                  help="Chosen per segment by the replay on held-out baskets "
                                       "(Model and data → Which recommender for which segment)."):
                kwargs["names"] = (pick[1],)
        elif q.strip():
            st.caption("No shopper has that id: a new shopper gets the shop's best sellers.")
            kwargs = {"kind": "user", "user_id": q.strip(), "names": tuple(chosen)}
        else:
            st.info("Type a shopper id.")
    elif mode == "A segment":
        opts = c.segment_options(run_id)
        if opts:
            kwargs = {"kind": "segment", "segment_id": opts[st.selectbox("Segment", list(opts), key="rec_seg")]}
        else:
            st.info("This build has no segments.")
    elif mode == "An edited basket":
        top = c.q("top_items", run_id, None, n=400)
        items = {f"{r.title} ({r.item_id})": r.item_id for r in top.itertuples()}
        who = st.text_input("Start from a shopper's history (optional)", key="rec_basket_user",
                            placeholder="shopper id, or leave empty for a fresh basket")
        if who and who not in set(c.q("find_users", who, 5)):
            st.warning("No shopper with that id; starting from an empty basket.")
            who = ""
        add = st.multiselect("Add to the basket", list(items), key="rec_add",
                             default=[] if who else list(items)[:2])
        remove = []
        if who:
            tl = c.q("user_timeline", who, 500)
            bought = tl[tl["event_type"] == "purchase"].drop_duplicates("item_id")
            hist = {f"{r.title} ({r.item_id})": r.item_id for r in bought.itertuples()}
            remove = st.multiselect("Remove from their history", list(hist), key="rec_remove")
            kwargs = {"kind": "basket", "user_id": who, "add": tuple(items[a] for a in add),
                      "remove": tuple(hist[r] for r in remove), "names": tuple(chosen)}
        elif add:
            kwargs = {"kind": "basket", "basket": tuple(items[a] for a in add), "names": tuple(chosen)}
        else:
            st.info("Add some items to the basket.")
    else:
        text = st.text_area("Describe the shopper", key="rec_persona", height=90,
                            value="gift shopper looking for Christmas decorations under 10 pounds")
        kwargs = {"kind": "persona", "persona": text}

with right:
    if kwargs and (not many or kwargs.get("names")):
        kind = kwargs.pop("kind")
        with st.spinner("Asking the recommenders..."):
            res = recs.preview(eng, kind, con=c.con(), run_id=run_id, n=n, **kwargs)
        info = res["info"]
        if res["error"]:
            st.info(res["error"])
        else:
            if info.get("note"):
                st.info(info["note"])
            if kind == "user" and info.get("segment_name"):
                seen = info.get("history") or info.get("looked_at") or []
                verb = "Recently bought" if info.get("history") else "Looked at"
                st.caption(f"Shopper in **{info['segment_name']}**. {verb}: "
                           + ", ".join(h["title"] for h in seen[:5]))
            if kind == "persona":
                bits = [info.get("understood") or ""]
                if info.get("nearest_segment"):
                    bits.append(f"closest segment: **{info['nearest_segment']['segment_name']}**")
                st.caption("Understood: " + " · ".join(b for b in bits if b))
                if info.get("ignored"):
                    st.caption("Not understood, left out of the search: "
                               + ", ".join(f"“{w}”" for w in info["ignored"]))
            out = res["recs"]
            groups = list(dict.fromkeys(out["recommender"])) or ["hybrid"]
            cols = st.columns(len(groups))
            for col, name in zip(cols, groups):
                with col:
                    st.markdown(f"**{label(name)}**")
                    d = out[out["recommender"] == name]
                    if d.empty:
                        st.caption("Nothing to suggest for this case.")
                    for r in d.itertuples():
                        with st.container(border=True):
                            price = f" · {c.money(r.price)}" if r.price == r.price and r.price is not None else ""
                            new = " :green-badge[new]" if getattr(r, "new", False) else ""
                            st.markdown(f"**{r.rank}. {r.title}**{price}{new}")
                            st.caption(str(r.reason or ""))
    elif many:
        st.info("Pick at least one recommender.")
