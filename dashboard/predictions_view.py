"""The Model page's predictions section: each score's definition and backtest against its
baseline, with a reliability chart (predicted vs observed)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.predictions.read import METRIC_WORDS, backtest_table, reliability_table
from dashboard import common as c
from dashboard import timecharts


def _fmt(metric: str, v) -> str:
    if v is None or v != v:
        return "–"
    if metric in ("mae", "rmse", "predicted_total", "actual_total"):
        return c.money(v)
    if metric == "lift_top10":
        return f"{v:.2f}×"
    return f"{v:.3f}"


def predictions_section(run: dict) -> None:
    run_id = run["run_id"]
    st.subheader("Predictions")
    bt = backtest_table(c.con(), run_id)
    skipped = (run["metrics"].get("predictions") or {}).get("skipped", {})
    if bt.empty:
        st.info("This build has no predictions" + (": " + "; ".join(
            f"{k}: {v}" for k, v in skipped.items()) if skipped else
            " (they come with the next `segstudio build`)."))
        return
    st.caption("Each score is tested the honest way: the models learn from the shop's history up "
               "to the start of the latest horizon and are judged on what shoppers then did, "
               "which they never saw. The baseline is what a marketer would use without a model "
               "(days since the last visit or order; average past spend), tested on the same "
               "shoppers. Intervals are 95 % bootstrap intervals over shoppers.")
    scores = list(dict.fromkeys(bt["score"]))
    tabs = st.tabs([bt[bt.score == s]["title"].iloc[0] for s in scores])
    for tab, score in zip(tabs, scores):
        g = bt[bt.score == score]
        r0 = g.iloc[0]
        with tab:
            st.markdown(f"{r0['definition']} Tested on {c.intf(r0['shoppers'])} shoppers, "
                        f"{r0['positive_rate']:.0%} of whom "
                        + ("did it." if score != "value" else "spent something."))
            rows = []
            for r in g.to_dict("records"):
                if r["metric"] == "actual_total":
                    continue
                m, b = _fmt(r["metric"], r["model"]), _fmt(r["metric"], r["baseline"])
                if r["metric"] == "auc" and r["model_low"] == r["model_low"]:
                    m += f" ({r['model_low']:.3f}–{r['model_high']:.3f})"
                    b += f" ({r['baseline_low']:.3f}–{r['baseline_high']:.3f})"
                rows.append({"Measure": METRIC_WORDS.get(r["metric"], r["metric"]), "Model": m,
                             "Baseline": b,
                             "Better": {True: "model", False: "baseline"}.get(r["better"], "")})
            if score == "value":
                actual = g[g.metric == "actual_total"]["model"]
                if len(actual):
                    rows.append({"Measure": "actual total", "Model": _fmt("actual_total",
                                                                         actual.iloc[0]),
                                 "Baseline": "", "Better": ""})
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            rel = reliability_table(c.con(), run_id, score)
            if not rel.empty:
                st.plotly_chart(timecharts.reliability(rel, "Predicted vs what happened"),
                                key=f"rel_{score}", config={"displayModeBar": False})
                st.caption("Points near the dashed line mean the probabilities can be taken at "
                           "their word; point size is the number of shoppers.")
    for k, v in skipped.items():
        st.caption(f"{k}: not computed ({v}).")
