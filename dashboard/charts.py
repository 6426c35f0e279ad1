"""Plotly figures for the dashboard (rendering only; the numbers come from core.explore)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core import explore as ex

FONT = dict(family="Inter, system-ui, -apple-system, Segoe UI, sans-serif", size=13, color="#1F2430")
GRID = "#E6E9F0"


def _base(fig: go.Figure, height: int = 380, **layout) -> go.Figure:
    layout.setdefault("margin", dict(l=10, r=10, t=40, b=10))
    fig.update_layout(height=height, font=FONT,
                      plot_bgcolor="white", paper_bgcolor="white",
                      hoverlabel=dict(bgcolor="white", font_size=13), **layout)
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    fig.update_yaxes(gridcolor=GRID, zeroline=False)
    return fig


PREDICTION_LABELS = {"pred:purchase": "Likely to buy", "pred:goal": "Likely to buy the goal",
                     "pred:churn": "Likely to churn", "pred:value": "Predicted spend"}


def segment_map(df: pd.DataFrame, *, color_by: str | None, currency: str,
                height: int = 640, money: bool = True, labels: pd.DataFrame | None = None,
                density: dict | None = None, found: pd.DataFrame | None = None) -> go.Figure:
    """The UMAP map as WebGL scatter; each point carries its user id (customdata[0]). Points
    are coloured by their ``group`` (a lens's segments or their main theme; ``group_color``)
    or, for a behaviour, by ``color_value`` on a colour scale. ``density`` (core.explore.
    map_density) shades where every shopper is beneath a sampled set of points; ``labels``
    (map_labels) writes each group's name on the map; ``found`` (find_on_map) marks shoppers."""
    def custom(d: pd.DataFrame) -> np.ndarray:
        return np.column_stack([
            d["user_id"].astype(str), d["segment"].astype(str),
            d["frequency"].map(ex.fmt_int),
            d["monetary"].map(lambda v: ex.fmt_money(v, currency)) if money else
            pd.Series("–", index=d.index),
            d["recency_days"].map(ex.fmt_days),
        ])

    hover = ("<b>Shopper %{customdata[0]}</b><br>%{customdata[1]}<br>"
             "Orders: %{customdata[2]}" + (" · Spend: %{customdata[3]}" if money else "") +
             "<br>Last purchase: %{customdata[4]} ago<extra></extra>")
    fig = go.Figure()
    if density is not None:
        z = np.array([[np.nan if v is None else v for v in row] for row in density["z"]], float)
        fig.add_trace(go.Heatmap(
            x=density["x"], y=density["y"], z=np.log1p(z), showscale=False, name="All shoppers",
            text=[[("" if np.isnan(v) else f"{ex.fmt_int(v)} shoppers here") for v in row]
                  for row in z],
            hovertemplate="%{text}<extra></extra>", hoverongaps=False,
            colorscale=[[0, "rgba(150,150,160,0.10)"], [1, "rgba(60,60,75,0.60)"]]))
    size = 6 if len(df) < 5000 else 4 if len(df) < 30000 else 3
    if "color_value" in df.columns:
        vals = df["color_value"]
        label = ex.FEATURE_LABELS.get(color_by) or PREDICTION_LABELS.get(color_by, color_by)
        fig.add_trace(go.Scattergl(
            x=df["x"], y=df["y"], mode="markers", customdata=custom(df), hovertemplate=hover,
            name=label, showlegend=False,
            marker=dict(size=size, color=vals, colorscale="Viridis", opacity=0.85,
                        cmin=float(np.nanpercentile(vals, 2)) if vals.notna().any() else None,
                        cmax=float(np.nanpercentile(vals, 98)) if vals.notna().any() else None,
                        colorbar=dict(title=dict(text=label, side="right"), thickness=12))))
    else:
        order = df.groupby("group")["user_id"].count().sort_values(ascending=False).index
        for grp in order:
            d = df[df["group"] == grp]
            fig.add_trace(go.Scattergl(
                x=d["x"], y=d["y"], mode="markers", name=str(grp),
                customdata=custom(d), hovertemplate=hover,
                marker=dict(size=size, color=d["group_color"].iloc[0] or ex.UNASSIGNED_COLOR,
                            opacity=0.85, line=dict(width=0))))
    for r in (labels if labels is not None else pd.DataFrame()).itertuples():
        fig.add_annotation(x=r.x, y=r.y, text=f"<b>{html.escape(str(r.group))}</b>",
                           showarrow=False, font=dict(size=12, color="#1f2430"),
                           bgcolor="rgba(255,255,255,0.6)", borderpad=2)
    if found is not None and len(found):
        fig.add_trace(go.Scatter(
            x=found["x"], y=found["y"], mode="markers", name="Found shopper",
            customdata=np.column_stack([found["user_id"].astype(str), found["segment"].astype(str)]),
            hovertemplate="<b>Shopper %{customdata[0]}</b><br>%{customdata[1]}<extra></extra>",
            marker=dict(symbol="star", size=18, color="#111111", line=dict(width=1.5, color="white"))))
        top = found.iloc[0]
        fig.add_annotation(x=top["x"], y=top["y"], text=f"Shopper {html.escape(str(top['user_id']))}",
                           showarrow=True, arrowhead=2, ax=40, ay=-40, font=dict(size=12),
                           bgcolor="rgba(255,255,255,0.9)")
    _base(fig, height=height, dragmode="select", clickmode="event+select",
          legend=dict(orientation="h", yanchor="top", y=-0.02, x=0, title_text=""))
    fig.update_xaxes(showticklabels=False, showgrid=False, title=None)
    fig.update_yaxes(showticklabels=False, showgrid=False, title=None)
    fig.update_layout(margin=dict(l=0, r=0, t=10, b=0))
    return fig


def lift_bars(traits: pd.DataFrame, *, label_col: str = "label", color: str = "#4C78A8",
              height: int | None = None, support_col: str = "support",
              pop_col: str = "population_support") -> go.Figure:
    """Horizontal bars of lift (how many times more common than in the whole shop)."""
    d = traits.sort_values("lift", ascending=True)
    text = [f"{ex.fmt_lift(l)} · {ex.fmt_pct(s, 0)} vs {ex.fmt_pct(p, 0)}"
            for l, s, p in zip(d["lift"], d[support_col], d[pop_col])]
    fig = go.Figure(go.Bar(
        x=d["lift"], y=d[label_col].astype(str).str.slice(0, 40), orientation="h", marker_color=color,
        text=text, textposition="outside", cliponaxis=False, textfont=dict(size=12, color="#3b4252"),
        hovertemplate="%{y}<br>%{text}<extra></extra>"))
    fig.add_vline(x=1, line_dash="dot", line_color="#888")
    top = float(d["lift"].max()) if len(d) else 1.0
    _base(fig, height=height or max(180, 34 * len(d) + 60),
          xaxis_title="Lift (× the whole shop's share)", yaxis_title=None, showlegend=False)
    longest = int(d[label_col].astype(str).str.len().max()) if len(d) else 0
    fig.update_xaxes(range=[0, max(top, 1.0) * (2.0 if longest > 20 else 1.7)])
    fig.update_layout(margin=dict(l=10, r=24, t=30, b=10))
    return fig


def distribution(df: pd.DataFrame, label: str, color: str, log: bool = False) -> go.Figure:
    """Box plots of a feature, segment vs whole shop: box = middle half, line = median, whiskers
    = 5th to 95th percentile (skewed money and counts would otherwise be all whisker). With
    ``log``, on a log scale over the positive values (zero cannot be drawn there)."""
    fig = go.Figure()
    for grp, c in (("Whole shop", "#9aa0a6"), ("Segment", color)):
        v = df.loc[df["group"] == grp, "value"].astype(float).dropna()
        if log:
            v = v[v > 0]
        if v.empty:
            continue
        p5, q1, med, q3, p95 = np.percentile(v, [5, 25, 50, 75, 95])
        fig.add_trace(go.Box(y=[grp], q1=[q1], median=[med], q3=[q3], lowerfence=[p5],
                             upperfence=[p95], name=grp, marker_color=c, orientation="h",
                             boxpoints=False, hoverinfo="x"))
    _base(fig, height=200, xaxis_title=label + (" (log scale)" if log else ""), showlegend=False,
          margin=dict(l=10, r=10, t=20, b=10))
    if log:
        fig.update_xaxes(type="log", exponentformat="none", separatethousands=True)
    return fig


def bars_by_group(df: pd.DataFrame, *, x: str, y: str, group: str, colors: dict[str, str] | None,
                  xaxis: str = "", yaxis: str = "", percent: bool = True, height: int = 420) -> go.Figure:
    fig = go.Figure()
    for g, d in df.groupby(group, sort=False):
        fig.add_trace(go.Bar(x=d[x], y=d[y], name=str(g),
                             marker_color=(colors or {}).get(str(g)),
                             hovertemplate="%{x}<br>" + str(g) + ": %{y:.1%}<extra></extra>"
                             if percent else None))
    _base(fig, height=height, barmode="group", xaxis_title=xaxis, yaxis_title=yaxis,
          legend=dict(orientation="h", y=1.1, x=0))
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return fig


def preference_bars(df: pd.DataFrame, color: str, vertical: bool = False) -> go.Figure:
    fig = go.Figure()
    labels = df["value"].astype(str).str.slice(0, 40)
    for col, name, c in (("user", "This shopper", color), ("segment", "Their segment", "#B8C0D0"),
                         ("shop", "Whole shop", "#E0E4EC")):
        if vertical:
            fig.add_trace(go.Bar(x=labels, y=df[col], name=name, marker_color=c,
                                 hovertemplate="%{x}<br>" + name + ": %{y:.1%}<extra></extra>"))
        else:
            fig.add_trace(go.Bar(y=labels, x=df[col], name=name, orientation="h", marker_color=c,
                                 hovertemplate="%{y}<br>" + name + ": %{x:.1%}<extra></extra>"))
    legend = dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=11))
    if vertical:
        _base(fig, height=300, barmode="group", legend=legend, yaxis_title="Share of activity",
              margin=dict(l=10, r=10, t=50, b=10))
        fig.update_yaxes(tickformat=".0%")
        fig.update_xaxes(type="category")
        return fig
    _base(fig, height=max(240, 60 * len(df) + 80), barmode="group", legend=legend,
          xaxis_title="Share of activity", margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def rules_scatter(rules: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Scattergl(
        x=rules["support"], y=rules["confidence"], mode="markers",
        marker=dict(color=rules["lift"], colorscale="Plasma", size=8, opacity=0.85,
                    colorbar=dict(title="Lift", thickness=12)),
        customdata=np.column_stack([rules["if_bought"].str.slice(0, 60),
                                    rules["then_buys"].str.slice(0, 60),
                                    rules["lift"].map(ex.fmt_lift)]),
        hovertemplate=("If bought: %{customdata[0]}<br>Then buys: %{customdata[1]}<br>"
                       "Support %{x:.2%} · Confidence %{y:.0%} · Lift %{customdata[2]}<extra></extra>")))
    _base(fig, height=420, xaxis_title="Support (share of baskets)",
          yaxis_title="Confidence (chance of the second item)")
    fig.update_xaxes(tickformat=".1%")
    fig.update_yaxes(tickformat=".0%")
    return fig


def rule_network(graph: dict) -> go.Figure:
    nodes, edges = graph["nodes"], graph["edges"]
    pos = {r.item_id: (r.x, r.y) for r in nodes.itertuples()}
    fig = go.Figure()
    if not edges.empty:
        lo, hi = float(edges["lift"].min()), float(edges["lift"].max())
        for e in edges.itertuples():
            (x0, y0), (x1, y1) = pos[e.source], pos[e.target]
            w = 1 + 4 * ((float(e.lift) - lo) / (hi - lo) if hi > lo else 0.5)
            fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip",
                                     line=dict(width=w, color="rgba(76,95,213,0.35)"), showlegend=False))
        fig.add_trace(go.Scatter(
            x=[pos[e.source][0] + 0.85 * (pos[e.target][0] - pos[e.source][0]) for e in edges.itertuples()],
            y=[pos[e.source][1] + 0.85 * (pos[e.target][1] - pos[e.source][1]) for e in edges.itertuples()],
            mode="markers", marker=dict(symbol="arrow", size=10, color="rgba(76,95,213,0.7)",
                                        angleref="previous"),
            hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(
        x=nodes["x"], y=nodes["y"], mode="markers+text", text=nodes["title"].str.slice(0, 24),
        textposition="top center", textfont=dict(size=11),
        marker=dict(size=10 + 3 * nodes["degree"].clip(upper=8), color="#F58518",
                    line=dict(width=1, color="white")),
        customdata=nodes[["title", "degree"]].to_numpy(),
        hovertemplate="%{customdata[0]}<br>in %{customdata[1]} rule link(s)<extra></extra>",
        showlegend=False))
    _base(fig, height=560)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


CANDIDATE_LABELS = {"taste": "Taste", "taste_habits": "Taste and habits"}


def k_scan(df: pd.DataFrame, chosen_k: int | None) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    held_out = "val_ndcg10" in df and df["val_ndcg10"].notna().any()
    if "candidate" in df and (held_out or "silhouette" in df):  # one line per candidate
        # without held-out baskets (e.g. a ratings shop) the options were compared by separation
        col_y, what, axis = (("val_ndcg10", "predicts (NDCG@10)",
                              "Predicts held-out baskets (NDCG@10)") if held_out else
                             ("silhouette", "separation (silhouette)", "Separation (silhouette)"))
        palette = ["#4C78A8", "#F58518", "#54A24B", "#B279A2"]
        for i, (cand, d) in enumerate(df.sort_values("k").groupby("candidate", sort=False)):
            name, col = CANDIDATE_LABELS.get(cand, str(cand)), palette[i % len(palette)]
            fig.add_trace(go.Scatter(x=d["k"], y=d[col_y], name=f"{name}: {what}",
                                     mode="lines+markers", line_color=col), secondary_y=False)
            fig.add_trace(go.Scatter(x=d["k"], y=d["seed_stability"], name=f"{name}: stability",
                                     mode="lines+markers", line=dict(color=col, dash="dot")),
                          secondary_y=True)
        if "chosen" in df and df["chosen"].fillna(False).astype(bool).any():
            ch = df[df["chosen"].fillna(False).astype(bool)].iloc[0]
            fig.add_trace(go.Scatter(x=[ch["k"]], y=[ch[col_y]], mode="markers", name="chosen",
                                     marker=dict(size=16, symbol="circle-open", color="#1F2430",
                                                 line=dict(width=2))), secondary_y=False)
        _base(fig, height=420, xaxis_title="Number of segments (k)",
              legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, font=dict(size=11)),
              margin=dict(l=10, r=10, t=90, b=10))
        fig.update_xaxes(dtick=1)
        fig.update_yaxes(title_text=axis, secondary_y=False)
        fig.update_yaxes(title_text="Stability between seeds (0-1)", secondary_y=True,
                         gridcolor=GRID, range=[0, 1.05], dtick=0.2, showgrid=False)
        return fig
    if "inertia" in df:
        fig.add_trace(go.Scatter(x=df["k"], y=df["inertia"], name="Inertia (elbow)", mode="lines+markers",
                                 line_color="#4C78A8"), secondary_y=False)
    if "silhouette" in df:
        fig.add_trace(go.Scatter(x=df["k"], y=df["silhouette"], name="Silhouette", mode="lines+markers",
                                 line_color="#F58518"), secondary_y=True)
    if chosen_k:
        fig.add_vline(x=chosen_k, line_dash="dot", line_color="#54A24B",
                      annotation_text=f"chosen k = {chosen_k}")
    _base(fig, height=340, xaxis_title="Number of segments (k)", legend=dict(orientation="h", y=1.15))
    fig.update_yaxes(title_text="Inertia", secondary_y=False)
    fig.update_yaxes(title_text="Silhouette", secondary_y=True, gridcolor=GRID)
    return fig


