"""Describing segments: sizes, shares, RFM medians, distinguishing traits, colour, name, one line.

``describe_segments(con, run_id)`` reads ``segments``, ``user_features``, ``user_shares``,
``events`` and ``items`` of a run and writes ``segment_info`` and ``segment_traits``.

Traits (``segment_traits``), over all segmented users of the run. A user "has":

* 'item' - an item they bought (purchase events);
* 'category' / 'brand' - the top-level category (first level of category_path, as in
  ``core.features``) / brand of an item they bought;
* 'price_band' - their main price band (largest ``user_shares`` share, ties alphabetically):
  nearly every shopper browses every band, so "has any share" would tell segments apart poorly;

(for a store with no purchases at all: any non-return interaction, and ``user_shares`` > 0).

    support            = users of the segment with the value / users of the segment
    population_support = users (all segments) with the value / all segmented users
    lift               = support / population_support

Kept per segment and dimension: values held by at least ``min_count`` of the segment's users and
``min_support`` of them, the ``top_n`` strongest by lift.

Names come from behaviour first - each segment's mean of every behaviour feature (heavy-tailed
ones on a log scale) as a z-score against the whole population picks an archetype ("Loyal high
spenders", "Bargain hunters", "Holiday gift buyers", "Lapsed one-off shoppers", "Night owl
browsers", "<Category> specialists", ...) - and otherwise from the strongest distinguishing
category, brand or item-title keyword ("Garden fans", "Lunch bag fans"). Names are made distinct
deterministically (a qualifier from the segment's top trait, then a number, in segment order).
Colours come from a fixed qualitative palette by segment id (ids are ordered by size), grey for
unassigned (-1), so a segment has the same colour on every page.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter

import numpy as np

from core.progress import NULL, Progress

# Vega/Tableau 10 without its grey, then Tableau 20's other tones: distinct, colour-blind aware.
PALETTE = [
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#FF9DA6",
    "#9D755D", "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#17BECF", "#BCBD22",
    "#AEC7E8", "#FFBB78", "#98DF8A", "#C5B0D5",
]
UNASSIGNED_COLOR = "#9aa0a6"
UNASSIGNED_NAME = "Unassigned"

TRAIT_DIMENSIONS = ("category", "brand", "price_band")

# behaviour features compared against the population (log scale for heavy-tailed ones)
BEHAVIOUR = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days",
             "return_rate", "views_per_purchase", "basket_size", "evening_share",
             "weekend_share", "price_sensitivity", "diversity", "holiday_share"]
LOG_FEATURES = {"frequency", "monetary", "avg_order_value", "views_per_purchase", "basket_size"}

_STOPWORDS = set("""a an and the of in on with for to set sets pack packs piece pcs assorted
    small large big mini jumbo new design designs red blue pink green white black ivory cream
    yellow purple gold silver grey gray orange brown colour colours color colors vintage retro
    retrospot spot spots polkadot dolly girl boy""".split())


def segment_color(segment_id: int) -> str:
    """The segment's colour on every page: palette by id, grey for unassigned (-1)."""
    sid = int(segment_id)
    return UNASSIGNED_COLOR if sid < 0 else PALETTE[sid % len(PALETTE)]


