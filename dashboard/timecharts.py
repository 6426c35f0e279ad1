"""Charts of change: trends over time, flows between builds, prediction reliability, and the
treated vs hold-out comparison of an audience. Plotly figures only; the data comes from core."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

GREY = "#9aa0a6"


def _base(fig: go.Figure, height: int = 360, **layout) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.15), **layout)
    return fig


def trend(df: pd.DataFrame, *, currency: str, prices: bool = True, color: str = "#4C78A8",
          title: str = "") -> go.Figure:
    """Revenue (bars) and shoppers (lines: active, new) per period."""
    grain = df.attrs.get("grain", "month")
    fmt = "%b %Y" if grain == "month" else "%d %b %Y"
    x = df["period"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if prices:
        fig.add_bar(x=x, y=df["revenue"], name=f"Revenue ({currency})", marker_color=color,
                    opacity=0.55, hovertemplate=f"%{{x|{fmt}}}<br>{currency}%{{y:,.0f}}<extra>Revenue</extra>")
    else:
        fig.add_bar(x=x, y=df["orders"], name="Orders", marker_color=color, opacity=0.55,
                    hovertemplate=f"%{{x|{fmt}}}<br>%{{y:,}} orders<extra></extra>")
    fig.add_scatter(x=x, y=df["active_shoppers"], name="Active shoppers", mode="lines+markers",
                    line=dict(color="#333"), secondary_y=True,
                    hovertemplate=f"%{{x|{fmt}}}<br>%{{y:,}} active<extra></extra>")
    fig.add_scatter(x=x, y=df["new_shoppers"], name="New shoppers", mode="lines+markers",
                    line=dict(color="#F58518", dash="dot"), secondary_y=True,
                    hovertemplate=f"%{{x|{fmt}}}<br>%{{y:,}} new<extra></extra>")
    fig.update_yaxes(title_text=f"Revenue ({currency})" if prices else "Orders", secondary_y=False,
                     rangemode="tozero", gridcolor="#eee")
    fig.update_yaxes(title_text="Shoppers", secondary_y=True, rangemode="tozero", showgrid=False,
                     tickformat=",d")      # whole shoppers, never 2.03
    fig.update_xaxes(title_text="Week starting" if grain == "week" else "Month")
    fig = _base(fig, title=title or None)
    fig.update_layout(legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    return fig


def activity(df: pd.DataFrame, *, currency: str) -> go.Figure:
    """A shopper's activity over time: events per period by kind, spend as a line."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    colors = {"purchase": "#54A24B", "view": "#9ecae9", "click": "#9ecae9", "cart": "#F58518",
              "favorite": "#B279A2", "return": "#E45756", "review": "#72B7B2"}
    for kind, g in df.groupby("event_type"):
        fig.add_bar(x=g["period"], y=g["events"], name=kind, marker_color=colors.get(kind, GREY))
    spend = df.groupby("period", as_index=False)["spend"].sum()
    if spend["spend"].abs().sum() > 0:
        fig.add_scatter(x=spend["period"], y=spend["spend"], name=f"Spend ({currency})",
                        mode="lines+markers", line=dict(color="#333"), secondary_y=True)
        fig.update_yaxes(title_text=f"Spend ({currency})", secondary_y=True, showgrid=False)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="Interactions", secondary_y=False, gridcolor="#eee")
    return _base(fig, height=300)


