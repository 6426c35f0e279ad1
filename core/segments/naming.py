"""Names (at most four words) and descriptions of segments, only from what the data shows.

A taste segment's name comes from the first of these that holds:

1. a **dominant lifecycle stage** that is who they are: at least 60 % of the members are loyal
   high value, one-off buyers or browsers who never bought, and that is at least twice the
   stage's share of the shop ("Loyal high spenders", "One-off shoppers", ...);
2. a **behaviour word** ("Night owls", "Bargain hunters", ...): its habit flag is a qualifying
   trait (``core.segments.traits``) *and* the segment's median differs from the shop's median by
   the margin stated in ``BEHAVIOUR_WORDS`` (e.g. night owls: median evening share at least 0.5
   and at least 0.25 above the shop's);
3. the strongest qualifying **category, theme or brand** (``content_traits``):
   "<Category> specialists" when the segment's median category variety is at least 0.5 bits
   below the shop's, else "<Label> shoppers";
4. a word the segment's **qualifying items** share (``item_word``: in the titles of at least three
   of them, or of a quarter of a short list (two of six), most members behind it, rare in the
   catalogue): "<Word> shoppers";
5. the named **theme most of its qualifying items belong to** (``items_theme``: at least three of
   them and at least half): "<Theme> shoppers". A theme can fail to qualify as a trait where
   nearly every shopper touches it once (a ratings file: most people rate a film or two of every
   genre) while the items that set the segment apart are all of it;
6. otherwise "Broad taste": nothing sets the segment apart, and the name says so.

A dominant new, active, at-risk or lapsed stage (same 60 % / twice rule) prefixes 2 or 3 when the
name stays within four words ("Lapsed kitchen specialists", "New holiday gift buyers"), else it
becomes a qualifier.

Lifecycle segments keep their stage names. Descriptions are sentences built from the same
figures: the qualifying traits with their shares and lifts, the typical member's orders, spend
per shopper and per order (only where the shop has prices, with the currency), days since the
last order, their busiest three hours as clock times, the dominant lifecycle stage, and the
segment's shares of shoppers and revenue.
"""

from __future__ import annotations

import math

import numpy as np

# key -> (name, feature, test(segment median, shop median), the margin in words)
BEHAVIOUR_WORDS = {
    "evening": ("Night owls", "evening_share",
                lambda s, p: s >= 0.5 and s - p >= 0.25,
                "median evening share >= 50% and 25 points above the shop's"),
    "weekend": ("Weekend shoppers", "weekend_share",
                lambda s, p: s >= 0.5 and s - p >= 0.25,
                "median weekend share >= 50% and 25 points above the shop's"),
    "bargain": ("Bargain hunters", "price_sensitivity",
                lambda s, p: s <= p - 0.15, "median price level 15% below the shop's or more"),
    "premium": ("Premium buyers", "price_sensitivity",
                lambda s, p: s >= p + 0.15, "median price level 15% above the shop's or more"),
    "holiday": ("Holiday gift buyers", "holiday_share",
                lambda s, p: s >= 0.5 and s - p >= 0.25,
                "median November-December share >= 50% and 25 points above the shop's"),
    "big_baskets": ("Big-basket buyers", "basket_size",
                    lambda s, p: p > 0 and s >= 1.5 * p, "median items per order 1.5x the shop's"),
    "returns": ("Frequent returners", "return_rate",
                lambda s, p: s >= 0.1 and s - p >= 0.1,
                "median return rate >= 10% and 10 points above the shop's"),
    "browsing": ("Window shoppers", "views_per_purchase",
                 lambda s, p: p > 0 and s >= 2 * p, "median views per purchase 2x the shop's"),
    "rates_low": ("Critical raters", "rating_vs_shop",
                  lambda s, p: s <= p - 0.5, "median rating half a point below the shop's or more"),
    "rates_high": ("Generous raters", "rating_vs_shop",
                   lambda s, p: s >= p + 0.5, "median rating half a point above the shop's or more"),
}
LIFECYCLE_NAMES = {
    "loyal": "Loyal high spenders", "active": "Active repeat buyers", "new": "New shoppers",
    "at_risk": "At-risk shoppers", "one_off": "One-off shoppers", "lapsed": "Lapsed shoppers",
    "browsers": "Browsers who never bought",
}
LIFECYCLE_WORDS = {
    "loyal": "loyal high value", "active": "active repeat buyers", "new": "new customers",
    "at_risk": "at risk", "one_off": "one-off buyers", "lapsed": "lapsed",
    "browsers": "browsers who never bought",
}
# a shop where nobody ordered (ratings, views): the lifecycle stages count visits
VISIT_NAMES = {
    "loyal": "Loyal frequent visitors", "active": "Active regular visitors",
    "new": "New visitors", "at_risk": "At-risk visitors", "one_off": "One-visit shoppers",
    "lapsed": "Lapsed visitors", "browsers": "Browsers who never bought",
}
VISIT_WORDS = {
    "loyal": "loyal frequent visitors", "active": "active regular visitors",
    "new": "new visitors", "at_risk": "at risk", "one_off": "one-visit shoppers",
    "lapsed": "lapsed", "browsers": "browsers who never bought",
}
DOMINANT_SHARE, DOMINANT_LIFT = 0.6, 2.0
UNASSIGNED_NAME = "Unassigned"
BROAD_NAME = "Broad taste"   # the name that says nothing sets a segment apart


