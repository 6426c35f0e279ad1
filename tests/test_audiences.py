"""Segment definitions (every condition kind, and/or/not, refresh on a new build), frozen
audiences with seeded hold-outs, and the treated vs hold-out comparison, on a hand-made store."""

from __future__ import annotations

import json

import pytest

from core.audiences import DefinitionError, count, describe, members
from core.audiences.audience import compare, draw_holdout, freeze, list_audiences

USERS = {"a": "France", "b": "France", "c": "Germany", "d": "UK", "e": "UK"}
# user -> (frequency, monetary) in build 1 and build 2
FEATURES = {1: {"a": (5, 500.0), "b": (1, 20.0), "c": (3, 90.0), "d": (1, 10.0), "e": (2, 40.0)},
            2: {"a": (6, 520.0), "b": (3, 80.0), "c": (3, 90.0), "d": (1, 10.0), "e": (2, 40.0)}}
# (user, item, type, day)
EVENTS = [("a", "tree", "purchase", "2025-12-20"), ("b", "mug", "purchase", "2025-06-01"),
          ("c", "tree", "view", "2025-12-28"), ("d", "lights", "purchase", "2025-12-01"),
          ("e", "mug", "view", "2025-12-31")]


def _store(con) -> None:
    for u, country in USERS.items():
        con.execute("INSERT INTO users VALUES (?, ?, NULL, 1)", [u, json.dumps({"country": country})])
    for rid, feats in FEATURES.items():
        for u, (f, m) in feats.items():
            con.execute("INSERT INTO user_features (run_id, user_id, frequency, monetary) "
                        "VALUES (?, ?, ?, ?)", [rid, u, f, m])
    for n, (u, item, typ, day) in enumerate(EVENTS):
        con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, 1, 10.0, ?, NULL, 1, NULL)",
                    [n, u, item, typ, f"{day} 12:00:00", f"o{n}"])
    con.execute("INSERT INTO items VALUES ('tree', 'XMAS TREE', NULL, 'Christmas > Trees', NULL, "
                "NULL, 1), ('mug', 'MUG', NULL, 'Kitchen', NULL, NULL, 1), ('lights', 'LIGHTS', "
                "NULL, 'Christmas', NULL, NULL, 1)")
    con.execute("INSERT INTO item_themes VALUES (1, 'tree', 0), (1, 'lights', 0), (1, 'mug', 1)")
    for u, s in (("a", 0), ("b", 1), ("c", 0), ("d", 1), ("e", 1)):
        con.execute("INSERT INTO segments VALUES (1, ?, ?, NULL)", [u, s])
    for u, pct in (("a", 95.0), ("b", 30.0), ("c", 85.0), ("d", 10.0), ("e", 50.0)):
        con.execute("INSERT INTO predictions VALUES (1, ?, 'purchase', ?, ?, [])", [u, pct / 100, pct])


@pytest.fixture()
def shop(tmp_store):
    with tmp_store.write() as con:
        _store(con)
    return tmp_store


CASES = [
    ({"kind": "feature", "feature": "frequency", "op": ">=", "value": 2}, ["a", "c", "e"]),
    ({"kind": "attribute", "attribute": "country", "values": ["France", "UK"]}, ["a", "b", "d", "e"]),
    ({"kind": "activity", "action": "bought", "category": "christmas"}, ["a", "d"]),
    ({"kind": "activity", "action": "bought", "theme": 0, "within_days": 14}, ["a"]),
    ({"kind": "activity", "action": "viewed", "within_days": 5}, ["c", "e"]),
    ({"kind": "like", "phrase": "christmas", "items": ["tree", "lights"]}, ["a", "d"]),
    ({"kind": "segment", "lens": "taste", "segment_id": 1}, ["b", "d", "e"]),
    ({"kind": "prediction", "score": "purchase", "top_percent": 20}, ["a", "c"]),
    ({"kind": "selection", "user_ids": ["b", "c", "zz"]}, ["b", "c"]),   # zz: not a shopper
    ({"all": [{"kind": "segment", "segment_id": 1},
              {"not": {"kind": "attribute", "attribute": "country", "values": ["UK"]}}]}, ["b"]),
    ({"any": [{"kind": "prediction", "score": "purchase", "top_percent": 10},
              {"kind": "activity", "action": "viewed"}]}, ["a", "c", "e"]),
]


