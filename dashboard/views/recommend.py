"""Recommend: what would we recommend to a shopper, a segment, an edited basket or a persona?"""

import streamlit as st

from core.explore import recs
from dashboard import common as c

c.page_header("Recommend", "A live preview of what each recommender would suggest, with its reasons.")
run = c.current_run()
run_id = run["run_id"]
if not recs.available():
    c.empty_state("Recommendations are not available yet",
                  "The recommender module is not installed in this Segment Studio.")
    st.stop()

with st.spinner("Preparing the recommenders (once per build)..."):
    models = c.recommenders(run_id)
names = list(models)
mode = st.segmented_control("Recommend for", ["A shopper", "A segment", "A basket", "A persona"],
                            default="A shopper", key="rec_mode") or "A shopper"
chosen = st.multiselect("Recommenders", names, default=[n for n in ("hybrid", "item_knn", "popularity")
                                                        if n in names] or names[:2],
                        format_func=lambda n: c.RECOMMENDER_LABELS.get(n, n), key="rec_models")
n = st.slider("How many", 3, 20, 8, key="rec_n")
kwargs = None
if mode == "A shopper":
    users = c.q("find_users", st.text_input("Shopper id", key="rec_user_q",
                                            value=st.session_state.get("profile_user", "")), 20)
    if users:
        kwargs = {"kind": "user", "user_id": st.selectbox("Shopper", users, key="rec_user")}
    else:
        st.info("No shopper matches that id.")
elif mode == "A segment":
    opts = c.segment_options(run_id)
    if opts:
        kwargs = {"kind": "segment", "segment_id": opts[st.selectbox("Segment", list(opts), key="rec_seg")]}
    else:
        st.info("This build has no segments.")
elif mode == "A basket":
    top = c.q("top_items", run_id, None, n=300)
    labels = {f"{r.title} ({r.item_id})": r.item_id for r in top.itertuples()}
    default = list(labels)[:2]
    basket = st.multiselect("Items in the basket", list(labels), default=default, key="rec_basket",
                            help="Add or remove items and see how the suggestions change")
    kwargs = {"kind": "basket", "basket": tuple(labels[b] for b in basket)}
else:
    text = st.text_input("Describe the shopper", key="rec_persona",
                         value="gift shopper looking for Christmas decorations under 10 pounds")
    kwargs = {"kind": "persona", "persona": text}

if kwargs and chosen:
    kind = kwargs.pop("kind")
    with st.spinner("Asking the recommenders..."):
        out = recs.preview(models, kind, con=c.con(), names=chosen, n=n, **kwargs)
    cols = st.columns(len(chosen))
    for col, name in zip(cols, chosen):
        with col:
            st.markdown(f"**{c.RECOMMENDER_LABELS.get(name, name)}**")
            d = out[out["recommender"] == name]
            if d.empty:
                st.caption("Nothing to suggest for this case.")
            for r in d.itertuples():
                with st.container(border=True):
                    st.markdown(f"**{r.rank}. {c.html.escape(str(r.title))}**")
                    st.caption(str(r.reason or ""))
elif not chosen:
    st.info("Pick at least one recommender.")