def sankey(flows: pd.DataFrame, colors_from: dict, colors_to: dict, *, left: str,
           right: str) -> go.Figure:
    """Shoppers flowing from the earlier build's segments (left) to the later build's (right)."""
    lf = list(dict.fromkeys(flows["from_segment"]))
    rt = list(dict.fromkeys(flows["to_segment"]))
    labels = [f"{n} " for n in lf] + [f" {n}" for n in rt]   # the same name may be on both sides
    src = [lf.index(v) for v in flows["from_segment"]]
    dst = [len(lf) + rt.index(v) for v in flows["to_segment"]]
    node_colors = [colors_from.get(n, GREY) for n in lf] + [colors_to.get(n, GREY) for n in rt]
    link_colors = [_alpha(colors_from.get(n, GREY)) for n in flows["from_segment"]]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=labels, color=node_colors, pad=14, thickness=16),
        link=dict(source=src, target=dst, value=flows["shoppers"], color=link_colors,
                  customdata=flows["revenue"],
                  hovertemplate="%{source.label} → %{target.label}<br>%{value:,} shoppers"
                                "<extra></extra>")))
    return _base(fig, height=max(380, 28 * max(len(lf), len(rt))),
                 title=f"{left}  →  {right}")


def _alpha(hex_color: str, a: float = 0.35) -> str:
    h = hex_color.lstrip("#")
    if len(h) != 6:
        return f"rgba(150,150,150,{a})"
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{a})"


def reliability(bins: pd.DataFrame, title: str = "") -> go.Figure:
    """Predicted probability against the observed rate, model and baseline, with the diagonal."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbb", dash="dash"),
                    name="perfectly calibrated", hoverinfo="skip")
    for who, color in (("model", "#4C78A8"), ("baseline", GREY)):
        g = bins[bins["model"] == who]
        if len(g):
            fig.add_scatter(x=g["predicted"], y=g["observed"], mode="lines+markers", name=who,
                            line=dict(color=color), marker=dict(size=6 + 10 * g["shoppers"]
                                                               / max(1, bins["shoppers"].max())),
                            customdata=g["shoppers"],
                            hovertemplate="predicted %{x:.0%}<br>observed %{y:.0%}<br>"
                                          "%{customdata:,} shoppers<extra></extra>")
    fig.update_xaxes(title_text="Predicted probability", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text="Share who did it", range=[0, 1], tickformat=".0%", gridcolor="#eee")
    return _base(fig, height=320, title=title or None)


def treated_vs_holdout(out: dict, *, currency: str) -> go.Figure:
    """Conversion and revenue per shopper of both groups, with their 95 % intervals."""
    g = out["groups"]
    names = ["Targeted", "Held out"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Conversion since the freeze",
                                                        f"Revenue per shopper ({currency})"))
    for col, key, fmt in ((1, "conversion", ".1%"), (2, "revenue_per_shopper", ",.2f")):
        vals = [g["treated"][key], g["holdout"][key]]
        lo = [g["treated"][key + "_95"][0], g["holdout"][key + "_95"][0]]
        hi = [g["treated"][key + "_95"][1], g["holdout"][key + "_95"][1]]
        fig.add_bar(x=names, y=vals, marker_color=["#4C78A8", GREY], showlegend=False,
                    error_y=dict(type="data", symmetric=False,
                                 array=[h - v for h, v in zip(hi, vals)],
                                 arrayminus=[v - lw for v, lw in zip(vals, lo)]),
                    hovertemplate=f"%{{x}}: %{{y:{fmt}}}<extra></extra>", row=1, col=col)
    fig.update_yaxes(tickformat=".0%", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    return _base(fig, height=320)


def bandit_curve(curve: dict) -> go.Figure:
    """Cumulative hits of the per-segment policy, the best single recommender and random."""
    fig = go.Figure()
    styles = {"policy": ("Chosen per segment (Thompson sampling)", "#4C78A8", "solid"),
              "best single": ("Best single recommender (in hindsight)", "#333", "dash"),
              "uniform random": ("A recommender at random", GREY, "dot")}
    for key, (name, color, dash) in styles.items():
        if key in curve:
            fig.add_scatter(x=curve["step"], y=curve[key], mode="lines", name=name,
                            line=dict(color=color, dash=dash),
                            hovertemplate="after %{x:,} shoppers: %{y:,.0f} hits<extra></extra>")
    fig.update_xaxes(title_text="Shoppers, in the order of their next basket")
    fig.update_yaxes(title_text="Baskets hit (cumulative)", gridcolor="#eee", rangemode="tozero")
    return _base(fig, height=320)