def is_fallback_name(name) -> bool:
    """Whether a segment name only says nothing set the segment apart ("Broad taste", "Broad
    taste (loyal high value)", "Broad taste 2"): not an identity a later build should keep."""
    return str(name or "").startswith(BROAD_NAME)


def _ok(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def behaviour_words(traits, med: dict, shop: dict) -> list[tuple[str, str, float]]:
    """(key, word, score) of behaviour words the segment earns, strongest first."""
    out = []
    for r in traits:
        if r["dimension"] != "behaviour" or r["value"] not in BEHAVIOUR_WORDS:
            continue
        word, feat, test, _ = BEHAVIOUR_WORDS[r["value"]]
        s, p = med.get(feat), shop.get(feat)
        if _ok(s) and _ok(p) and test(float(s), float(p)):
            out.append((r["value"], word, r["support"] * math.log(r["lift"])))
    return sorted(out, key=lambda t: (-t[2], t[1]))


def dominant_stage(mix: dict[str, float], shop_mix: dict[str, float]) -> str | None:
    for stage, share in sorted(mix.items(), key=lambda kv: -kv[1]):
        base = shop_mix.get(stage, 0.0)
        if share >= DOMINANT_SHARE and base > 0 and share / base >= DOMINANT_LIFT:
            return stage
        break
    return None


CONTENT_ORDER = ("category", "theme", "brand")
LIFECYCLE_PREFIX = {"new": "New", "active": "Active", "at_risk": "At-risk", "lapsed": "Lapsed"}


def content_traits(traits) -> list[dict]:
    """Qualifying category, theme and brand traits, best name source first: the shop's own
    categories before themes before brands when held by at least a quarter of the members, each
    by support x log(lift)."""
    rows = [r for r in traits if r["dimension"] in CONTENT_ORDER]

    def key(r):
        broad = r["support"] >= 0.25
        return (0 if broad else 1, CONTENT_ORDER.index(r["dimension"]) if broad else 0,
                -(r["support"] * math.log(r["lift"])), r["label"])

    return sorted(rows, key=key)


def _title(label: str) -> str:
    v = str(label).split(" > ")[-1].strip()
    if v.isupper():
        v = v.lower()
    return v[:1].upper() + v[1:]


def _short(name: str, limit: int = 4) -> str:
    words = name.split()
    return name if len(words) <= limit else " ".join(words[:limit])


def item_word(traits, title_df: dict[str, int], n_titles: int, min_items: int = 3) -> str | None:
    """A word (or two) the segment's qualifying items share: the term in the titles of at least
    ``min_items`` of them, or of a quarter of them where that is fewer (at least two: two of a
    short list of up to eight; the cover a theme's label needs, ``core.themes.label.MIN_COVER``),
    with the most members behind it, weighted by how rare the term is in the whole catalogue
    (log(catalogue titles / titles with the term)), e.g. 'Regency'. A segment needs
    ``min_items`` qualifying items for any word."""
    from core.themes.label import MIN_COVER, terms

    items = [r for r in traits if r["dimension"] == "item"]
    if len(items) < min_items:
        return None
    need = min(min_items, max(2, math.ceil(MIN_COVER * len(items))))
    count, weight = {}, {}
    for r in items:
        for t in set(terms(r["label"])):
            count[t] = count.get(t, 0) + 1
            weight[t] = weight.get(t, 0.0) + float(r["members"])
    best = None
    for t, c in count.items():
        if c < need:
            continue
        idf = math.log(max(n_titles, 1) / max(title_df.get(t, 1), 1))
        score = weight[t] * idf * (1.5 if " " in t else 1.0)
        if best is None or score > best[0] or (score == best[0] and t < best[1]):
            best = (score, t)
    return _title(best[1]) if best and best[0] > 0 else None


def items_theme(traits, item_themes: dict[str, str], min_items: int = 3) -> str | None:
    """The named theme (``item_themes``: item id -> label, mixed themes left out) that at least
    ``min_items`` and at least half of the segment's qualifying items belong to."""
    items = [r for r in traits if r["dimension"] == "item"]
    counts: dict[str, int] = {}
    for r in items:
        label = item_themes.get(str(r["value"]))
        if label:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return None
    label, c = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return _title(label) if c >= min_items and 2 * c >= len(items) else None


def taste_name(traits, med: dict, shop: dict, mix: dict, shop_mix: dict,
               no_prices: bool = False, title_df: dict | None = None,
               n_titles: int = 0, item_themes: dict | None = None,
               no_purchases: bool = False) -> tuple[str, str, list[str]]:
    """(name, what it came from, qualifiers for telling same-named segments apart).
    ``no_purchases``: nobody ordered, so the lifecycle words are about visits."""
    stage_names, stage_words = ((VISIT_NAMES, VISIT_WORDS) if no_purchases
                                else (LIFECYCLE_NAMES, LIFECYCLE_WORDS))
    words = behaviour_words(traits, med, shop)
    content = content_traits(traits)
    stage = dominant_stage(mix, shop_mix)
    quals = [_title(r["label"]) for r in content[:3]] + [w for _, w, _ in words[1:3]]
    if stage in ("loyal", "one_off", "browsers"):  # the lifecycle is who they are
        name = ("Loyal frequent buyers" if stage == "loyal" and no_prices and not no_purchases
                else stage_names[stage])
        return name, "lifecycle", [w for _, w, _ in words[:2]] + quals[:2]
    if words:
        core, source = words[0][1], "behaviour"
        if words[0][0] == "evening" and any(k == "browsing" for k, _, _ in words):
            core = "Night owl browsers"
    elif content:
        top = content[0]
        label = _title(top["label"])
        dm, dp = med.get("diversity"), shop.get("diversity")
        focused = top["dimension"] == "category" and _ok(dm) and _ok(dp) and dm <= dp - 0.5
        core = f"{label} specialists" if focused else f"{label} shoppers"
        source, quals = top["dimension"], quals[1:]
    elif item_word(traits, title_df or {}, n_titles):
        core, source = f"{item_word(traits, title_df or {}, n_titles)} shoppers", "items"
    elif items_theme(traits, item_themes or {}):
        core, source = f"{items_theme(traits, item_themes or {})} shoppers", "items' theme"
    elif stage:
        return stage_names[stage], "lifecycle", quals
    else:
        top_stage = max(mix, key=mix.get) if mix else None
        return BROAD_NAME, "none", [stage_words[top_stage]] if top_stage else []
    if stage in LIFECYCLE_PREFIX:
        prefixed = f"{LIFECYCLE_PREFIX[stage]} {core[:1].lower()}{core[1:]}"
        if len(prefixed.split()) <= 4:
            return prefixed, f"{source} + lifecycle", quals
    return _short(core), source, quals + ([stage_words[stage]] if stage else [])


def distinct_names(rows: list[dict]) -> dict[int, str]:
    """Names made distinct in segment order: a repeated name gets '(qualifier)' - the first of
    its qualifiers no other segment of that name has, else its first unused one - then a number.
    """
    by_name: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["segment_id"]):
        by_name.setdefault(r["base_name"], []).append(r)
    names, used = {}, set()
    for base, group in by_name.items():
        if len(group) == 1:
            names[group[0]["segment_id"]] = base
            used.add(base.lower())
    for base, group in by_name.items():
        if len(group) == 1:
            continue
        for r in group:
            others = {q.lower() for o in group if o is not r for q in o["qualifiers"]}
            own = [q for q in r["qualifiers"] if q and q.lower() not in base.lower()]
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