def training_curve(df: pd.DataFrame) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=df["epoch"], y=df["train_loss"], name="Training loss",
                             mode="lines+markers", line_color="#4C78A8"), secondary_y=False)
    if df["val_ndcg10"].notna().any():
        fig.add_trace(go.Scatter(x=df["epoch"], y=df["val_ndcg10"], name="Validation NDCG@10",
                                 mode="lines+markers", line_color="#F58518"), secondary_y=True)
    _base(fig, height=340, xaxis_title="Epoch", legend=dict(orientation="h", y=1.15))
    fig.update_yaxes(title_text="Loss", secondary_y=False)
    fig.update_yaxes(title_text="NDCG@10", secondary_y=True, gridcolor=GRID)
    return fig


def share_donut(labels, values, colors, height: int = 300) -> go.Figure:
    """Share of shoppers per segment: percentages inside the slices, horizontal and never
    shrunk (hidden on slices too small to hold them), the names in a legend underneath."""
    names = [str(n) if len(str(n)) <= 28 else str(n)[:27] + "…" for n in labels]
    fig = go.Figure(go.Pie(labels=names, values=values, hole=0.55, marker=dict(colors=list(colors)),
                           sort=False, textinfo="percent", textposition="inside",
                           insidetextorientation="horizontal", texttemplate="%{percent:.0%}",
                           customdata=[str(n) for n in labels],
                           hovertemplate="%{customdata}<br>%{value:,} shoppers (%{percent})"
                                         "<extra></extra>"))
    _base(fig, height=height, showlegend=True, margin=dict(l=0, r=0, t=10, b=0),
          legend=dict(orientation="h", yanchor="top", y=-0.02, x=0, font=dict(size=11)),
          uniformtext=dict(minsize=11, mode="hide"))
    return fig


