"""The Model page's section on choosing a recommender per segment (the bandit replay)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common as c
from dashboard import timecharts


def bandit_section(run: dict) -> None:
    b = ((run["metrics"].get("evaluate") or {}).get("bandit") or {})
    mode = "new_items" if "new_items" in b else next(iter(b), None)
    st.subheader("Which recommender for which segment")
    if not mode:
        st.info("This build has no replay yet: it comes with the next `segstudio build` "
                "(with the offline evaluation).")
        return
    r = b[mode]
    t = r["totals"]
    st.caption(f"A replay over {c.intf(r['shoppers'])} shoppers' held-out baskets in time order: "
               "for each shopper, the policy of their segment picks one recommender (Thompson "
               "sampling) and learns only whether that list hit the basket (new items only). "
               f"Hits: chosen per segment {t['policy']:,.0f}, best single recommender "
               f"({c.RECOMMENDER_LABELS.get(r['best_single'], r['best_single'])}) "
               f"{t['best single']:,.0f}, at random {t['uniform random']:,.0f}.")
    st.plotly_chart(timecharts.bandit_curve(r["curve"]), key="bandit_curve",
                    config={"displayModeBar": False})
    rows = []
    for seg, s in sorted(r["segments"].items(), key=lambda kv: -kv[1]["shoppers"]):
        rows.append({"Segment": seg, "Shoppers": s["shoppers"],
                     "Chosen recommender": c.RECOMMENDER_LABELS.get(s["choice"], s["choice"]),
                     "Its hit rate": s["hit_rate"][s["choice"]],
                     "Times played": s["pulls"][s["choice"]]})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "Shoppers": st.column_config.NumberColumn(format="localized"),
        "Its hit rate": st.column_config.NumberColumn(format="percent",
                                                      help="The policy's estimate at the end of "
                                                           "the replay (posterior mean)."),
        "Times played": st.column_config.NumberColumn(format="localized")})
    if r["shoppers"] < 200:
        st.warning(f"Only {r['shoppers']} shoppers in the replay: the choices are rough.")