def describe_segments(
    con,
    run_id: int,
    progress: Progress = NULL,
    *,
    min_support: float = 0.05,
    min_count: int = 2,
    top_n: int | None = 25,
    n_representatives: int = 5,
) -> dict:
    """Write ``segment_info`` and ``segment_traits`` for run ``run_id``; return metrics
    {n_segments, names: {segment_id: name}, n_traits, seconds}."""
    t0 = time.perf_counter()
    run_id = int(run_id)
    n_users = con.execute("SELECT count(*) FROM segments WHERE run_id = ?", [run_id]).fetchall()[0][0]
    if not n_users:
        raise RuntimeError(
            f"Run {run_id} has no rows in `segments`: run core.segments.segment_users first "
            "(the build does: `segstudio build`)."
        )
    with progress.stage("Describing segments", total=4) as bar:
        con.execute("DELETE FROM segment_traits WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM segment_info WHERE run_id = ?", [run_id])
        _write_traits(con, run_id, min_support=min_support, min_count=min_count, top_n=top_n)
        bar.advance(1)
        info = _basic_info(con, run_id, n_representatives)
        bar.advance(1)
        z = _behaviour_z(con, run_id)
        traits = _traits_by_segment(con, run_id)
        titles = _item_titles(con, run_id)
        bar.advance(1)
        rows = []
        for sid, row in info.items():
            rows.append(_name_and_describe(sid, row, z.get(sid, {}), traits.get(sid, {}), titles))
        names = _distinct_names(rows)
        for r in rows:
            r["name"] = names[r["segment_id"]]
        con.executemany(
            "INSERT INTO segment_info VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[run_id, r["segment_id"], r["name"], r["description"], segment_color(r["segment_id"]),
              r["size"], r["user_share"], r["revenue_share"], r["recency_median"],
              r["frequency_median"], r["monetary_median"], r["representative_users"]]
             for r in rows],
        )
        bar.advance(1)
    n_traits = con.execute("SELECT count(*) FROM segment_traits WHERE run_id = ?",
                           [run_id]).fetchall()[0][0]
    return {
        "n_segments": sum(1 for r in rows if r["segment_id"] >= 0),
        "names": {r["segment_id"]: r["name"] for r in rows},
        "n_traits": int(n_traits),
        "seconds": round(time.perf_counter() - t0, 3),
    }


# --------------------------------------------------------------------------- traits (SQL)
def _has_purchases(con) -> bool:
    return con.execute(
        "SELECT EXISTS (SELECT 1 FROM events WHERE event_type = 'purchase' AND user_id IS NOT NULL)"
    ).fetchall()[0][0]


def _write_traits(con, run_id: int, *, min_support: float, min_count: int,
                  top_n: int | None) -> None:
    if _has_purchases(con):
        bought = "event_type = 'purchase'"
        cat_brand = f"""
            SELECT DISTINCT e.user_id, d.dimension, d.value
            FROM events e JOIN it USING (item_id),
                 LATERAL (VALUES ('category', it.category), ('brand', it.brand)) d(dimension, value)
            WHERE e.user_id IS NOT NULL AND e.{bought} AND d.value IS NOT NULL"""
    else:
        bought = "event_type <> 'return'"
        cat_brand = """
            SELECT DISTINCT user_id, dimension, value FROM user_shares
            WHERE run_id = $run AND share > 0 AND dimension IN ('category', 'brand')"""
    qualify = (f"QUALIFY row_number() OVER (PARTITION BY segment_id, dimension "
               f"ORDER BY lift DESC, support DESC, value) <= {int(top_n)}") if top_n else ""
    con.execute(
        f"""
        INSERT INTO segment_traits
        WITH seg AS (SELECT user_id, segment_id FROM segments WHERE run_id = $run),
        seg_n AS (SELECT segment_id, count(*) AS n FROM seg GROUP BY segment_id),
        total AS (SELECT count(*) AS n FROM seg),
        it AS (
            SELECT item_id,
                   any_value(nullif(trim(split_part(category_path, ' > ', 1)), '')) AS category,
                   any_value(nullif(trim(brand), '')) AS brand
            FROM items GROUP BY item_id
        ),
        had AS (
            {cat_brand}
            UNION ALL
            SELECT user_id, 'price_band', value FROM user_shares
            WHERE run_id = $run AND dimension = 'price_band'
            QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY share DESC, value) = 1
            UNION ALL
            SELECT DISTINCT user_id, 'item' AS dimension, item_id AS value FROM events
            WHERE user_id IS NOT NULL AND {bought}
        ),
        seg_count AS (
            SELECT seg.segment_id, had.dimension, had.value, count(*) AS c
            FROM had JOIN seg USING (user_id) GROUP BY ALL
        ),
        pop AS (SELECT dimension, value, sum(c) AS pc FROM seg_count GROUP BY ALL),
        stats AS (
            SELECT s.segment_id, s.dimension, s.value, s.c,
                   s.c / seg_n.n AS support,
                   pop.pc / total.n AS population_support
            FROM seg_count s JOIN seg_n USING (segment_id) JOIN pop USING (dimension, value),
                 total
        )
        SELECT $run, segment_id, dimension, value, support, population_support,
               support / population_support AS lift
        FROM stats
        WHERE c >= $min_count AND support >= $min_support
        {qualify}
        """,
        {"run": run_id, "min_count": int(min_count), "min_support": float(min_support)},
    )