@pytest.mark.parametrize("definition,expected", CASES)
def test_each_condition_and_combination(shop, definition, expected):
    con = shop.read()
    try:
        assert members(con, 1, definition) == expected
        assert count(con, 1, definition) == len(expected)
    finally:
        con.close()


def test_a_dynamic_definition_refreshes_on_a_new_build(shop):
    d = {"kind": "feature", "feature": "frequency", "op": ">=", "value": 3}
    con = shop.read()
    try:
        assert members(con, 1, d) == ["a", "c"]
        assert members(con, 2, d) == ["a", "b", "c"]       # b ordered more by build 2
    finally:
        con.close()


def test_definitions_are_data_and_bad_ones_are_refused_in_words(shop):
    con = shop.read()
    try:
        with pytest.raises(DefinitionError, match="Unknown shopper figure 'frequency; DROP"):
            members(con, 1, {"kind": "feature", "feature": "frequency; DROP TABLE events",
                             "value": 1})
        with pytest.raises(DefinitionError, match="'kind' must be one of"):
            members(con, 1, {"kind": "sql", "text": "SELECT 1"})
        with pytest.raises(DefinitionError, match="must be a number"):
            members(con, 1, {"kind": "feature", "feature": "frequency", "value": "lots"})
        # a value with quotes is only ever a parameter
        assert members(con, 1, {"kind": "attribute", "attribute": "country",
                                "values": ["x' OR '1'='1"]}) == []
    finally:
        con.close()
    assert describe({"all": [{"kind": "prediction", "score": "purchase", "top_percent": 20},
                             {"not": {"kind": "activity", "action": "bought", "within_days": 30}}]}
                    ) == "top 20% likely to buy and not bought anything in the last 30 days"


def test_holdout_is_reproducible_and_disjoint():
    ids = [f"u{i}" for i in range(200)]
    t1, h1 = draw_holdout(ids, 0.1, seed=7)
    t2, h2 = draw_holdout(list(reversed(ids)), 0.1, seed=7)
    assert (t1, h1) == (t2, h2)                        # order of input does not matter
    assert len(h1) == 20 and len(t1) == 180 and not set(t1) & set(h1)
    assert set(t1) | set(h1) == set(ids)
    assert draw_holdout(ids, 0.1, seed=8)[1] != h1


def test_freeze_and_compare_treated_with_holdout(shop):
    aid = freeze(shop, "Winter push", run_id=1, holdout_share=0.4, seed=3,
                 definition={"kind": "attribute", "attribute": "country",
                             "values": ["France", "Germany", "UK"]})
    con = shop.read()
    try:
        aud = list_audiences(con).iloc[0]
        assert (aud["treated"], aud["holdout"]) == (3, 2)
        groups = dict(con.execute("SELECT user_id, grp FROM records.audience_members").fetchall())
    finally:
        con.close()
    treated = sorted(u for u, g in groups.items() if g == "treated")
    assert (treated, sorted(set(groups) - set(treated))) == draw_holdout(list(USERS), 0.4, 3)
    # after the freeze (last event 2025-12-31 12:00) new purchases arrive: one treated buyer
    buyer = treated[0]
    with shop.write() as con:
        con.execute("INSERT INTO events VALUES (100, ?, 'mug', 'purchase', '2026-01-05 10:00:00', "
                    "2, 15.0, 'o100', NULL, 2, NULL)", [buyer])
    con = shop.read()
    try:
        out = compare(con, aid)
    finally:
        con.close()
    t, h = out["groups"]["treated"], out["groups"]["holdout"]
    assert (t["shoppers"], t["buyers"], h["shoppers"], h["buyers"]) == (3, 1, 2, 0)
    assert t["conversion"] == pytest.approx(1 / 3) and t["revenue_per_shopper"] == pytest.approx(10.0)
    assert out["difference"]["conversion"] == pytest.approx(1 / 3)
    lo, hi = t["conversion_95"]
    assert lo < 1 / 3 < hi
    assert out["days_since"] == 4
    assert any("hold-out has 2 shoppers" in w for w in out["warnings"])


