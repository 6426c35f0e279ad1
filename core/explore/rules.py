"""Bought together: association rules with item titles, for the whole shop or one taste segment
(rules are mined per taste segment, ``core.rules``), and their network layout."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from core.explore.base import _df, table_exists

# A segment's rule is shown as specific to it when its confidence in the segment is at least this
# many times its confidence over every basket of the shop (``segment_ratio``).
SPECIFIC_RATIO = 1.2


def _titles(con, item_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = con.execute("SELECT item_id, any_value(title) FROM items WHERE item_id IN "
                       "(SELECT unnest(?::VARCHAR[])) GROUP BY item_id", [ids]).fetchall()
    return {i: (t or i) for i, t in rows}


def rules_table(con, run_id: int, *, segment_id: int | None | str = "all", min_support: float = 0.0,
                min_confidence: float = 0.0, min_lift: float = 0.0, search: str = "",
                limit: int | None = 2000) -> pd.DataFrame:
    """Association rules with item titles. segment_id: "all" (every rule), None (whole shop
    only) or a taste segment id. ``search`` matches item ids or titles on either side.

    A segment's rules are only those specific to it (``segment_ratio`` >= ``SPECIFIC_RATIO``:
    the segment's shoppers follow the rule that much more often than the shop's), ranked by how
    much more (``segment_ratio``), then lift; whole-shop rules are ranked by lift."""
    if not table_exists(con, "rules"):
        return pd.DataFrame()
    where, params = ["run_id = ?", "support >= ?", "confidence >= ?", "coalesce(lift, 0) >= ?"], \
        [run_id, min_support, min_confidence, min_lift]
    where.append("(segment_id IS NULL OR coalesce(segment_ratio, 0) >= ?)")
    params.append(SPECIFIC_RATIO)
    order = "lift DESC NULLS LAST, confidence DESC, support DESC"
    if segment_id is None:
        where.append("segment_id IS NULL")
    elif segment_id != "all":
        where.append("segment_id = ?")
        params.append(int(segment_id))
        order = "segment_ratio DESC NULLS LAST, " + order
    df = _df(con, f"""SELECT segment_id, antecedent, consequent, support, confidence, lift, leverage,
                             conviction, count, segment_ratio
                      FROM rules WHERE {' AND '.join(where)}
                      ORDER BY {order}, antecedent, consequent""", params)
    if df.empty:
        df["if_bought"] = []
        df["then_buys"] = []
        return df
    df["antecedent"] = df["antecedent"].map(list)
    df["consequent"] = df["consequent"].map(list)
    titles = _titles(con, [i for lst in df["antecedent"] for i in lst] +
                     [i for lst in df["consequent"] for i in lst])
    df["if_bought"] = df["antecedent"].map(lambda l: " + ".join(titles.get(i, i) for i in l))
    df["then_buys"] = df["consequent"].map(lambda l: " + ".join(titles.get(i, i) for i in l))
    q = (search or "").strip().lower()
    if q:
        hit = (df["if_bought"].str.lower().str.contains(q, regex=False)
               | df["then_buys"].str.lower().str.contains(q, regex=False)
               | df["antecedent"].map(lambda l: any(q == i.lower() for i in l))
               | df["consequent"].map(lambda l: any(q == i.lower() for i in l)))
        df = df[hit]
    from core.explore.overview import segment_names

    names = segment_names(con, run_id, lens="taste")
    df.insert(1, "segment", df["segment_id"].map(lambda s: "Whole shop" if pd.isna(s) else
                                                 names.get(int(s), f"Segment {int(s)}")))
    if limit:
        df = df.head(limit)
    return df.reset_index(drop=True)


def rule_graph(rules: pd.DataFrame, max_rules: int = 60, seed: int = 42) -> dict:
    """Nodes (items, with a 2-D layout) and edges (antecedent item -> consequent item) for the
    strongest rules. Returns {"nodes": DataFrame(item_id, title, x, y, degree),
    "edges": DataFrame(source, target, lift, confidence, support)}."""
    import networkx as nx

    r = rules.head(max_rules)
    g = nx.DiGraph()
    titles: dict[str, str] = {}
    edges = []
    for _, row in r.iterrows():
        ants, cons = list(row["antecedent"]), list(row["consequent"])
        a_titles = row["if_bought"].split(" + ") if len(row["if_bought"].split(" + ")) == len(ants) else ants
        c_titles = row["then_buys"].split(" + ") if len(row["then_buys"].split(" + ")) == len(cons) else cons
        titles.update(zip(ants, a_titles))
        titles.update(zip(cons, c_titles))
        for a in ants:
            for c in cons:
                g.add_edge(a, c)
                edges.append({"source": a, "target": c, "lift": row["lift"],
                              "confidence": row["confidence"], "support": row["support"]})
    if not g.number_of_nodes():
        return {"nodes": pd.DataFrame(columns=["item_id", "title", "x", "y", "degree"]),
                "edges": pd.DataFrame(columns=["source", "target", "lift", "confidence", "support"])}
    pos = nx.spring_layout(g, seed=seed, k=1.5 / max(1, g.number_of_nodes()) ** 0.5)
    nodes = pd.DataFrame([{"item_id": n, "title": titles.get(n, n), "x": float(pos[n][0]),
                           "y": float(pos[n][1]), "degree": g.degree(n)} for n in g.nodes])
    return {"nodes": nodes, "edges": pd.DataFrame(edges)}