def _traits_by_segment(con, run_id: int) -> dict[int, dict[str, list[tuple]]]:
    out: dict[int, dict[str, list[tuple]]] = {}
    for sid, dim, value, sup, pop, lift in con.execute(
        "SELECT segment_id, dimension, value, support, population_support, lift "
        "FROM segment_traits WHERE run_id = ? ORDER BY segment_id, dimension, lift DESC, "
        "support DESC, value", [run_id]
    ).fetchall():
        out.setdefault(int(sid), {}).setdefault(dim, []).append((value, sup, pop, lift))
    return out


def _item_titles(con, run_id: int) -> dict[str, str]:
    return dict(con.execute(
        """SELECT item_id, any_value(title) FROM items
           WHERE item_id IN (SELECT value FROM segment_traits WHERE run_id = ? AND dimension = 'item')
             AND title IS NOT NULL GROUP BY item_id""", [run_id]).fetchall())


# --------------------------------------------------------------------------- sizes, RFM
def _feature_columns(con) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'user_features'"
    ).fetchall()}


def _basic_info(con, run_id: int, n_rep: int) -> dict[int, dict]:
    rows = con.execute(
        """
        WITH seg AS (SELECT * FROM segments WHERE run_id = $run),
        f AS (SELECT * FROM user_features WHERE run_id = $run),
        j AS (SELECT seg.segment_id, seg.user_id, seg.distance, f.recency_days, f.frequency,
                     f.monetary
              FROM seg LEFT JOIN f USING (user_id)),
        tot AS (SELECT count(*) AS n, sum(monetary) AS revenue FROM j),
        reps AS (
            SELECT segment_id, list(user_id ORDER BY distance NULLS LAST, user_id) AS users
            FROM (SELECT segment_id, user_id, distance FROM seg
                  QUALIFY row_number() OVER (PARTITION BY segment_id
                                             ORDER BY distance NULLS LAST, user_id) <= $k)
            GROUP BY segment_id
        )
        SELECT j.segment_id, count(*) AS size, count(*) / any_value(tot.n) AS user_share,
               CASE WHEN any_value(tot.revenue) > 0
                    THEN coalesce(sum(j.monetary), 0) / any_value(tot.revenue) END AS revenue_share,
               median(j.recency_days), median(j.frequency), median(j.monetary),
               any_value(reps.users)
        FROM j CROSS JOIN tot LEFT JOIN reps ON reps.segment_id = j.segment_id
        GROUP BY j.segment_id ORDER BY j.segment_id
        """,
        {"run": run_id, "k": int(n_rep)},
    ).fetchall()
    keys = ["segment_id", "size", "user_share", "revenue_share", "recency_median",
            "frequency_median", "monetary_median", "representative_users"]
    return {int(r[0]): dict(zip(keys, r)) for r in rows}


def _behaviour_z(con, run_id: int) -> dict[int, dict[str, float]]:
    """Per segment: z-score of the segment's mean of each behaviour feature against the
    population (mean and standard deviation over all segmented users; log1p for heavy tails)."""
    cols = [c for c in BEHAVIOUR if c in _feature_columns(con)]
    if not cols:
        return {}

    def expr(c):
        return f"sign({c}) * ln(1 + abs({c}))" if c in LOG_FEATURES else c

    sel = ", ".join(f"{expr(c)} AS {c}" for c in cols)
    base = (f"SELECT s.segment_id, {sel} FROM segments s JOIN user_features f "
            f"ON f.run_id = s.run_id AND f.user_id = s.user_id WHERE s.run_id = {run_id}")
    seg = con.execute(
        f"SELECT segment_id, {', '.join(f'avg({c})' for c in cols)} FROM ({base}) GROUP BY 1"
    ).fetchall()
    pop = con.execute(
        f"SELECT {', '.join(f'avg({c}), stddev_pop({c})' for c in cols)} FROM ({base})"
    ).fetchall()[0]
    out: dict[int, dict[str, float]] = {}
    for row in seg:
        zs = {}
        for i, c in enumerate(cols):
            m, mu, sd = row[1 + i], pop[2 * i], pop[2 * i + 1]
            if m is not None and mu is not None and sd and sd > 1e-12:
                zs[c] = (m - mu) / sd
        out[int(row[0])] = zs
    return out


