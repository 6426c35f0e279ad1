"""Item themes: class-based TF-IDF labels (exact on hand-made titles) and the themes stage on a
small catalogue embedded with the bundled text model."""

from __future__ import annotations

import math

import pytest

from core.themes import build_themes, ctfidf, default_n_themes, label_themes, terms


def test_terms_drop_filler_words_and_add_bigrams():
    assert terms("JUMBO BAG RED RETROSPOT") == ["bag", "retrospot", "bag retrospot"]
    assert terms("Set of 3 cake tins, pantry design") == [
        "cake", "tins", "pantry", "cake tins", "tins pantry"]


def test_class_based_tfidf_weights_exactly():
    docs = {0: ["mug tea", "mug coffee"], 1: ["candle tea"]}
    w = {c: {t: (x, n) for t, x, n in rows} for c, rows in ctfidf(docs).items()}
    # theme 0 terms: mug x2, tea, coffee, mug tea, mug coffee (6); theme 1: candle, tea,
    # candle tea (3); A = (6 + 3) / 2 = 4.5; f(mug) = 2, f(tea) = 2, f(candle) = 1
    assert w[0]["mug"] == (pytest.approx(2 / 6 * math.log(1 + 4.5 / 2)), 2)
    assert w[0]["tea"] == (pytest.approx(1 / 6 * math.log(1 + 4.5 / 2)), 1)
    assert w[1]["candle"] == (pytest.approx(1 / 3 * math.log(1 + 4.5 / 1)), 1)
    assert ctfidf(docs)[0][0][0] == "mug"  # best first


def test_labels_are_distinctive_phrases_and_distinct():
    docs = {
        0: ["LUNCH BAG RED RETROSPOT", "LUNCH BAG SUKI", "LUNCH BAG BLACK SKULL", "JUMBO BAG PINK"],
        1: ["HOT WATER BOTTLE KEEP CALM", "HOT WATER BOTTLE TEA", "CHOCOLATE HOT WATER BOTTLE"],
        2: ["WHITE HANGING HEART T-LIGHT HOLDER", "RED HANGING HEART T-LIGHT HOLDER",
            "GLASS STAR T-LIGHT HOLDER"],
        3: ["MUG", "MUG"],
        4: ["MUG", "MUG"],
        5: ["PAPER NAPKINS ROSE", "PAPER CUPS", "NAPKINS PACK", "DINNER NAPKINS", "PAPER PLATES"],
    }
    got = label_themes(docs)
    assert got[0]["label"] == "Lunch bag"           # the bigram in 3 of 4 titles
    assert got[1]["label"] == "Hot water bottle"    # extended to the phrase of every title
    assert got[2]["label"] == "Hanging heart holder"
    assert got[5]["label"] == "Napkins & paper"     # no bigram in a quarter of the titles:
    assert got[5]["keywords"][:2] == ["napkins", "paper"]  # best word and a second idea
    # two themes whose best word is the same get told apart
    assert got[3]["label"] == "Mug" and got[4]["label"] == "Mug 2"


def test_number_of_themes_follows_the_catalogue():
    assert [default_n_themes(n) for n in (0, 5, 30, 169, 3000, 50_000)] == [0, 1, 4, 8, 30, 30]


def test_themes_stage_groups_similar_items(tmp_store):
    groups = {
        "mug": ["Ceramic coffee mug", "Tea mug with handle", "Large breakfast mug",
                "Enamel camping mug", "Porcelain espresso cup", "Stoneware mug"],
        "candle": ["Scented vanilla candle", "Soy wax candle", "Pillar candle", "Tea light candles",
                   "Beeswax taper candle", "Lavender candle jar"],
        "bag": ["Canvas tote bag", "Leather shoulder bag", "Lunch bag", "Shopping bag",
                "Drawstring bag", "Jute beach bag"],
    }
    rows, n = [], 0
    with tmp_store.write() as con:
        for g, titles in groups.items():
            for t in titles:
                n += 1
                rows.append((f"{g}{n}", t))
                con.execute("INSERT INTO items VALUES (?, ?, NULL, NULL, NULL, NULL, 1)",
                            [f"{g}{n}", t])
                con.execute("INSERT INTO events VALUES (?, 'u1', ?, 'purchase', '2025-01-01', 1, 2.0, "
                            "'b1', NULL, 1, NULL)", [n, f"{g}{n}"])
        # an item nobody touched gets no theme
        con.execute("INSERT INTO items VALUES ('unused', 'Garden hose', NULL, NULL, NULL, NULL, 1)")
        from core.embed import embed_items

        embed_items(con)
        m = build_themes(con, 1, n_themes=3, seed=1)
        themes = dict(con.execute("SELECT item_id, theme_id FROM item_themes WHERE run_id = 1"
                                  ).fetchall())
        info = con.execute("SELECT label, n_items, buyers FROM theme_info WHERE run_id = 1 "
                           "ORDER BY theme_id").fetchall()
    assert m["n_themes"] == 3 and m["n_items"] == 18 and "unused" not in themes
    for g in groups:  # every group is one theme
        assert len({t for i, t in themes.items() if i.startswith(g)}) == 1
    assert sorted(r[0] for r in info) == ["Bag", "Candle", "Mug"]
    assert [r[1] for r in info] == [6, 6, 6] and all(r[2] == 1 for r in info)


def test_a_label_names_a_quarter_of_the_items_or_says_the_theme_is_mixed():
    docs = {
        # "diamante" weighs most (rare elsewhere) but is in 1 of 8 titles; "pencil" is in 3
        0: ["DIAMANTE HAIR SLIDE", "COLOURING PENCIL TUBE", "PENCIL SHARPENER", "WOODEN PENCIL",
            "INFLATABLE GLOBE", "DOGGY RUBBER", "SPACE OWL", "PARTY BUNTING"],
        # a grab bag: no word in two of its nine titles
        1: ["Garden trowel", "Seed tray", "Watering can", "Cotton romper", "Muslin cloth",
            "Baby socks", "Pruning shears", "Kneeling pad", "Plant labels"],
        2: ["Garden hose", "Garden gloves", "Garden fork", "Garden kneeler"],
    }
    got = label_themes(docs)
    assert got[0]["label"] == "Pencil"
    assert got[1]["label"] == "Mixed: baby, can"   # the two words in most titles (ties: weight)
    assert got[2]["label"] == "Garden"
    from core.themes.label import is_mixed

    assert [is_mixed(got[c]["label"]) for c in range(3)] == [False, True, False]
