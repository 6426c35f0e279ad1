"""What sets a segment apart, and what it is called: the trait thresholds and significance test
with exact figures, and names that the segments' own data never contradicts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core.features import compute_features
from core.segments import assign_lifecycle, describe_segments
from core.segments.naming import BEHAVIOUR_WORDS, distinct_names, item_word, peak_hours, taste_name
from core.segments.traits import qualify


def test_thresholds_and_fisher_test_with_bonferroni():
    df = pd.DataFrame([
        # segment, dimension, value, members, holders
        (0, "theme", "Candles", 4, 4),     # 4 of 5 members vs 4 of 10 shoppers
        (0, "theme", "Mugs", 2, 4),        # lift 1.0
        (1, "item", "rare", 1, 1),         # lift 2.0, 20 % of members, but p = 0.5
    ], columns=["segment_id", "dimension", "value", "members", "holders"])
    q = qualify(df, {0: 5, 1: 5}, 10, n_tests=1).set_index("value")
    # support 0.8, population 0.4, lift 2.0; P(X >= 4), X ~ Hypergeometric(10, 4, 5):
    # C(4,4) C(6,1) / C(10,5) = 6 / 252
    assert q.loc["Candles", ["support", "population_support", "lift"]].tolist() == \
        pytest.approx([0.8, 0.4, 2.0])
    assert q.loc["Candles", "p_value"] == pytest.approx(6 / 252)
    assert q["qualifies"].to_dict() == {"Candles": True, "Mugs": False, "rare": False}
    assert q.loc["rare", "p_value"] == pytest.approx(0.5)
    # tried against three traits, Candles is no longer significant (3 x 6/252 = 0.071)
    q3 = qualify(df, {0: 5, 1: 5}, 10).set_index("value")
    assert q3.loc["Candles", "p_value"] == pytest.approx(18 / 252)
    assert not q3["qualifies"].any()


def test_few_holders_need_ten_percent_of_the_segment_or_thirty_members():
    df = pd.DataFrame([(0, "item", "a", 5, 6), (0, "item", "b", 30, 60), (0, "item", "c", 12, 15)],
                      columns=["segment_id", "dimension", "value", "members", "holders"])
    q = qualify(df, {0: 200}, 2000, n_tests=1).set_index("value")
    # a: 2.5 % of members (lift 8.3): too few; b: 15 % (lift 5); c: 6 % but lift 8 and only 12
    assert q["qualifies"].to_dict() == {"a": False, "b": True, "c": False}


# ----------------------------------------------------------------------------- a known shop
GROUPS = {  # group: (shoppers, hour of their orders, items they buy besides misc)
    "A": (30, 10, ["c1", "c2"]),       # candle lovers, daytime
    "B": (30, 10, ["m1", "m2"]),       # mug lovers, daytime
    "C": (30, 11, []),                 # broad: misc only, like everyone
    "D": (60, None, []),               # 27 of 60 order in the evening: the flag is common here,
    "E": (10, 20, []),                 # but not the median member's habit; E are night owls
}


def _known_shop(con) -> dict[str, int]:
    cats = {"c1": "Candles", "c2": "Candles", "m1": "Mugs", "m2": "Mugs"}
    for i in range(1, 7):
        cats[f"x{i}"] = "Misc"
    for it, cat in cats.items():
        con.execute("INSERT INTO items VALUES (?, ?, NULL, ?, NULL, 4.0, 1)",
                    [it, f"{cat.upper()} {it.upper()}", cat])
    n, seg = 0, {}
    for gi, (g, (size, hour, extra)) in enumerate(GROUPS.items()):
        for u in range(size):
            uid = f"{g}{u:02d}"
            seg[uid] = gi
            h = hour if hour is not None else (21 if u < 27 else 12)
            for o, day in enumerate(("2025-03-03", "2025-06-02", "2025-09-01")):
                misc = [f"x{1 + (u + o + j) % 6}" for j in range(3 - len(extra))]
                for it in extra + misc:  # three lines per order: everybody spends alike
                    n += 1
                    con.execute("INSERT INTO events VALUES (?, ?, ?, 'purchase', ?, 1, 4.0, ?, NULL, "
                                "1, NULL)", [n, uid, it, f"{day} {h:02d}:00:00", f"{uid}-{o}"])
    return seg


def _build(con):
    seg = _known_shop(con)
    compute_features(con, 1)
    assign_lifecycle(con, 1)
    con.executemany("INSERT INTO segments VALUES (1, ?, ?, NULL)", list(seg.items()))
    return describe_segments(con, 1, lens="taste")


def test_names_come_only_from_qualifying_traits_and_margins(tmp_store):
    with tmp_store.write() as con:
        m = _build(con)
        traits = con.execute("SELECT segment_id, dimension, value, support, lift, members, p_value "
                             "FROM segment_traits WHERE run_id = 1").df()
        med = con.execute("SELECT s.segment_id, median(f.evening_share) AS evening "
                          "FROM segments s JOIN user_features f USING (run_id, user_id) "
                          "WHERE s.run_id = 1 GROUP BY 1 ORDER BY 1").df()
        desc = dict(con.execute("SELECT segment_id, description FROM segment_info WHERE run_id = 1"
                                ).fetchall())
    assert m["names"] == {0: "Candles shoppers", 1: "Mugs shoppers", 2: "Broad taste (loyal high value)",
                          3: "Broad taste 1", 4: "Night owls"}
    # every stored trait meets every threshold; nothing bought less than in the shop is shown
    assert len(traits) > 0
    assert (traits["lift"] >= 1.5).all() and (traits["p_value"] < 0.05).all()
    assert ((traits["support"] >= 0.1) | (traits["members"] >= 30)).all()
    # D: 27 of 60 evening shoppers (45 % vs 37 of 160 in the shop) qualifies as a trait, but
    # the median member shops by day, so D is not called night owls
    d_evening = traits[(traits["segment_id"] == 3) & (traits["value"] == "evening")]
    assert d_evening["support"].tolist() == [pytest.approx(0.45)]
    assert d_evening["lift"].tolist() == [pytest.approx(0.45 / (37 / 160))]
    assert med.set_index("segment_id").loc[3, "evening"] == 0.0
    assert "evening" in desc[3].lower() and "shops mostly 11:00-14:00" in desc[3]
    assert "Candles (100% of members vs 19% of the shop, 5.3x)" in desc[0]
    assert "£" in desc[0] and "per order" in desc[0]


def test_no_name_word_is_contradicted_by_the_segments_medians(built_demo_store):
    con = built_demo_store.read()
    try:
        names = dict(con.execute("SELECT segment_id, name FROM segment_info WHERE run_id = "
                                 "(SELECT max(run_id) FROM runs)").fetchall())
        feats = con.execute("SELECT * FROM user_features WHERE run_id = (SELECT max(run_id) FROM runs)"
                            ).df()
        seg = dict(con.execute("SELECT user_id, segment_id FROM segments WHERE run_id = "
                               "(SELECT max(run_id) FROM runs)").fetchall())
    finally:
        con.close()
    feats["segment_id"] = feats["user_id"].map(seg)
    checked = 0
    for sid, name in names.items():
        for key, (word, feat, test, _) in BEHAVIOUR_WORDS.items():
            if word.lower().rstrip("s") in name.lower():
                s = feats.loc[feats["segment_id"] == sid, feat].median()
                assert test(s, feats[feat].median()), (name, feat, s)
                checked += 1
    assert checked >= 2  # the demo's bargain hunters and night owls are named from behaviour


def test_taste_name_rules_in_order():
    def t(dim, value, support, lift, label=None, members=50):
        return {"dimension": dim, "value": value, "support": support, "lift": lift,
                "label": label or value, "members": members}

    evening = t("behaviour", "evening", 0.9, 4.0, "Mostly shops in the evening")
    kitchen = t("category", "Kitchen", 0.8, 2.0)
    shop = {"evening_share": 0.1, "diversity": 1.5}
    # a qualifying habit with the median past the margin: the behaviour word
    assert taste_name([evening, kitchen], {"evening_share": 0.8}, shop, {}, {})[0] == "Night owls"
    # the same trait without the median margin: the content instead
    assert taste_name([evening, kitchen], {"evening_share": 0.3, "diversity": 1.4}, shop, {}, {}
                      )[0] == "Kitchen shoppers"
    # focused category variety makes specialists
    assert taste_name([kitchen], {"diversity": 0.5}, shop, {}, {})[0] == "Kitchen specialists"
    # a dominant lifecycle stage that is who they are
    assert taste_name([kitchen], {}, shop, {"loyal": 0.9}, {"loyal": 0.2})[0] == "Loyal high spenders"
    assert taste_name([kitchen], {}, shop, {"loyal": 0.9}, {"loyal": 0.5})[0] == "Kitchen shoppers"
    assert taste_name([kitchen], {"diversity": 0.5}, shop, {"lapsed": 0.7}, {"lapsed": 0.2}
                      )[0] == "Lapsed kitchen specialists"
    assert taste_name([], {}, shop, {"at_risk": 0.5}, {"at_risk": 0.2})[0] == "Broad taste"
    # nobody ordered (a ratings file): the lifecycle stages count visits, and so do the words
    assert taste_name([kitchen], {}, shop, {"loyal": 0.9}, {"loyal": 0.2}, no_prices=True,
                      no_purchases=True)[0] == "Loyal frequent visitors"
    assert taste_name([kitchen], {}, shop, {"one_off": 0.9}, {"one_off": 0.2},
                      no_purchases=True)[0] == "One-visit shoppers"
    assert taste_name([], {}, shop, {"active": 0.5}, {"active": 0.3}, no_purchases=True
                      )[2] == ["active regular visitors"]


def test_rating_habits_name_and_describe_a_segment_with_the_habits_margins():
    from core.segments.naming import describe

    critical = {"dimension": "behaviour", "value": "rates_low", "support": 0.6, "lift": 3.0,
                "population_support": 0.2, "members": 60,
                "label": "Rates items lower than the typical shopper (half a point or more)"}
    kitchen = {"dimension": "category", "value": "Kitchen", "support": 0.8, "lift": 2.0,
               "population_support": 0.4, "members": 80, "label": "Kitchen"}
    shop = {"rating_vs_shop": 0.1, "diversity": 1.5}
    assert taste_name([critical, kitchen], {"rating_vs_shop": -0.4}, shop, {}, {})[0] == \
        "Critical raters"                                    # median 0.5 below the shop's
    assert taste_name([critical, kitchen], {"rating_vs_shop": -0.3, "diversity": 1.4}, shop,
                      {}, {})[0] == "Kitchen shoppers"       # 0.4 below: not by the margin
    text = describe({"user_share": 0.25}, [critical], {}, {}, {}, currency="£",
                    has_prices=False, has_purchases=False)
    assert text == ("Habits: rates items lower than the typical shopper (half a point or more) "
                    "(60% vs 20%). 25% of shoppers.")
    # nobody ordered: the lifecycle mix is in visits
    assert describe({"user_share": 0.25}, [critical], {}, {"one_off": 0.7, "new": 0.3}, {},
                    currency="£", has_prices=False, has_purchases=False).endswith(
        "Lifecycle: 70% one-visit shoppers. 25% of shoppers.")
    # a ratings shop's items are the ones its members engaged with: nobody bought them
    film = {"dimension": "item", "value": "m1", "support": 0.7, "lift": 2.5,
            "population_support": 0.28, "members": 70, "label": "Love letters"}
    for bought, lead in ((False, "Engaged with more here"), (True, "Bought more here")):
        assert describe({"user_share": 0.25}, [film], {}, {}, {}, currency="£", has_prices=False,
                        has_purchases=bought).startswith(
            f"{lead}: Love letters (70% of members vs 28% of the shop, 2.5x).")


def test_item_words_need_three_qualifying_items_a_quarter_of_a_short_list_and_are_rare():
    items = [{"dimension": "item", "label": t, "members": m, "support": 0.3, "lift": 3.0}
             for t, m in [("REGENCY CAKESTAND 3 TIER", 300), ("ROSES REGENCY TEACUP", 200),
                          ("GREEN REGENCY TEACUP", 190), ("PINK REGENCY TEACUP", 170)]]
    title_df = {"regency": 10, "teacup": 12, "regency teacup": 40, "cakestand": 5}
    assert item_word(items, title_df, 4000) == "Regency"
    assert item_word(items[:2], title_df, 4000) is None
    # a short list: a word in a quarter of its items (two of six) names it, as a theme label
    # needs a quarter of its titles; one of six does not
    garden = [{"dimension": "item", "label": t, "members": m, "support": 0.4, "lift": 3.0}
              for t, m in [("Garden trowel", 86), ("Watering can", 81), ("Plant labels", 77),
                           ("Pruning shears", 73), ("Seed tray", 68), ("Garden gloves", 62)]]
    df = {"garden": 2, "watering": 1, "can": 1, "plant": 1, "labels": 1, "pruning": 1,
          "shears": 1, "seed": 1, "tray": 1, "gloves": 1, "trowel": 1}
    assert item_word(garden, df, 18) == "Garden"
    assert item_word(garden[1:], df, 18) is None
    assert taste_name(garden, {}, {}, {}, {}, title_df=df, n_titles=18)[0] == "Garden shoppers"


def test_a_segment_is_named_after_the_theme_most_of_its_qualifying_items_belong_to():
    """A ratings shop: everyone rates a film or two of every genre, so no genre's theme qualifies
    as a trait, and no word is in a quarter of the horror fans' twelve films; eleven of the
    twelve are in the "Ghost & haunted" theme, which names them (no longer "Broad taste")."""
    from core.segments.naming import items_theme

    films = ["The Vampire Kiss", "Ghost Train", "The Haunting Hour", "Zombie Island", "Ghost Ship",
             "Night of the Haunted House", "Return of the Zombie", "Blood Moon",
             "The Cursed Crypt", "Vampire Night", "Haunted Manor", "The Slasher"]
    traits = [{"dimension": "item", "value": f"m{i}", "label": t, "members": 60, "support": 0.6,
               "lift": 2.4} for i, t in enumerate(films)]
    themes = {f"m{i}": "Ghost & haunted" for i in range(11)} | {"m11": "Gunfight & showdown"}
    df = {"ghost": 2, "haunted": 2, "zombie": 2, "vampire": 2, "haunting": 1}
    assert item_word(traits, df, 36) is None
    assert items_theme(traits, themes) == "Ghost & haunted"
    assert taste_name(traits, {}, {}, {}, {}, title_df=df, n_titles=36,
                      item_themes=themes)[:2] == ("Ghost & haunted shoppers", "items' theme")
    assert taste_name(traits, {}, {}, {}, {}, title_df=df, n_titles=36)[0] == "Broad taste"
    # fewer than half of the items in one theme: no name from it
    split = {f"m{i}": ("Ghost & haunted" if i < 5 else "Gunfight & showdown" if i < 10 else "")
             for i in range(12)}
    assert items_theme(traits, split) is None


def test_peak_hours_and_distinct_names():
    assert peak_hours({"14": 0.3, "15": 0.3, "16": 0.2, "09": 0.2}) == "14:00-17:00"
    assert peak_hours({f"{h:02d}": 1.0 for h in range(24)}) is None  # no clear peak
    assert peak_hours({"23": 0.5, "00": 0.3, "01": 0.2}) == "23:00-02:00"
    rows = [{"segment_id": 0, "base_name": "Bargain hunters", "qualifiers": ["Garden"]},
            {"segment_id": 1, "base_name": "Bargain hunters", "qualifiers": ["Garden", "Kitchen"]},
            {"segment_id": 2, "base_name": "Bargain hunters", "qualifiers": []},
            {"segment_id": 3, "base_name": "Broad taste", "qualifiers": []}]
    assert distinct_names(rows) == {0: "Bargain hunters (Garden)", 1: "Bargain hunters (Kitchen)",
                                    2: "Bargain hunters 1", 3: "Broad taste"}


def test_no_money_in_descriptions_of_shops_without_prices(tmp_store):
    with tmp_store.write() as con:
        _known_shop(con)
        con.execute("UPDATE events SET unit_price = NULL")
        con.execute("UPDATE items SET price = NULL")
        compute_features(con, 1)
        assign_lifecycle(con, 1)
        describe_segments(con, 1, lens="lifecycle")
        desc = [r[0] for r in con.execute("SELECT description FROM lifecycle_info").fetchall()]
    assert desc and all("£" not in d and "spent" not in d and "per order" not in d for d in desc)
    assert not math.isnan(len(desc))


def test_small_shares_keep_a_decimal_in_segment_descriptions():
    """On a large catalogue an item is bought by a fraction of a percent of shoppers: the
    description says 0.4% vs 0.08%-like figures, never "0% vs 0%"."""
    from core.segments.naming import _share, _trait_phrase

    assert [_share(x) for x in (1.0, 0.19, 0.01, 0.0099, 0.004, 0.001, 0.0004, 0.0)] == \
        ["100%", "19%", "1%", "1.0%", "0.4%", "0.1%", "<0.1%", "0%"]
    assert _trait_phrase({"label": "rustic jute star whisk", "support": 0.0041,
                          "population_support": 0.00084, "lift": 4.9}).endswith(
        "(0.4% of members vs <0.1% of the shop, 4.9x)")


def test_a_mixed_theme_is_never_a_trait(tmp_store):
    """Segment A holds every candle and B every mug; the candles' theme has a name, the mugs'
    theme is mixed (no word names a quarter of its items): only the named one is a trait."""
    with tmp_store.write() as con:
        con.execute("INSERT INTO theme_info (run_id, theme_id, label, keywords, n_items) VALUES "
                    "(1, 0, 'Candle', ['candle'], 2), (1, 1, 'Mixed: mugs, misc', ['mugs'], 2)")
        con.execute("INSERT INTO item_themes VALUES (1, 'c1', 0), (1, 'c2', 0), (1, 'm1', 1), "
                    "(1, 'm2', 1)")
        m = _build(con)
        themes = con.execute("SELECT segment_id, value FROM segment_traits WHERE run_id = 1 "
                             "AND dimension = 'theme' ORDER BY 1").fetchall()
    assert themes == [(0, "Candle")]
    assert m["names"][1] == "Mugs shoppers"  # named by its category, never by the mixed theme