# --------------------------------------------------------------------------- naming
def _label(value: str) -> str:
    """'Home > Kitchen > Mugs' -> 'Mugs'; 'LUNCH BAG RED' -> 'Lunch bag red'."""
    v = str(value).split(" > ")[-1].strip()
    if v.isupper() or v.islower():
        v = v.lower()
        v = v[:1].upper() + v[1:]
    return v


def title_keyword(titles_weights: list[tuple[str, float]]) -> str | None:
    """The phrase that best sums up a list of (item title, weight): the bigram, else the word,
    found in the most titles (at least two; ties by weight, then alphabetically), else the
    first title's first three words. Colours, sizes and filler words are ignored."""
    if not titles_weights:
        return None
    bi, uni, wsum = Counter(), Counter(), Counter()
    for title, w in titles_weights:
        words = [t for t in re.findall(r"[a-z]+", str(title).lower())
                 if len(t) >= 3 and t not in _STOPWORDS]
        bigrams = {f"{a} {b}" for a, b in zip(words, words[1:])}
        for g in bigrams:
            bi[g] += 1
            wsum[g] += w
        for g in set(words):
            uni[g] += 1
            wsum[g] += w
    for counter in (bi, uni):
        best = sorted(((c, wsum[g], g) for g, c in counter.items() if c >= 2),
                      key=lambda t: (-t[0], -t[1], t[2]))
        if best:
            return _label(best[0][2])
    words = str(titles_weights[0][0]).split()[:3]
    return _label(" ".join(words)) if words else None


def _focus(traits: dict[str, list[tuple]], titles: dict[str, str]) -> list[tuple[str, str, float]]:
    """Distinguishing (kind, label, lift) of a segment, strongest first: categories, brands,
    then a keyword of its distinguishing items' titles."""
    out = []
    for dim in ("category", "brand"):
        for value, sup, pop, lift in traits.get(dim, []):
            if lift >= 1.3 and sup >= 0.25:
                out.append((dim, _label(value), lift))
    items = [(titles[v], sup * lift) for v, sup, pop, lift in traits.get("item", [])
             if lift >= 1.5 and v in titles][:15]
    kw = title_keyword(items)
    if kw:
        lift = max((lift for v, sup, pop, lift in traits.get("item", [])), default=1.0)
        out.append(("item", kw, lift))
    return out


# short words for a segment's strongest behaviour differences (z > 0.8, z < -0.8), used to tell
# apart segments that share a name
_BEHAVIOUR_WORDS = {
    "evening_share": ("evening", "daytime"), "weekend_share": ("weekend", "weekday"),
    "recency_days": ("long gone", "recent"), "frequency": ("frequent", "rare"),
    "monetary": ("big spend", "small spend"), "price_sensitivity": ("premium", "discount"),
    "return_rate": ("returns", None), "holiday_share": ("holiday", None),
    "basket_size": ("big basket", "small basket"), "views_per_purchase": ("browsing", "decisive"),
    "diversity": ("varied", "focused"), "tenure_days": ("long-standing", "new"),
}


def _behaviour_words(z: dict[str, float]) -> list[str]:
    out = []
    for feat, v in sorted(z.items(), key=lambda kv: (-abs(kv[1]), kv[0])):
        if feat in _BEHAVIOUR_WORDS and abs(v) > 0.8:
            word = _BEHAVIOUR_WORDS[feat][0 if v > 0 else 1]
            if word:
                out.append(word)
    return out