def test_anything_like_a_phrase_matches_item_texts_with_the_text_model(tmp_store):
    from core.audiences.like import match_items
    from core.embed import embed_items

    titles = ["CHRISTMAS TREE LIGHTS", "RED SPOTTY MUG", "SILVER TINSEL GARLAND", "JUMBO BAG RED",
              "SET OF 6 CHRISTMAS BAUBLES"]
    with tmp_store.write() as con:
        for i, t in enumerate(titles):
            con.execute("INSERT INTO items VALUES (?, ?, NULL, NULL, NULL, NULL, 1)", [f"i{i}", t])
            con.execute("INSERT INTO events VALUES (?, 'u', ?, 'purchase', '2025-01-01', 1, 1, NULL, "
                        "NULL, 1, NULL)", [i, f"i{i}"])
        embed_items(con)
        got = match_items(con, "christmas decorations")
    # the decorations, best first; the mug and the bag are not like it
    assert [g["title"] for g in got] == ["CHRISTMAS TREE LIGHTS", "SET OF 6 CHRISTMAS BAUBLES",
                                         "SILVER TINSEL GARLAND"]
    assert got[0]["similarity"] > got[-1]["similarity"] >= 0.35


def test_audience_cli_freezes_lists_compares_and_exports(shop, tmp_path, capsys):
    from core.cli import main

    with shop.write() as con:
        con.execute("INSERT INTO runs (run_id, kind, status) VALUES (1, 'build', 'complete')")
    db = ["--db", str(shop.path)]
    d = '{"kind": "activity", "action": "bought", "category": "christmas"}'
    assert main(["audience", "freeze", "--name", "Xmas", "--definition", d, "--holdout", "50",
                 "--seed", "1", *db]) == 0
    assert "Audience 1 'Xmas' frozen: 1 shoppers to target, 1 held out" in capsys.readouterr().out
    assert main(["audience", "compare", "1", "--json", *db]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["groups"]["treated"]["shoppers"] + got["groups"]["holdout"]["shoppers"] == 2
    out = tmp_path / "xmas.csv"
    assert main(["audience", "export", "1", "--group", "all", "--out", str(out), *db]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("Exported segment,Definition,Customer ID")
    assert [ln.split(",")[2] for ln in lines[1:]] == ["a", "d"]
    assert lines[1].startswith("Xmas,bought from christmas,a,")
    con = shop.read()
    try:
        from core.audiences.campaign import list_exports

        log = list_exports(con)
    finally:
        con.close()
    assert log[["what", "rows", "format"]].values.tolist() == [["audience 1 'Xmas' (all)", 2, "csv"]]
    assert main(["audience", "freeze", "--name", "Xmas", "--segment", "0", *db]) == 2
    assert "The latest build has no taste segment 0" in capsys.readouterr().err
    assert main(["audience", "freeze", "--name", "xmas", "--definition", d, *db]) == 2
    assert "An audience called 'xmas' already exists" in capsys.readouterr().err


def test_a_dynamic_saved_segment_refreshes_and_a_static_one_does_not(shop):
    from core.explore.saved import save_segment, saved_members

    d = {"kind": "feature", "feature": "frequency", "op": ">=", "value": 3}
    con = shop.read()
    try:
        now = members(con, 1, d)
    finally:
        con.close()
    dyn = save_segment(shop, "Regulars", now, definition={"builder": d, "mode": "dynamic"})
    snap = save_segment(shop, "Regulars then", now, definition={"builder": d, "mode": "static"})
    con = shop.read()
    try:
        assert saved_members(con, dyn, 1) == saved_members(con, snap, 1) == ["a", "c"]
        assert saved_members(con, dyn, 2) == ["a", "b", "c"]      # build 2: b ordered more
        assert saved_members(con, snap, 2) == ["a", "c"]
    finally:
        con.close()