def cross_heatmap(cross: pd.DataFrame, value: str = "users", money: str = "") -> go.Figure:
    """Lifecycle stages (rows) x taste segments (columns): shoppers (or revenue) in each cell."""
    rows = cross.sort_values("lifecycle_id")["lifecycle"].unique()  # stages in their own order
    cols = cross.groupby("taste", sort=False)["revenue"].sum().sort_values(ascending=False).index
    wide = cross.pivot_table(index="lifecycle", columns="taste", values=value, aggfunc="sum",
                             fill_value=0).reindex(index=rows, columns=cols, fill_value=0)
    text = [[(ex.fmt_money(v, money) if money else ex.fmt_int(v)) if v else "" for v in row]
            for row in wide.to_numpy()]
    fig = go.Figure(go.Heatmap(
        z=wide.to_numpy(), x=[str(c)[:28] for c in wide.columns], y=[str(i) for i in wide.index],
        text=text, texttemplate="%{text}", colorscale="Blues", showscale=False,
        hovertemplate="%{y} × %{x}<br>%{text}<extra></extra>"))
    _base(fig, height=max(220, 44 * len(wide) + 80), margin=dict(l=10, r=10, t=10, b=10))
    fig.update_yaxes(autorange="reversed", gridcolor="white")
    fig.update_xaxes(side="top", gridcolor="white")
    return fig