def _archetypes(z: dict[str, float], focus: list) -> list[tuple[float, str]]:
    """(score, name) of every behaviour archetype the segment's z-scores support."""
    g = lambda k: z.get(k, 0.0)  # noqa: E731
    cands = []
    if g("frequency") > 0.5 and g("monetary") > 0.5:
        cands.append((min(g("frequency"), g("monetary")) + 0.3, "Loyal high spenders"))
    if g("holiday_share") > 0.7:
        cands.append((g("holiday_share"), "Holiday gift buyers"))
    if g("price_sensitivity") < -0.6:
        cands.append((-g("price_sensitivity"), "Bargain hunters"))
    if g("price_sensitivity") > 0.8:
        cands.append((g("price_sensitivity") * 0.9, "Premium buyers"))
    if g("frequency") < -0.6:
        lapsed = g("recency_days") > 0.5
        cands.append((-g("frequency") + (0.2 if lapsed else 0.0),
                      "Lapsed one-off shoppers" if lapsed else "One-off shoppers"))
    if g("evening_share") > 0.8:
        browsing = g("views_per_purchase") > 0.3  # (shops without views have no browsing)
        cands.append((g("evening_share"), "Night owl browsers" if browsing else "Night owls"))
    cat = next((f for f in focus if f[0] == "category"), None)
    if g("diversity") < -0.6 and cat is not None:
        cands.append((-g("diversity"), f"{cat[1]} specialists"))
    if max(g("basket_size"), g("avg_order_value")) > 0.8:
        cands.append((max(g("basket_size"), g("avg_order_value")) * 0.8, "Big-basket shoppers"))
    if g("return_rate") > 1.0:
        cands.append((g("return_rate") * 0.8, "Frequent returners"))
    if g("views_per_purchase") > 1.0:
        cands.append((g("views_per_purchase") * 0.8, "Window shoppers"))
    if g("weekend_share") > 1.0:
        cands.append((g("weekend_share") * 0.7, "Weekend shoppers"))
    if g("diversity") > 1.0:
        cands.append((g("diversity") * 0.6, "Variety seekers"))
    if g("tenure_days") < -1.0 and g("recency_days") < -0.5:
        cands.append((-g("tenure_days") * 0.6, "New shoppers"))
    return sorted(cands, key=lambda t: (-t[0], t[1]))


def _num(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "?"
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.1f}".rstrip("0").rstrip(".")


def _name_and_describe(sid: int, row: dict, z: dict, traits: dict, titles: dict) -> dict:
    row = dict(row)
    row["representative_users"] = list(row["representative_users"] or [])
    focus = _focus(traits, titles)
    row["qualifiers"] = [f[1] for f in focus] + _behaviour_words(z)
    if sid < 0:
        row["base_name"] = UNASSIGNED_NAME
        row["description"] = ("Shoppers in no dense group (DBSCAN noise): unusual profiles, "
                              f"{row['user_share']:.0%} of shoppers.")
        return row
    arche = _archetypes(z, focus)
    if arche:
        base = arche[0][1]
    elif focus:
        base = f"{focus[0][1]} fans"
    else:
        base = "Everyday shoppers"
    row["base_name"] = base
    parts = []
    if focus:
        kind, label, lift = focus[0]
        parts.append(f"{label} {lift:.1f}x population share")
    band = [t for t in traits.get("price_band", []) if t[3] >= 1.2 and t[1] >= 0.3]
    if band:
        parts.append(f"{band[0][0]} price")
    others = [a[1].lower() for a in arche[1:3] if a[1] != base]
    if others:
        parts.append("also " + " & ".join(others))
    f = row["frequency_median"]
    rfm = (f"median {_num(f)} order{'' if f == 1 else 's'}, {_num(row['monetary_median'])} spent")
    if row["recency_median"] is not None:
        rfm += f", last order {_num(row['recency_median'])} days ago"
    parts.append(rfm)
    parts.append(f"{row['user_share']:.0%} of shoppers")
    row["description"] = "; ".join(parts)
    return row


def _distinct_names(rows: list[dict]) -> dict[int, str]:
    """Base names, made distinct in segment order: duplicates get '(qualifier)' - their first
    trait or behaviour word that no other segment of the same name has, else their first unused
    one - then a number."""
    by_base: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["segment_id"]):
        by_base.setdefault(r["base_name"], []).append(r)
    names: dict[int, str] = {}
    used: set[str] = set()
    for base, group in by_base.items():
        if len(group) == 1:
            names[group[0]["segment_id"]] = base
            used.add(base.lower())
    for base, group in by_base.items():
        if len(group) == 1:
            continue
        for r in group:
            others = {q.lower() for o in group if o is not r for q in o["qualifiers"]}
            own = [q for q in r["qualifiers"] if q.lower() not in base.lower()]
            name = None
            for q in [q for q in own if q.lower() not in others] + own:
                cand = f"{base} ({q})"
                if cand.lower() not in used:
                    name = cand
                    break
            if name is None:
                i = 1
                while f"{base} {i}".lower() in used:
                    i += 1
                name = f"{base} {i}"
            names[r["segment_id"]] = name
            used.add(name.lower())
    return names
