"""Segments over builds: as-of builds see only earlier events, segments keep their number and
name when the same shoppers form them, and migration flows count every shopper exactly."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.migration import migration, summary
from core.migration.matching import keep_names, match, relabel_like_previous
from core.pipeline import BuildParams, _as_of

# shopper -> (taste segment in build 1, in build 2); build 1 is as of 2025-06-01
MOVES = {"a": (0, 0), "b": (0, 0), "c": (0, 1), "d": (1, 1), "e": (1, 1), "f": (None, 1),
         "g": (1, None)}
# purchases: (shopper, date, revenue)
BUYS = [("a", "2025-03-01", 10.0), ("a", "2025-07-01", 5.0), ("c", "2025-08-01", 40.0),
        ("f", "2025-09-01", 7.5), ("d", "2025-01-01", 100.0)]


def _runs(con) -> None:
    for n, (who, when, rev) in enumerate(BUYS):
        con.execute("INSERT INTO events VALUES (?, ?, 'i1', 'purchase', ?, 1, ?, ?, NULL, 1, NULL)",
                    [n, who, when, rev, f"o{n}"])
    for rid, as_of in ((1, "2025-06-01 00:00:00"), (2, None)):
        con.execute("INSERT INTO runs (run_id, kind, status, params) VALUES (?, 'build', "
                    "'complete', ?)", [rid, json.dumps({"as_of": as_of})])
        for sid, name in ((0, "Mug lovers"), (1, "Tea drinkers")):
            con.execute("INSERT INTO segment_info (run_id, segment_id, name) VALUES (?, ?, ?)",
                        [rid, sid, name if rid == 1 else f"{name} now"])
    for user, (s1, s2) in MOVES.items():
        for rid, sid in ((1, s1), (2, s2)):
            if sid is not None:
                con.execute("INSERT INTO segments VALUES (?, ?, ?, NULL)", [rid, user, sid])


def test_migration_counts_every_shopper_and_their_spend_between_the_builds(tmp_store):
    with tmp_store.write() as con:
        _runs(con)
        df = migration(con, 1, 2)
    flows = {(r["from_segment"], r["to_segment"]): (r["shoppers"], r["revenue"])
             for r in df.to_dict("records")}
    # revenue between 2025-06-01 (build 1's as-of) and the last event (build 2)
    assert flows == {
        ("Mug lovers", "Mug lovers now"): (2, 5.0),          # a (5 in July), b
        ("Mug lovers", "Tea drinkers now"): (1, 40.0),       # c
        ("Tea drinkers", "Tea drinkers now"): (2, 0.0),      # d, e (d spent before June)
        ("Not a shopper yet", "Tea drinkers now"): (1, 7.5),  # f
        ("Tea drinkers", "Not in this build"): (1, 0.0),     # g
    }
    assert sum(n for n, _ in flows.values()) == len(MOVES)
    assert summary(df) == {"in_both": 5, "stayed": 4, "moved": 1, "new": 1, "gone": 1}


def test_migration_cli_json(tmp_store, capsys):
    from core.cli import main

    with tmp_store.write() as con:
        _runs(con)
    assert main(["migration", "--db", str(tmp_store.path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["from_run"], got["to_run"], got["in_both"], got["moved"]) == (1, 2, 5, 1)
    assert got["from_data_end"].startswith("2025-06-01")
    assert main(["migration", "--db", str(tmp_store.path), "--from", "7", "--to", "2"]) == 2
    assert "Build 7 has no taste segments. Builds with segments: 1, 2" in capsys.readouterr().err


def test_segments_are_matched_by_shared_shoppers():
    prev = pd.Series([0, 0, 0, 1, 1, 2, 2, 2], index=list("abcdefgh"))
    # new 0 = old 2 (3 of 3), new 1 = old 0 (2 shared of 3 -> 2/4 = 0.5), new 2 = {d, e, c}
    new = pd.Series([1, 1, 2, 2, 2, 0, 0, 0], index=list("abcdefgh"))
    assert match(prev, new) == {0: (2, 1.0), 1: (0, pytest.approx(2 / 3)),
                                2: (1, pytest.approx(2 / 3))}
    assert match(prev, pd.Series([0] * 8, index=list("abcdefgh"))) == {}   # 3/8 < 0.5


def test_a_rebuild_keeps_numbers_and_names_of_the_same_segments(tmp_store):
    with tmp_store.write() as con:
        con.execute("INSERT INTO runs (run_id, kind, status) VALUES (1, 'build', 'complete'), "
                    "(2, 'build', 'running')")
        old = {"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}
        new = {"a": 2, "b": 2, "c": 0, "d": 0, "e": 1}      # same groups, other numbers
        for rid, m in ((1, old), (2, new)):
            for u, s in m.items():
                con.execute("INSERT INTO segments VALUES (?, ?, ?, NULL)", [rid, u, s])
        matched = relabel_like_previous(con, 2)
        got = dict(con.execute("SELECT user_id, segment_id FROM segments WHERE run_id = 2")
                   .fetchall())
        assert got == old
        assert matched["previous_run"] == 1 and set(matched["matched"]) == {"0", "1", "2"}
        for rid, names in ((1, ["Mugs", "Tea", "Cards"]), (2, ["Mug fans", "Tea", "Candles"])):
            for sid, nm in enumerate(names):
                con.execute("INSERT INTO segment_info (run_id, segment_id, name) VALUES (?, ?, ?)",
                            [rid, sid, nm])
        assert keep_names(con, 2, matched) == ["Mugs", "Cards"]
        # a fallback name is no identity: a later build's real name replaces it, and a build
        # that still finds nothing keeps it
        con.execute("UPDATE segment_info SET name = 'Broad taste' WHERE run_id = 1 AND "
                    "segment_id IN (0, 2)")
        con.execute("UPDATE segment_info SET name = 'Mug fans' WHERE run_id = 2 AND segment_id = 0")
        con.execute("UPDATE segment_info SET name = 'Broad taste 1' WHERE run_id = 2 AND "
                    "segment_id = 2")
        assert keep_names(con, 2, matched) == ["Broad taste"]
        assert dict(con.execute("SELECT segment_id, name FROM segment_info WHERE run_id = 2")
                    .fetchall()) == {0: "Mug fans", 1: "Tea", 2: "Broad taste"}


def test_an_as_of_build_sees_only_earlier_events(tmp_store):
    with tmp_store.write() as con:
        _runs(con)
        assert _as_of(con, "2025-06-01 00:00:00") == 2                  # a in March, d in January
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 2
    con = tmp_store.read()
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(BUYS)  # untouched
    finally:
        con.close()
    assert BuildParams(as_of="2011-09-01").as_of == "2011-09-01 00:00:00"
    with pytest.raises(ValueError, match="as_of must be a date like 2011-09-01"):
        BuildParams(as_of="next tuesday")