# --------------------------------------------------------------------------- descriptions
def money(x, currency: str) -> str:
    a = abs(float(x))
    sign = "-" if x < 0 else ""
    if a >= 1e6:
        return f"{sign}{currency}{a / 1e6:,.1f}m"
    return f"{sign}{currency}{a:,.0f}" if a >= 100 else f"{sign}{currency}{a:,.2f}"


def number(x) -> str:
    x = float(x)
    return f"{x:,.0f}" if abs(x - round(x)) < 0.05 or abs(x) >= 10 else f"{x:,.1f}"


def peak_hours(hour_shares: dict[str, float], width: int = 3) -> str | None:
    """'14:00-17:00': the ``width`` consecutive hours (wrapping at midnight) with the most
    activity, when they hold clearly more than their even share."""
    if not hour_shares:
        return None
    h = np.zeros(24)
    for k, v in hour_shares.items():
        h[int(k)] = float(v)
    if h.sum() <= 0:
        return None
    h = h / h.sum()
    sums = np.array([h[[(s + i) % 24 for i in range(width)]].sum() for s in range(24)])
    best = np.flatnonzero(np.isclose(sums, sums.max()))
    s = int(max(best, key=lambda b: (h[(b + width // 2) % 24], -b)))  # centred on the peak
    if sums[s] < 1.5 * width / 24:
        return None
    return f"{s:02d}:00-{(s + width) % 24:02d}:00"


def _share(x: float) -> str:
    """A share as a marketer reads it: whole percents from 1 %, one decimal below (on a large
    catalogue an item's share is a fraction of a percent: "0% vs 0%" said nothing)."""
    x = float(x)
    if x >= 0.01 or x <= 0:
        return f"{x:.0%}"
    return f"{x:.1%}" if x >= 0.001 else "<0.1%"


def _trait_phrase(r) -> str:
    return (f"{_title(r['label'])} ({_share(r['support'])} of members vs "
            f"{_share(r['population_support'])} of the shop, {r['lift']:.1f}x)")


def describe(row: dict, traits, med: dict, mix: dict, hours: dict, *, currency: str,
             has_prices: bool, has_purchases: bool, rule: str | None = None) -> str:
    """One paragraph a marketer can read: what sets the segment apart and its typical member."""
    parts = []
    if rule:
        parts.append(rule)
    content = content_traits(traits)
    if content:
        parts.append("Over-represented: " + "; ".join(_trait_phrase(r) for r in content[:3]) + ".")
    items = sorted((r for r in traits if r["dimension"] == "item"),
                   key=lambda r: (-(r["support"] * math.log(r["lift"])), r["label"]))
    if items and not rule:
        # a shop without purchases (views, ratings): the items they engaged with, not bought
        lead = "Bought more here: " if has_purchases else "Engaged with more here: "
        parts.append(lead + "; ".join(_trait_phrase(r) for r in items[:3]) + ".")
    habits = [r for r in traits if r["dimension"] == "behaviour"]
    if habits:
        parts.append("Habits: " + "; ".join(
            f"{r['label'].lower()} ({r['support']:.0%} vs {r['population_support']:.0%})"
            for r in habits[:2]) + ".")
    if not content and not habits and not items and not rule:
        parts.append("Nothing sets this group apart from the shop by a clear margin "
                     "(no theme, category, brand or habit is both much more common and "
                     "significant here).")
    typ = []
    f = med.get("frequency")
    if has_purchases and _ok(f):
        typ.append(f"{number(f)} order{'' if float(f) == 1 else 's'}")
        if has_prices and _ok(med.get("monetary")):
            typ.append(f"{money(med['monetary'], currency)} per shopper")
        if has_prices and _ok(med.get("avg_order_value")):
            typ.append(f"{money(med['avg_order_value'], currency)} per order")
        if _ok(med.get("recency_days")):
            typ.append(f"last order {number(med['recency_days'])} days ago")
    elif _ok(med.get("n_events")):
        typ.append(f"{number(med['n_events'])} interactions, no order")
    peak = peak_hours(hours)
    if typ or peak:
        parts.append("Typical member: " + ", ".join(typ)
                     + (f"{'; ' if typ else ''}shops mostly {peak}" if peak else "") + ".")
    if mix:
        stage, share = max(mix.items(), key=lambda kv: kv[1])
        words = LIFECYCLE_WORDS if has_purchases else VISIT_WORDS
        parts.append(f"Lifecycle: {share:.0%} {words.get(stage, stage)}.")
    size = f"{row['user_share']:.0%} of shoppers"
    if has_prices and row.get("revenue_share") is not None:
        size += f", {row['revenue_share']:.0%} of revenue"
    parts.append(size[:1].upper() + size[1:] + ".")
    return " ".join(parts)
