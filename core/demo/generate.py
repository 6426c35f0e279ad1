"""The seeded demo-shop generator.

A gift/home/fashion web shop over one calendar year (2025): a catalogue with a three-level
category tree, brands and log-normal prices; shoppers with attributes; sessions of views, clicks,
carts, purchases, favourites, reviews and returns with a weekly and seasonal rhythm (weekends,
Black Friday, a November-December peak, quiet Christmas days, January sales).

Every shopper belongs to one planted *shopper type* (stored in ``demo_truth``) that shapes what,
when, how often and at what price they buy, so segmentation can be checked against a known
answer. Types differ clearly in the behaviour features (``core.features``) while each shopper is
drawn with noise.

Everything is vectorised with numpy and streamed into DuckDB in chunks of users, so a million
shoppers fit in memory. The same seed gives the same shop (chunks use their own seeded streams).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime

import numpy as np
import pandas as pd

from core.demo import vocab
from core.progress import NULL, Progress

GENERATOR_VERSION = 1
YEAR_START = np.datetime64("2025-01-01T00:00:00", "s")
DAYS = 365
CHUNK_USERS = 20_000
EVENT_TYPE_CODES = ("view", "click", "cart", "purchase", "favorite", "review", "return")

# ----------------------------------------------------------------------------- shopper types
# family order: Home, Kitchen, Garden, Fashion, Gifts, Christmas
SHOPPER_TYPES: dict[str, dict] = {
    "bargain_hunter": dict(
        share=0.20, orders=(3, 3.0), browse=4.0, extra_views=4.0, browse_views=4.0, basket=0.8,
        qty=0.6, price_beta=(1.0, 6.0), discount_p=0.65, discount=(0.2, 0.5),
        families=[1.0, 1.0, 0.8, 1.0, 0.8, 0.4], conc=6.0, night=0.08, weekend=2.2,
        window=((0, 150), (250, 364)), return_p=0.02, fav_p=0.20, review_p=0.03,
    ),
    "loyal_high_spender": dict(
        share=0.14, orders=(8, 6.0), browse=1.0, extra_views=0.5, browse_views=1.5, basket=1.8,
        qty=1.2, price_beta=(6.0, 1.2), discount_p=0.05, discount=(0.1, 0.2),
        families=[1.2, 1.0, 0.8, 1.2, 0.8, 0.5], conc=6.0, night=0.08, weekend=1.0,
        window=((0, 60), (350, 364)), return_p=0.06, fav_p=0.08, review_p=0.25,
    ),
    "holiday_gift_buyer": dict(
        share=0.18, orders=(2, 2.0), browse=2.0, extra_views=1.5, browse_views=2.5, basket=1.8,
        qty=0.8, price_beta=(2.5, 2.5), discount_p=0.15, discount=(0.1, 0.3),
        families=[0.05, 0.03, 0.02, 0.05, 1.0, 1.0], conc=20.0, night=0.12, weekend=1.6,
        window=((300, 322), (352, 364)), return_p=0.04, fav_p=0.10, review_p=0.05,
        seasonal=True,
    ),
    "category_specialist": dict(
        share=0.18, orders=(4, 3.0), browse=2.0, extra_views=1.2, browse_views=2.0, basket=1.0,
        qty=0.5, price_beta=(2.5, 2.5), discount_p=0.12, discount=(0.1, 0.3),
        families=[0.02, 1.0, 0.02, 0.01, 0.02, 0.01], conc=40.0, night=0.08, weekend=1.3,
        window=((0, 180), (200, 364)), return_p=0.03, fav_p=0.15, review_p=0.20,
    ),
    "one_off_visitor": dict(
        share=0.18, orders=(1, 0.0), browse=1.0, extra_views=8.0, browse_views=5.0, basket=0.15,
        qty=0.2, price_beta=(2.0, 2.5), discount_p=0.15, discount=(0.1, 0.3),
        families=[1.0, 1.0, 1.0, 1.0, 1.0, 0.5], conc=1.5, night=0.15, weekend=1.4,
        window=((0, 363), (0, 1)), relative_end=True, return_p=0.0, fav_p=0.03, review_p=0.0,
    ),
    "night_owl_browser": dict(
        share=0.12, orders=(3, 2.0), browse=4.0, extra_views=2.5, browse_views=3.0, basket=0.8,
        qty=0.4, price_beta=(2.5, 2.0), discount_p=0.15, discount=(0.1, 0.3),
        families=[1.0, 0.6, 0.5, 1.6, 1.0, 0.5], conc=6.0, night=0.92, weekend=0.8,
        window=((0, 200), (220, 364)), return_p=0.22, fav_p=0.30, review_p=0.05,
    ),
}
TYPE_NAMES = list(SHOPPER_TYPES)
TYPE_DESCRIPTIONS = {
    "bargain_hunter": "cheap items and discounts, many views per purchase, weekend shopping",
    "loyal_high_spender": "frequent, large, premium orders all year; recent; few views per purchase",
    "holiday_gift_buyer": "gifts and Christmas decorations, bought almost only in November-December",
    "category_specialist": "concentrated on one category family (kitchen), low diversity",
    "one_off_visitor": "one small order after a lot of browsing, never came back",
    "night_owl_browser": "shops late in the evening, browses a lot, returns more than others",
}

# Share of sessions per hour: daytime shoppers (peaks late morning, lunch, after dinner) and
# night owls (late evening).
_DAY_HOURS = np.array([0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 1.0, 1.8, 2.6, 3.2, 3.3, 3.4, 3.2,
                       3.0, 2.8, 2.6, 2.4, 1.6, 1.3, 1.2, 0.9, 0.6, 0.35])
_NIGHT_HOURS = np.array([0.5, 0.2, 0.05, 0.02, 0.02, 0.02, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05,
                         0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.8, 1.6, 2.6, 3.4, 3.6, 2.8])


def _day_weights(weekend: float, seasonal: bool) -> np.ndarray:
    """Relative chance of a session on each day of 2025 (day 0 = Wed 1 January)."""
    d = np.arange(DAYS)
    weekday = (d + 2) % 7  # 0 = Monday
    w = np.where(weekday >= 5, weekend, 1.0)
    season = 1.0 + 0.15 * np.sin(2 * np.pi * (d - 60) / 365)  # gentle spring/summer swell
    season += 0.6 * np.exp(-0.5 * ((d - 5) / 6.0) ** 2)  # January sales
    season += 1.3 * np.exp(-0.5 * ((d - 345) / 14.0) ** 2) * (d <= 357)  # run-up to Christmas
    season += 0.9 * np.exp(-0.5 * ((d - 332) / 1.5) ** 2)  # Black Friday (28 Nov)
    season = np.where((d >= 358) & (d <= 359), 0.3, season)  # 25-26 December
    if seasonal:
        season = season ** 3
    return w * season


# ----------------------------------------------------------------------------- catalogue
def n_items_for(users: int) -> int:
    return int(np.clip(round(1.5 * users), 500, 50_000))


def build_catalogue(n_items: int, seed: int) -> dict:
    """Items with titles, descriptions, category paths, brands and prices (deterministic)."""
    rng = np.random.default_rng([seed, 0xCA7])
    leaves = []  # (family index, path, nouns, median)
    for fi, (fam, subs) in enumerate(vocab.CATEGORY_TREE.items()):
        for sub, lv in subs.items():
            for leaf, (nouns, median) in lv.items():
                leaves.append((fi, f"{fam} > {sub} > {leaf}", nouns, median))
    n_leaves = len(leaves)
    leaf_pop = rng.dirichlet(np.full(n_leaves, 4.0))
    # every leaf gets at least a few items; the rest follow leaf popularity
    base = min(4, n_items // n_leaves)
    counts = np.full(n_leaves, base) + rng.multinomial(n_items - base * n_leaves, leaf_pop)
    leaf_of = np.repeat(np.arange(n_leaves), counts)
    fam_of_leaf = np.array([lf[0] for lf in leaves])
    family = fam_of_leaf[leaf_of]

    brand_names = [b[0] for b in vocab.BRANDS]
    brand_tier = np.array([b[2] for b in vocab.BRANDS])
    fam_brands = [
        [i for i, b in enumerate(vocab.BRANDS) if vocab.FAMILIES[f] in b[1]]
        for f in range(len(vocab.FAMILIES))
    ]
    u = rng.random(n_items)
    brand = np.array([fam_brands[f][int(x * len(fam_brands[f]))] for f, x in zip(family, u)])
    median = np.array([lf[3] for lf in leaves])[leaf_of]
    price = np.exp(np.log(median * brand_tier[brand]) + rng.normal(0, 0.45, n_items))
    price = np.round(np.maximum(price, 0.85), 2)
    # .99 / .49 endings look like a real shop
    price = np.where(price > 5, np.floor(price) + np.where(rng.random(n_items) < 0.7, 0.99, 0.49), price)

    style = rng.integers(0, len(vocab.STYLES), n_items)
    material = rng.integers(0, len(vocab.MATERIALS), n_items)
    motif = rng.integers(0, len(vocab.MOTIFS), n_items)
    xmotif = rng.integers(0, len(vocab.CHRISTMAS_MOTIFS), n_items)
    colour = rng.integers(0, len(vocab.COLOURS), n_items)
    noun_u = rng.random(n_items)
    use = rng.integers(0, 3, n_items)
    with_colour = rng.random(n_items) < 0.3
    xmas = vocab.FAMILIES.index("Christmas")
    titles, descriptions, paths = [], [], []
    for i in range(n_items):
        _, path, nouns, _ = leaves[leaf_of[i]]
        noun = nouns[int(noun_u[i] * len(nouns))]
        mot = vocab.CHRISTMAS_MOTIFS[xmotif[i]] if family[i] == xmas else vocab.MOTIFS[motif[i]]
        sty, mat = vocab.STYLES[style[i]], vocab.MATERIALS[material[i]]
        col = vocab.COLOURS[colour[i]]
        title = f"{sty} {col} {mot} {noun}" if with_colour[i] else f"{sty} {mat} {mot} {noun}"
        fam_name = vocab.FAMILIES[family[i]]
        lower = " ".join(w if w.isupper() else w.lower() for w in noun.split())
        art = "An" if sty[0] in "AEIOU" else "A"
        mart = "an" if mot[0] in "AEIOU" else "a"
        desc = (
            f"{art} {sty.lower()} {lower} in {mat.lower()}"
            f"{' (' + col.lower() + ')' if with_colour[i] else ''} with {mart} {mot.lower()} design. "
            f"{vocab.FAMILY_USES[fam_name][use[i]]} From {brand_names[brand[i]].rstrip('.')}."
        )
        titles.append(title)
        descriptions.append(desc)
        paths.append(path)

    # order items inside each leaf by price, so a price quantile picks an item
    order = np.lexsort((price, leaf_of))
    leaf_of, family, brand, price = leaf_of[order], family[order], brand[order], price[order]
    titles = [titles[i] for i in order]
    descriptions = [descriptions[i] for i in order]
    paths = [paths[i] for i in order]
    leaf_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # a companion item per item (same style & motif family of products, a related leaf):
    # the next leaf in the same family, a similar price rank -> bought together in baskets
    fam_leaves = [np.flatnonzero(fam_of_leaf == f) for f in range(len(vocab.FAMILIES))]
    rank_q = (np.arange(n_items) - leaf_start[leaf_of] + 0.5) / counts[leaf_of]
    partner_leaf = np.empty(n_leaves, dtype=np.int64)
    for f, ls in enumerate(fam_leaves):
        partner_leaf[ls] = np.roll(ls, -1)
    pl = partner_leaf[leaf_of]
    companion = leaf_start[pl] + np.minimum((rank_q * counts[pl]).astype(np.int64), counts[pl] - 1)

    # leaf popularity within a family (for choosing what a shopper looks at)
    leaf_w_in_family = [leaf_pop[ls] / leaf_pop[ls].sum() for ls in fam_leaves]
    return dict(
        n_items=n_items, leaf_of=leaf_of, family=family, brand=brand, price=price, titles=titles,
        descriptions=descriptions, paths=paths, brand_names=brand_names, counts=counts,
        leaf_start=leaf_start, fam_leaves=fam_leaves, leaf_w_in_family=leaf_w_in_family,
        companion=companion,
    )


# ----------------------------------------------------------------------------- helpers
def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def _segment_positions(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


# ----------------------------------------------------------------------------- one chunk
def _generate_chunk(cat: dict, types: np.ndarray, user_offset: int, seed: int, chunk: int,
                    day_cum: list[np.ndarray]) -> dict:
    rng = np.random.default_rng([seed, 0x5E55, chunk])
    n = len(types)
    def tp(key):
        return np.array([SHOPPER_TYPES[t][key] for t in TYPE_NAMES], dtype=float)[types]

    def tp2(key, j):
        return np.array([SHOPPER_TYPES[t][key][j] for t in TYPE_NAMES], dtype=float)[types]

    # --- shoppers: activity window, family preferences, order counts
    w0 = np.array([SHOPPER_TYPES[t]["window"] for t in TYPE_NAMES], dtype=float)[types]
    start = (w0[:, 0, 0] + rng.random(n) * (w0[:, 0, 1] - w0[:, 0, 0])).astype(np.int64)
    end = (w0[:, 1, 0] + rng.random(n) * (w0[:, 1, 1] - w0[:, 1, 0])).astype(np.int64)
    rel = np.array([SHOPPER_TYPES[t].get("relative_end", False) for t in TYPE_NAMES])[types]
    end = np.where(rel, start + end, end)
    end = np.clip(np.maximum(end, start), 0, DAYS - 1)

    fam_base = np.array([SHOPPER_TYPES[t]["families"] for t in TYPE_NAMES])[types]
    conc = tp("conc")
    fam_p = rng.gamma(fam_base / fam_base.sum(1, keepdims=True) * conc[:, None] * 2.0 + 1e-3)
    fam_p /= fam_p.sum(1, keepdims=True)

    n_orders = (tp2("orders", 0) + rng.poisson(tp2("orders", 1))).astype(np.int64)
    n_browse = rng.poisson(tp("browse")).astype(np.int64)
    price_a = tp2("price_beta", 0) * rng.uniform(0.8, 1.25, n)
    price_b = tp2("price_beta", 1) * rng.uniform(0.8, 1.25, n)

    # --- sessions
    n_sess = n_orders + n_browse
    s_user = np.repeat(np.arange(n), n_sess)
    pos = _segment_positions(n_sess)
    s_order = pos < n_orders[s_user]
    S = len(s_user)
    s_type = types[s_user]
    day = np.empty(S, dtype=np.int64)
    for t in range(len(TYPE_NAMES)):
        m = s_type == t
        if not m.any():
            continue
        C = day_cum[t]
        lo = np.where(start[s_user[m]] > 0, C[start[s_user[m]] - 1], 0.0)
        hi = C[end[s_user[m]]]
        r = lo + rng.random(int(m.sum())) * (hi - lo)
        day[m] = np.minimum(np.searchsorted(C, r, side="right"), DAYS - 1)
    night = tp("night")[s_user]
    day_h = _DAY_HOURS / _DAY_HOURS.sum()
    night_h = _NIGHT_HOURS / _NIGHT_HOURS.sum()
    use_night = rng.random(S) < night
    hour = np.where(
        use_night,
        np.searchsorted(np.cumsum(night_h), rng.random(S) * 0.999999),
        np.searchsorted(np.cumsum(day_h), rng.random(S) * 0.999999),
    )
    s_start = day * 86400 + hour * 3600 + rng.integers(0, 3000, S)

    # --- picks (items looked at) per session
    extra = np.where(s_order, rng.poisson(tp("extra_views")[s_user]),
                     1 + rng.poisson(tp("browse_views")[s_user]))
    n_buy = np.where(s_order, 1 + rng.poisson(tp("basket")[s_user]), 0)
    n_picks = n_buy + extra
    p_sess = np.repeat(np.arange(S), n_picks)
    p_pos = _segment_positions(n_picks)
    p_user = s_user[p_sess]
    bought = p_pos < n_buy[p_sess]
    NP = len(p_sess)

    # session theme family: most picks of a session stay in one family
    s_fam = _categorical(rng, fam_p[s_user])
    p_fam = np.where(rng.random(NP) < 0.75, s_fam[p_sess], _categorical(rng, fam_p[p_user]))
    # leaf within family by popularity
    p_leaf = np.empty(NP, dtype=np.int64)
    for f, ls in enumerate(cat["fam_leaves"]):
        m = p_fam == f
        if m.any():
            cw = np.cumsum(cat["leaf_w_in_family"][f])
            p_leaf[m] = ls[np.minimum(np.searchsorted(cw, rng.random(int(m.sum())) * cw[-1]), len(ls) - 1)]
    q = rng.beta(price_a[p_user], price_b[p_user])
    cnt = cat["counts"][p_leaf]
    item = cat["leaf_start"][p_leaf] + np.minimum((q * cnt).astype(np.int64), cnt - 1)
    # basket companions: later purchases in an order often go with the first one
    first_pick = np.repeat(np.cumsum(n_picks) - n_picks, n_picks)
    comp = bought & (p_pos > 0) & (rng.random(NP) < 0.4)
    item = np.where(comp, cat["companion"][item[first_pick]], item)

    # --- funnel depth: 1 view, 2 +click, 3 +cart, 4 +purchase
    u = rng.random(NP)
    depth = np.where(bought, 4, np.where(u < 0.62, 1, np.where(u < 0.9, 2, 3)))
    p_ts = s_start[p_sess] + p_pos * 55 + rng.integers(0, 40, NP)

    # a purchase is viewed, put in the cart and bought; a click (e.g. on a recommendation or
    # a photo) precedes it only sometimes
    depth = np.where(bought & (rng.random(NP) < 0.7), 3, depth)
    e_pick = np.repeat(np.arange(NP), depth)
    stage = _segment_positions(depth)
    e_type = stage.astype(np.int8)  # 0 view, 1 click, 2 cart, 3 purchase
    e_type = np.where(bought[e_pick] & (depth[e_pick] == 3) & (stage >= 1), stage + 1, stage).astype(np.int8)
    e_ts = p_ts[e_pick] + stage * 14 + rng.integers(0, 10, len(e_pick))

    # --- purchases: quantity, price paid (discounts), returns, reviews
    bp = np.flatnonzero(bought)
    bu = p_user[bp]
    qty = 1 + rng.poisson(tp("qty")[bu])
    disc = rng.random(len(bp)) < tp("discount_p")[bu]
    rate = tp2("discount", 0)[bu] + rng.random(len(bp)) * (tp2("discount", 1)[bu] - tp2("discount", 0)[bu])
    paid = np.round(cat["price"][item[bp]] * np.where(disc, 1 - rate, 1.0), 2)
    paid_of_pick = np.zeros(NP)
    qty_of_pick = np.zeros(NP)
    paid_of_pick[bp] = paid
    qty_of_pick[bp] = qty

    # order numbers (global numbering done by the caller): order index per session
    s_order_idx = np.cumsum(s_order) - 1

    extras = []  # (pick, type, ts, qty sign)
    ret = rng.random(len(bp)) < tp("return_p")[bu]
    r_ts = p_ts[bp] + rng.integers(2, 21, len(bp)) * 86400 + rng.integers(0, 36000, len(bp))
    ret &= r_ts < DAYS * 86400
    extras.append((bp[ret], 6, r_ts[ret]))
    rev = rng.random(len(bp)) < tp("review_p")[bu]
    v_ts = p_ts[bp] + rng.integers(4, 30, len(bp)) * 86400 + rng.integers(0, 36000, len(bp))
    rev &= v_ts < DAYS * 86400
    extras.append((bp[rev], 5, v_ts[rev]))
    clicked = np.flatnonzero(depth >= 2)
    fav = rng.random(len(clicked)) < tp("fav_p")[p_user[clicked]]
    extras.append((clicked[fav], 4, p_ts[clicked[fav]] + 20))

    x_pick = np.concatenate([e[0] for e in extras])
    x_type = np.concatenate([np.full(len(e[0]), e[1], dtype=np.int8) for e in extras])
    x_ts = np.concatenate([e[2] for e in extras])
    all_pick = np.concatenate([e_pick, x_pick])
    all_type = np.concatenate([e_type, x_type])
    all_ts = np.concatenate([e_ts, x_ts])
    in_session = all_type <= 4

    ev_user = p_user[all_pick]
    ev_sess = p_sess[all_pick]
    is_money = (all_type == 3) | (all_type == 6)
    quantity = np.where(all_type == 3, qty_of_pick[all_pick],
                        np.where(all_type == 6, -qty_of_pick[all_pick], np.nan))
    unit_price = np.where(is_money, paid_of_pick[all_pick], np.nan)
    order_idx = np.where(is_money, s_order_idx[ev_sess], -1)
    session_idx = np.where(in_session, ev_sess, -1)

    srt = np.lexsort((all_type, all_ts, ev_user))
    events = pd.DataFrame({
        "u": ev_user[srt] + user_offset,
        "i": item[all_pick][srt],
        "t": all_type[srt],
        "ts": YEAR_START + all_ts[srt].astype("timedelta64[s]"),
        "quantity": quantity[srt],
        "unit_price": unit_price[srt],
        "o": order_idx[srt],
        "s": session_idx[srt],
    })

    # --- shopper attributes (loosely tied to type, as in real shops)
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, s_user, s_start)
    age_p = np.array([
        [0.22, 0.30, 0.22, 0.14, 0.08, 0.04],  # bargain
        [0.03, 0.14, 0.25, 0.28, 0.20, 0.10],  # loyal
        [0.08, 0.20, 0.26, 0.22, 0.15, 0.09],  # holiday
        [0.05, 0.20, 0.28, 0.24, 0.15, 0.08],  # specialist
        [0.18, 0.26, 0.20, 0.16, 0.12, 0.08],  # one-off
        [0.35, 0.35, 0.15, 0.09, 0.04, 0.02],  # night owl
    ])[types]
    chan_p = np.array([
        [0.30, 0.25, 0.15, 0.20, 0.05, 0.05],
        [0.20, 0.05, 0.45, 0.05, 0.15, 0.10],
        [0.35, 0.20, 0.15, 0.10, 0.15, 0.05],
        [0.30, 0.10, 0.30, 0.10, 0.15, 0.05],
        [0.40, 0.25, 0.05, 0.20, 0.07, 0.03],
        [0.15, 0.35, 0.05, 0.05, 0.10, 0.30],
    ])[types]
    dev_p = np.array([
        [0.65, 0.30, 0.05], [0.35, 0.55, 0.10], [0.55, 0.35, 0.10],
        [0.45, 0.40, 0.15], [0.70, 0.25, 0.05], [0.85, 0.05, 0.10],
    ])[types]
    country_p = np.array([c[1] for c in vocab.COUNTRIES])
    users = pd.DataFrame({
        "u": np.arange(n) + user_offset,
        "country": rng.choice(len(country_p), n, p=country_p / country_p.sum()),
        "age_band": _categorical(rng, age_p),
        "channel": _categorical(rng, chan_p),
        "device": _categorical(rng, dev_p),
        "newsletter": rng.random(n) < np.where(types == 1, 0.7, 0.3),
        "first_seen": YEAR_START + first.astype("timedelta64[s]"),
        "shopper_type": types.astype(np.int8),
    })
    return dict(events=events, users=users, n_sessions=S, n_orders=int(s_order.sum()))


# ----------------------------------------------------------------------------- the store
class DemoExistsError(ValueError):
    """The store already holds data; the demo refuses to mix with or silently replace it."""


def _fingerprint(users: int, seed: int) -> str:
    return hashlib.sha256(f"demo-v{GENERATOR_VERSION}-users{users}-seed{seed}".encode()).hexdigest()[:16]


def _clear_store(con) -> None:
    """Remove everything a replaced demo shop leaves behind (data, builds, saved segments).

    The item-embedding cache is kept: it is keyed by model and text, so it stays valid.
    """
    keep = {"meta", "item_embeddings"}
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main'").fetchall()]
    for t in tables:
        if t not in keep:
            con.execute(f'DELETE FROM "{t}"')
            con.complete()


def generate_demo(store, users: int = 2000, seed: int = 42, progress: Progress = NULL, *,
                  force: bool = False) -> dict:
    """Generate the demo shop into ``store`` in one all-or-nothing write.

    An empty store gets the shop. A store that already holds this very demo (same size, seed and
    generator version) is left as it is (``skipped_already_generated``). A store holding another
    demo is replaced only with ``force=True`` (its builds and saved segments go too, since they
    describe other shoppers). A store holding ingested data is never touched: use another --db.
    """
    users = int(users)
    if users < 50:
        raise ValueError(f"--users must be at least 50 for a meaningful demo shop (got {users}).")
    if users > 5_000_000:
        raise ValueError(f"--users must be at most 5,000,000 (got {users:,}).")
    fp = _fingerprint(users, seed)
    t0 = time.perf_counter()
    if store.exists():
        with store.read() as rcon:
            existing = rcon.execute(
                "SELECT format, fingerprint, ingest_id FROM ingests ORDER BY ingest_id").fetchall()
            n_rows = rcon.execute(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM items) "
                "+ (SELECT count(*) FROM users)").fetchone()[0]
        if existing or n_rows:
            non_demo = [r for r in existing if r[0] != "demo"]
            if non_demo or (n_rows and not existing):
                raise DemoExistsError(
                    f"{store.path} already holds ingested data ({len(non_demo) or 'unrecorded'} "
                    f"ingest(s)); the demo shop is not mixed with real data. Generate it into "
                    f"another store, e.g. `segstudio demo --db data/demo.duckdb`.")
            if len(existing) == 1 and existing[0][1] == fp and not force:
                return {"skipped_already_generated": True, "ingest_id": existing[0][2],
                        "users": users, "seed": seed, "store": str(store.path)}
            if not force:
                raise DemoExistsError(
                    f"{store.path} already holds a different demo shop. Re-run with --force to "
                    f"replace it (its builds and saved segments are removed too), or use another "
                    f"--db.")

    n_items = n_items_for(users)
    with progress.stage("Demo catalogue", total=n_items) as bar:
        cat = build_catalogue(n_items, seed)
        bar.advance(n_items)
    rng = np.random.default_rng([seed, 1])
    shares = np.array([SHOPPER_TYPES[t]["share"] for t in TYPE_NAMES])
    counts = np.floor(shares / shares.sum() * users).astype(np.int64)
    counts[np.argsort(-shares)[: users - counts.sum()]] += 1
    all_types = rng.permutation(np.repeat(np.arange(len(TYPE_NAMES)), counts))
    day_cum = [np.cumsum(_day_weights(SHOPPER_TYPES[t]["weekend"], SHOPPER_TYPES[t].get("seasonal", False)))
               for t in TYPE_NAMES]

    totals = dict(events=0, sessions=0, orders=0, revenue=0.0)
    type_sql = "['" + "','".join(EVENT_TYPE_CODES) + "']"
    with store.write() as con:
        if force:
            _clear_store(con)
        ingest_id = con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingests").fetchall()[0][0]
        started = datetime.now().replace(microsecond=0)
        items_df = pd.DataFrame({
            "i": np.arange(n_items), "title": cat["titles"], "description": cat["descriptions"],
            "category_path": cat["paths"],
            "brand": np.array(cat["brand_names"], dtype=object)[cat["brand"]],
            "price": cat["price"],
        })
        con.register("demo_items_df", items_df)
        con.execute(
            "INSERT INTO items SELECT 'P' || lpad(CAST(i AS VARCHAR), 5, '0'), title, description, "
            "category_path, brand, price, ? FROM demo_items_df ORDER BY i", [ingest_id])
        con.complete()
        con.unregister("demo_items_df")
        countries = "['" + "','".join(c[0] for c in vocab.COUNTRIES) + "']"
        ages = "['" + "','".join(vocab.AGE_BANDS) + "']"
        chans = "['" + "','".join(vocab.CHANNELS) + "']"
        devs = "['" + "','".join(vocab.DEVICES) + "']"
        tnames = "['" + "','".join(TYPE_NAMES) + "']"
        n_chunks = (users + CHUNK_USERS - 1) // CHUNK_USERS
        with progress.stage("Demo shoppers", total=users) as bar:
            for c in range(n_chunks):
                lo, hi = c * CHUNK_USERS, min(users, (c + 1) * CHUNK_USERS)
                ch = _generate_chunk(cat, all_types[lo:hi], lo, seed, c, day_cum)
                ev, us = ch["events"], ch["users"]
                ev["o"] = np.where(ev["o"] >= 0, ev["o"] + totals["orders"], -1)
                ev["s"] = np.where(ev["s"] >= 0, ev["s"] + totals["sessions"], -1)
                ev["eid"] = np.arange(len(ev), dtype=np.int64) + totals["events"] + 1
                con.register("demo_users_df", us)
                con.execute(
                    f"""INSERT INTO users SELECT 'U' || lpad(CAST(u AS VARCHAR), 7, '0'),
                        json_object('country', {countries}[country + 1], 'age_band', {ages}[age_band + 1],
                                    'signup_channel', {chans}[channel + 1], 'device', {devs}[device + 1],
                                    'newsletter', newsletter),
                        first_seen, ? FROM demo_users_df ORDER BY u""", [ingest_id])
                con.complete()
                con.execute(
                    f"INSERT INTO demo_truth SELECT 'U' || lpad(CAST(u AS VARCHAR), 7, '0'), "
                    f"{tnames}[shopper_type + 1] FROM demo_users_df ORDER BY u")
                con.complete()
                con.unregister("demo_users_df")
                con.register("demo_events_df", ev)
                con.execute(
                    f"""INSERT INTO events
                    SELECT eid, uid, iid, et, ts, quantity, unit_price, bid, sid, ?,
                           hash(uid, iid, et, ts, quantity, unit_price, bid, sid)
                    FROM (SELECT eid, 'U' || lpad(CAST(u AS VARCHAR), 7, '0') AS uid,
                                 'P' || lpad(CAST(i AS VARCHAR), 5, '0') AS iid,
                                 {type_sql}[t + 1] AS et, CAST(ts AS TIMESTAMP) AS ts,
                                 quantity, unit_price,
                                 CASE WHEN o >= 0 THEN 'O' || lpad(CAST(o AS VARCHAR), 8, '0') END AS bid,
                                 CASE WHEN s >= 0 THEN 'S' || lpad(CAST(s AS VARCHAR), 9, '0') END AS sid
                          FROM demo_events_df) ORDER BY eid""", [ingest_id])
                con.complete()
                con.unregister("demo_events_df")
                totals["events"] += len(ev)
                totals["revenue"] += float(np.nansum(ev["quantity"].to_numpy() * ev["unit_price"].to_numpy()))
                totals["sessions"] += ch["n_sessions"]
                totals["orders"] += ch["n_orders"]
                del ch, ev, us
                bar.advance(hi - lo)
        seconds = time.perf_counter() - t0
        type_counts = {TYPE_NAMES[t]: int(n) for t, n in enumerate(counts)}
        loaded_rev = float(con.execute(
            "SELECT coalesce(sum(quantity * unit_price), 0) FROM events WHERE ingest_id = ?",
            [ingest_id]).fetchall()[0][0])
        revenue = {
            "revenue_read": round(totals["revenue"], 2), "revenue_loaded": round(loaded_rev, 2),
            "revenue_quarantined": 0.0, "revenue_duplicate": 0.0, "rows_without_revenue": 0,
            "revenue_reconciles": abs(loaded_rev - totals["revenue"]) <= 0.005 + 1e-9 * abs(loaded_rev),
        }
        if not revenue["revenue_reconciles"]:  # pragma: no cover - a bug in the generator
            raise RuntimeError(f"demo revenue does not reconcile: {revenue}")
        details = {"generator_version": GENERATOR_VERSION, "users": users, "seed": seed,
                   "revenue": revenue,
                   "items": n_items, "sessions": totals["sessions"], "orders": totals["orders"],
                   "shopper_types": type_counts, "seconds": round(seconds, 2)}
        con.execute(
            "INSERT INTO ingests VALUES (?, ?, ?, ?, 'demo', ?, ?, ?, 0, 0, ?)",
            [ingest_id, started, datetime.now().replace(microsecond=0),
             f"demo(users={users}, seed={seed})", fp, totals["events"], totals["events"],
             json.dumps(details)],
        )
    if force:  # saved segments of the replaced shop name shoppers that are gone
        from core.store.records import clear

        clear(store.path)
    return {
        "ingest_id": int(ingest_id), "source_file": f"demo(users={users}, seed={seed})",
        "format": "demo", "rows_read": totals["events"], "rows_loaded": totals["events"],
        "rows_quarantined": 0, "rows_duplicate": 0, "reconciles": True, "revenue": revenue,
        "skipped_already_generated": False, "store": str(store.path),
        "users": users, "items": n_items, "events": totals["events"],
        "sessions": totals["sessions"], "orders": totals["orders"], "seed": seed,
        "shopper_types": type_counts, "seconds": round(time.perf_counter() - t0, 2),
    }
